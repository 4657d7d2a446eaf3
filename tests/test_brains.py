"""Larger brains: the edge-list format and its checks, the synthetic fly graph, the LIF model
against its exact solution and against Brian2 spike for spike."""

from __future__ import annotations

import math

import jax
import numpy as np
import pandas as pd
import pytest

from digiworm._errors import DigiwormError
from digiworm.brains import (
    FLYWIRE_TARGETS,
    SHIU_PARAMS,
    LIFNetwork,
    from_atlas,
    from_flywire,
    graded_from_connectome,
    lif_from_connectome,
    load,
    simulate_lif,
    sparse_from_dense,
    synthetic_flywire,
)

pytestmark = pytest.mark.usefixtures("x64")


def test_an_edge_list_loads_and_bad_rows_are_named(tmp_path):
    edges = pd.DataFrame({"pre": [1, 2, 3, 1], "post": [2, 3, 1, 3],
                          "weight": [4.0, 2.0, 1.0, 3.0],
                          "transmitter": ["acetylcholine", "GABA", "glutamate",
                                          "ach"]})  # fmt: skip
    neurons = pd.DataFrame({"id": [1, 2, 3], "type": ["a", "b", "c"]})
    edges.to_parquet(tmp_path / "e.parquet")
    neurons.to_csv(tmp_path / "n.csv", index=False)
    c = load(tmp_path / "e.parquet", tmp_path / "n.csv")
    assert (c.n_neurons, c.n_edges) == (3, 4)
    np.testing.assert_array_equal(c.weight, [4.0, -2.0, -1.0, 3.0])  # GABA, Glu inhibitory
    np.testing.assert_array_equal(c.index([3, 1]), [2, 0])
    # round trip through the saved tables
    c.save(tmp_path / "out.csv", tmp_path / "out_neurons.csv")
    again = load(tmp_path / "out.csv", tmp_path / "out_neurons.csv")
    np.testing.assert_array_equal(again.weight, c.weight)
    # every problem at once, with its file lines
    bad = pd.DataFrame({"pre": [1, 9, 2, 1, 2], "post": [2, 3, 2, 2, 2],
                        "weight": [1.0, 2.0, float("nan"), 1.0, -1.0],
                        "sign": [1, -1, 1, 1, 2], "kind": ["chemical", "chemical", "electrical",
                                                         "chemical", "wireless"]})  # fmt: skip
    with pytest.raises(DigiwormError) as err:
        load(bad, neurons)
    msg = str(err.value)
    for needle in ("pre ids not in the neuron table, e.g. [9]", "file lines 3",
                   "not finite", "kinds other than chemical, electrical", "signs other than",
                   "gap junctions from a neuron to itself", "listed twice",
                   "negative weights beside a sign"):  # fmt: skip
        assert needle in msg, needle
    with pytest.raises(DigiwormError, match="lacks column"):
        load(pd.DataFrame({"from": [1], "to": [2]}))
    with pytest.raises(DigiwormError, match="without a sign.*dopamine"):
        load(pd.DataFrame({"pre": [1], "post": [2], "weight": [1.0], "transmitter": ["dopamine"]}))
    with pytest.raises(DigiwormError, match="unknown neuron '4'"):
        c.index([4])


