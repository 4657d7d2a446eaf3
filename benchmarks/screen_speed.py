"""Screens: conditions per second of ``digiworm screen`` against a plain loop over simulate.

The screen is a grid of drugs × doses × knockouts on the fitted graded brain, AVAL stimulated,
30 s per neural run (``--rows`` limits it). Its local engine (:func:`digiworm.screen.run_screen`,
chunks of 64 conditions, each chunk's conditions one ``vmap`` over the perturbed models) is
timed twice: cold (a new process's first screen: compiling included) and warm (the same
screen again in a new folder), with the CPU's strategy (a loop of single-model runs through one
compiled simulator) and, warm, with one ``vmap`` over each chunk's perturbed models (the
accelerators' strategy). The peer is what a user would write without it: for each
condition, build the perturbed model and call ``simulate`` through ``run_request`` (measured
on ``--loop-rows`` conditions after one warm-up). The ratio is the loop's time per condition
over the warm screen's. The behavioural read-out (the worm of ``digiworm behave``, 10 s) is
timed on ``--behaviour-rows`` conditions the same way, with the CPU's strategy (one worm after
another) and with each chunk's worms in one ``vmap`` (:func:`digiworm.app.run_behaviours`).
The Ray engine runs the neural screen (four chunks) with 1 and with 2 workers on this
machine: the speedup and the scaling efficiency, Ray's start and each actor's compiling
included. Peak memory (RSS) and a projection of a million-condition screen on this machine
close the output.

    python benchmarks/screen_speed.py [--rows 100] [--out benchmarks/results/screen_speed.json]

``--smoke`` runs every part at tiny sizes (4 conditions, 10 s runs): a check that it works,
not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = (
    "drug=none,aldicarb,levamisole,muscimol,serotonin,nemadipine-a,tubocurarine;"
    "dose=0,1,10,100;knockout=none,unc-31,egl-3,eat-4"
)


def _per_condition(run, rows) -> float:
    """Return the wall seconds per condition of ``run`` over the rows of ``rows``."""
    t0 = time.perf_counter()
    for _, rec in rows.iterrows():
        run(rec)
    return (time.perf_counter() - t0) / len(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=0, help="Use the first N grid rows (0: all).")
    ap.add_argument("--loop-rows", type=int, default=16)
    ap.add_argument("--behaviour-rows", type=int, default=4)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--behaviour-duration", type=float, default=10.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "screen_speed.json"))
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.rows, a.loop_rows, a.behaviour_rows, a.duration = 4, 2, 2, 10.0

    from digiworm import atlas as atlas_mod
    from digiworm.app import build_model, run_behaviour, run_request
    from digiworm.screen import check_table, parse_grid, run_screen
    from digiworm.screen._run import _behaviour_request, _request

    atl = atlas_mod.load()
    grid = parse_grid(GRID)
    table = check_table(grid.iloc[: a.rows] if a.rows else grid, atl)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_screen(table, atl, Path(tmp) / "cold", duration_s=a.duration, report=False)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, summary = run_screen(table, atl, Path(tmp) / "warm", duration_s=a.duration, report=False)
        warm = time.perf_counter() - t0
        run_screen(
            table, atl, Path(tmp) / "vcold", duration_s=a.duration, batch="vmap", report=False
        )
        t0 = time.perf_counter()
        run_screen(
            table, atl, Path(tmp) / "vwarm", duration_s=a.duration, batch="vmap", report=False
        )
        vwarm = time.perf_counter() - t0

        def loop_one(rec):
            req = _request(rec, a.duration, atl)
            return run_request(req, atl, progress=False, model=build_model(req, atl))

        sample = table.iloc[: a.loop_rows]
        loop_one(sample.iloc[0])  # warm-up: compile
        loop = _per_condition(loop_one, sample)
        rows["neural"] = {
            "conditions": len(table),
            "simulated_s_each": a.duration,
            "screen_cold_wall_s": cold,
            "screen_warm_wall_s": warm,
            "screen_warm_per_condition_s": warm / len(table),
            "screen_conditions_per_s": len(table) / warm,
            "loop_per_condition_s": loop,
            "loop_measured_on": len(sample),
            "ratio_loop_over_screen": loop / (warm / len(table)),
            "screen_batch": summary["batch"],
            "screen_vmap_warm_per_condition_s": vwarm / len(table),
            "ratio_loop_over_screen_vmap": loop / (vwarm / len(table)),
            "top_hit": summary["hits"]["neural"]["hits"][0],
        }
        print("neural", json.dumps(rows["neural"], indent=1), flush=True)

        ray_rows = {}
        chunk = max(1, len(table) // 4)  # four chunks: two for each of two workers
        for workers in (1, 2):
            t0 = time.perf_counter()
            run_screen(table, atl, Path(tmp) / f"ray{workers}", duration_s=a.duration,
                       chunk_size=chunk, engine="ray", workers=workers, report=False)  # fmt: skip
            ray_rows[workers] = time.perf_counter() - t0
        rows["ray"] = {
            "conditions": len(table),
            "chunk_size": chunk,
            "wall_s_1_worker": ray_rows[1],
            "wall_s_2_workers": ray_rows[2],
            "speedup_2_over_1": ray_rows[1] / ray_rows[2],
            "scaling_efficiency": ray_rows[1] / ray_rows[2] / 2,
            "note": "walls include starting Ray and each actor's atlas load and compiling",
        }
        print("ray", json.dumps(rows["ray"], indent=1), flush=True)

        btable = check_table(table.iloc[: a.behaviour_rows], atl, ("behaviour",))
        run_screen(btable, atl, Path(tmp) / "bcold", readouts=("behaviour",),
                   behaviour_duration_s=a.behaviour_duration, report=False)  # fmt: skip
        t0 = time.perf_counter()
        run_screen(btable, atl, Path(tmp) / "bwarm", readouts=("behaviour",),
                   behaviour_duration_s=a.behaviour_duration, report=False)  # fmt: skip
        bscreen = (time.perf_counter() - t0) / len(btable)
        run_screen(btable, atl, Path(tmp) / "bvcold", readouts=("behaviour",),
                   behaviour_duration_s=a.behaviour_duration, report=False,
                   batch="vmap")  # fmt: skip
        t0 = time.perf_counter()
        run_screen(btable, atl, Path(tmp) / "bvwarm", readouts=("behaviour",),
                   behaviour_duration_s=a.behaviour_duration, report=False,
                   batch="vmap")  # fmt: skip
        bvmap = (time.perf_counter() - t0) / len(btable)

        def behave_one(rec):
            return run_behaviour(_behaviour_request(rec, a.behaviour_duration, atl), atl)

        bloop = _per_condition(behave_one, btable)  # compiled by the screens above
        rows["behaviour"] = {
            "conditions": len(btable),
            "simulated_s_each": a.behaviour_duration,
            "screen_warm_per_condition_s": bscreen,
            "loop_per_condition_s": bloop,
            "ratio_loop_over_screen": bloop / bscreen,
            "screen_vmap_warm_per_condition_s": bvmap,
            "ratio_loop_over_screen_vmap": bloop / bvmap,
            "note": "the CPU's strategy runs a chunk's behavioural conditions one after "
            "another; vmap runs each chunk's worms sharing model, medium and seed as one batch "
            "(the wild-type references add one run per model, medium and seed)",
        }
        print("behaviour", json.dumps(rows["behaviour"], indent=1), flush=True)
    per = rows["neural"]["screen_warm_per_condition_s"]
    rows["projection"] = {
        "million_neural_conditions_hours_this_machine": per * 1e6 / 3600,
        "million_behavioural_conditions_hours_this_machine": bscreen * 1e6 / 3600,
        "basis": "measured warm per-condition wall on this machine's cores, times 1e6; "
        "N machines divide it by N at best (not measured: no cluster or GPU here)",
    }
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "smoke": a.smoke,
        "grid": GRID,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "results": rows,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
