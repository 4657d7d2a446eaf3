"""The whole worm: how fast brain + body run, one worm, batched, and differentiated.

The worm is :func:`digiworm.body.worm_from_atlas` around the shipped fitted graded brain
(302 neurons, 20 ms brain step; 48-segment body, 1 ms step), on agar.

* **One worm**, ``--duration`` s (60) after a warm-up call of the same length (compile time is
  reported apart): wall seconds per simulated second, and the same for its parts run alone
  (the body with its motor loop, :func:`~digiworm.body.simulate_reflex`; the brain alone,
  stepped 20 ms at a time in a compiled scan), to show where the time goes.
* **Batched**: ``--batch`` worms (64) of ``--batch-duration`` s (10), each with its own switch
  noise and its own tonic muscle drive (0 to 0.3), in one ``jax.vmap`` call, against the same
  worms run one after another (a Python loop over the compiled single-worm call). The ratio is
  loop time over batched time.
* **Gradient**: the derivative of the centroid's forward displacement over ``--grad-duration``
  s (3) with respect to the muscles' maximal curvature and the reflex gain, by ``jax.grad``
  through the whole loop, against a central finite difference (relative step 1e-4), and its
  cost relative to one forward run.

    python benchmarks/worm_speed.py [--duration 60] [--batch 64] [--out FILE]

``--smoke`` runs every part once at tiny sizes (2 s, a batch of 2, no repeats): a check that
it works, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn, repeat):
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    times = [first] if repeat == 0 else []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, first, min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batch-duration", type=float, default=10.0)
    ap.add_argument("--grad-duration", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "worm_speed.json"))
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.duration, a.batch, a.batch_duration, a.grad_duration, a.repeat = 2.0, 2, 2.0, 1.0, 0

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from digiworm import atlas as atlas_mod
    from digiworm.body import Body, Medium, simulate_reflex, simulate_worm, worm_from_atlas
    from digiworm.body._worm import _prepare, _run
    from digiworm.models import fitted
    from digiworm.simulate import model_precision, rest_state

    atl = atlas_mod.load()
    brain = fitted("graded")
    worm = worm_from_atlas(atl, brain)
    agar = Medium.agar()
    key = jax.random.PRNGKey(0)
    rows = {}

    # -- one worm, and its parts ------------------------------------------------------------
    def one():
        ds = simulate_worm(worm, agar, a.duration, key=key)
        return float(ds["xy_mm"].values[-1].mean(axis=0)[0])

    _, first, best = _timed(one, a.repeat)

    def body_only():
        run = simulate_reflex(Body(), agar, worm.muscles, worm.forward, a.duration)
        return float(run.body.q[-1, 0])

    _, body_first, body_best = _timed(body_only, a.repeat)
    with model_precision(brain):
        y0 = rest_state(brain, dt_s=worm.brain_dt_s)
        step = brain.stepper(worm.brain_dt_s, brain.methods[0])
        n = int(round(a.duration / worm.brain_dt_s))
        u = jnp.zeros((n, len(brain.names)), jnp.asarray(y0.v_mV).dtype)
        brain_scan = jax.jit(
            lambda y: jax.lax.scan(lambda c, ui: (step(0.0, c, ui), None), y, u)[0]
        )
        _, brain_first, brain_best = _timed(lambda: jax.block_until_ready(brain_scan(y0)), a.repeat)
    rows["one_worm"] = {
        "simulated_s": a.duration,
        "first_call_s": first,
        "wall_per_sim_s": best / a.duration,
        "body_and_motor_loop_wall_per_sim_s": body_best / a.duration,
        "brain_alone_wall_per_sim_s": brain_best / a.duration,
        "goal_wall_per_60_sim_s": 1.0,
        "wall_per_60_sim_s": 60 * best / a.duration,
    }
    print("one worm", json.dumps(rows["one_worm"], indent=1))

    # -- batched ----------------------------------------------------------------------------
    maps, start, ub, _, n_inner = _prepare(worm, a.batch_duration, key, (), 1.0, 1.0, 1e-3, 1.0)
    nb = ub.shape[0]

    def displacement(w, xi):
        q = _run(w, agar, maps, start, ub, xi, 1e-3, n_inner)[3]
        return q[-1, 0] - q[0, 0]

    def perturbed(tonic):
        return eqx.tree_at(lambda w: w.muscles.tonic, worm, tonic)

    tonics = jnp.linspace(0.0, 0.3, a.batch)
    noise = jax.random.normal(key, (a.batch, nb), ub.dtype)
    batched = jax.jit(jax.vmap(lambda t, xi: displacement(perturbed(t), xi)))
    single = jax.jit(lambda t, xi: displacement(perturbed(t), xi))
    out_b, bfirst, bbest = _timed(lambda: np.asarray(batched(tonics, noise)), a.repeat)
    loop_n = min(a.batch, 8)
    _, lfirst, lbest = _timed(
        lambda: [float(single(tonics[i], noise[i])) for i in range(loop_n)], a.repeat
    )
    loop_per_worm = lbest / loop_n
    rows["batched"] = {
        "worms": a.batch,
        "simulated_s_each": a.batch_duration,
        "batched_first_call_s": bfirst,
        "batched_wall_s": bbest,
        "batched_wall_per_worm_s": bbest / a.batch,
        "loop_wall_per_worm_s": loop_per_worm,
        "loop_measured_on": loop_n,
        "ratio_loop_over_batched": loop_per_worm * a.batch / bbest,
        "displacement_mm_range": [float(out_b.min()), float(out_b.max())],
    }
    print("batched", json.dumps(rows["batched"], indent=1))

    # -- gradient ---------------------------------------------------------------------------
    _, _, ug, xig, _ = _prepare(worm, a.grad_duration, key, (), 1.0, 1.0, 1e-3, 1.0)
    xig = jnp.zeros_like(xig)  # no switch noise: a deterministic function to differentiate

    def forward_of(params):
        kmax, gain = params
        w = eqx.tree_at(lambda w: (w.muscles.max_curvature_per_mm, w.forward.gain),
                        worm, (kmax, gain))  # fmt: skip
        q = _run(w, agar, maps, start, ug, xig, 1e-3, n_inner)[3]
        return q[-1, 0] - q[0, 0]

    p0 = jnp.asarray([float(worm.muscles.max_curvature_per_mm), float(worm.forward.gain)])
    value = jax.jit(forward_of)
    grad = jax.jit(jax.grad(forward_of))
    _, vfirst, vbest = _timed(lambda: float(value(p0)), a.repeat)
    g, gfirst, gbest = _timed(lambda: np.asarray(grad(p0)), a.repeat)
    fd = []
    for i in range(2):
        h = 1e-4 * float(p0[i])
        e = jnp.zeros(2).at[i].set(h)
        fd.append((float(value(p0 + e)) - float(value(p0 - e))) / (2 * h))
    rows["gradient"] = {
        "simulated_s": a.grad_duration,
        "parameters": ["max_curvature_per_mm", "reflex gain"],
        "autodiff": [float(x) for x in g],
        "finite_difference": fd,
        "relative_difference": [abs(float(x) - y) / max(abs(y), 1e-30) for x, y in zip(g, fd)],
        "forward_wall_s": vbest,
        "gradient_wall_s": gbest,
        "gradient_over_forward": gbest / vbest,
        "gradient_first_call_s": gfirst,
    }
    print("gradient", json.dumps(rows["gradient"], indent=1))
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "smoke": a.smoke,
        "results": rows,
    }
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