def test_a_flywire_export_maps_onto_the_format(tmp_path):
    """A file in the layout of Shiu et al. 2024 (Connectivity_783 + Completeness_783) loads,
    its index columns checked against the completeness table's order."""
    ids = [720575940600000001, 720575940600000002, 720575940600000003]
    pd.DataFrame({"Completed": [True] * 3}, index=pd.Index(ids, name="Unnamed: 0")).to_csv(
        tmp_path / "Completeness_783.csv"
    )
    con = pd.DataFrame({"Presynaptic_ID": [ids[0], ids[1]], "Postsynaptic_ID": [ids[1], ids[2]],
                        "Presynaptic_Index": [0, 1], "Postsynaptic_Index": [1, 2],
                        "Connectivity": [12, 5], "Excitatory": [1, -1],
                        "Excitatory x Connectivity": [12, -5]})  # fmt: skip
    con.to_parquet(tmp_path / "Connectivity_783.parquet")
    c = from_flywire(tmp_path / "Connectivity_783.parquet", tmp_path / "Completeness_783.csv")
    np.testing.assert_array_equal(c.weight, [12, -5])
    np.testing.assert_array_equal(c.pre, [0, 1])
    con["Postsynaptic_Index"] = [2, 1]
    con.to_parquet(tmp_path / "Connectivity_783.parquet")
    with pytest.raises(DigiwormError, match="Postsynaptic_Index disagrees"):
        from_flywire(tmp_path / "Connectivity_783.parquet", tmp_path / "Completeness_783.csv")


def test_the_worm_is_one_connectome_among_others(atlas):
    from digiworm.models._graded import connectome_arrays

    c = from_atlas(atlas)
    chem, gap, sign = connectome_arrays(atlas)
    assert c.n_neurons == 302
    pre, post, w = c.chemical()
    dense = np.zeros((302, 302))
    dense[post, pre] = w
    np.testing.assert_allclose(dense, chem * sign)
    a, b, g = c.gap_junctions()
    assert len(a) == np.count_nonzero(np.triu(gap, 1)) and (g > 0).all()
    with pytest.raises(DigiwormError, match="no gap junctions"):
        lif_from_connectome(c)


def test_the_synthetic_fly_graph_matches_its_targets():
    c = synthetic_flywire(0.01, seed=3)
    s = c.summary()
    assert s["neurons"] == round(FLYWIRE_TARGETS["neurons"] * 0.01)
    assert s["edges"] == round(FLYWIRE_TARGETS["connections"] * 0.01)
    assert s["mean_abs_weight"] == pytest.approx(3.6, rel=0.05)
    assert s["inhibitory_fraction"] == pytest.approx(0.3, abs=0.05)
    assert s["max_out_degree"] > 4 * s["mean_out_degree"]  # heavy tailed
    assert not (c.pre == c.post).any()
    assert len(set(zip(c.pre.tolist(), c.post.tolist()))) == c.n_edges
    again = synthetic_flywire(0.01, seed=3)
    np.testing.assert_array_equal(again.weight, c.weight)
    with pytest.raises(DigiwormError, match="scale"):
        synthetic_flywire(0.0)


def _chain(weight_synapses: float) -> LIFNetwork:
    import jax.numpy as jnp

    w = jnp.asarray([weight_synapses * SHIU_PARAMS["w_syn_mV"]])
    return LIFNetwork(pre=jnp.asarray([0], jnp.int32), post=jnp.asarray([1], jnp.int32), w_mV=w,
                      n=2)  # fmt: skip


def test_lif_spikes_where_the_exact_solution_crosses_threshold():
    """Neuron 0 spikes one step after an input; neuron 1 gets its synapse 18 steps later and
    fires at the first step where v0 + A (e^{-t/tau_m} - e^{-t/tau}) (A = w tau / (tau_m -
    tau)) exceeds the threshold; a weaker synapse stays below it (its peak is 0.1575 w)."""
    dt_ms, steps = 0.1, 600
    inputs = np.zeros((steps, 2), bool)
    inputs[10, 0] = True
    for count, fires in ((200.0, True), (150.0, False)):
        out = simulate_lif(_chain(count), steps * 1e-4, input_spikes=inputs, record=[0, 1])
        raster = out["raster"][0]
        assert np.flatnonzero(raster[:, 0]).tolist() == [11]
        w = count * SHIU_PARAMS["w_syn_mV"]
        tau, tm = SHIU_PARAMS["tau_ms"], SHIU_PARAMS["t_mbr_ms"]
        arrive = 11 + 18  # g jumps at the end of this step
        j = np.arange(1, steps - arrive)
        v = SHIU_PARAMS["v_0_mV"] + w * tau / (tm - tau) * (
            np.exp(-j * dt_ms / tm) - np.exp(-j * dt_ms / tau)
        )
        expected = arrive + j[v > SHIU_PARAMS["v_th_mV"]][:1]
        assert fires == (len(expected) == 1)
        assert np.flatnonzero(raster[:, 1]).tolist() == expected.tolist()
    assert 0.1575 * 150 * 0.275 < 7 < 0.1575 * 200 * 0.275  # the two cases straddle threshold


