"""Full c302 parameter-set C2 network: digiworm vs c302 + NEURON, side by side in one run.

Peer: c302 generates the 302-neuron C2 network (no muscles; PLML and PLMR driven with 5 pA from
50 to 950 ms, as c302's own ``c302_Full.py`` example), jNeuroML exports it to NEURON, nrnivmodl
compiles it and NEURON runs it at fixed step dt (``docs/research/c302_C2_probe.py`` does each
stage; this script times them). digiworm runs the same network (:func:`c302_network`) under the
same input: float64 at the peer's dt (and the cross-check: RMS of V per neuron against NEURON
at every 0.5 ms, the interval digiworm records at),
then float32 for one condition and batched over ``--batch`` conditions (each PLM pair drive plus
one extra neuron held at 5 pA), at the peer's dt and at 2× it (accuracy of that row measured in
float64 against NEURON too). Ratios: NEURON's run time per simulated second divided by digiworm's
per condition. Peak memory: NEURON's child process and this process (``ru_maxrss``).

    pip install ".[bench]" && python benchmarks/c302_peers.py [--duration-ms 1000] [--batch 64]

Needs ``c302``, ``neuron`` (``pip install ".[bench]"``), Java (jNeuroML) and a C compiler; without
them the peer rows are skipped (the output says which and why) and only digiworm's are printed.
``--smoke`` runs every part at tiny sizes (60 ms simulated, batch 4; the peer too where it is
installed): a check that it works, not a measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "docs" / "research" / "c302_C2_probe.py"
DRIVEN = ("PLML", "PLMR")
AMP_PA, ON_MS, OFF_MS = 5.0, 50.0, 950.0
SAVE_MS = 0.5


def _probe():
    spec = importlib.util.spec_from_file_location("c302_C2_probe", PROBE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def peer_missing() -> list[str]:
    """Return why the c302 + NEURON peer cannot run here (empty where it can)."""
    missing = [
        f'{m} is not installed (pip install ".[bench]")'
        for m in ("c302", "neuron")
        if importlib.util.find_spec(m) is None
    ]
    if shutil.which("java") is None:
        missing.append("java is not found (jNeuroML needs it)")
    return missing


def run_peer(duration_ms: float, dt_ms: float) -> dict | None:
    """Generate, export, compile and run the full C2 network in NEURON; return timings, traces."""
    probe = _probe()
    out = Path(tempfile.mkdtemp(prefix="c302_C2_full_"))
    ref = "c302_C2_full"
    timing = {}
    t0 = time.perf_counter()
    probe.generate("full", ref, str(out), int(duration_ms), dt_ms)
    timing["c302_generate_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    probe.export_neuron(ref, str(out), "2G")
    timing["jnml_neuron_export_s"] = time.perf_counter() - t0
    nrnivmodl = Path(sys.executable).parent / "nrnivmodl"
    timing["nrnivmodl_s"] = probe.sh(
        [str(nrnivmodl) if nrnivmodl.exists() else "nrnivmodl"], str(out), str(out / "mod.log")
    )
    cells = probe.lems_output_cells(str(out / f"LEMS_{ref}.xml"))
    runner = out / f"run_{ref}.py"
    runner.write_text(
        probe.RUNNER.format(ref=ref, duration=int(duration_ms), dt=dt_ms, cells=cells)
    )
    probe.sh([sys.executable, runner.name], str(out), str(out / "nrn.log"))
    timing.update(json.loads((out / f"{ref}_nrn_timing.json").read_text()))
    timing["peak_rss_MiB"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    data = np.load(out / f"{ref}_traces.npz")
    timing["run_per_sim_s"] = timing["nrn_run_s"] / (duration_ms / 1e3)
    timing["setup_s"] = sum(
        timing[k] for k in ("c302_generate_s", "jnml_neuron_export_s", "nrnivmodl_s", "nrn_setup_s")
    )
    shutil.rmtree(out, ignore_errors=True)
    return {
        "timing": timing,
        "cells": [str(c) for c in data["cells"]],
        "t_ms": data["t_ms"],
        "v_mV": data["V_mV"],
    }


def digiworm_rows(duration_ms, dt_ms, batch, peer):
    """Time digiworm (float64 cross-check, float32 single and batched) in child processes."""
    rows = []
    for spec in (
        {"dtype": "float64", "dt": dt_ms, "batch": 1, "check": True},
        {"dtype": "float64", "dt": 2 * dt_ms, "batch": 1, "check": True},
        {"dtype": "float32", "dt": dt_ms, "batch": 1},
        {"dtype": "float32", "dt": dt_ms, "batch": batch},
        {"dtype": "float32", "dt": 2 * dt_ms, "batch": batch},
    ):
        ref_file = None
        if spec.get("check") and peer is not None:
            ref_file = tempfile.NamedTemporaryFile(suffix=".npz", delete=False).name
            np.savez(ref_file, cells=np.array(peer["cells"]), v_mV=peer["v_mV"], t_ms=peer["t_ms"])
        env = dict(os.environ, JAX_ENABLE_X64="1" if spec["dtype"] == "float64" else "0")
        cmd = [
            sys.executable,
            __file__,
            "--child",
            json.dumps(spec | {"duration": duration_ms, "ref": ref_file}),
        ]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(f"digiworm child {spec} failed:\n{res.stderr[-3000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        if ref_file:
            os.unlink(ref_file)
    return rows


def child(spec: dict) -> None:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from digiworm.models import c302_network

    dtype = jnp.float64 if spec["dtype"] == "float64" else jnp.float32
    names = None
    if spec.get("ref"):
        ref = np.load(spec["ref"])
        names = [str(c) for c in ref["cells"]]
    net = c302_network(names, dtype=dtype)
    names = list(net.names)
    dt, duration, batch = spec["dt"], spec["duration"], spec["batch"]
    extras = [None] + [n for n in names if n not in DRIVEN][: batch - 1]
    amp = np.zeros((batch, len(names)))
    for b, extra in enumerate(extras):
        for name in DRIVEN + ((extra,) if extra else ()):
            amp[b, names.index(name)] = AMP_PA
    u = jnp.asarray(amp, dtype=dtype)  # the pulse is built on the fly, as simulate() does
    every = round(SAVE_MS / dt)  # record V every 0.5 ms, as an imaging-rate study would
    n_save = round(duration / SAVE_MS)

    @eqx.filter_jit
    def run(net, u):
        y0 = net.init_state()

        def one(a):
            def block(y, j):
                def inner(k, y):
                    t = (j * every + k + 0.5) * dt
                    return net.step(y, a * ((t >= ON_MS) & (t < OFF_MS)), dt)

                y = jax.lax.fori_loop(0, every, inner, y)
                return y, y.v_mV

            return jax.lax.scan(block, y0, jnp.arange(n_save))[1]

        return jax.vmap(one)(u)

    t0 = time.perf_counter()
    v = run(net, u).block_until_ready()
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        v = run(net, u).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    row = {
        "tool": "digiworm",
        **{k: spec[k] for k in ("dtype", "dt", "batch")},
        "first_call_s": first,
        "wall_s": best,
        "per_condition_per_sim_s": best / batch / (duration / 1e3),
        "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if spec.get("ref"):
        m = round(SAVE_MS / 0.05)  # NEURON recorded every 0.05 ms from t = 0
        v_ref = ref["v_mV"][m::m]
        mine = np.asarray(v[0])
        n = min(len(v_ref), len(mine))
        rms = np.sqrt(np.mean((mine[:n] - v_ref[:n]) ** 2, axis=0))
        row.update(
            rms_median_mV=float(np.median(rms)),
            rms_max_mV=float(rms.max()),
            max_abs_mV=float(np.max(np.abs(mine[:n] - v_ref[:n]))),
        )
    print(json.dumps(row))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-ms", type=float, help="simulated ms (1000; smoke 60)")
    ap.add_argument("--dt-ms", type=float, default=0.05)
    ap.add_argument("--batch", type=int, help="conditions of the batched rows (64; smoke 4)")
    ap.add_argument("--no-peer", action="store_true", help="digiworm rows only")
    ap.add_argument(
        "--smoke", action="store_true", help="every part at tiny sizes (60 ms, batch 4)"
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "c302_peers.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(json.loads(a.child))
        return
    a.duration_ms = a.duration_ms or (60.0 if a.smoke else 1000.0)  # the drive starts at 50 ms
    a.batch = a.batch or (4 if a.smoke else 64)
    skipped = ["--no-peer"] if a.no_peer else peer_missing()
    if skipped:
        print(
            "skipped rows: c302 + NEURON (peer timings, the x NEURON ratios, the RMS against "
            f"NEURON): {'; '.join(skipped)}",
            flush=True,
        )
    peer = None if skipped else run_peer(a.duration_ms, a.dt_ms)
    rows = digiworm_rows(a.duration_ms, a.dt_ms, a.batch, peer)
    print(f"\nfull c302 C2 network (302 neurons), {a.duration_ms:g} ms simulated")
    if peer:
        p = peer["timing"]
        print(
            f"c302 + NEURON: setup {p['setup_s']:.1f} s (generate {p['c302_generate_s']:.1f}, "
            f"export {p['jnml_neuron_export_s']:.1f}, compile {p['nrnivmodl_s']:.1f}, "
            f"NEURON setup {p['nrn_setup_s']:.1f}); run {p['run_per_sim_s']:.2f} s per simulated "
            f"second at dt {a.dt_ms} ms; peak RSS {p['peak_rss_MiB']:.0f} MiB"
        )
    header = (
        f"{'dtype':8} {'dt ms':>6} {'batch':>5} {'s/sim-s/cond':>13} {'x NEURON':>9} "
        f"{'RMS med/max mV':>15} {'compile s':>9} {'RSS MiB':>8}"
    )
    print(header)
    for r in rows:
        ratio = (
            peer["timing"]["run_per_sim_s"] / r["per_condition_per_sim_s"] if peer else float("nan")
        )
        r["ratio_neuron_over_digiworm"] = ratio  # written as null where the peer was skipped
        acc = f"{r['rms_median_mV']:.3f}/{r['rms_max_mV']:.3f}" if "rms_max_mV" in r else "-"
        print(
            f"{r['dtype']:8} {r['dt']:6.2f} {r['batch']:5d} {r['per_condition_per_sim_s']:13.3f} "
            f"{ratio:9.1f} {acc:>15} {r['first_call_s'] - r['wall_s']:9.1f} "
            f"{r['peak_rss_MiB']:8.0f}"
        )
    result = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "smoke": a.smoke,
        "duration_ms": a.duration_ms,
        "dt_ms": a.dt_ms,
        "batch": a.batch,
        "peer": None if peer is None else peer["timing"],
        "peer_skipped": skipped,
        "digiworm": rows,
    }
    from digiworm._io import atomic_write_json

    atomic_write_json(a.out, result)
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
