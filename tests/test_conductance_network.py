"""The conductance-level network: coupling, time stepping, experiments, stimulation sizing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from digiworm.experiments import Ablate, Knockout
from digiworm.models import ConductanceNetwork, cell_from_conductances, reference_cell
from digiworm.simulate import (
    current_clamp,
    depolarising_current,
    reference_solution,
    resting_potentials,
    run_currents,
    steady_iv,
)

pytestmark = pytest.mark.usefixtures("x64")

NAMES = ("AWCL", "AWCR", "AIYL")


def _net(gap=0.5, syn=0.0, e_syn=0.0, pep=0.0):
    ref = reference_cell("AWCon")
    cells = cell_from_conductances(NAMES, ref.g_nS, c_pF=ref.c_pF, vol_um3=ref.vol_um3)

    def a(x):
        return jnp.asarray(x, dtype=float)

    def i(x):
        return jnp.asarray(x, dtype=jnp.int32)

    return ConductanceNetwork(
        names=NAMES,
        cells=cells,
        pre=i([1]),
        post=i([2]),
        g_syn_nS=a([syn]),
        e_syn_mV=a([e_syn]),
        gap_a=i([0]),
        gap_b=i([1]),
        g_gap_nS=a([gap]),
        pep_pre=i([0]),
        pep_post=i([2]),
        w_pep_pA=a([pep]),
        v_th_mV=a([-55.0] * 3),
        alive=jnp.ones(3, dtype=bool),
    )


def _drive(n_steps, dt, amp=12.0, onset=20.0, duration=100.0, who=0):
    t = (np.arange(n_steps) + 0.5) * dt
    u = np.zeros((n_steps, 3))
    u[(t >= onset) & (t < onset + duration), who] = amp
    return u


def test_network_step_matches_a_stiff_reference_solver():
    net = _net(gap=0.3, syn=2.0, pep=1.0)
    y0 = net.init_state()

    def per_ms(t, y, u):
        return jax.tree_util.tree_map(lambda d: d * 1e-3, net.vector_field(t, y, u))

    segments = [(0.0, 20.0, [0.0] * 3), (20.0, 120.0, [12.0, 0.0, 0.0]), (120.0, 200.0, [0.0] * 3)]
    v_ref = reference_solution(per_ms, y0, segments, np.arange(0.5, 200.0 + 1e-9, 0.5))[:, :3]
    errors = []
    for dt in (0.05, 0.025):
        ds = run_currents(net, _drive(round(200 / dt), dt), dt_ms=dt, save_dt_ms=0.5, y0=y0)
        errors.append(np.sqrt(np.mean((ds.v_mV.values - v_ref) ** 2)))
    assert errors[1] < 0.05
    assert 1.5 < errors[0] / errors[1] < 2.5


def test_coupling_carries_current_where_it_should():
    dt, steps = 0.1, 2000
    base = run_currents(_net(gap=0.0), _drive(steps, dt), dt_ms=dt, save_dt_ms=0.5)
    gap = run_currents(_net(gap=0.5), _drive(steps, dt), dt_ms=dt, save_dt_ms=0.5)
    t = 100.0
    v0 = base.v_mV.sel(time_ms=t)
    v1 = gap.v_mV.sel(time_ms=t)
    assert float(v1.sel(neuron="AWCR") - v0.sel(neuron="AWCR")) > 5.0  # gap partner follows
    assert float(v1.sel(neuron="AWCL")) < float(v0.sel(neuron="AWCL"))  # and loads the driven one
    assert abs(float(v1.sel(neuron="AIYL") - v0.sel(neuron="AIYL"))) < 1e-6  # no path
    exc = run_currents(
        _net(gap=0.5, syn=2.0, e_syn=0.0), _drive(steps, dt), dt_ms=dt, save_dt_ms=0.5
    ).v_mV.sel(time_ms=t, neuron="AIYL")
    inh = run_currents(
        _net(gap=0.5, syn=2.0, e_syn=-90.0), _drive(steps, dt), dt_ms=dt, save_dt_ms=0.5
    ).v_mV.sel(time_ms=t, neuron="AIYL")
    rest = float(v0.sel(neuron="AIYL"))
    assert float(exc) > rest + 1.0 and float(inh) < rest - 0.5


def test_experiments_act_on_the_conductance_network(atlas):
    net = _net(gap=0.5, syn=2.0, pep=1.0)
    ablated = Ablate(["AWCR"])(net)
    assert float(ablated.g_gap_nS[0]) == 0.0 and float(ablated.g_syn_nS[0]) == 0.0
    assert float(ablated.w_pep_pA[0]) == 1.0  # AWCL -> AIYL does not touch AWCR
    assert np.isnan(np.asarray(ablated.readout(ablated.init_state()))[1])
    ko = Knockout("egl-19", atlas)(net)
    assert np.all(np.asarray(ko.cells.g_nS["egl19"]) == 0.0)
    assert float(Knockout("unc-31", atlas)(net).w_pep_pA[0]) == 0.0


def test_depolarising_current_holds_each_cell_delta_above_rest():
    ref = reference_cell("AWCon")
    cells = cell_from_conductances(
        ("a", "b"), {**ref.g_nS, "leak": np.array([0.27, 1.0])}, c_pF=ref.c_pF, vol_um3=ref.vol_um3
    )
    amps = depolarising_current(cells, 10.0)
    assert amps[1] > amps[0] > 0  # the leakier cell needs more current
    rests = np.array([r[0] for r in resting_potentials(cells)])
    ds = current_clamp(
        cells,
        [amps[1]],
        onset_ms=0.0,
        duration_ms=20_000.0,
        total_ms=20_000.0,
        dt_ms=0.1,
        save_dt_ms=100.0,
    )
    # the leaky cell's I-V rises monotonically: it settles exactly delta above rest
    assert float(ds.v_mV.values[0, -1, 1]) == pytest.approx(rests[1] + 10.0, abs=0.01)
    # AWCon's I-V has a flat, slightly negative-slope stretch near -60 mV: the current is the
    # hump's top, which carries the cell to (or past) rest + delta, to a steady state of it
    ds = current_clamp(
        cells,
        [amps[0]],
        onset_ms=0.0,
        duration_ms=20_000.0,
        total_ms=20_000.0,
        dt_ms=0.1,
        save_dt_ms=100.0,
    )
    v_end = float(ds.v_mV.values[0, -1, 0])
    assert v_end >= rests[0] + 10.0 - 0.01
    i_end = float(steady_iv(cells, [v_end]).values[0, 0])
    assert i_end == pytest.approx(amps[0], abs=1e-3)  # a steady state of that current


def test_whole_brain_conductance_network_builds_and_runs(atlas):
    from digiworm.models import conductance_network_from_atlas, connectome_arrays
    from digiworm.simulate import Protocol, simulate

    net = conductance_network_from_atlas(atlas)
    chem, gap, _ = connectome_arrays(atlas)
    assert net.n_neurons == 302
    assert len(net.pre) == int((chem > 0).sum())
    assert len(net.gap_a) == int((np.triu(gap, 1) > 0).sum())
    assert np.all(np.isin(np.asarray(net.e_syn_mV), [0.0, -70.0]))
    amps = depolarising_current(net.cells, 20.0)
    i = net.names.index("AVAL")
    prot = Protocol.single(
        net.names, [[], "AVAL"], amplitude=float(amps[i]), onset_s=0.5, duration_s=0.5
    )
    out = simulate(net, prot, 2.0, dt_s=5e-4, save_dt_s=0.5, settle_s=2.0)
    assert np.all(np.isfinite(out["dff"].values))
    # against an unstimulated run (some expression-built cells are not quiescent)
    dff = out["dff"].isel(condition=1) - out["dff"].isel(condition=0)
    peak = np.abs(dff).max("time")
    # the stimulated neuron lights up, far above its partners (its ΔF/F size hangs on the
    # indicator's uncalibrated Ca²⁺ scale, so it is compared with the others, not a number)
    top = peak.to_series().nlargest(2)
    assert top.index[0] == "AVAL" and top.iloc[0] > 3 * top.iloc[1]
    assert top.iloc[0] > 1e-3 and top.iloc[0] > 50 * float(peak.median())


def test_insilico_atlas_takes_per_neuron_amplitudes_and_a_control():
    from digiworm.models import GradedNetwork
    from digiworm.simulate import insilico_atlas

    n = 4
    names = tuple(f"N{k}" for k in range(n))
    w = np.zeros((n, n))
    w[1, 0] = 0.5
    net = GradedNetwork(
        names=names,
        g_gap=jnp.zeros((n, n)),
        g_chem=jnp.asarray(w),
        e_chem_mV=jnp.zeros((n, n)),
        w_pep_mV=jnp.zeros((n, n)),
        tau_m_s=jnp.full(n, 0.1),
        v_rest_mV=jnp.full(n, -35.0),
        v_th_mV=jnp.full(n, -15.0),
        tau_pep_s=jnp.asarray(2.0),
        a_r_per_s=jnp.asarray(1.0),
        a_d_per_s=jnp.asarray(5.0),
        beta_per_mV=jnp.asarray(0.125),
        g_tonic=jnp.zeros(n),
        e_tonic_mV=jnp.zeros(n),
        alive=jnp.ones(n, dtype=bool),
    )
    kw = dict(baseline_s=1.0, window_s=4.0, dt_s=0.01, batch_size=3)
    small = insilico_atlas(net, ["N0", "N2"], amplitude={"N0": 10.0, "N2": 40.0}, **kw)
    big = insilico_atlas(net, ["N0", "N2"], amplitude=40.0, **kw)
    assert float(small.dff.sel(responding="N0", stimulated="N0")) < float(
        big.dff.sel(responding="N0", stimulated="N0")
    )
    assert float(small.dff.sel(responding="N2", stimulated="N2")) == pytest.approx(
        float(big.dff.sel(responding="N2", stimulated="N2"))
    )
    ctrl = insilico_atlas(net, ["N0", "N2"], amplitude=40.0, subtract_control=True, **kw)
    np.testing.assert_allclose(ctrl.dff.values, big.dff.values, atol=1e-6)  # rest is stationary