def test_lif_refractory_period_and_poisson_input():
    """Driven at every step, a neuron fires every 23 steps: 22 of refractoriness (2.2 ms at
    0.1 ms; v and g frozen, inputs lost, as in Brian2) and one to cross threshold after the
    first input it takes; a Poisson-driven neuron has no refractory period (Shiu et al.) and
    fires at the input's rate, independently per trial."""
    net = _chain(0.0)
    steps = 440
    inputs = np.zeros((steps, 2), bool)
    inputs[:, 0] = True
    out = simulate_lif(net, steps * 1e-4, input_spikes=inputs)
    assert out["counts"][0, 0] == math.ceil((steps - 1) / 23)
    out = simulate_lif(net, 2.0, stimulated=[0], key=jax.random.PRNGKey(1), trials=3)
    rates = out["rate_hz"][:, 0]
    assert np.all(np.abs(rates - 150.0) < 4 * math.sqrt(150.0 / 2.0))  # Poisson count s.d.
    assert len(set(out["counts"][:, 0].tolist())) > 1  # trials differ
    assert (out["counts"][:, 1] == 0).all()
    with pytest.raises(DigiwormError, match="input_spikes must be"):
        simulate_lif(net, 0.01, input_spikes=np.zeros((3, 2), bool))
    with pytest.raises(DigiwormError, match="stimulated neurons must be indices"):
        simulate_lif(net, 0.01, stimulated=[5])


