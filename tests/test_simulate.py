"""``simulate`` and protocols: batching over conditions, noise, input validation, atlas smoke.

The module runs in float64 (enabled here, restored afterwards) except the tests that request
the ``x32`` fixture. Circuits are 4-neuron graded networks and 4-neuron linear models built
directly with their constructors; only the smoke tests use the 302-neuron atlas model.
"""

from __future__ import annotations

import math
import re

import jax
import numpy as np
import pytest

import digiworm
from digiworm.models import GradedNetwork, LinearModel, graded_from_atlas
from digiworm.simulate import Noise, Protocol, simulate

jnp = jax.numpy


pytestmark = pytest.mark.usefixtures("x64")  # this module runs in float64 (conftest)


@pytest.fixture
def x32():
    """Run one test in JAX's default 32-bit mode (the way the CLI runs the atlas model)."""
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", True)


NAMES = ("AVAL", "AVAR", "DD1", "VB1")
N = len(NAMES)
T_END, DT, SAVE = 2.0, 0.01, 0.1


def small_network(alive=None, **overrides) -> GradedNetwork:
    """4 neurons: gap junctions, excitatory and inhibitory synapses, peptides, tonic drive."""
    g_gap = np.zeros((N, N))
    g_gap[0, 1] = g_gap[1, 0] = 0.3
    g_chem = np.zeros((N, N))  # [post, pre]
    g_chem[2, 0], g_chem[3, 1], g_chem[3, 2], g_chem[0, 3] = 0.6, 0.4, 0.8, 0.2
    e_chem = np.tile(np.array([0.0, 0.0, -48.0, 0.0]), (N, 1))  # DD1 inhibitory
    w_pep = np.zeros((N, N))
    w_pep[1, 3], w_pep[2, 0] = 2.0, -1.0
    params = {
        "g_gap": g_gap,
        "g_chem": g_chem,
        "e_chem_mV": e_chem,
        "w_pep_mV": w_pep,
        "tau_m_s": np.array([0.1, 0.1, 0.12, 0.08]),
        "v_rest_mV": np.full(N, -35.0),
        "v_th_mV": np.full(N, -25.0),
        "tau_pep_s": np.array(0.5),
        "a_r_per_s": np.array(1.0),
        "a_d_per_s": np.array(5.0),
        "beta_per_mV": np.array(0.125),
        "g_tonic": np.array([0.0, 0.1, 0.0, 0.0]),
        "e_tonic_mV": np.zeros(N),
    }
    params.update(overrides)
    return GradedNetwork(
        names=NAMES,
        **{k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()},
        alive=jnp.ones(N, dtype=bool) if alive is None else jnp.asarray(alive),
    )


def three_conditions(amplitude=None, onset=(0.5, 0.73, 0.2), duration=(0.5, 0.31, 1.0)):
    """Pulse edges on the save grid (condition 0) and inside steps (condition 1)."""
    if amplitude is None:
        amplitude = [[15.0, 0, 0, 0], [0, 10.0, 0, 10.0], [0, 0, 20.0, 0]]
    return Protocol(
        amplitude=jnp.asarray(np.asarray(amplitude, dtype=float)),
        onset_s=jnp.asarray(np.asarray(onset, dtype=float)),
        duration_s=jnp.asarray(np.asarray(duration, dtype=float)),
        labels=("c0", "c1", "c2"),
    )


def one_condition(protocol: Protocol, c: int) -> Protocol:
    return Protocol(
        amplitude=protocol.amplitude[c : c + 1],
        onset_s=protocol.onset_s[c : c + 1],
        duration_s=protocol.duration_s[c : c + 1],
        labels=(protocol.labels[c],),
    )


def run(model, protocol, **kwargs):
    kwargs = {"save_dt_s": SAVE, "settle_s": 5.0, **kwargs}
    return simulate(model, protocol, T_END, DT, **kwargs)


