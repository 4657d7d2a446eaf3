"""Simulator benchmarks, side by side in one run (issue: whole-brain simulator).

(a) the in-silico atlas of the graded network with peptides and GCaMP6s indicator — every
    neuron stimulated in turn, 5 s baseline + 30 s response, whole brain recorded — beside the
    same batch through a plain linear network (the connectome's linear model, exact steps);
(b) one gradient of a loss over the whole in-silico atlas with respect to every network
    parameter (what fitting needs): time and peak memory;
(d) cost against the number of neurons (synthetic sparse networks up to 10^4) and against the
    number of conditions, with a figure.

Each measurement runs in a fresh process (peak RSS is per measurement) after a warm-up call
whose compile time is reported separately.

    python benchmarks/simulator.py [--quick] [--out benchmarks/results/simulator.json]

``--smoke`` runs every part at tiny sizes (4 stimulations x 10 s; scaling at 50 and 302
neurons, 1 and 4 conditions, 1 s simulated): a check that it works, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, resource, sys, time
import jax, jax.numpy as jnp, numpy as np, equinox as eqx
import digiworm
from digiworm.models import graded_from_atlas, linear_from_atlas, GCaMP6s, GradedNetwork
from digiworm.simulate import Protocol, simulate, simulate_arrays, insilico_atlas

cfg = json.loads(sys.argv[1])
kind = cfg["kind"]
out = {"kind": kind}

def timed(f, repeat=1):
    t0 = time.perf_counter(); f(); first = time.perf_counter() - t0
    best = min(_t(f) for _ in range(repeat))
    return first, best

def _t(f):
    t0 = time.perf_counter(); f(); return time.perf_counter() - t0

if kind in ("atlas_graded", "atlas_linear", "gradient"):
    atlas = digiworm.atlas.load()
    n_stim = cfg["n_stim"]
    stim = atlas.names[:n_stim]
    window = cfg["window_s"]
if kind == "atlas_graded":
    model = graded_from_atlas(atlas)
    run = lambda: insilico_atlas(model, stim, window_s=window, dt_s=cfg["dt"], batch_size=n_stim)
    first, best = timed(run, cfg["repeat"])
    out.update(first_s=first, wall_s=best)
elif kind == "atlas_linear":
    model = linear_from_atlas(atlas)
    run = lambda: insilico_atlas(model, stim, window_s=window, dt_s=cfg["dt"], batch_size=n_stim,
                                 amplitude=1.0)
    first, best = timed(run, cfg["repeat"])
    out.update(first_s=first, wall_s=best)
elif kind == "gradient":
    model = graded_from_atlas(atlas)
    fun = atlas.functional("wt", kernel_time_s=None)["dff"].sel(stimulated=stim).to_numpy()
    target = jnp.asarray(np.nan_to_num(fun), dtype=jnp.float32)
    mask = jnp.asarray(np.isfinite(fun))
    protocol = Protocol.single(model.names, stim, amplitude=40.0, onset_s=5.0, duration_s=0.5)
    duration = 5.0 + window
    ind = GCaMP6s()
    t = np.arange(int(duration / 0.5) + 1) * 0.5

    @eqx.filter_jit
    @eqx.filter_value_and_grad
    def loss_and_grad(model):
        _, dff, _ = simulate_arrays(model, protocol, duration, cfg["dt"], indicator=ind,
                                    settle_s=10.0)
        base = dff[:, t < 5.0].mean(1)
        resp = dff[:, t > 5.0].mean(1) - base            # (stimulated, responding)
        err = jnp.where(mask, resp.T - target, 0.0)
        return jnp.sum(err**2) / jnp.sum(mask)

    def run():
        value, grads = loss_and_grad(model)
        jax.block_until_ready(grads)
        out["loss"] = float(value)
        leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
        out["n_params"] = int(sum(x.size for x in leaves))
        out["grad_finite"] = bool(all(bool(jnp.all(jnp.isfinite(x))) for x in leaves))
    first, best = timed(run, cfg["repeat"])
    out.update(first_s=first, wall_s=best)
elif kind == "scaling":
    n, c = cfg["n"], cfg["conditions"]
    rng = np.random.default_rng(0)
    k = 30  # synapses in per neuron, as in the worm
    def sparse(scale):
        m = np.zeros((n, n), np.float32)
        rows = np.repeat(np.arange(n), k); cols = rng.integers(0, n, n * k)
        np.add.at(m, (rows, cols), scale)
        np.fill_diagonal(m, 0)
        return m
    gap = sparse(0.01); gap = 0.5 * (gap + gap.T)
    chem = sparse(0.02)
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    model = GradedNetwork(
        names=tuple(f"n{i}" for i in range(n)), g_gap=f32(gap), g_chem=f32(chem),
        e_chem_mV=f32(np.where(rng.random((n, n)) < 0.2, -48.0, 0.0)),
        w_pep_mV=f32(sparse(0.01)), tau_m_s=f32(np.full(n, 0.1)),
        v_rest_mV=f32(np.full(n, -35.0)), v_th_mV=f32(np.full(n, -15.0)),
        tau_pep_s=f32(2.0), a_r_per_s=f32(1.0), a_d_per_s=f32(5.0), beta_per_mV=f32(0.125),
        g_tonic=f32(np.zeros(n)), e_tonic_mV=f32(np.zeros(n)), alive=jnp.ones(n, bool),
    )
    targets = [[f"n{i % n}"] for i in range(c)]
    protocol = Protocol.single(model.names, targets, amplitude=40.0, onset_s=0.5,
                               duration_s=0.5)
    T = cfg["duration_s"]
    run = lambda: simulate(model, protocol, T, 0.02, settle_s=1.0)
    first, best = timed(run, cfg["repeat"])
    out.update(first_s=first, wall_s=best, n=n, conditions=c,
               s_per_sim_s_per_condition=best / (T + 1.0) / c)
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def measure(cfg: dict) -> dict:
    """Run one configuration in a fresh Python process and return its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True
    )
    if proc.returncode:
        raise SystemExit(f"benchmark {cfg} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def _plot(scaling_n, scaling_c, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ax = axes[0]
    ax.loglog([r["n"] for r in scaling_n],
              [r["s_per_sim_s_per_condition"] for r in scaling_n], "o-")  # fmt: skip
    ax.set_xlabel("neurons (synthetic, 30 synapses in per neuron)")
    ax.set_ylabel("wall s per simulated s (1 condition)")
    ax.set_title("cost vs network size (dense matrices)")
    ax = axes[1]
    ax.loglog([r["conditions"] for r in scaling_c],
              [r["s_per_sim_s_per_condition"] for r in scaling_c], "o-")  # fmt: skip
    ax.set_xlabel("conditions (vmapped)")
    ax.set_ylabel("wall s per simulated s per condition")
    ax.set_title("cost vs batch size (302 neurons)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer neurons/conditions")
    parser.add_argument("--smoke", action="store_true", help="every part at tiny sizes (seconds)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "simulator.json")
    parser.add_argument("--dt", type=float, default=0.02)
    args = parser.parse_args()
    q = args.quick or args.smoke
    n_stim = 4 if args.smoke else 32 if q else 302
    window = 5.0 if args.smoke else 30.0
    results = {"dt_s": args.dt, "n_stimulated": n_stim, "window_s": window, "smoke": args.smoke}
    base = {"n_stim": n_stim, "window_s": window, "dt": args.dt, "repeat": 1 if q else 2}

    print(
        f"(a) in-silico atlas: {n_stim} stimulations x {5 + window:g} s, dt {args.dt} s, Heun",
        flush=True,
    )
    graded = measure({**base, "kind": "atlas_graded"})
    linear = measure({**base, "kind": "atlas_linear"})
    ratio = graded["wall_s"] / linear["wall_s"]
    results["atlas"] = {"graded": graded, "linear": linear, "ratio_graded_over_linear": ratio}
    print(
        f"  graded+peptides+GCaMP6s  {graded['wall_s']:7.2f} s (first call "
        f"{graded['first_s']:.1f} s)  peak RSS {graded['peak_rss_mb']:.0f} MB   goal < 10 s"
    )
    print(
        f"  linear network (exact)   {linear['wall_s']:7.2f} s (first call "
        f"{linear['first_s']:.1f} s)  peak RSS {linear['peak_rss_mb']:.0f} MB"
    )
    print(f"  ratio graded / linear    {graded['wall_s'] / linear['wall_s']:7.2f}")

    print("(b) gradient of the atlas loss w.r.t. all parameters", flush=True)
    grad = measure({**base, "kind": "gradient", "window_s": window})
    results["gradient"] = grad
    print(
        f"  value+grad {grad['wall_s']:7.2f} s (first call {grad['first_s']:.1f} s), "
        f"{grad['n_params']} parameters, finite={grad['grad_finite']}, peak RSS "
        f"{grad['peak_rss_mb']:.0f} MB   goal < 4096 MB"
    )
    grad["ratio_gradient_over_forward"] = grad["wall_s"] / graded["wall_s"]
    print(f"  ratio gradient / forward {grad['ratio_gradient_over_forward']:7.2f}")

    print("(d) scaling", flush=True)
    if args.smoke:
        sizes, conds, sim_s = [50, 302], [1, 4], 1.0
    else:
        sizes = [100, 302, 1000, 3000] + ([] if q else [10000])
        conds = [1, 10, 100] + ([] if q else [302, 1000])
        sim_s = 4.0
    measured = {}  # one process per distinct configuration (N=302, 1 condition is in both)

    def scaling(n, c):
        cfg = {"kind": "scaling", "n": n, "conditions": c, "duration_s": sim_s, "repeat": 1}
        key = json.dumps(cfg, sort_keys=True)
        if key not in measured:
            measured[key] = measure(cfg)
        return measured[key]

    scaling_n = []
    for n in sizes:
        r = scaling(n, 1)
        scaling_n.append(r)
        print(
            f"  N={r['n']:6d}  {r['s_per_sim_s_per_condition'] * 1e3:9.3f} ms per simulated s"
            f"  peak RSS {r['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    scaling_c = []
    for c in conds:
        r = scaling(302, c)
        scaling_c.append(r)
        print(
            f"  conditions={r['conditions']:5d}  {r['s_per_sim_s_per_condition'] * 1e3:9.3f} "
            "ms per simulated s per condition",
            flush=True,
        )
    results["scaling_neurons"] = scaling_n
    results["scaling_conditions"] = scaling_c
    _plot(scaling_n, scaling_c, args.out.with_name("scaling.png"))
    _write_json(args.out, results)
    print(f"wrote {args.out} and {args.out.with_name('scaling.png')}")


if __name__ == "__main__":
    main()