def test_event_driven_coupling_gives_the_same_spikes_as_summing_every_edge(monkeypatch):
    """The event-driven step (only the spikers' out-edges) and the step over every edge give
    the same rasters, also when a step's spikers span more blocks and more edges than one
    round holds (tiny blocks and budget force every loop to go round several times), on an
    unsorted hand-built network (sorted on the way in) and on one with no edges at all."""
    import jax.numpy as jnp

    from digiworm.brains import _lif

    c = synthetic_flywire(0.002, seed=4)  # 277 neurons
    net = lif_from_connectome(c, w_syn_mV=2.0)  # strong: activity spreads widely
    steps, n = 1500, c.n_neurons
    rng = np.random.default_rng(1)
    inputs = rng.random((steps, n)) < 0.01
    ref = simulate_lif(net, steps * 1e-4, input_spikes=inputs, coupling="all", record=np.arange(n))
    assert ref["counts"].sum() > 5 * inputs.sum() / 10  # the network itself spikes a lot
    monkeypatch.setattr(_lif, "_BLOCK", 4)
    monkeypatch.setattr(_lif, "_BLOCKS_AT_ONCE", 3)
    order = rng.permutation(net.pre.shape[0])  # edges in no order
    shuffled = LIFNetwork(pre=net.pre[order], post=net.post[order], w_mV=net.w_mV[order], n=n)
    for model, budget in ((net, 7), (shuffled, 7), (net, None)):
        out = simulate_lif(model, steps * 1e-4, input_spikes=inputs, edge_budget=budget,
                           record=np.arange(n))  # fmt: skip
        np.testing.assert_array_equal(out["raster"], ref["raster"])
    empty = LIFNetwork(pre=jnp.zeros(0, jnp.int32), post=jnp.zeros(0, jnp.int32),
                       w_mV=jnp.zeros(0), n=3)  # fmt: skip
    out = simulate_lif(empty, 0.01, input_spikes=np.ones((100, 3), bool))
    assert (out["counts"] > 0).all()
    with pytest.raises(DigiwormError, match="coupling must be"):
        simulate_lif(net, 0.01, coupling="dense")
    with pytest.raises(DigiwormError, match="edge_budget must be"):
        simulate_lif(net, 0.01, edge_budget=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Brian2 2.9 on pyparsing 3.3
def test_lif_gives_brian2s_spikes_on_a_small_fly_like_network():
    """The same equations, graph and input spikes in Brian2 (runtime, numpy target; its
    method 'linear' integrates exactly) give the same spikes, each within one step."""
    b2 = pytest.importorskip("brian2", reason="brian2 is a test dependency (pip install .[test])")
    c = synthetic_flywire(0.0005, seed=1)  # 69 neurons, about 7,500 connections
    n, steps, dt_ms = c.n_neurons, 3000, 0.1
    rng = np.random.default_rng(0)
    inputs = np.zeros((steps, n), bool)
    driven = rng.choice(n, 8, replace=False)
    for neuron in driven:
        inputs[rng.choice(steps, 40, replace=False), neuron] = True
    w_syn = 3.0  # mV per synapse, 11x Shiu's, so that activity spreads through this small graph
    ours = simulate_lif(lif_from_connectome(c, w_syn_mV=w_syn), steps * 1e-4, input_spikes=inputs,
                        record=np.arange(n))["raster"][0]  # fmt: skip

    p = SHIU_PARAMS
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    b2.defaultclock.dt = dt_ms * b2.ms
    ns = {"v_0": p["v_0_mV"] * b2.mV, "v_rst": p["v_rst_mV"] * b2.mV, "v_th": p["v_th_mV"] * b2.mV,
          "t_mbr": p["t_mbr_ms"] * b2.ms, "tau": p["tau_ms"] * b2.ms}  # fmt: skip
    neu = b2.NeuronGroup(n, "dv/dt = (v_0 - v + g) / t_mbr : volt (unless refractory)\n"
                            "dg/dt = -g / tau : volt (unless refractory)",
                         threshold="v > v_th", reset="v = v_rst; g = 0*mV",
                         refractory=p["t_rfc_ms"] * b2.ms, method="linear",
                         namespace=ns)  # fmt: skip
    neu.v = p["v_0_mV"] * b2.mV
    syn = b2.Synapses(neu, neu, "w : volt", on_pre="g += w", delay=p["t_dly_ms"] * b2.ms)
    syn.connect(i=c.pre.astype(int), j=c.post.astype(int))
    syn.w = c.weight * w_syn * b2.mV
    at_step, to_neuron = np.nonzero(inputs)
    gen = b2.SpikeGeneratorGroup(n, to_neuron, at_step * dt_ms * b2.ms)
    drive = b2.Synapses(gen, neu, on_pre=f"v += {p['f_poi'] * p['w_syn_mV']}*mV")
    drive.connect(j="i")
    mon = b2.SpikeMonitor(neu)
    b2.Network(neu, syn, gen, drive, mon).run(steps * dt_ms * b2.ms)
    theirs = np.zeros_like(ours)
    theirs[np.round(np.asarray(mon.t / b2.ms) / dt_ms).astype(int), np.asarray(mon.i)] = True
    assert theirs.sum() > 100 and (theirs.sum(0) > 0).sum() > len(driven)  # the net responds
    for neuron in range(n):
        a, b = np.flatnonzero(ours[:, neuron]), np.flatnonzero(theirs[:, neuron])
        assert len(a) == len(b), (neuron, a, b)
        assert np.all(np.abs(a - b) <= 1), (neuron, a, b)


def test_the_sparse_graded_network_is_the_dense_one(atlas):
    """On the worm (with its peptide layer), the edge-list network's vector field and a
    stimulated run equal the dense network's to 1e-10 in float64."""
    import jax.numpy as jnp

    from digiworm.models import graded_from_atlas
    from digiworm.models._graded import GradedState
    from digiworm.simulate import Protocol, simulate

    dense = graded_from_atlas(atlas, dtype=jnp.float64)
    sparse = sparse_from_dense(dense)
    assert sparse.g_chem.size < 0.1 * dense.g_chem.size  # the edges only
    rng = np.random.default_rng(0)
    y = GradedState(*(jnp.asarray(rng.uniform(lo, hi, 302)) for lo, hi in
                      ((-60.0, 0.0), (0.0, 1.0), (0.0, 1.0))))  # fmt: skip
    u = jnp.asarray(rng.normal(0, 5, 302))
    leaves = jax.tree_util.tree_leaves
    for got, want in zip(
        leaves(sparse.vector_field(0.0, y, u)), leaves(dense.vector_field(0.0, y, u))
    ):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sparse.max_rate(), dense.max_rate(), rtol=1e-12)
    protocol = Protocol.single(dense.names, [["AVAL"], ["ASHL", "ASHR"]], amplitude=40.0,
                               onset_s=1.0, duration_s=2.0)  # fmt: skip
    a = simulate(sparse, protocol, 5.0, 0.01, save_dt_s=0.1)
    b = simulate(dense, protocol, 5.0, 0.01, save_dt_s=0.1)
    assert float(np.nanmax(np.abs(b["dff"].values))) > 1e-3  # something happened
    np.testing.assert_allclose(a["dff"].values, b["dff"].values, rtol=1e-10, atol=1e-12)
    with pytest.raises(DigiwormError, match="takes a GradedNetwork"):
        sparse_from_dense(sparse)
    back = sparse.to_dense()  # and back again, exactly (reversals where there are synapses)
    for field in ("g_gap", "g_chem", "w_pep_mV"):
        np.testing.assert_array_equal(getattr(back, field), getattr(dense, field), err_msg=field)
    wired = np.asarray(dense.g_chem) > 0
    np.testing.assert_array_equal(
        np.asarray(back.e_chem_mV)[wired], np.asarray(dense.e_chem_mV)[wired]
    )


