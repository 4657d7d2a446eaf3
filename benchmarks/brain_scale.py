"""Larger brains: the fly's LIF model against Brian2, and the graded network's cost against size.

Three parts, side by side in one run on this machine:

1. **LIF vs Brian2.** Shiu et al.'s LIF model (``digiworm.brains.LIFNetwork``) on the synthetic
   FlyWire-like graph at ``--scale`` (1 = 138,639 neurons and 15.1M connections), 100 neurons
   driven by Poisson input at 150 Hz, ``--sim-s`` simulated at dt 0.1 ms. digiworm (its
   event-driven step) runs one trial and ``--trials`` trials (``--batch``: auto loops over them
   in one compiled program on a CPU and batches them with ``vmap`` on an accelerator); Brian2
   (C++ standalone, the engine and mode of the published model) runs the same equations on the
   same graph, one trial and the trials one after another (as Shiu et al.'s code does),
   compiled once. Reported: wall per simulated second (compiling apart, and the first call's
   cost), the ratios,
   memory, and the two engines' mean rates (driven and all neurons: independent Poisson
   streams, so they agree in distribution, not spike for spike; tests/test_brains.py checks
   spike-for-spike agreement with shared input spikes).
2. **Graded network vs size.** ``SparseGradedNetwork`` on synthetic graphs of 10³–10⁵ neurons
   (the fly's mean degree, about 109): wall per simulated second (dt 1 ms, one condition and
   8; the stepping alone: the rest is settled in one step), the model's memory, and the dense
   ``GradedNetwork`` where it fits (N ≤ 4,000): the sparse cost grows with edges, the dense
   with N². A plot beside the JSON.
3. **The worm.** Dense and sparse graded on the worm's 302 neurons (dt 10 ms, 30 s): dense
   stays the worm's default.

    python benchmarks/brain_scale.py [--scale 0.1] [--sim-s 1] [--trials 32] [--batch auto]
        [--graded-s 0.2] [--sizes 1000,10000,100000] [--out benchmarks/results/brain_scale.json]

The committed results: ``--scale 1 --sim-s 1 --trials 32 --sizes 1000,3000,10000,100000
--graded-s 0.1`` (the full FlyWire-size graph).

``--smoke`` runs every part at tiny sizes: a check that it works, not a measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STIMULATED = 100
RATE_HZ = 150.0


def _timed(fn, repeat: int = 1):
    fn()  # warm up: compiling
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _lif_digiworm(c, sim_s: float, trials: int, batch: str) -> dict:
    import jax

    from digiworm.brains import lif_from_connectome, simulate_lif
    from digiworm.simulate import batch_strategy

    net = lif_from_connectome(c)
    stim = np.arange(STIMULATED)
    out = {"coupling": "event", "batch": batch_strategy(batch),
           "model_mb": sum(x.nbytes for x in (net.pre, net.post, net.w_mV)) / 1e6}  # fmt: skip
    for k in (1, trials):
        t0 = time.perf_counter()  # the first call compiles
        simulate_lif(net, sim_s, stimulated=stim, rate_hz=RATE_HZ, key=jax.random.PRNGKey(0),
                     trials=k, batch=batch)  # fmt: skip
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = simulate_lif(net, sim_s, stimulated=stim, rate_hz=RATE_HZ,
                           key=jax.random.PRNGKey(1), trials=k, batch=batch)  # fmt: skip
        wall = time.perf_counter() - t0
        out[f"trials_{k}"] = {
            "wall_per_sim_s": wall / sim_s,
            "first_call_s": first,
            "mean_rate_driven_hz": float(res["rate_hz"][:, stim].mean()),
            "mean_rate_all_hz": float(res["rate_hz"].mean()),
            "spikes_per_step": float(res["counts"].sum() / (k * res["steps"])),
        }  # fmt: skip
        print(f"lif digiworm {k} trial(s): {wall / sim_s:.2f} s per simulated s", flush=True)
    return out


_BRIAN2 = r"""
import json, sys, time, numpy as np
import brian2 as b2
d = json.load(open(sys.argv[1]))
pre, post, w = np.load(d["edges"])["pre"], np.load(d["edges"])["post"], np.load(d["edges"])["w"]
b2.set_device("cpp_standalone", directory=d["dir"], build_on_run=False)
b2.defaultclock.dt = 0.1 * b2.ms
p = d["params"]
ns = {"v_0": p["v_0_mV"] * b2.mV, "v_rst": p["v_rst_mV"] * b2.mV, "v_th": p["v_th_mV"] * b2.mV,
      "t_mbr": p["t_mbr_ms"] * b2.ms, "tau": p["tau_ms"] * b2.ms}