@pytest.fixture(scope="module")
def batched():
    """(model, 3-condition protocol, its simulation with GCaMP6s)."""
    model = small_network()
    protocol = three_conditions()
    return model, protocol, run(model, protocol)


# ---------------------------------------------------------------------------------------------
# Output layout
# ---------------------------------------------------------------------------------------------
def test_output_dims_and_coords(batched):
    model, protocol, ds = batched
    for var in ("dff", "stimulus", "activity"):
        assert ds[var].dims == ("condition", "time", "neuron")
    assert list(ds.condition.values) == ["c0", "c1", "c2"]
    assert list(ds.neuron.values) == list(NAMES)
    np.testing.assert_allclose(ds.time.values, np.arange(21) * SAVE, rtol=0, atol=1e-12)
    assert ds.time.attrs["units"] == "s"
    assert np.isfinite(ds.dff.values).all() and np.isfinite(ds.activity.values).all()
    act = ds.activity.values
    assert ((act > 0) & (act < 1)).all()
    # at t = 0 every condition is at the same rest, and ΔF/F is 0 there (F0 is the rest)
    np.testing.assert_allclose(act[:, 0], np.broadcast_to(act[0, 0], (3, N)), atol=1e-15)
    np.testing.assert_allclose(ds.dff.values[:, 0], 0.0, atol=1e-15)
    # the stimulated neuron responds during its pulse and its ΔF/F follows
    t = ds.time.values
    during = (t > 0.55) & (t < 1.0)
    assert (act[0, during, 0] > act[0, 0, 0] + 0.1).all()
    assert ds.dff.values[0, t == 1.0, 0] > 0.05


def test_stimulus_reports_the_input_at_each_sample(batched):
    """``stimulus`` is documented as the input at each sample time.

    Condition 0 drives AVAL with 15 mV over [0.5, 1.0) s, edges on the save grid, so the
    input at t = 0.5 is 15 and at t = 1.0 is 0. (Currently the value recorded at t is the
    input held over the step *ending* at t, [t − dt, t): one sample late at every edge.)
    """
    _, protocol, ds = batched
    stim = ds.stimulus.sel(condition="c0", neuron="AVAL")
    want = np.asarray(
        Protocol.drive(protocol.amplitude[0, 0], 0.5, 0.5, jnp.asarray(ds.time.values), DT)
    )
    assert float(stim.sel(time=0.5)) == pytest.approx(15.0)
    assert float(stim.sel(time=1.0)) == pytest.approx(0.0)
    np.testing.assert_allclose(stim.values, want, atol=1e-12)


def test_ablated_neuron_reads_nan():
    model = small_network(alive=[True, True, False, True])
    ds = run(model, three_conditions())
    assert np.isnan(ds.activity.sel(neuron="DD1").values).all()
    assert np.isnan(ds.dff.sel(neuron="DD1").values).all()
    others = ds.activity.drop_sel(neuron="DD1").values
    assert np.isfinite(others).all()
    assert np.isfinite(ds.dff.drop_sel(neuron="DD1").values).all()


# ---------------------------------------------------------------------------------------------
# 5. vmap over conditions equals a loop; noise keys
# ---------------------------------------------------------------------------------------------
def test_batched_conditions_equal_a_loop(batched):
    """Each condition of one batched run equals its own 1-condition run, to 1e-12 (float64)."""
    model, protocol, ds = batched
    worst = 0.0
    for c in range(3):
        alone = run(model, one_condition(protocol, c))
        for var in ("activity", "dff", "stimulus"):
            diff = np.abs(ds[var].values[c] - alone[var].values[0]).max()
            worst = max(worst, diff)
    print(f"batched vs loop: max difference {worst:.1e}")
    assert worst <= 1e-12