def test_a_graded_network_builds_from_any_connectome():
    """A synthetic fly graph becomes a graded network whose synapses keep their signs; a pulse
    into some neurons spreads to others and the run stays finite."""
    import jax.numpy as jnp

    from digiworm.brains._graded import DENSE_MAX_NEURONS
    from digiworm.models import GradedNetwork
    from digiworm.simulate import Protocol, simulate

    c = synthetic_flywire(0.002, seed=2)
    assert c.n_neurons <= DENSE_MAX_NEURONS
    assert isinstance(graded_from_connectome(c, layout="auto"), GradedNetwork)
    with pytest.raises(DigiwormError, match="layout 'csr'"):
        graded_from_connectome(c, layout="csr")
    net = graded_from_connectome(c, dtype=jnp.float64)
    pre, post, w = c.chemical()
    np.testing.assert_array_equal(np.asarray(net.e_chem_mV) < -1, w < 0)
    driven = [str(i) for i in range(10)]
    protocol = Protocol.single(net.names, [driven], amplitude=40.0, onset_s=0.5, duration_s=1.0)
    ds = simulate(net, protocol, 3.0, 0.005, save_dt_s=0.1)
    out = ds["dff"].isel(condition=0).values
    assert np.isfinite(out).all()
    others = np.setdiff1d(np.arange(c.n_neurons), np.arange(10))
    assert np.abs(out[:, others] - out[0, others]).max() > 1e-4


