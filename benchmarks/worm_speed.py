"""The whole worm: how fast brain + body run, one worm, batched, and differentiated.

The worm is :func:`digiworm.body.worm_from_atlas` around the shipped fitted graded brain
(302 neurons, 20 ms brain step; 48-segment body, 1 ms step), on agar.

* **One worm**, ``--duration`` s (60) after a warm-up call of the same length (compile time is
  reported apart): wall seconds per simulated second, and the same for its parts run alone
  (the body with its motor loop, :func:`~digiworm.body.simulate_reflex`; the brain alone,
  stepped 20 ms at a time in a compiled scan), to show where the time goes.
* **24 segments**: the same worm with a 24-segment body (one segment per muscle row), its
  wall time and how far its read-outs (forward speed, frequency, wavelength on agar) move from
  the 48-segment worm's.
* **Batched**: ``--batch`` worms (64) of ``--batch-duration`` s (10), each with its own switch
  noise and its own tonic muscle drive (0 to 0.037 in the drive's units: 0 to 0.3 after the
  drive gain), in one ``jax.vmap`` call, against the same worms run one after another (a Python
  loop over the compiled single-worm call). The ratio is loop time over batched time.
* **Peers and limits**: the brain's equations in NumPy (``graded_peers.NumpyGraded``) solved
  by scipy ``solve_ivp`` RK45 at two tolerances, against the worm's own brain stepping (Heun,
  20 ms, a compiled scan), both scored against a Radau reference (rtol 1e-10) on an AVAL pulse
  (40 units, 0.5 s at 1 s; activity at 0.5 s samples), over ``--peer-duration`` s (20). The
  floors: the brain's dense matrix–vector products alone (four 302 × 302 per right-hand side,
  two per Heun step) and the body's dense Cholesky solves alone (one 50 × 50 per 1 ms step),
  each a compiled chain of the same length: how close each part runs to what its dense
  algorithm costs on this machine. The body's numpy peer is ElegansBot
  (``benchmarks/body_peers.py``).
* **Gradient**: the derivative of the centroid's forward displacement over ``--grad-duration``
  s (3) with respect to the muscles' maximal curvature and the reflex gain, by ``jax.grad``
  through the whole loop, against a central finite difference (relative step 1e-4), and its
  cost relative to one forward run.

    python benchmarks/worm_speed.py [--duration 60] [--batch 64] [--parts one,segments,batch,
        grad,peers] [--out FILE]

``--parts batch --batch 1000`` measures the thousand-worm batch alone (about 7 minutes on 2
cores).

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
    ap.add_argument("--peer-duration", type=float, default=20.0)
    ap.add_argument("--parts", default="one,segments,batch,grad,peers")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.duration, a.batch, a.batch_duration, a.grad_duration, a.repeat = 2.0, 2, 2.0, 1.0, 0
        a.peer_duration = 2.0
    parts = set(a.parts.split(","))
    unknown = parts - {"one", "segments", "batch", "grad", "peers"}
    if unknown:
        ap.error(f"unknown parts {sorted(unknown)}; choose from one, segments, batch, grad, peers")

    import jax

    jax.config.update("jax_enable_x64", True)
    from digiworm import atlas as atlas_mod
    from digiworm.body import Medium, worm_from_atlas
    from digiworm.models import fitted

    atl = atlas_mod.load()
    brain = fitted("graded")
    worm = worm_from_atlas(atl, brain)
    agar = Medium.agar()
    key = jax.random.PRNGKey(0)
    rows = {}

    # -- one worm, and its parts ------------------------------------------------------------
    if "one" in parts:
        rows["one_worm"] = _one_worm(a, worm, brain, agar, key)
    if "segments" in parts:
        rows["segments_24"] = _segments(a, atl, brain, worm, agar, key)
    if "batch" in parts:
        rows["batched"] = _batched(a, worm, agar, key)
    if "grad" in parts:
        rows["gradient"] = _gradient(a, worm, agar, key)
    if "peers" in parts:
        rows["peers_and_limits"] = _peers(a, brain, worm)
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "smoke": a.smoke,
        "parts": sorted(parts),
        "results": rows,
    }
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"written {a.out}")


def _one_worm(a, worm, brain, agar, key):
    import jax
    import jax.numpy as jnp

    from digiworm.body import Body, simulate_reflex, simulate_worm
    from digiworm.simulate import model_precision, rest_state

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
    row = {
        "simulated_s": a.duration,
        "first_call_s": first,
        "wall_per_sim_s": best / a.duration,
        "body_and_motor_loop_wall_per_sim_s": body_best / a.duration,
        "brain_alone_wall_per_sim_s": brain_best / a.duration,
        "goal_wall_per_60_sim_s": 1.0,
        "wall_per_60_sim_s": 60 * best / a.duration,
    }
    print("one worm", json.dumps(row, indent=1))
    return row


def _segments(a, atl, brain, worm, agar, key):
    from digiworm.body import Body, behaviour, simulate_worm, worm_from_atlas

    coarse = worm_from_atlas(atl, brain, body=Body(n_segments=24))
    runs = {}
    for label, w in (("48", worm), ("24", coarse)):

        def go(w=w):
            return simulate_worm(w, agar, a.duration, key=key)

        ds, first, best = _timed(go, a.repeat)
        runs[label] = (behaviour(ds, discard_s=min(2.0, a.duration / 4)), first, best)
    keys = ("speed_mm_per_s", "frequency_hz", "wavelength_body_lengths", "reversals_per_min")
    fine, coarse_b = runs["48"][0], runs["24"][0]
    row = {
        "simulated_s": a.duration,
        "wall_per_60_sim_s_48": 60 * runs["48"][2] / a.duration,
        "wall_per_60_sim_s_24": 60 * runs["24"][2] / a.duration,
        "first_call_s_24": runs["24"][1],
        "readouts_48": {k: fine[k] for k in keys},
        "readouts_24": {k: coarse_b[k] for k in keys},
        "relative_change_24_vs_48": {
            k: (coarse_b[k] - fine[k]) / fine[k] if fine[k] else None for k in keys
        },
    }
    print("24 segments", json.dumps(row, indent=1))
    return row


def _batched(a, worm, agar, key):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from digiworm.body._worm import _prepare, _run

    maps, start, ub, _, n_inner = _prepare(worm, a.batch_duration, key, (), 1.0, 1.0, 1e-3, 1.0)
    nb = ub.shape[0]

    def displacement(w, xi):
        q = _run(w, agar, maps, start, ub, xi, 1e-3, n_inner)[3]
        return q[-1, 0] - q[0, 0]

    def perturbed(tonic):
        return eqx.tree_at(lambda w: w.muscles.tonic, worm, tonic)

    tonics = jnp.linspace(0.0, 0.3 / float(worm.muscles.drive_gain), a.batch)
    noise = jax.random.normal(key, (a.batch, nb), ub.dtype)
    batched = jax.jit(jax.vmap(lambda t, xi: displacement(perturbed(t), xi)))
    single = jax.jit(lambda t, xi: displacement(perturbed(t), xi))
    out_b, bfirst, bbest = _timed(lambda: np.asarray(batched(tonics, noise)), a.repeat)
    loop_n = min(a.batch, 8)
    _, lfirst, lbest = _timed(
        lambda: [float(single(tonics[i], noise[i])) for i in range(loop_n)], a.repeat
    )
    loop_per_worm = lbest / loop_n
    row = {
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
    print("batched", json.dumps(row, indent=1))
    return row


def _gradient(a, worm, agar, key):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from digiworm.body._worm import _prepare, _run

    maps, start, ug, xig, n_inner = _prepare(worm, a.grad_duration, key, (), 1.0, 1.0, 1e-3, 1.0)
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
    row = {
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
    print("gradient", json.dumps(row, indent=1))
    return row


def _peers(a, brain, worm):
    """The brain against scipy at matched accuracy, and both parts against their floors."""
    import sys

    import jax
    import jax.numpy as jnp
    import numpy as np

    from digiworm.simulate import Protocol, model_precision, rest_state

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from graded_peers import NumpyGraded, solve_piecewise

    duration = a.peer_duration
    net = NumpyGraded(brain)
    y_rest, _, _ = net.rest()
    u = np.zeros(net.n)
    u[list(brain.names).index("AVAL")] = 40.0
    ref, _ = solve_piecewise(net, y_rest, u, duration, "Radau", 1e-10, 1e-12, jac=True)
    ref_act = net.activity(ref)
    rows = []
    for rtol in (1e-4, 1e-6):

        def sp(rtol=rtol):
            return solve_piecewise(net, y_rest, u, duration, "RK45", rtol, rtol * 1e-2)

        (ys, _), _, best = _timed(sp, a.repeat)
        rows.append({"tool": f"scipy RK45 rtol {rtol:g}", "error": float(np.abs(
            net.activity(ys) - ref_act).max()), "wall_per_sim_s": best / duration})  # fmt: skip
    dt = worm.brain_dt_s
    with model_precision(brain):
        y0 = rest_state(brain, dt_s=dt)
        step = brain.stepper(dt, brain.methods[0])
        n = int(round(duration / dt))
        protocol = Protocol.single(brain.names, ["AVAL"], amplitude=40.0, onset_s=1.0,
                                   duration_s=0.5)  # fmt: skip
        t0 = jnp.arange(n) * dt
        drive = jax.vmap(lambda t: protocol.drive(protocol.amplitude[0], protocol.onset_s[0],
                                                  protocol.duration_s[0], t, dt))(t0)  # fmt: skip
        drive = drive.astype(jnp.asarray(y0.v_mV).dtype)
        every = int(round(0.5 / dt))

        @jax.jit
        def scan(y):
            def body(c, ui):
                c = step(0.0, c, ui)
                return c, c.v_mV

            return jax.lax.scan(body, y, drive)[1]

        v, _, best = _timed(lambda: np.asarray(jax.block_until_ready(scan(y0))), a.repeat)
    v = np.concatenate([np.asarray(y0.v_mV)[None], v[every - 1 :: every]])
    err = float(np.abs(net.phi(v.astype(float)) - ref_act).max())
    rows.append({"tool": "digiworm, the worm's brain step (Heun 20 ms, compiled scan)",
                 "error": err, "wall_per_sim_s": best / duration})  # fmt: skip
    # floors: the dense work alone, as a compiled chain of the same length per simulated second
    nv = len(brain.names)
    g = jnp.asarray(np.random.default_rng(0).normal(size=(4, nv, nv)) / nv, y0.v_mV.dtype)
    n_mv = int(round(1 / dt)) * 2  # right-hand sides per simulated second (Heun)

    @jax.jit
    def matvec_chain(x):
        def body(c, _):
            return jnp.tanh(jnp.einsum("kij,j->i", g, c)), None

        return jax.lax.scan(body, x, None, length=n_mv)[0]

    x0 = jnp.ones(nv, g.dtype)
    _, _, mv_best = _timed(lambda: jax.block_until_ready(matvec_chain(x0)), max(a.repeat, 1))
    nb = worm.body.n_segments + 2
    m = np.random.default_rng(1).normal(size=(nb, nb))
    spd = jnp.asarray(m @ m.T + nb * np.eye(nb), jnp.float64 if jax.config.jax_enable_x64
                      else jnp.float32)  # fmt: skip

    @jax.jit
    def solve_chain(b):
        def body(c, _):
            a_ = spd + jnp.diag(c * 1e-3)  # a new matrix each step, as the body's is
            return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a_), c), None

        return jax.lax.scan(body, b, None, length=1000)[0]

    b0 = jnp.ones(nb, spd.dtype)
    _, _, solve_best = _timed(lambda: jax.block_until_ready(solve_chain(b0)), max(a.repeat, 1))
    row = {
        "simulated_s": duration,
        "brain": rows,
        "brain_floor_dense_matvecs_per_sim_s": mv_best,
        "brain_macs_per_sim_s": 4 * nv * nv * n_mv,
        "body_floor_dense_cholesky_per_sim_s": solve_best,
    }
    print("peers and limits", json.dumps(row, indent=1))
    return row


if __name__ == "__main__":
    main()
