"""Which unit dynamics predict the response kernels of a never-stimulated class?

Inner-fold comparison of the kernel model's structures (issue 15's kernel goal) on the
wild-type response kernels of the signal propagation atlas (Randi et al. 2023).

Protocol: the scoreboard's outer 5-fold split by stimulated class (``folds_for(wt, classes,
"class", 5, 0)``) and, inside each outer training part, 4 inner class folds (seed 0). The
couplings are each outer fold's linear fit (``nested_linear_cv`` with the reproduce settings:
fitted without that outer fold's stimulations). They *do* include the inner held-out columns'
steady states, which favours every coupling-based variant over the responder-mean baseline
alike; choices among the variants are fair, the final word is the outer split of ``digiworm
reproduce``. Each variant's dynamics are fitted on the inner-training columns' kernels and
scored (``fit.kernel_scores``: median shape r, peak within 1 s, clipped Pearson) on the inner
held-out columns, averaged over the inner folds. ``--quick``: outer folds 0 and 1 (8 inner
folds); default all 5 (20).

Variants (all with the linear network's couplings W, stimulated neuron clamped to an impulse):
  first_order   per-neuron tau (the model before this study)
  readout       + each neuron's first-order readout filter, tau_o y' = x - y (the library's)
  readout_shared  one tau and one readout filter shared by every neuron (2 numbers)
  readout_adapt + adaptation per neuron: x gets -beta a/tau, tau_a a' = x - a
  readout_slow  W split into fast and slow parts (one fraction for wired, one for unwired
                pairs), the slow part through a presynaptic trace with one shared time constant
  readout_slow_per  as readout_slow with a time constant per presynaptic neuron
  readout_rm    + a fitted multiple of each responder's mean training kernel (a stimulus-locked
                common input per responder); _per: one multiple per responder
  readout_adapt_rm  readout_adapt + readout_rm
Fits: Adam at 0.1, 80 steps of 16 stimulated columns, 1 - r shape loss weighted by trial
counts (the library's KernelFitSettings); RK4 at 0.125 s.

Run: ``python benchmarks/kernel_choices.py [--quick] [--only a,b] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import digiworm
from digiworm.fit import kernel_scores
from digiworm.fit._kernel_fit import _shape_loss, responder_mean_kernels
from digiworm.fit._linear_cv import atlas_prior, class_folds_within, nested_linear_cv
from digiworm.fit._transforms import Interval
from digiworm.reproduce import ReproduceSettings
from digiworm.reproduce._final import wild_type
from digiworm.validate import baseline_context, folds_for

VARIANTS = {
    "first_order": {},
    "readout": {"readout": True},
    "readout_shared": {"readout": True, "shared": True},
    "readout_adapt": {"readout": True, "adapt": True},
    "readout_slow": {"readout": True, "slow": "shared"},
    "readout_slow_per": {"readout": True, "slow": "per"},
    "readout_rm": {"readout": True, "rm": "shared"},
    "readout_rm_per": {"readout": True, "rm": "per"},
    "readout_adapt_rm": {"readout": True, "adapt": True, "rm": "shared"},
}
TAU = Interval(0.25, 30.0)
SLOW = Interval(0.5, 60.0)
DT, SUB = 0.125, 4


def load(smoke: bool):
    atlas = digiworm.atlas.load()
    names = list(atlas.names)
    n = len(names)
    classes = list(atlas.neurons.loc[names, "neuron_class"])
    settings = ReproduceSettings()
    wt = wild_type(atlas)
    folds = folds_for(wt, classes, "class", settings.folds, settings.seed)
    prior, basis = atlas_prior(atlas, settings.linear)
    if smoke:  # the connectome prior stands in for the fitted couplings
        w_folds = [prior] * len(folds)
    else:
        cv = nested_linear_cv(
            wt["dff_trials"].to_numpy(), wt["dff"].to_numpy(), folds, names, classes,
            ~np.eye(n, dtype=bool), prior, settings.linear, basis=basis,
            progress=lambda m: print("linear CV:", m, flush=True),
        )  # fmt: skip
        w_folds = cv.w
    fun = atlas.functional("wt")
    wired = baseline_context(atlas).weights > 0
    return dict(
        names=names, classes=classes, folds=folds, w=w_folds, wired=wired,
        kernels=fun["kernel"].to_numpy(), times=fun["time"].to_numpy(),
        n_trials=fun["n_trials"].to_numpy(),
    )  # fmt: skip


def simulate(p, w, cols, v, wired, n_times):
    """Clamped impulse responses ``(n, batch, time)`` of one variant."""
    n = w.shape[0]
    tau = TAU.forward(p["tau"]) * jnp.ones(n)
    b = cols.shape[0]
    mask = jnp.ones((n, b)).at[cols, jnp.arange(b)].set(0.0)
    slow, adapt, readout = v.get("slow"), v.get("adapt"), v.get("readout")
    if slow:
        frac = jnp.where(wired, *jax.nn.sigmoid(p["phi"])[::-1])
        w_slow = frac * w
        w = w - w_slow
        t_slow = SLOW.forward(p["tslow"]) * jnp.ones(n)
    a = (w - jnp.eye(n)) / tau[:, None]
    if adapt:
        beta, t_ad = jax.nn.softplus(p["beta"]), TAU.forward(p["tad"])
    if readout:
        t_out = TAU.forward(p["tout"]) * jnp.ones(n)

    def f(s):
        x, y, z, q = s  # activity, readout, slow trace, adaptation
        dx = a @ x
        dz = dq = jnp.zeros_like(x)
        if slow:
            dx = dx + (w_slow / tau[:, None]) @ z
            dz = (x - z) / t_slow[:, None]
        if adapt:
            dx = dx - (beta / tau)[:, None] * q
            dq = mask * (x - q) / t_ad[:, None]
        dy = (x - y) / t_out[:, None] if readout else jnp.zeros_like(x)
        return mask * dx, dy, dz, dq

    def rk4(s, _):
        def ahead(k, h):
            return tuple(si + h * ki for si, ki in zip(s, k))

        k1 = f(s)
        k2 = f(ahead(k1, 0.5 * DT))
        k3 = f(ahead(k2, 0.5 * DT))
        k4 = f(ahead(k3, DT))
        return tuple(
            si + DT / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
            for si, d1, d2, d3, d4 in zip(s, k1, k2, k3, k4)
        ), None

    def save(s, _):
        s = jax.lax.scan(rk4, s, None, length=SUB)[0]
        return s, s[1] if readout else s[0]

    x0, zero = mask * a[:, cols], jnp.zeros((n, b))
    z0 = zero.at[cols, jnp.arange(b)].set(1.0 / t_slow[cols]) if slow else zero
    _, xs = jax.lax.scan(save, (x0, zero, z0, zero), None, length=n_times - 1)
    return jnp.moveaxis(jnp.concatenate([(zero if readout else x0)[None], xs], 0), 0, -1)


def predict(p, w, cols, v, wired, rm, n_times):
    out = simulate(p, w, cols, v, wired, n_times)
    if v.get("rm"):
        scale = jnp.exp(p["lrm"])
        out = out + (scale[:, None, None] if scale.ndim else scale) * rm[:, None, :]
    return out


def init(v, n):
    size = () if v.get("shared") else n
    p = {"tau": jnp.full(size, TAU.inverse(1.0))}
    if v.get("readout"):
        p["tout"] = jnp.full(size, TAU.inverse(0.5))
    if v.get("adapt"):
        p["beta"], p["tad"] = jnp.full(n, -2.0), jnp.full(n, TAU.inverse(5.0))
    if v.get("slow"):
        p["phi"] = jnp.zeros(2)
        p["tslow"] = jnp.full(n if v["slow"] == "per" else (), SLOW.inverse(5.0))
    if v.get("rm"):
        p["lrm"] = jnp.zeros(n if v["rm"] == "per" else ())
    return p


def fit_and_score(d, w, train, held, v, steps, batch):
    k, t = d["kernels"], d["times"]
    n, n_times = k.shape[0], t.size
    finite = np.nan_to_num(k)
    usable = np.isfinite(k).all(-1) & ~np.eye(n, dtype=bool) & (finite.std(-1) > 0)
    data = jnp.asarray(finite, jnp.float32)
    wts = jnp.asarray(np.where(usable, d["n_trials"], 0.0), jnp.float32)
    wired = jnp.asarray(d["wired"])
    rm = jnp.asarray(responder_mean_kernels(k, train), jnp.float32)
    wj = jnp.asarray(w, jnp.float32)
    cols = train[usable[:, train].any(0)]
    opt = optax.adam(0.1)

    def loss(p, bcols):
        pred = predict(p, wj, bcols, v, wired, rm, n_times)
        ridge = 1e-3 * jnp.mean(jnp.log(TAU.forward(p["tau"])) ** 2)
        return _shape_loss(pred, data[:, bcols], wts[:, bcols]) + ridge

    @jax.jit
    def step(p, state, bcols):
        g = jax.grad(loss)(p, bcols)
        upd, state = opt.update(g, state, p)
        return optax.apply_updates(p, upd), state

    p = init(v, n)
    state = opt.init(p)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        p, state = step(p, state, jnp.asarray(rng.choice(cols, min(batch, cols.size), False)))
    pred = np.full(k.shape, np.nan)
    for i in range(0, held.size, 32):
        c = held[i : i + 32]
        pred[:, c] = np.asarray(predict(p, wj, jnp.asarray(c), v, wired, rm, n_times))
    base = np.full(k.shape, np.nan)
    base[:, held] = np.asarray(rm)[:, None]
    mask = np.zeros((n, n), bool)
    mask[:, held] = True
    mask &= ~np.eye(n, dtype=bool)
    return kernel_scores(pred, k, mask, t), kernel_scores(base, k, mask, t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="outer folds 0 and 1 only")
    ap.add_argument("--smoke", action="store_true", help="tiny run: prior couplings, 2 steps")
    ap.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants")
    ap.add_argument("--out", default="/tmp/kernel_choices.json")
    args = ap.parse_args(argv)
    which = args.only.split(",")
    unknown = [v for v in which if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    d = load(args.smoke)
    outer = [0] if args.smoke else [0, 1] if args.quick else list(range(len(d["folds"])))
    steps, batch = (2, 4) if args.smoke else (80, 16)
    measured = np.flatnonzero(np.isfinite(d["kernels"]).all(-1).any(0))
    metrics = ("shape_r_median", "peak_within_1s", "pearson_clipped")
    results = {}
    for name in which:
        t0, rows, base = time.time(), [], []
        for f in outer:
            train = np.setdiff1d(measured, d["folds"][f])
            inner = class_folds_within(d["names"], d["classes"], train, 4, 0)
            for held in inner[:1] if args.smoke else inner:
                s, b = fit_and_score(
                    d, d["w"][f], np.setdiff1d(train, held), np.asarray(held),
                    VARIANTS[name], steps, batch,
                )  # fmt: skip
                rows.append(s)
                base.append(b)
        results[name] = {
            "mean": {m: float(np.mean([r[m] for r in rows])) for m in metrics},
            "sd": {m: float(np.std([r[m] for r in rows])) for m in metrics},
            "responder_mean": {m: float(np.mean([r[m] for r in base])) for m in metrics},
            "inner_folds": len(rows),
            "wall_s": time.time() - t0,
        }
        print(name, json.dumps(results[name]["mean"]), flush=True)
    out = Path(args.out)
    out.write_text(json.dumps({"quick": args.quick, "smoke": args.smoke, "results": results}))
    print("wrote", out)


if __name__ == "__main__":
    main()