def test_simulate_takes_a_connectome_file_and_refuses_the_worms_options(tmp_path):
    """`digiworm simulate --connectome FILE --neurons FILE` runs both models on a saved edge
    list; the worm's options (ablations, drugs, the in-silico atlas) are refused by name."""
    import xarray as xr
    from typer.testing import CliRunner

    from digiworm.cli import app

    c = synthetic_flywire(0.001, seed=4)
    c.save(tmp_path / "edges.parquet", tmp_path / "neurons.csv")
    base = ["simulate", "--connectome", str(tmp_path / "edges.parquet"), "--neurons",
            str(tmp_path / "neurons.csv"), "--stimulate", "0,1,2"]  # fmt: skip
    r = CliRunner().invoke(app, [*base, "--model", "lif", "--duration", "0.1", "--trials", "2",
                                 "--out", str(tmp_path / "lif.nc")])  # fmt: skip
    assert r.exit_code == 0, r.output
    ds = xr.load_dataset(tmp_path / "lif.nc", engine="h5netcdf")
    assert ds.sizes == {"trial": 2, "neuron": c.n_neurons}
    assert (ds["rate_hz"].sel(neuron=["0", "1", "2"]) > 50).all()
    r = CliRunner().invoke(app, [*base, "--duration", "1", "--out", str(tmp_path / "g.nc")])
    assert r.exit_code == 0, r.output
    for extra, needle in ((["--ablate", "3"], "--ablate act on the worm"),
                          (["--model", "linear"], "model for a connectome file"),
                          (["--stimulate", "999999"], "unknown neuron '999999'")):  # fmt: skip
        r = CliRunner().invoke(app, [*base, *extra, "--out", str(tmp_path / "x.nc")])
        assert r.exit_code == 2 and needle in r.output, (extra, r.output)
    r = CliRunner().invoke(app, ["simulate", "--connectome", str(tmp_path / "none.csv"),
                                 "--out", str(tmp_path / "x.nc")])  # fmt: skip
    assert r.exit_code == 2 and "does not exist" in r.output
    r = CliRunner().invoke(app, ["simulate", "--stimulate", "AVAL", "--trials", "3",
                                 "--out", str(tmp_path / "x.nc")])  # fmt: skip
    assert r.exit_code == 2 and "--conditions are for a connectome file" in r.output
    # a conditions table: its columns say what each condition does, so those options go
    pd.DataFrame({"stimulate": ["0;1", "2"]}).to_csv(tmp_path / "c.csv", index=False)
    for extra, needle in ((["--conditions", str(tmp_path / "c.csv")], "--stimulate cannot"),
                          (["--engine", "ray"], "are for --conditions")):  # fmt: skip
        r = CliRunner().invoke(app, [*base, *extra, "--out", str(tmp_path / "x.nc")])
        assert r.exit_code == 2 and needle in r.output, (extra, r.output)
    r = CliRunner().invoke(app, [*base[:5], "--conditions", str(tmp_path / "c.csv"),
                                 "--engine", "local", "--workers", "2",
                                 "--out", str(tmp_path / "x.nc")])  # fmt: skip
    assert r.exit_code == 2 and "--workers are for --engine ray" in r.output, r.output
    r = CliRunner().invoke(app, [*base[:5], "--conditions", str(tmp_path / "c.csv"),
                                 "--duration", "1", "--out", str(tmp_path / "c.nc")])  # fmt: skip
    assert r.exit_code == 0, r.output
    ds = xr.load_dataset(tmp_path / "c.nc", engine="h5netcdf")
    assert ds["peak_dff"].dims == ("condition", "neuron") and ds.sizes["condition"] == 2