neu = b2.NeuronGroup(d["n"], "dv/dt = (v_0 - v + g) / t_mbr : volt (unless refractory)\n"
                     "dg/dt = -g / tau : volt (unless refractory)\nrfc : second",
                     threshold="v > v_th", reset="v = v_rst; g = 0*mV", refractory="rfc",
                     method="linear", namespace=ns)
neu.v = p["v_0_mV"] * b2.mV
neu.rfc = p["t_rfc_ms"] * b2.ms
syn = b2.Synapses(neu, neu, "w : volt", on_pre="g += w", delay=p["t_dly_ms"] * b2.ms)
syn.connect(i=pre, j=post)
syn.w = w * b2.mV
pois = []
for i in range(d["stimulated"]):
    pois.append(b2.PoissonInput(neu[i:i + 1], "v", 1, d["rate_hz"] * b2.Hz,
                                weight=p["f_poi"] * p["w_syn_mV"] * b2.mV))
neu.rfc[:d["stimulated"]] = 0 * b2.ms
mon = b2.SpikeMonitor(neu)
net = b2.Network(neu, syn, mon, *pois)
net.run(d["sim_s"] * b2.second)
t0 = time.perf_counter()
b2.device.build(run=False, directory=d["dir"])
build = time.perf_counter() - t0
walls, rates = [], []
for k in range(d["trials"]):
    t0 = time.perf_counter()
    b2.device.run(d["dir"], with_output=False, run_args={})
    walls.append(time.perf_counter() - t0)
    counts = np.bincount(np.asarray(mon.i[:]), minlength=d["n"])
    rates.append(counts / d["sim_s"])
rates = np.asarray(rates)
json.dump({"build_s": build, "walls_s": walls,
           "mean_rate_driven_hz": float(rates[:, :d["stimulated"]].mean()),
           "mean_rate_all_hz": float(rates.mean())}, open(d["out"], "w"))