def test_noise_is_deterministic_given_the_key():
    """Same key → bit-identical; another key → different; conditions get independent noise."""
    model = small_network()
    protocol = three_conditions()
    noise = Noise(sigma=2.0, tau_s=0.5)
    a = run(model, protocol, noise=noise, key=jax.random.PRNGKey(0))
    b = run(model, protocol, noise=noise, key=jax.random.PRNGKey(0))
    c = run(model, protocol, noise=noise, key=jax.random.PRNGKey(1))
    np.testing.assert_array_equal(a.activity.values, b.activity.values)
    np.testing.assert_array_equal(a.dff.values, b.dff.values)
    assert np.abs(a.activity.values - c.activity.values).max() > 1e-3
    # changing condition 1 leaves conditions 0 and 2 (their keys and inputs) untouched
    changed = three_conditions(amplitude=[[15.0, 0, 0, 0], [0, 0, 5.0, 0], [0, 0, 20.0, 0]])
    d = run(model, changed, noise=noise, key=jax.random.PRNGKey(0))
    for k in (0, 2):
        np.testing.assert_allclose(d.activity.values[k], a.activity.values[k], rtol=0, atol=1e-12)
    assert np.abs(d.activity.values[1] - a.activity.values[1]).max() > 1e-3
    # identical protocols in every condition still get independent noise
    same = three_conditions(amplitude=np.zeros((3, N)), onset=(1.0,) * 3, duration=(0.5,) * 3)
    e = run(model, same, noise=noise, key=jax.random.PRNGKey(0)).activity.values
    assert np.abs(e[0] - e[1]).max() > 1e-3 and np.abs(e[1] - e[2]).max() > 1e-3


@pytest.fixture(scope="module")
def linear_noise():
    """A 4-neuron LinearModel under three conditions, 60 s, run three times with one key:
    noisy, noise off (sigma = 0) and noise only (zero amplitudes). One compiled function."""
    rng = np.random.default_rng(5)
    a = rng.normal(0, 1, (N, N)) - 3 * np.eye(N)
    model = LinearModel(
        names=NAMES, a_per_s=jnp.asarray(a), b_per_s=jnp.asarray(rng.uniform(0.5, 2, N))
    )
    protocol = three_conditions()
    kw = {"save_dt_s": 0.25, "indicator": None, "key": jax.random.PRNGKey(42)}
    tau = 0.3
    noisy = simulate(model, protocol, 60.0, DT, noise=Noise(1.0, tau), **kw)
    quiet = simulate(model, protocol, 60.0, DT, noise=Noise(0.0, tau), **kw)
    zero = three_conditions(amplitude=np.zeros((3, N)))
    pure = simulate(model, zero, 60.0, DT, noise=Noise(1.0, tau), **kw)
    return noisy, quiet, pure, tau


def test_noise_superposes_on_a_linear_model(linear_noise):
    """Linear model: noisy run = noiseless run + noise-only run, per condition, to 1e-12.

    All three share one key, so each condition gets the same noise draws in all three runs
    (per-condition keys from ``jax.random.split(key, n_conditions)``).
    """
    noisy, quiet, pure, _ = linear_noise
    for var in ("dff", "stimulus"):
        np.testing.assert_allclose(
            noisy[var].values, quiet[var].values + pure[var].values, rtol=0, atol=1e-12
        )
    assert np.abs(pure.dff.values).max() > 0.05
    # noise off is the deterministic response: the pulse is still all there
    assert np.abs(quiet.stimulus.values).max() == pytest.approx(20.0)


