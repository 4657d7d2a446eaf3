"""The body: digiworm vs ElegansBot on the same body, drag and imposed wave.

Both move a 25-segment body (bending stiffness 7e-15 N·m², internal viscosity 1.25e-15 N·m²·s)
under an imposed joint-angle wave (κL = 7) in water (1.76 Hz, λ 1.5 L) and on agar (0.30 Hz,
λ 0.65 L) for 3 cycles, and read the forward speed over the last two. ElegansBot (Chung, Chang &
Kim 2024; numba, Newtonian with masses) runs at its default dt of 10 µs and at 50 µs;
digiworm (overdamped, linearly implicit) at 1 ms, in float64, one worm and then a batch of
``--batch`` worms (``jax.vmap`` over the wave frequency, ±10 %) against a Python loop of
ElegansBot runs of the same batch, estimated from the one-worm time.

Timing: each setting runs once to warm up (numba / XLA compile, ``first_call_s``), then
``--repeat`` times; the best is kept. ``wall_per_sim_s`` is wall seconds per simulated second.
Ratios are ElegansBot's time over digiworm's at the speed agreement shown (``speed_rel_diff``).

    python benchmarks/body_peers.py [--batch 64] [--repeat 3] [--out FILE]

``--smoke`` runs every part once at tiny sizes (2 cycles, a batch of 2, ElegansBot at 50 µs
only, no repeats): a check that it works, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")
ROOT = Path(__file__).resolve().parents[1]
N, KL, CYCLES = 25, 7.0, 3
CASES = {
    "water": dict(bT=5.2e3, bII=5.2e3 / 1.5, f=1.76, lam=1.5),
    "agar": dict(bT=1.28e8, bII=1.28e8 / 40, f=0.30, lam=0.65),
}


def _best(fn, repeat):
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    times = [first] if repeat == 0 else []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, first, min(times)


def elegansbot_speed(case, dt, cycles=CYCLES):
    from digiworm.body._peers import elegansbot_wave

    return elegansbot_wave(case["bT"], case["bII"], case["f"], case["lam"], n_segments=N,
                           amplitude_per_body_length=KL, cycles=cycles, dt_s=dt)[0]  # fmt: skip


def digiworm_runner(case, batch, cycles=CYCLES):
    import jax
    import jax.numpy as jnp

    from digiworm.body import Body, Medium, simulate_body

    body = Body(n_segments=N)
    medium = Medium(case["bT"] * 1e-6, case["bII"] * 1e-6)
    f, lam = case["f"], case["lam"]
    duration = cycles / f
    u = jnp.asarray(body.joint_positions())

    def forward(freq):
        def wave(t):  # the travelling_wave of digiworm.body, with a traced frequency
            return KL / body.length_mm * jnp.cos(2 * jnp.pi * (u / lam - freq * t))

        traj = simulate_body(body, medium, wave, duration, save_every=10)
        t = traj.t_s
        w = t >= 1 / f - 1e-9
        q, xy = traj.q, traj.xy_mm
        head = jnp.where(w[:, None], xy[:, 0] - xy[:, -1], 0.0).sum(axis=0)
        first = jnp.argmax(w)
        disp = q[-1, :2] - q[first, :2]
        return disp @ head / jnp.linalg.norm(head) / (t[-1] - t[first])

    one = jax.jit(lambda: forward(jnp.asarray(f)))
    freqs = jnp.asarray(f * np.linspace(0.9, 1.1, batch))
    many = jax.jit(lambda: jax.vmap(forward)(freqs))
    return one, many


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "body_peers.json"))
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    cycles, dts = CYCLES, (1e-5, 5e-5)
    if a.smoke:
        cycles, dts, a.batch, a.repeat = 2, (5e-5,), 2, 0
    import jax

    jax.config.update("jax_enable_x64", True)
    import elegansbot

    rows = {}
    for name, case in CASES.items():
        sim_s = cycles / case["f"]
        one, many = digiworm_runner(case, a.batch, cycles)
        ours, first, best = _best(lambda one=one: float(one()), a.repeat)
        batch_out, bfirst, bbest = _best(lambda many=many: np.asarray(many()), a.repeat)
        row = {
            "simulated_s": sim_s,
            "digiworm_speed_mm_per_s": ours,
            "digiworm_first_call_s": first,
            "digiworm_wall_per_sim_s": best / sim_s,
            "digiworm_batch": a.batch,
            "digiworm_batch_first_call_s": bfirst,
            "digiworm_batch_wall_per_sim_s": bbest / sim_s,
            "digiworm_batch_speed_range": [float(batch_out.min()), float(batch_out.max())],
        }
        for dt in dts:
            speed, efirst, ebest = _best(
                lambda dt=dt, case=case: elegansbot_speed(case, dt, cycles),
                min(a.repeat, 1) if dt < 5e-5 else a.repeat,
            )
            key = f"elegansbot_dt{dt:g}"
            row[key] = {
                "speed_mm_per_s": speed,
                "speed_rel_diff": abs(ours - speed) / abs(speed),
                "first_call_s": efirst,
                "wall_per_sim_s": ebest / sim_s,
                "ratio_one_worm": ebest / best,
                "ratio_batch_loop": a.batch * ebest / bbest,
            }
        rows[name] = row
        print(name, json.dumps(row, indent=1))
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "elegansbot": elegansbot.__version__,
        "jax": jax.__version__,
        "smoke": a.smoke,
        "cases": rows,
    }
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