def test_the_flyvis_optic_lobe_expands_to_its_published_size():
    """The shipped type-level table expands to flyvis's 45,669 cells and 1,513,231 connections
    (Lappalainen et al. 2024); without the hull fill, 1,357,269; a small lattice keeps the
    types' strides (Lawf cells on every third u and second v)."""
    from digiworm.brains import flyvis_optic_lobe

    c = flyvis_optic_lobe()
    assert (c.n_neurons, c.n_edges) == (45_669, 1_513_231)
    assert ((c.weight > 0).sum(), (c.weight < 0).sum()) == (983_980, 529_251)
    assert flyvis_optic_lobe(fill=False).n_edges == 1_357_269
    small = flyvis_optic_lobe(extent=2)
    n_cols = 3 * 2 * 3 + 1
    lawf = [i for i in small.ids if i.startswith("Lawf1@")]
    assert len(lawf) == 3 and all(int(i.split("@")[1].split("_")[0]) % 3 == 0 for i in lawf)
    assert small.n_neurons == 63 * n_cols + 2 * 3
    assert small.index(["T4a@0_0"])[0] == list(small.ids).index("T4a@0_0")
    with pytest.raises(DigiwormError, match="extent must be a whole number.*got 0"):
        flyvis_optic_lobe(extent=0)