"""


def _lif_brian2(c, sim_s: float, trials: int) -> dict:
    from digiworm.brains import SHIU_PARAMS

    if importlib.util.find_spec("brian2") is None:
        return {"skipped": "brian2 not installed (pip install '.[bench]')"}
    with tempfile.TemporaryDirectory() as tmp:
        pre, post, w = c.chemical()
        np.savez(Path(tmp) / "edges.npz", pre=pre, post=post, w=w * SHIU_PARAMS["w_syn_mV"])
        spec = {"edges": str(Path(tmp) / "edges.npz"), "dir": str(Path(tmp) / "build"),
                "n": c.n_neurons, "params": SHIU_PARAMS, "stimulated": STIMULATED,
                "rate_hz": RATE_HZ, "sim_s": sim_s, "trials": trials,
                "out": str(Path(tmp) / "out.json")}  # fmt: skip
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        (Path(tmp) / "run.py").write_text(_BRIAN2)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(Path(tmp) / "run.py"),
                               str(Path(tmp) / "spec.json")], capture_output=True, text=True,
                              timeout=3600)  # fmt: skip
        total = time.perf_counter() - t0
        if proc.returncode != 0:
            return {"failed": proc.stderr[-2000:]}
        res = json.loads((Path(tmp) / "out.json").read_text())
    walls = res["walls_s"]
    return {
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "trials_1": {"wall_per_sim_s": walls[0] / sim_s},
        f"trials_{trials}": {"wall_per_sim_s": sum(walls) / sim_s, "how": "one after another"},
        "build_s": res["build_s"], "process_total_s": total,
        "mean_rate_driven_hz": res["mean_rate_driven_hz"],
        "mean_rate_all_hz": res["mean_rate_all_hz"],
        "mode": "cpp_standalone, compiled once, device.run per trial",
    }  # fmt: skip


def _graded_scaling(sizes, sim_s: float, dense_max: int) -> list[dict]:
    import jax.numpy as jnp

    from digiworm.brains import FLYWIRE_TARGETS, graded_from_connectome, synthetic_flywire
    from digiworm.models import GradedNetwork
    from digiworm.simulate import Protocol, simulate

    rows = []
    for n in sizes:
        c = synthetic_flywire(n / FLYWIRE_TARGETS["neurons"], seed=0)
        sparse = graded_from_connectome(c, dtype=jnp.float32)
        edge_arrays = (sparse.chem_pre, sparse.chem_post, sparse.g_chem, sparse.e_chem_mV)
        row = {"neurons": c.n_neurons, "edges": c.n_edges,
               "sparse_model_mb": sum(x.nbytes for x in edge_arrays) / 1e6}  # fmt: skip
        models = {"sparse": sparse}
        if c.n_neurons <= dense_max:
            models["dense"] = _dense(sparse, GradedNetwork)
            row["dense_model_mb"] = 4 * c.n_neurons**2 * 4 / 1e6  # four (n, n) float32
        for name, model in models.items():
            for k in (1, 8):
                targets = [[str(i)] for i in range(k)]
                protocol = Protocol.single(model.names, targets, amplitude=40.0, onset_s=0.1,
                                           duration_s=0.2)  # fmt: skip

                def run(m=model, p=protocol):  # the stepping: rest settled in one step
                    return simulate(m, p, sim_s, 1e-3, save_dt_s=sim_s / 4, settle_s=1e-3)

                wall = _timed(run)
                row[f"{name}_{k}_wall_per_sim_s"] = wall / sim_s
        rows.append(row)
        print("graded", json.dumps(row), flush=True)
    return rows


def _dense(sparse, GradedNetwork):
    """The dense twin of a sparse graded network (for the comparison only)."""
    import jax.numpy as jnp

    n = len(sparse.names)
    chem = np.zeros((n, n), np.float32)
    e = np.zeros((n, n), np.float32)
    pre, post = np.asarray(sparse.chem_pre), np.asarray(sparse.chem_post)
    chem[post, pre] = np.asarray(sparse.g_chem)
    e[post, pre] = np.asarray(sparse.e_chem_mV)
    zeros = jnp.zeros((n, n), jnp.float32)
    return GradedNetwork(
        names=sparse.names, g_gap=zeros, g_chem=jnp.asarray(chem), e_chem_mV=jnp.asarray(e),
        w_pep_mV=zeros, tau_m_s=sparse.tau_m_s, v_rest_mV=sparse.v_rest_mV,
        v_th_mV=sparse.v_th_mV, tau_pep_s=sparse.tau_pep_s, a_r_per_s=sparse.a_r_per_s,
        a_d_per_s=sparse.a_d_per_s, beta_per_mV=sparse.beta_per_mV, g_tonic=sparse.g_tonic,
        e_tonic_mV=sparse.e_tonic_mV, alive=sparse.alive,
    )  # fmt: skip


def _worm(sim_s: float) -> dict:
    import digiworm
    from digiworm.brains import sparse_from_dense
    from digiworm.models import graded_from_atlas
    from digiworm.simulate import Protocol, simulate

    dense = graded_from_atlas(digiworm.atlas.load())
    sparse = sparse_from_dense(dense)
    protocol = Protocol.single(dense.names, [["AVAL"]], amplitude=40.0, onset_s=1.0,
                               duration_s=0.5)  # fmt: skip
    out = {}
    for name, model in (("dense", dense), ("sparse", sparse)):
        out[f"{name}_wall_per_sim_s"] = (
            _timed(
                lambda m=model: simulate(m, protocol, sim_s, 0.01, save_dt_s=0.5, settle_s=0.01),
                repeat=3,
            )  # fmt: skip
            / sim_s
        )
    out["sparse_over_dense"] = out["sparse_wall_per_sim_s"] / out["dense_wall_per_sim_s"]
    return out


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, lif = results["graded_scaling"], results["lif"]
    fig, (left, ax) = plt.subplots(1, 2, figsize=(11, 4))
    trials = [k for k in lif["digiworm"] if k.startswith("trials_")]
    x = np.arange(len(trials))
    for i, (engine, colour) in enumerate((("digiworm", "C0"), ("brian2", "C1"))):
        walls = [lif[engine].get(k, {}).get("wall_per_sim_s", np.nan) for k in trials]
        left.bar(x + (i - 0.5) * 0.38, walls, 0.38, color=colour, label=engine)
    left.set_xticks(x, [k.replace("trials_", "") + " trial(s)" for k in trials])
    left.set_yscale("log")
    left.set_ylabel("wall s per simulated s (dt 0.1 ms)")
    g = results["graph"]
    left.set_title(f"LIF (Shiu et al. 2024), {g['neurons']:,} neurons, {g['edges']:,} conn.",
                   fontsize=9)  # fmt: skip
    left.legend()
    n = [r["neurons"] for r in rows]
    for key, label, style in (("sparse_1", "sparse, 1 condition", "o-"),
                              ("sparse_8", "sparse, 8 conditions", "s-"),
                              ("dense_1", "dense, 1 condition", "o--"),
                              ("dense_8", "dense, 8 conditions", "s--")):  # fmt: skip
        pts = [(r["neurons"], r[f"{key}_wall_per_sim_s"]) for r in rows
               if f"{key}_wall_per_sim_s" in r]  # fmt: skip
        if pts:
            ax.loglog(*zip(*pts), style, label=label)
    ax.set_xlabel("neurons (synthetic fly-like graph, ~109 connections each)")
    ax.set_ylabel("wall s per simulated s (dt 1 ms)")
    ax.set_title(f"graded network cost vs size ({min(n):,}–{max(n):,} neurons)", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--sim-s", type=float, default=1.0)
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--batch", default="auto", help="digiworm's trials: auto, vmap or loop")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--graded-s", type=float, default=0.2, help="simulated s per graded run")
    ap.add_argument("--out", default="benchmarks/results/brain_scale.json")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    graded_s, worm_s, dense_max = a.graded_s, 30.0, 4000
    if a.smoke:
        a.scale, a.sim_s, a.trials, a.sizes = 0.002, 0.02, 2, "200,500"
        graded_s, worm_s = 0.1, 2.0
    from digiworm.brains import synthetic_flywire

    t0 = time.perf_counter()
    c = synthetic_flywire(a.scale, seed=0)
    build_s = time.perf_counter() - t0
    print(f"graph: {c.n_neurons:,} neurons, {c.n_edges:,} connections ({build_s:.1f} s)",
          flush=True)  # fmt: skip
    results = {"graph": {**c.summary(), "build_s": build_s}}
    ours = _lif_digiworm(c, a.sim_s, a.trials, a.batch)
    print("lif digiworm", json.dumps(ours), flush=True)
    theirs = _lif_brian2(c, a.sim_s, a.trials)
    print("lif brian2", json.dumps(theirs), flush=True)
    lif = {"digiworm": ours, "brian2": theirs, "sim_s": a.sim_s, "dt_ms": 0.1,
           "stimulated": STIMULATED, "rate_hz": RATE_HZ}  # fmt: skip
    if "trials_1" in theirs:
        for k in (1, a.trials):
            lif[f"brian2_over_digiworm_trials_{k}"] = (
                theirs[f"trials_{k}"]["wall_per_sim_s"] / ours[f"trials_{k}"]["wall_per_sim_s"]
            )
    results["lif"] = lif
    sizes = [int(s) for s in a.sizes.split(",")]
    results["graded_scaling"] = _graded_scaling(sizes, graded_s, dense_max)
    results["worm"] = _worm(worm_s)
    print("worm", json.dumps(results["worm"]), flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _plot(results, out.with_suffix(".png"))
    doc = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "smoke": a.smoke,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "results": results,
    }
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, out)
    print(f"written {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