def test_noise_has_the_ou_statistics(linear_noise):
    """Stationary OU input (σ = 1, τ = 0.3 s, read from ``stimulus`` of the noise-only run):
    s.d. σ (±8 %), mean 0 (±0.12σ), lag-0.25 s autocorrelation e^{−Δ/τ} (±0.1), neurons
    independent (|r| < 0.15).

    3 conditions × 4 neurons × 60 s sampled every 0.25 s: ~1100 effective samples, so the
    s.d. is known to ~2 % (the tolerance is ~4 standard errors).
    """
    _, _, pure, tau = linear_noise
    sigma, save = 1.0, 0.25
    t = pure.time.values
    eta = pure.stimulus.values[:, t > 5 * tau]  # past the start-up from eta = 0
    sd = eta.std()
    lag = np.mean(
        [np.corrcoef(x[:-1], x[1:])[0, 1] for x in eta.transpose(0, 2, 1).reshape(-1, eta.shape[1])]
    )
    cross = np.corrcoef(eta[0, :, 0], eta[0, :, 1])[0, 1]
    print(
        f"OU: sd {sd:.3f} (want {sigma}), mean {eta.mean():.3f}, lag corr {lag:.3f} "
        f"(want {math.exp(-save / tau):.3f}), cross-neuron {cross:.3f}"
    )
    assert abs(sd / sigma - 1) < 0.08
    assert abs(eta.mean()) < 0.12 * sigma
    assert abs(lag - math.exp(-save / tau)) < 0.1
    assert abs(cross) < 0.15


# ---------------------------------------------------------------------------------------------
# Protocols
# ---------------------------------------------------------------------------------------------
def test_drive_preserves_the_pulse_integral():
    """Step-averaged drive: Σ u_k dt = amplitude × duration exactly (1e-12), 0 ≤ u_k ≤ amp."""
    dt = 0.01
    t0 = jnp.arange(300) * dt
    for onset, dur in [(0.123, 0.4567), (0.5, 0.5), (0.001, 0.003), (0.7349, 2.0)]:
        u = np.asarray(Protocol.drive(3.0, onset, dur, t0, dt))
        covered = min(onset + dur, 3.0) - onset
        assert u.sum() * dt == pytest.approx(3.0 * covered, abs=1e-12)
        assert (u >= 0).all() and (u <= 3.0 + 1e-12).all()


def test_protocol_single():
    p = Protocol.single(NAMES, ["AVAL", ["AVAR", "VB1"], []], amplitude=7.0, onset_s=1.0)
    assert p.labels == ("AVAL", "AVAR+VB1", "none")
    np.testing.assert_array_equal(
        np.asarray(p.amplitude), [[7.0, 0, 0, 0], [0, 7.0, 0, 7.0], [0, 0, 0, 0]]
    )
    assert np.asarray(p.onset_s).tolist() == [1.0] * 3


def test_protocol_single_unknown_neuron_suggests():
    with pytest.raises(digiworm.UnknownNameError, match="AVLA.*AVAL") as err:
        Protocol.single(NAMES, ["AVLA"])
    assert "AVAL" in err.value.suggestions


@pytest.mark.parametrize(("onset", "duration"), [(-1.0, 0.5), (1.0, 0.0), (1.0, float("nan"))])
def test_protocol_single_rejects_bad_pulses(onset, duration):
    with pytest.raises(
        digiworm.DigiwormError, match=re.escape(str(duration if onset >= 0 else onset))
    ):
        Protocol.single(NAMES, ["AVAL"], onset_s=onset, duration_s=duration)


@pytest.mark.parametrize("kwargs", [{"sigma": -1.0}, {"sigma": float("nan")}, {"tau_s": 0.0}])
def test_noise_rejects_bad_parameters(kwargs):
    with pytest.raises(digiworm.DigiwormError, match="sigma|tau_s"):
        Noise(**kwargs)