def test_lif_trials_spread_over_several_devices_give_the_same_spikes(tmp_path):
    """With two devices (two CPU devices stand in for two GPUs, in a fresh process) the
    trials' axis of the batch (``vmap``) is sharded over them and every trial's spike counts
    are those of the trials run one after another on one device (``loop``)."""
    import json
    import subprocess
    import sys

    script = tmp_path / "shard.py"
    script.write_text(
        "import os, sys, json\n"
        "os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=' + sys.argv[1]\n"
        "import jax, numpy as np\n"
        "from digiworm.brains import synthetic_flywire, lif_from_connectome, simulate_lif\n"
        "from digiworm.brains._lif import _shard_trials\n"
        "net = lif_from_connectome(synthetic_flywire(0.001, seed=5))\n"
        "keys = _shard_trials(jax.random.split(jax.random.PRNGKey(0), 4))\n"
        "out = simulate_lif(net, 0.05, stimulated=np.arange(10), key=jax.random.PRNGKey(3),"
        " trials=4, batch=sys.argv[2])\n"
        "print(json.dumps({'devices': len(keys.sharding.device_set),"
        " 'counts': out['counts'].tolist()}))\n"
    )
    runs = {}
    for n, batch in ((1, "loop"), (2, "vmap")):
        proc = subprocess.run([sys.executable, str(script), str(n), batch], capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert runs[1]["devices"] == 1 and runs[2]["devices"] == 2
    assert runs[1]["counts"] == runs[2]["counts"]
    assert len({tuple(c) for c in runs[2]["counts"]}) > 1  # the trials differ


def test_a_conditions_table_runs_locally_and_on_ray_with_the_same_numbers(tmp_path):
    """Conditions (stimulated sets, seeds, trials, rates) on one brain give one number per
    neuron each; the Ray engine's actors give the local engine's numbers exactly (each row
    carries its seed); the graded model's peak responses follow their stimulation."""
    from digiworm.brains import run_conditions

    table = pd.DataFrame({"stimulate": ["0;1;2", "3 4", ""], "seed": [1, 2, 1],
                          "trials": [2, 2, 1], "amplitude": [150.0, None, 100.0]})  # fmt: skip
    table.to_csv(tmp_path / "conditions.csv", index=False)
    spec = "synthetic-flywire:0.001"
    local = run_conditions(spec, tmp_path / "conditions.csv", model="lif", duration_s=0.2)
    assert local["rate_hz"].shape == (3, 139)
    rates = local["rate_hz"].to_numpy()
    assert rates[0, :3].min() > 100 and rates[1, 3:5].min() > 100  # driven at 150 Hz
    assert rates[2].max() == 0  # nothing driven, nothing fires
    assert np.isfinite(local["rate_sd_hz"].to_numpy()[:2]).all()
    assert np.isnan(local["rate_sd_hz"].to_numpy()[2]).all()  # one trial: no spread
    ray = run_conditions(spec, table, model="lif", duration_s=0.2, engine="ray", workers=2)
    np.testing.assert_array_equal(ray["rate_hz"], local["rate_hz"])
    assert ray.attrs["engine"] == "ray" and "assumed" in ray.attrs["evidence"]
    graded = run_conditions(spec, table[["stimulate"]], model="graded", duration_s=2.0)
    peak = np.abs(graded["peak_dff"].to_numpy())
    assert peak[0, :3].min() > peak[0, 3:].mean() and peak[2].max() < peak[0].max()


def test_a_bad_conditions_table_is_refused_with_every_problem_named():
    from digiworm.brains import read_conditions

    c = synthetic_flywire(0.001, seed=0)
    bad = pd.DataFrame({"stimulate": ["0;1", "zzz", "2"], "seed": [0, 1.5, -1],
                        "trials": [1, 0, 3], "amplitude": [-1.0, None, 5.0]})  # fmt: skip
    with pytest.raises(DigiwormError) as err:
        read_conditions(bad, c, "graded")
    msg = str(err.value)
    for needle in ("neuron ids not in the brain, e.g. ['zzz'] (file lines 3)",
                   "seed not a whole number >= 0 (file lines 3, 4)",
                   "trials not a whole number >= 1 (file lines 3)",
                   "trials other than 1 (the graded model is deterministic) (file lines 4)",
                   "amplitude not a finite number > 0 (file lines 2)"):  # fmt: skip
        assert needle in msg, msg
    with pytest.raises(DigiwormError, match="conditions column"):
        read_conditions(pd.DataFrame({"stimulate": ["0"], "dose": [1]}), c, "lif")
    with pytest.raises(DigiwormError, match="lacks its 'stimulate' column"):
        read_conditions(pd.DataFrame({"seed": [1]}), c, "lif")


def test_rest_stability_matches_the_full_jacobians_eigenvalues(atlas):
    """ARPACK on Jacobian-vector products finds the leading eigenvalue of the worm's graded
    network at rest that numpy finds on the full Jacobian (jax.jacfwd), and the edge-list twin
    gives the same; a linear system with one growing mode is reported unstable at its rate,
    and a state that is not finite is refused."""
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from digiworm.models import graded_from_atlas
    from digiworm.simulate import rest_stability, rest_state

    dense = graded_from_atlas(atlas, dtype=jnp.float64)
    y = rest_state(dense)
    flat, unravel = ravel_pytree(y)
    zero = jnp.zeros(dense.n_neurons, jnp.float64)
    jac = jax.jacfwd(lambda x: ravel_pytree(dense.vector_field(0.0, unravel(x), zero))[0])(flat)
    truth = np.linalg.eigvals(np.asarray(jac))
    truth = truth[np.argmax(truth.real)]
    got = rest_stability(dense, y)
    assert got["stable"] and truth.real < 0
    assert abs(got["leading_per_s"].real - truth.real) < 1e-6 * max(1.0, abs(truth.real))
    assert got["rest_residual"] < 1e-8
    sparse = rest_stability(sparse_from_dense(dense), y)
    assert abs(sparse["leading_per_s"].real - truth.real) < 1e-6 * max(1.0, abs(truth.real))
    weak = graded_from_connectome(synthetic_flywire(0.002, seed=0), dtype=jnp.float64)
    assert rest_stability(weak)["stable"]
    with pytest.raises(DigiwormError, match="no rest was found"):
        rest_stability(weak, jax.tree_util.tree_map(lambda x: x * np.nan, rest_state(weak)))
    # a linear system with one growing mode: its rate, exactly
    from digiworm.models import LinearModel

    n, rng = 40, np.random.default_rng(0)
    q = rng.normal(size=(n, n))
    rates = np.r_[-np.arange(1.0, n), 0.3]
    a = q @ np.diag(rates) @ np.linalg.inv(q)
    model = LinearModel(names=tuple(f"n{i}" for i in range(n)), a_per_s=jnp.asarray(a),
                        b_per_s=jnp.ones(n))  # fmt: skip
    got = rest_stability(model, jnp.zeros(n))
    assert not got["stable"] and abs(got["leading_per_s"] - 0.3) < 1e-6
