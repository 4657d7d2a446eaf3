"""Numerical checks of the models against closed forms and independent reference solvers.

Every check runs in float64 (enabled for this module only, then restored) on circuits of 3–8
neurons built directly with the model constructors. The references are written here from the
equations in the module docstrings (NumPy + SciPy), never by calling the model's own methods.
Tolerances are stated next to each assertion; the errors measured when these tests were
written are quoted in the comments.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

import digiworm
from digiworm.models import (
    CalciumIndicator,
    GCaMP6s,
    GradedNetwork,
    GradedState,
    LinearModel,
    classical_transmitters,
    synapse_signs,
)
from digiworm.simulate import Protocol, rest_state, simulate

jnp = jax.numpy


pytestmark = pytest.mark.usefixtures("x64")  # this module runs in float64 (conftest)


# ---------------------------------------------------------------------------------------------
# A small graded circuit and its independent NumPy right-hand side
# ---------------------------------------------------------------------------------------------
N = 5
NAMES = ("A", "B", "C", "D", "E")
# pulse into A: edges on every dt grid used below
AMP = np.array([20.0, 0.0, 0.0, 0.0, 0.0])
ONSET, DUR, T_END, SAVE = 0.2, 0.5, 1.5, 0.1
SETTLE = 10.0


def circuit_params() -> dict[str, np.ndarray]:
    """Gap junctions, excitatory and inhibitory synapses, peptides, a tonic conductance."""
    g_gap = np.zeros((N, N))
    for i, j, g in [(0, 1, 0.3), (1, 2, 0.2), (3, 4, 0.4), (0, 4, 0.1)]:
        g_gap[i, j] = g_gap[j, i] = g
    g_chem = np.zeros((N, N))  # [post, pre]
    for post, pre, g in [
        (1, 0, 0.6),
        (2, 0, 0.4),
        (3, 2, 0.8),
        (4, 2, 0.5),
        (0, 3, 0.3),
        (2, 1, 0.5),
        (4, 1, 0.3),
    ]:
        g_chem[post, pre] = g
    e_pre = np.array([0.0, 0.0, -48.0, 0.0, -48.0])  # C and E inhibitory
    w_pep = np.zeros((N, N))
    w_pep[3, 0], w_pep[1, 4], w_pep[0, 2] = 3.0, -2.0, 1.5
    return {
        "g_gap": g_gap,
        "g_chem": g_chem,
        "e_chem_mV": np.tile(e_pre, (N, 1)),
        "w_pep_mV": w_pep,
        "tau_m_s": np.array([0.1, 0.08, 0.12, 0.15, 0.1]),
        "v_rest_mV": np.array([-35.0, -33.0, -36.0, -30.0, -35.0]),
        "v_th_mV": np.array([-25.0, -24.0, -26.0, -22.0, -25.0]),
        "tau_pep_s": np.array(0.5),
        "a_r_per_s": np.array(1.0),
        "a_d_per_s": np.array(5.0),
        "beta_per_mV": np.array(0.125),
        "g_tonic": np.array([0.0, 0.0, 0.2, 0.0, 0.0]),
        "e_tonic_mV": np.array([0.0, 0.0, -10.0, 0.0, 0.0]),
    }


def build(params: dict[str, np.ndarray], names=NAMES) -> GradedNetwork:
    return GradedNetwork(
        names=tuple(names),
        **{k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()},
        alive=jnp.ones(len(names), dtype=bool),
    )


def reference_rhs(P):
    """dy/dt of y = [V, s, p] written from the docstring of ``digiworm.models._graded``."""
    n = P["tau_m_s"].size

    def phi(v):
        return 1.0 / (1.0 + np.exp(-P["beta_per_mV"] * (v - P["v_th_mV"])))

    def f(t, y, u):
        v, s, p = y[:n], y[n : 2 * n], y[2 * n :]
        gap = (P["g_gap"] * (v[None, :] - v[:, None])).sum(1)
        chem = (P["g_chem"] * s[None, :] * (P["e_chem_mV"] - v[:, None])).sum(1)
        pep = P["w_pep_mV"] @ p
        tonic = P["g_tonic"] * (P["e_tonic_mV"] - v)
        dv = (P["v_rest_mV"] - v + gap + chem + pep + tonic + u) / P["tau_m_s"]
        ds = P["a_r_per_s"] * phi(v) * (1.0 - s) - P["a_d_per_s"] * s
        dp = (phi(v) - p) / P["tau_pep_s"]
        return np.concatenate([dv, ds, dp])

    return f, phi


def solve_pulse(f, y0, t_eval, amp, onset, dur, t_end, method="Radau", rtol=1e-10, atol=1e-12):
    """Integrate ``f`` under a square pulse, split at its edges; return y at ``t_eval``."""
    out = {}
    y = np.asarray(y0, dtype=float)
    for a, b, u in [
        (0.0, onset, 0 * amp),
        (onset, onset + dur, amp),
        (onset + dur, t_end, 0 * amp),
    ]:
        te = np.unique(np.concatenate([t_eval[(t_eval >= a) & (t_eval <= b)], [b]]))
        sol = solve_ivp(
            f, (a, b), y, method=method, t_eval=te, rtol=rtol, atol=atol, args=(u,), max_step=0.01
        )
        assert sol.success, sol.message
        out.update({round(t, 9): yy for t, yy in zip(te, sol.y.T)})
        y = sol.y[:, -1]
    return np.array([out[round(t, 9)] for t in t_eval])


def flat(state: GradedState) -> np.ndarray:
    return np.concatenate([np.asarray(state.v_mV), np.asarray(state.s), np.asarray(state.p)], -1)


def run_stepper(model, method, dt, y0, amp, onset, dur, t_end, save):
    """Raw states from ``model.stepper`` in a scan, at multiples of ``save`` (incl. t = 0)."""
    step = model.stepper(dt, method)
    n_steps, every = round(t_end / dt), round(save / dt)
    amp = jnp.asarray(amp)

    @jax.jit
    def go(y0):
        def body(y, k):
            y = step(k * dt, y, Protocol.drive(amp, onset, dur, k * dt, dt))
            return y, y

        return jax.lax.scan(body, y0, jnp.arange(n_steps))[1]

    ys = flat(go(y0))
    return np.concatenate([flat(y0)[None], ys[every - 1 :: every]])


@pytest.fixture(scope="module")
def circuit():
    """(model, params, rest state (rk4, dt 1e-3), reference states at the save times)."""
    params = circuit_params()
    model = build(params)
    y0 = rest_state(model, 1e-3, SETTLE, "rk4")
    t_eval = np.round(np.arange(0.0, T_END + 1e-9, SAVE), 10)
    f, _ = reference_rhs(params)
    ref = solve_pulse(f, flat(y0), t_eval, AMP, ONSET, DUR, T_END)
    return model, params, y0, t_eval, ref


# ---------------------------------------------------------------------------------------------
# 1. Linear model vs the matrix exponential
# ---------------------------------------------------------------------------------------------
LIN_DT, LIN_T, LIN_SAVE = 0.01, 1.5, 0.05
PULSE_ON, PULSE_DUR = 0.123, 0.4567  # both edges inside steps


@pytest.fixture(scope="module")
def linear():
    """A non-normal stable 5-neuron LinearModel, run under two conditions in one call:
    a constant input from t = 0 (onset 0, duration > the run) and a pulse whose edges fall
    inside steps."""
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, (5, 5)) - 3.0 * np.eye(5)  # eigenvalues: Re in [-5, -2.4]
    b = rng.uniform(0.5, 2.0, 5)
    u = rng.normal(0.0, 1.0, (2, 5))
    model = LinearModel(names=tuple("abcde"), a_per_s=jnp.asarray(a), b_per_s=jnp.asarray(b))
    protocol = Protocol(
        amplitude=jnp.asarray(u),
        onset_s=jnp.array([0.0, PULSE_ON]),
        duration_s=jnp.array([10.0, PULSE_DUR]),
        labels=("const", "pulse"),
    )
    ds = simulate(model, protocol, LIN_T, LIN_DT, save_dt_s=LIN_SAVE, indicator=None)
    return a, b, u, ds


def _closed_form_series(a, b, pieces, times):
    """x(t) from x(0) = 0 for an input constant on each ``(start, stop, u)`` piece.

    Superposition of each piece's response A^{-1}(e^{Ah} - I) B u over its elapsed length h,
    propagated by e^{A(t - end)}.
    """
    n = a.shape[0]
    out = []
    for t in times:
        x = np.zeros(n)
        for lo, hi, u in pieces:
            if t <= lo:
                continue
            end = min(t, hi)
            x_piece = np.linalg.solve(a, (expm(a * (end - lo)) - np.eye(n)) @ (b * u))
            x = x + expm(a * (t - end)) @ x_piece
        out.append(x)
    return np.array(out)


def test_linear_constant_input_matches_expm(linear):
    """x(t) = A^{-1}(e^{At} - I) B u at every saved sample, to 1e-10 (measured ~2e-14)."""
    a, b, u, ds = linear
    times = ds.time.values
    np.testing.assert_allclose(times, np.arange(31) * LIN_SAVE, rtol=0, atol=1e-12)
    want = np.array([np.linalg.solve(a, (expm(a * t) - np.eye(5)) @ (b * u[0])) for t in times])
    err = np.abs(ds.dff.values[0] - want).max()
    print(f"linear constant input: max |x - closed form| = {err:.2e}")
    assert err < 1e-10
    assert np.abs(want).max() > 0.3  # a non-trivial response
    np.testing.assert_allclose(
        ds.stimulus.values[0, 1:], np.broadcast_to(u[0], (30, 5)), atol=1e-15
    )


def test_linear_pulse_with_edges_inside_steps(linear):
    """A pulse whose edges fall inside steps.

    Exact: the simulation equals the closed-form solution for the *step-averaged* input
    (the pulse's integral over every step is preserved) to 1e-10 (measured ~1e-14).
    Not exact: against the true square pulse the two edge steps differ by at most
    ``2 · sup||e^{At}|| · ||A|| e^{||A|| dt} · dt² / 2 · ||B u||`` (first moment of the
    pulse inside the step); the measured error (5e-5; bound 1.3e-3) must sit below it.
    """
    a, b, u, ds = linear
    u = u[1]
    times, got = ds.time.values, ds.dff.values[1]
    dt, off = LIN_DT, PULSE_ON + PULSE_DUR
    k_on, k_off = math.floor(PULSE_ON / dt), math.floor(off / dt)
    f_on = ((k_on + 1) * dt - PULSE_ON) / dt  # fraction of the onset step under the pulse
    f_off = (off - k_off * dt) / dt
    averaged = [
        (k_on * dt, (k_on + 1) * dt, f_on * u),
        ((k_on + 1) * dt, k_off * dt, u),
        (k_off * dt, (k_off + 1) * dt, f_off * u),
    ]
    err_avg = np.abs(got - _closed_form_series(a, b, averaged, times)).max()
    err_true = np.abs(got - _closed_form_series(a, b, [(PULSE_ON, off, u)], times)).max()
    sup_prop = max(np.linalg.norm(expm(a * t), 2) for t in times)
    norm_a = np.linalg.norm(a, 2)
    bound = 2 * sup_prop * norm_a * math.exp(norm_a * dt) * dt**2 / 2 * np.linalg.norm(b * u)
    print(
        f"pulse: vs step-averaged closed form {err_avg:.2e}; vs true pulse {err_true:.2e} "
        f"(bound {bound:.2e})"
    )
    assert err_avg < 1e-10
    assert err_true < bound
    assert err_true > 1e-9  # the two really are different inputs


def test_linear_readout_filter_matches_solve_ivp_and_keeps_the_steady_state(tmp_path):
    """With readout filters the observed ΔF/F is y, tau_o y' = x - y: the exact stepping equals
    an independent solve_ivp of the 2n-state ODE (to 1e-7), and the steady state is the
    unfiltered model's, -A^-1 B u."""
    rng = np.random.default_rng(2)
    a = rng.normal(0.0, 1.0, (5, 5)) - 3.0 * np.eye(5)
    b = rng.uniform(0.5, 2.0, 5)
    u = rng.normal(0.0, 1.0, 5)
    tau_o = rng.uniform(0.2, 2.0, 5)
    model = LinearModel(
        names=tuple("abcde"), a_per_s=jnp.asarray(a), b_per_s=jnp.asarray(b),
        readout_tau_s=jnp.asarray(tau_o),
    )  # fmt: skip
    assert model.init_state().shape == (10,)
    protocol = Protocol(
        amplitude=jnp.asarray(u[None]),
        onset_s=jnp.zeros(1),
        duration_s=jnp.array([100.0]),
        labels=("step",),
    )
    ds = simulate(model, protocol, 20.0, 0.01, save_dt_s=0.5, indicator=None)

    def rhs(t, z):
        x, y = z[:5], z[5:]
        return np.concatenate([a @ x + b * u, (x - y) / tau_o])

    ref = solve_ivp(rhs, (0, 20.0), np.zeros(10), t_eval=ds.time.values, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(ds.dff.values[0], ref.y[5:].T, atol=1e-7)
    np.testing.assert_array_equal(ds.dff.values[0, 0], 0.0)
    steady = -np.linalg.solve(a, b * u)
    np.testing.assert_allclose(ds.dff.values[0, -1], steady, atol=1e-6)
    # saved and loaded with its filters; a wrong shape is refused by name
    back = digiworm.models.load_model(digiworm.models.save_model(tmp_path / "m.dwm", model))
    np.testing.assert_array_equal(np.asarray(back.readout_tau_s), tau_o)
    with pytest.raises(ValueError, match="readout_tau_s must be"):
        LinearModel(
            names=tuple("abcde"), a_per_s=jnp.asarray(a), b_per_s=jnp.asarray(b),
            readout_tau_s=jnp.ones(3),
        )  # fmt: skip
    with pytest.raises(ValueError, match="readout_tau_s must be"):
        digiworm.models.linear_from_couplings(
            tuple("abcde"), np.zeros((5, 5)), readout_tau_s=-tau_o
        )


# ---------------------------------------------------------------------------------------------
# 2. Graded network vs solve_ivp
# ---------------------------------------------------------------------------------------------
def test_rest_state_is_the_fixed_point(circuit):
    """After settling, the reference right-hand side vanishes: |dy/dt| < 1e-8 per unit."""
    _, params, y0, _, _ = circuit
    f, _ = reference_rhs(params)
    resid = np.abs(f(0.0, flat(y0), np.zeros(N)))
    print(f"rest residual {resid.max():.2e}")
    assert resid.max() < 1e-8
    # ... and it is not the uncoupled init_state: the coupling moves rest by > 1 mV
    assert np.abs(np.asarray(y0.v_mV) - params["v_rest_mV"]).max() > 1.0


def test_graded_rk4_matches_solve_ivp(circuit):
    """Raw state (V, s, p) with rk4 at dt = 1e-3 vs Radau (rtol 1e-10, atol 1e-12).

    Tolerances: V 1e-7 mV, s and p 1e-9 (measured: V 2e-9 mV, s 7e-12, p 1.4e-11; the
    Radau reference itself differs from DOP853 at rtol 1e-13 by 5e-10 mV).
    """
    model, _, y0, t_eval, ref = circuit
    got = run_stepper(model, "rk4", 1e-3, y0, AMP, ONSET, DUR, T_END, SAVE)
    err = np.abs(got - ref)
    ev, es, ep = err[:, :N].max(), err[:, N : 2 * N].max(), err[:, 2 * N :].max()
    print(f"rk4 dt=1e-3: V {ev:.2e} mV, s {es:.2e}, p {ep:.2e}")
    assert ev < 1e-7
    assert es < 1e-9
    assert ep < 1e-9
    # the pulse really moves the circuit (the comparison is not of two resting traces)
    assert np.ptp(ref[:, 0]) > 5.0 and np.ptp(ref[:, 2]) > 0.5


@pytest.mark.parametrize(
    ("method", "order", "dt"),
    [("euler", 1, 0.005), ("heun", 2, 0.005), ("rk4", 4, 0.01)],
)
def test_graded_convergence_order(circuit, method, order, dt):
    """Max V error at dt and dt/2 shrinks by 2^order: fitted order within ±0.25.

    Measured (V, mV): euler 0.172 → 0.085 (order 1.02), heun 4.1e-3 → 9.9e-4 (2.04),
    rk4 2.0e-5 → 1.15e-6 (4.10).
    """
    model, _, y0, t_eval, ref = circuit
    errs = []
    for h in (dt, dt / 2):
        got = run_stepper(model, method, h, y0, AMP, ONSET, DUR, T_END, SAVE)
        errs.append(np.abs(got[:, :N] - ref[:, :N]).max())
    fitted = math.log2(errs[0] / errs[1])
    print(f"{method}: errors {errs[0]:.3e}, {errs[1]:.3e}; fitted order {fitted:.2f}")
    assert abs(fitted - order) < 0.25
    assert errs[1] > 1e-8  # well above the reference's own error (5e-10 mV)


def test_simulate_activity_and_dff_end_to_end(circuit):
    """``simulate`` (rk4, dt 1e-3, GCaMP6s) vs solve_ivp of network + indicator.

    ``activity`` = sigmoid(beta (V - v_th)) to 1e-9 (measured 5e-11). ``dff`` uses a Heun
    indicator step with activity interpolated over the step (order 2), so it is held to
    1e-6 (measured 1.5e-7 at dt 1e-3 and 5.9e-7 at 2e-3: ratio 4.0 ≈ 2²; the dt 2e-3 run is
    left out to keep the suite fast).
    """
    model, params, y0, t_eval, _ = circuit
    f, phi = reference_rhs(params)
    kd, hill, rng_f, koff, tau_ca = 0.144, 2.90, 63.2, math.log(2) / 1.8, 0.2
    ca_rest, ca_gain = 0.04, 0.04
    kon = koff / kd**hill

    def f_aug(t, y, u):
        v, c, b = y[:N], y[3 * N : 4 * N], y[4 * N :]
        dc = (ca_rest + ca_gain * phi(v) - c) / tau_ca
        db = kon * np.maximum(c, 0.0) ** hill * (1.0 - b) - koff * b
        return np.concatenate([f(t, y[: 3 * N], u), dc, db])

    protocol = Protocol(
        amplitude=jnp.asarray(AMP)[None],
        onset_s=jnp.array([ONSET]),
        duration_s=jnp.array([DUR]),
        labels=("A",),
    )
    y0 = flat(y0)  # the fixture's rest_state(model, 1e-3, SETTLE, "rk4"), as simulate uses
    c0 = ca_rest + ca_gain * phi(y0[:N])
    b0 = c0**hill / (c0**hill + kd**hill)
    ref = solve_pulse(
        f_aug,
        np.concatenate([y0, c0, b0]),
        t_eval,
        AMP,
        ONSET,
        DUR,
        T_END,
        method="DOP853",
        rtol=1e-13,
        atol=1e-14,
    )
    dff_ref = (rng_f - 1) * (ref[:, 4 * N :] - b0) / (1 + (rng_f - 1) * b0)
    ds = simulate(model, protocol, T_END, 1e-3, save_dt_s=SAVE, method="rk4", settle_s=SETTLE)
    err_act = np.abs(ds.activity.values[0] - phi(ref[:, :N])).max()
    err_dff = np.abs(ds.dff.values[0] - dff_ref).max()
    print(f"simulate rk4 dt=1e-3: activity {err_act:.2e}, dff {err_dff:.2e}")
    assert err_act < 1e-9
    assert err_dff < 1e-6
    assert np.abs(dff_ref).max() > 0.05  # the indicator really responds


@pytest.mark.parametrize(("pep_sd", "wiring"), [(20.0, 1.0), (400.0, 0.05)])
def test_max_rate_bounds_the_jacobian(pep_sd, wiring):
    """``max_rate()`` >= spectral radius of the full Jacobian for reachable states.

    Random 8-neuron circuits (3 seeds), V in [-80, 20] mV, s in [0, a_r/(a_r + a_d)]
    (the documented ceiling). Measured: worst ratio 0.79 here, 0.90 over 30 seeds. The second
    case is peptide-dominated (strong drives, weak wiring), as the fitted graded network is,
    so the bound's membrane–release loop term is the one tested.
    """
    from jax.flatten_util import ravel_pytree

    n = 8

    @jax.jit
    def jacobian(model, state):
        x, unravel = ravel_pytree(state)
        field = lambda z: ravel_pytree(model.vector_field(0.0, unravel(z), jnp.zeros(n)))[0]  # noqa: E731
        return jax.jacfwd(field)(x)

    def radius(model, state):
        return np.abs(np.linalg.eigvals(np.asarray(jacobian(model, state)))).max()

    worst = 0.0
    for seed in range(3):
        rng = np.random.default_rng(seed)
        g = np.triu(rng.uniform(0, 1, (n, n)) * (rng.uniform(size=(n, n)) < 0.4), 1) * wiring
        params = {
            "g_gap": g + g.T,
            "g_chem": rng.uniform(0, 2, (n, n)) * (rng.uniform(size=(n, n)) < 0.5) * wiring,
            "e_chem_mV": np.tile(rng.choice([0.0, -48.0], n), (n, 1)),
            "w_pep_mV": rng.normal(0, pep_sd, (n, n)) * (rng.uniform(size=(n, n)) < 0.3),
            "tau_m_s": rng.uniform(0.05, 0.2, n),
            "v_rest_mV": np.full(n, -35.0),
            "v_th_mV": np.full(n, -25.0),
            "tau_pep_s": np.array(0.5),
            "a_r_per_s": np.array(1.0),
            "a_d_per_s": np.array(5.0),
            "beta_per_mV": np.array(0.125),
            "g_tonic": rng.uniform(0, 1, n),
            "e_tonic_mV": np.zeros(n),
        }
        model = build(params, names=[f"n{i}" for i in range(n)])
        bound = float(model.max_rate())
        for v in (-80.0, -35.0, -25.0, 0.0, 20.0):
            for s in (0.0, 1.0 / 12, 1.0 / 6):
                # v_th is -25 mV: V = -25 is the steepest activation, the loop's worst case
                state = GradedState(jnp.full(n, v), jnp.full(n, s), jnp.full(n, 0.3))
                worst = max(worst, float(radius(model, state)) / bound)
    print(f"worst spectral radius / max_rate = {worst:.3f}")
    assert worst <= 1.0


# ---------------------------------------------------------------------------------------------
# 3. Gap junctions
# ---------------------------------------------------------------------------------------------
def _gap_only(g_gap, tau=0.1):
    n = g_gap.shape[0]
    params = {
        "g_gap": g_gap,
        "g_chem": np.zeros((n, n)),
        "e_chem_mV": np.zeros((n, n)),
        "w_pep_mV": np.zeros((n, n)),
        "tau_m_s": np.full(n, tau),
        "v_rest_mV": np.full(n, -35.0),
        "v_th_mV": np.full(n, -25.0),
        "tau_pep_s": np.array(0.5),
        "a_r_per_s": np.array(1.0),
        "a_d_per_s": np.array(5.0),
        "beta_per_mV": np.array(0.125),
        "g_tonic": np.zeros(n),
        "e_tonic_mV": np.zeros(n),
    }
    return build(params, names=[f"n{i}" for i in range(n)])


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
def test_gap_junctions_conserve_charge(method):
    """Σ(V_i − V_rest) decays with the leak time constant alone, whatever g_gap.

    Discretely exact: S_k = R(−dt/τ)^k S_0 with R the method's stability polynomial, to 1e-12
    relative (measured ~1e-15); and S(t) = S_0 e^{−t/τ} to the method's truncation error.
    """
    n, tau, dt, steps = 6, 0.1, 1e-3, 300
    rng = np.random.default_rng(7)
    g = np.triu(rng.uniform(0, 3, (n, n)), 1)  # strong and uneven coupling
    model = _gap_only(g + g.T, tau)
    v0 = -35.0 + rng.normal(0, 10, n)
    state = GradedState(jnp.asarray(v0), jnp.zeros(n), jnp.zeros(n))
    step = model.stepper(dt, method)

    @jax.jit
    def go(state):
        def body(y, k):
            y = step(k * dt, y, jnp.zeros(n))
            return y, (jnp.sum(y.v_mV + 35.0), y.v_mV)

        return jax.lax.scan(body, state, jnp.arange(steps))[1]

    sums, v = go(state)
    sums = np.concatenate([[v0.sum() + 35.0 * n], np.asarray(sums)])
    v_end = np.asarray(v[-1])
    z = -dt / tau
    r = {"euler": 1 + z, "heun": 1 + z + z**2 / 2, "rk4": 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24}
    discrete = sums[0] * r[method] ** np.arange(steps + 1)
    err = np.abs(sums - discrete).max() / abs(sums[0])
    print(f"{method}: charge sum vs R(z)^k {err:.2e}")
    assert err < 1e-12
    continuous = sums[0] * np.exp(-np.arange(steps + 1) * dt / tau)
    trunc = {"euler": 1e-2, "heun": 1e-4, "rk4": 1e-9}[method]
    assert np.abs(sums - continuous).max() / abs(sums[0]) < trunc
    # the individual potentials did mix (the gap junctions were doing something)
    assert np.ptp(v_end) < 0.5 * np.ptp(v0)


def test_gap_currents_sum_to_zero():
    """Symmetric g_gap: gap currents are antisymmetric pairs, Σ = 0 to 1e-12 · scale."""
    n = 7
    rng = np.random.default_rng(3)
    g = rng.uniform(0, 1, (n, n))
    g = g + g.T  # symmetric; a non-zero diagonal is harmless (it cancels)
    model = _gap_only(g)
    for _ in range(5):
        v = rng.normal(-30, 20, n)
        cur = np.asarray(
            model.currents(GradedState(jnp.asarray(v), jnp.zeros(n), jnp.zeros(n)))["gap"]
        )
        scale = np.abs(g).sum() * np.abs(v).max()
        assert abs(cur.sum()) < 1e-12 * scale
        pair = g * (v[None, :] - v[:, None])  # current into i from j
        np.testing.assert_allclose(cur, pair.sum(1), rtol=0, atol=1e-12 * scale)


def test_asymmetric_gap_junctions_are_rejected():
    """The docstring requires g_gap symmetric (it is what makes gap currents conserve charge).

    An asymmetric matrix silently breaks conservation; the constructor should refuse it.
    """
    g = np.zeros((3, 3))
    g[0, 1] = 0.5  # 1 → 0 only
    with pytest.raises((ValueError, digiworm.DigiwormError), match="(?i)symmetric"):
        _gap_only(g)


# ---------------------------------------------------------------------------------------------
# 4. Calcium indicator
# ---------------------------------------------------------------------------------------------
def _indicator_rhs(ind, activity):
    vf = jax.jit(lambda y: jnp.concatenate(ind.vector_field(0.0, (y[:3], y[3:]), activity)))
    return lambda t, y: np.asarray(vf(jnp.asarray(y)))


def _bound_step(ind, a0, a1, times):
    """b(t) = b* + (b0 − b*) e^{−(k_on c1^n + k_off) t} with c1 the target of a1."""
    kd, n, koff = float(ind.kd_uM), float(ind.hill), float(ind.koff_per_s)
    c0, c1 = 0.04 + 0.04 * a0, 0.04 + 0.04 * a1
    b0 = c0**n / (c0**n + kd**n)
    b_star = c1**n / (c1**n + kd**n)
    rate = koff / kd**n * c1**n + koff
    return b_star + (b0 - b_star) * np.exp(-rate * times[:, None]), c0, c1, b0


def test_indicator_step_response_calcium_already_there():
    """Calcium starts at its new target: b(t) is the exact exponential, to 1e-11."""
    ind = GCaMP6s()
    a0, a1 = np.array([0.2, 0.2, 0.5]), np.array([1.0, 0.0, 0.8])
    times = np.linspace(0, 6, 25)
    want, _, c1, b0 = _bound_step(ind, a0, a1, times)
    sol = solve_ivp(
        _indicator_rhs(ind, jnp.asarray(a1)),
        (0, 6),
        np.concatenate([c1, b0]),
        method="DOP853",
        t_eval=times,
        rtol=1e-13,
        atol=1e-15,
    )
    np.testing.assert_allclose(sol.y[:3].T, np.broadcast_to(c1, want.shape), atol=1e-14)
    err = np.abs(sol.y[3:].T - want).max()
    print(f"bound fraction vs exponential: {err:.2e}")
    assert err < 1e-11


def test_indicator_step_response_fast_calcium():
    """tau_ca = 1e-6 s: calcium jumps, b follows the exponential to 1e-5 (measured ~1e-7)."""
    ind = GCaMP6s(tau_ca_s=1e-6)
    a0, a1 = np.array([0.2, 0.2, 0.5]), np.array([1.0, 0.0, 0.8])
    times = np.linspace(0, 6, 25)
    want, c0, c1, b0 = _bound_step(ind, a0, a1, times)
    sol = solve_ivp(
        _indicator_rhs(ind, jnp.asarray(a1)),
        (0, 6),
        np.concatenate([c0, b0]),
        method="Radau",
        t_eval=times,
        rtol=1e-10,
        atol=1e-13,
    )
    assert sol.success
    np.testing.assert_allclose(sol.y[:3, 1:].T, np.broadcast_to(c1, (24, 3)), rtol=1e-9)
    err = np.abs(sol.y[3:].T - want).max()
    print(f"fast calcium: bound fraction vs exponential {err:.2e}")
    assert err < 1e-5
    assert np.abs(want[-1] - want[0]).max() > 0.1  # a real step


def test_indicator_equilibrium_and_dff_closed_form():
    """Steady state b* = c^n/(c^n + K_d^n) is a fixed point; ΔF/F = (R−1)(b*−b0)/(1+(R−1)b0)."""
    ind = GCaMP6s()
    a = jnp.array([0.0, 0.2, 0.5, 1.0])

    @jax.jit
    def evaluate(ind, a):
        ca, bound = ind.init(a)
        return bound, ind.vector_field(0.0, (ca, bound), a), ind.dff(bound, bound[1])

    bound, (dca, db), dff = evaluate(ind, a)
    assert float(jnp.abs(dca).max()) < 1e-15 and float(jnp.abs(db).max()) < 1e-15
    c = 0.04 + 0.04 * np.asarray(a)
    b_star = c**2.9 / (c**2.9 + 0.144**2.9)
    np.testing.assert_allclose(np.asarray(bound), b_star, rtol=1e-13)
    b0 = b_star[1]  # resting neuron, activity 0.2
    want = 62.2 * (b_star - b0) / (1 + 62.2 * b0)
    np.testing.assert_allclose(np.asarray(dff), want, rtol=1e-12, atol=1e-15)
    # a fully active neuron sits near the documented ΔF/F ≈ 2
    assert 1.5 < want[-1] < 2.5
    # bleaching multiplies F by e^{−t/τ}: at t = τ an unchanged b reads e^{−1} − 1
    bleach = GCaMP6s(tau_bleach_s=100.0)
    assert abs(float(bleach.dff(bound[1], bound[1], 100.0)) - (math.exp(-1) - 1)) < 1e-14


def test_gcamp6s_constants_and_half_decay():
    """Chen et al. 2013: K_d 0.144 µM, n 2.90, R 63.2, half-decay 1.8 s (k_off = ln2/1.8)."""
    ind = GCaMP6s()
    assert float(ind.kd_uM) == pytest.approx(0.144, rel=1e-15)
    assert float(ind.hill) == pytest.approx(2.90, rel=1e-15)
    assert float(ind.dynamic_range) == pytest.approx(63.2, rel=1e-15)
    assert float(ind.koff_per_s) == pytest.approx(math.log(2) / 1.8, rel=1e-12)
    assert float(ind.kon) * 0.144**2.90 == pytest.approx(float(ind.koff_per_s), rel=1e-12)
    assert float(ind.bound_equilibrium(jnp.asarray(0.144))) == pytest.approx(0.5, rel=1e-12)
    # with calcium removed the bound fraction halves in 1.8 s
    free = CalciumIndicator(ca_rest_uM=0.0, ca_gain_uM=0.0)
    rhs = _indicator_rhs(free, jnp.zeros(3))
    sol = solve_ivp(
        rhs,
        (0, 3.6),
        np.array([0, 0, 0, 0.5, 0.2, 0.9]),
        t_eval=[1.8, 3.6],
        method="DOP853",
        rtol=1e-13,
        atol=1e-15,
    )
    np.testing.assert_allclose(sol.y[3:, 0], [0.25, 0.1, 0.45], rtol=1e-10)
    np.testing.assert_allclose(sol.y[3:, 1], [0.125, 0.05, 0.225], rtol=1e-10)
    # overrides reach the constructor
    assert float(GCaMP6s(kd_uM=0.3).kd_uM) == 0.3


# ---------------------------------------------------------------------------------------------
# 7. Synapse sign rule
# ---------------------------------------------------------------------------------------------
def test_classical_transmitters():
    """Wang 2024 first, Fenyves 2020 as fallback; non-classical transmitters are dropped."""
    assert classical_transmitters("Acetylcholine", None) == ("acetylcholine",)
    assert classical_transmitters("Acetylcholine+GABA", "glutamate") == ("acetylcholine", "GABA")
    assert classical_transmitters("Glutamate", "acetylcholine") == ("glutamate",)
    assert classical_transmitters(None, "GABA") == ("GABA",)
    assert classical_transmitters("Serotonin", "glutamate") == ("glutamate",)
    assert classical_transmitters("Serotonin", None) == ()
    assert classical_transmitters(None, None) == ()


def test_synapse_signs_hand_built():
    """Every branch of the rule, on a 6-neuron hand-built case (``sign[post, pre]``)."""
    transmitters = [
        ("GABA",),  # 0: GABA only
        ("acetylcholine",),  # 1: ACh
        ("glutamate",),  # 2: glutamate
        (),  # 3: no classical transmitter (e.g. monoaminergic)
        ("acetylcholine", "glutamate"),  # 4: two transmitters, evidence sums
        ("GABA", "acetylcholine"),  # 5: GABA + ACh
    ]
    # evidence per postsynaptic neuron (excitatory − inhibitory receptor genes)
    evidence = {
        "acetylcholine": np.array([0, -2, 1, 0, 1, 0]),
        "glutamate": np.array([0, 0, -3, 0, -1, 2]),
        "GABA": np.array([0, 0, 0, 1, 0, -1]),
    }
    sign = synapse_signs(transmitters, evidence)
    assert sign.shape == (6, 6) and sign.dtype == np.int8
    # post 0 expresses nothing: fall back on the transmitter
    assert sign[0].tolist() == [-1, 1, 1, 1, 1, 1]
    # ACh onto post 1 with inhibitory-receptor evidence −2 → inhibitory
    assert sign[1, 1] == -1
    # glutamate with no evidence on post 1 → excitatory; GABA only → inhibitory
    assert sign[1, 2] == 1 and sign[1, 0] == -1
    # no classical transmitter → excitatory whatever the receptors
    assert (sign[:, 3] == 1).all()
    # ACh + Glu sums evidence: post 2: 1 − 3 = −2 → −1; post 4: 1 − 1 = 0 → fallback +1;
    # post 5: 0 + 2 → +1; post 1: −2 + 0 → −1
    assert sign[2, 4] == -1 and sign[4, 4] == 1 and sign[5, 4] == 1 and sign[1, 4] == -1
    # GABA with an excitatory GABA receptor (post 3, e.g. EXP-1) → excitatory
    assert sign[3, 0] == 1
    # GABA + ACh: post 5 sums −1 + 0 → −1; post 0 tie → fallback is excitatory (not GABA alone)
    assert sign[5, 5] == -1 and sign[0, 5] == 1