# ---------------------------------------------------------------------------------------------
# 6. Input validation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration_s": 0.0}, r"duration.*got 0\.0"),
        ({"duration_s": -1.0}, r"duration.*got -1\.0"),
        ({"duration_s": float("nan")}, r"duration.*got nan"),
        ({"dt_s": float("nan")}, r"dt.*got nan"),
        ({"dt_s": -0.01}, r"dt.*got -0\.01"),
        ({"duration_s": 0.5, "dt_s": 0.5}, r"dt \(0\.5 s\) must be smaller"),
        ({"dt_s": 0.03}, r"save_dt.*0\.03 s steps"),
        ({"save_dt_s": 0.005}, r"save_dt \(0\.005 s\) must be >= dt"),
        ({"duration_s": 1.05}, r"duration: 1\.05 s is not a whole number"),
        ({"method": "rk45"}, r"unknown method 'rk45'"),
        ({"dt_s": 0.25, "save_dt_s": 0.5}, r"dt = 0\.25 s is unstable.*use dt <= "),
        ({"noise": "no key"}, r"key"),
    ],
)
def test_simulate_rejects(kwargs, message):
    model = small_network()
    args = {"duration_s": 1.0, "dt_s": 0.01, "save_dt_s": 0.1}
    args.update(kwargs)
    if args.get("noise") == "no key":
        args["noise"] = Noise()
    with pytest.raises(digiworm.DigiwormError, match=message):
        simulate(model, three_conditions(), **args)


def test_simulate_rejects_nan_parameters():
    g_chem = np.zeros((N, N))
    g_chem[2, 0] = np.nan
    with pytest.raises(digiworm.DigiwormError, match="GradedNetwork has NaN"):
        simulate(small_network(g_chem=g_chem), three_conditions(), 1.0, 0.01, save_dt_s=0.1)


def test_simulate_rejects_a_protocol_for_another_circuit():
    p = Protocol.single(("AVAL", "AVAR", "DD1"), ["AVAL"])
    with pytest.raises(digiworm.DigiwormError, match="drives 3 neurons but the model has 4"):
        simulate(small_network(), p, 1.0, 0.01, save_dt_s=0.1)


def test_simulate_rejects_a_non_model():
    with pytest.raises(digiworm.DigiwormError, match="must be a digiworm model"):
        simulate("AVAL", three_conditions(), 1.0, 0.01)


def test_exact_method_on_a_graded_network_is_a_digiworm_error():
    """``method="exact"`` only exists for linear models; on a graded network it should be a
    DigiwormError naming the methods (it is currently a bare ValueError from inside the trace,
    and the stability check is skipped for it)."""
    with pytest.raises(digiworm.DigiwormError, match="exact"):
        simulate(small_network(), three_conditions(), 1.0, 0.01, save_dt_s=0.1, method="exact")


def _stiff_network():
    """All-to-all gap junctions of 4× the leak: fastest rate ~ 300/s (heun limit ~ 6.3 ms)."""
    return small_network(g_gap=np.full((N, N), 4.0) - 4.0 * np.eye(N))


def _suggested_dt(model) -> float:
    with pytest.raises(digiworm.DigiwormError, match=r"use dt <= ") as err:
        simulate(model, three_conditions(), 1.0, 0.01, save_dt_s=0.1)
    return float(re.search(r"use dt <= ([0-9.e+-]+) s", str(err.value)).group(1))


def test_suggested_dt_is_accepted():
    """The dt that the stability error suggests must itself pass the check.

    (Currently the limit is printed with ``:.3g``, which rounds *up* half the time: here the
    limit 2/315 = 0.0063492 s is suggested as 0.00635 s, which is then rejected.)
    """
    model = _stiff_network()
    dt = _suggested_dt(model)
    simulate(model, three_conditions(), 100 * dt, dt, save_dt_s=20 * dt, settle_s=20 * dt)


def test_dt_at_the_stability_limit_is_stable():
    """Just inside the stability limit (0.999 × 2 / max_rate, heun) the circuit decays to rest."""
    model = _stiff_network()
    assert _suggested_dt(model) < 0.01
    dt = 0.999 * 2.0 / float(model.max_rate())
    ds = simulate(model, three_conditions(), 300 * dt, dt, save_dt_s=20 * dt, settle_s=20 * dt)
    act = ds.activity.values
    assert np.isfinite(act).all() and ((act >= 0) & (act <= 1)).all()
    # after the pulses (all over by 1.2 s < 300 dt) every condition is back at rest
    assert 300 * dt > 1.5
    np.testing.assert_allclose(act[:, -1], act[:, 0], atol=0.02)
    assert np.abs(np.diff(act[:, -3:], axis=1)).max() < 0.01


# ---------------------------------------------------------------------------------------------
# 8. Smoke on the atlas model
# ---------------------------------------------------------------------------------------------
def test_atlas_graded_network_smoke(atlas, x32):
    model = graded_from_atlas(atlas)
    assert model.g_chem.dtype == jnp.float32  # the default dtype (see the x64 test below)
    assert model.n_neurons == 302 and len(set(model.names)) == 302
    g = np.asarray(model.g_gap)
    np.testing.assert_array_equal(g, g.T)
    assert (np.diag(g) == 0).all() and (g >= 0).all() and g.sum() > 0
    e = np.asarray(model.e_chem_mV)
    assert set(np.unique(e).tolist()) == {0.0, -48.0}
    chem = np.asarray(model.g_chem)
    idx = {n: i for i, n in enumerate(model.names)}
    dd1 = chem[:, idx["DD1"]] > 0
    assert dd1.any() and (e[dd1, idx["DD1"]] == -48.0).all()  # GABAergic DD1
    aval = chem[:, idx["AVAL"]] > 0
    assert aval.sum() >= 10 and (e[aval, idx["AVAL"]] == 0.0).mean() > 0.5  # cholinergic AVAL
    rate = float(model.max_rate())
    assert math.isfinite(rate) and rate > 10.0
    protocol = Protocol.single(
        model.names, ["AVAL", []], amplitude=15.0, onset_s=2.0, duration_s=2.0
    )
    ds = simulate(model, protocol, 10.0, 0.02, save_dt_s=0.5)
    assert ds.dff.dims == ("condition", "time", "neuron")
    assert ds.dff.shape == (2, 21, 302)
    assert np.isfinite(ds.dff.values).all() and np.isfinite(ds.activity.values).all()
    aval_act = ds.activity.sel(condition="AVAL", neuron="AVAL").values
    t = ds.time.values
    assert aval_act[(t >= 2.5) & (t <= 4.0)].min() > aval_act[t == 2.0][0] + 0.2
    # the unstimulated condition stays at rest (within float32 noise)
    rest = ds.activity.sel(condition="none").values
    assert np.abs(rest - rest[0]).max() < 1e-3


def test_float32_network_runs_with_x64_enabled():
    """A float32 network (the default of ``graded_from_atlas``) must also simulate when
    jax_enable_x64 is on, as it must be for ``kernel_from_atlas``. Currently the float64
    input makes the float32 state float64 inside ``lax.scan`` and ``rest_state`` raises a
    carry-dtype TypeError (same failure with ``graded_from_atlas(atlas)``)."""
    f32 = small_network()
    f32 = jax.tree_util.tree_map(
        lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, f32
    )
    assert f32.g_chem.dtype == jnp.float32
    ds = simulate(f32, three_conditions(), 1.0, DT, save_dt_s=0.5, settle_s=0.1)
    assert np.isfinite(ds.dff.values).all()


def test_response_change_is_the_window_mean_minus_the_baseline():
    import xarray as xr

    from digiworm.simulate import response_change

    t = np.arange(0.0, 40.0, 0.5)
    trace = np.where(t > 5.0, 1.0, 0.2) + np.where(t > 20.0, 2.0, 0.0)  # step, then a later step
    dff = xr.DataArray(trace, dims=["time"], coords={"time": t})
    # (5, 35]: 15 s at 1.0 and 15 s at 3.0 -> 2.0, minus the 0.2 baseline
    assert float(response_change(dff, 5.0)) == pytest.approx(1.8)
    assert float(response_change(dff, 5.0, window_s=10.0)) == pytest.approx(0.8)
    with pytest.raises(digiworm.DigiwormError, match="no samples before the onset"):
        response_change(dff, 0.0)
