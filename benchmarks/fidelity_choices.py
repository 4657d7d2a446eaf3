"""Which structure of the linear steady-state network predicts a never-stimulated class best?

Inner-fold comparison of model-structure choices for the linear network ``R = (I - W)^-1``
(column j: response to stimulating j) on the wild-type functional atlas (Randi et al. 2023).

Protocol (the scoreboard's, unchanged): outer 5-fold split by stimulated neuron *class*
(``validate.folds_for(wt, classes, "class", 5, 0)``); inside each outer training part an inner
class split (``--inner`` folds, seed 0) of the training stimulated classes. Each choice is fitted
on the inner-training columns and scored (``validate.score``: Pearson on values clipped to their
0.5-99.5 percentiles, Spearman) on the inner held-out columns, averaged over inner and outer
folds. The outer held-out columns are never used: they are removed from every fit and score.

Choices (see docs/fidelity.md):
  dense_ridge        today's model: dense W, ridge 1 to the scaled signed Cook connectome
                     (fit_linear_batch with LinearCVSettings' steps, rate and Huber delta)
  mask_ridge         W on the union connectome support (Cook chem+gap, Witvliet 7/8, White,
                     Varshney), same ridge/prior/optimiser
  mask_free          same support, ridge 0 and a longer, faster optimisation (free magnitudes)
  shuffled_ridge     degree-preserving shuffle of that support (prior values carried with the
                     edges), the control
  feat_groups        W = sum_g gain_g * S_g + gain_gap * Gap: one gain per (presynaptic
                     transmitter, receptor-rule sign) group, one gap conductance (~9 numbers)
  feat_class_*       feat_groups × (1 + u[class of pre] + v[class of post]) for chemical,
                     gap × (h + h[class i] + h[class j]) (symmetric), class terms ridged to 0
  hybrid_*           best feature model as the ridge target of a residual on the support mask
                     (or dense), fit_linear_batch with ridge 1
  *_pep              + sum_k alpha_k P_k, neuropeptide/monoamine layers (Ripoll-Sanchez short
                     range; Bentley peptides grouped by family; Bentley monoamines per ligand)
  hybrid_dense_lib   the pipeline's structure: the library's feature-gain fit (exact, radius
                     guard) as the ridge target of the dense residual
  lowrank<K>[_pep][_fast|_long]  that feature fit as the fixed base + (peptide gains) + a
                     rank-K residual U V^T (ridge on U, V), exact steady state: a residual of
                     2nK numbers, not n^2 (ridge 1, Adam 3e-3, 300 steps; _fast: ridge 0.1,
                     Adam 1e-2; _long: as _fast for 3000 steps)
Baselines on the same inner folds: anatomy, anatomy steady state, connectome nearest neighbour.

Run: ``python benchmarks/fidelity_choices.py [--quick] [--out /tmp/fidelity_choices.json]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import digiworm.fit._linear_response as _lr
from digiworm import atlas as atlas_mod
from digiworm.fit import LinearCVSettings, feature_basis_from_atlas, fit_feature_gains
from digiworm.fit._linear_cv import PRIOR_RADIUS, class_folds_within, connectome_prior
from digiworm.fit._linear_response import fit_linear_batch, trial_table
from digiworm.fit._losses import huber
from digiworm.models import connectome_arrays
from digiworm.models._signs import classical_transmitters
from digiworm.validate import BASELINES, baseline_context, folds_for, score


def neumann_response(w, doublings: int = 8):
    r"""``(I - W)^-1`` as the product :math:`\prod_{k<K} (I + W^{2^k}) = \sum_{m<2^K} W^m`.

    Equal to the LU solve for any stable W (spectral radius < 1; truncation error rho^256), and
    on these 2 shared CPU cores about 25x faster than the batched LU (15 matmuls, no LAPACK).
    """
    n = w.shape[-1]
    eye = jnp.eye(n, dtype=w.dtype)
    acc, p = eye + w, w
    for _ in range(doublings - 1):
        p = p @ p
        acc = acc + acc @ p
    return acc


SUPPORT = ("cook2019", "witvliet2021_7", "witvliet2021_8", "white1986", "varshney2011")


# --------------------------------------------------------------------------- data / features
def load(inner_k: int, outer_used: list[int]):
    atl = atlas_mod.load()
    names = list(atl.names)
    classes = list(atl.neurons.loc[names, "neuron_class"])
    wt = atl.functional("wt", kernel_time_s=None)
    wt = wt[[v for v in ("dff", "dff_trials", "n_trials", "q", "q_eq") if v in wt]]
    dff = wt["dff"].to_numpy()
    trials = wt["dff_trials"].to_numpy()
    outer = folds_for(wt, classes, "class", 5, 0)
    measured = np.flatnonzero(np.isfinite(dff).any(axis=0))
    splits = []  # (outer f, inner k, train columns, held columns)
    for f in outer_used:
        train_cols = np.setdiff1d(measured, outer[f])
        for k, held in enumerate(class_folds_within(names, classes, train_cols, inner_k, 0)):
            splits.append((f, k, np.setdiff1d(train_cols, held), np.asarray(held)))
    return atl, names, classes, wt, dff, trials, splits


def union_support(atl, n):
    m = np.zeros((n, n), bool)
    for c in SUPPORT:
        for kind in ("chemical", "gap"):
            a = np.nan_to_num(atl.connectome(c, kind).to_numpy(), nan=0.0) > 0
            m |= a | (a.T if kind == "gap" else False)
    np.fill_diagonal(m, False)
    return m


def degree_preserving_shuffle(mask, values, rng, swaps_per_edge=10):
    """Maslov-Sneppen swaps of directed edges (post, pre): in- and out-degrees are kept and each
    edge's prior value travels with its presynaptic end."""
    post, pre = np.nonzero(mask)
    val = values[post, pre].copy()
    present = set(zip(post.tolist(), pre.tolist()))
    e = len(post)
    for _ in range(swaps_per_edge * e):
        a, b = rng.integers(e, size=2)
        if a == b:
            continue
        # edge a: pre[a] -> post[a]; edge b: pre[b] -> post[b]; swap their postsynaptic ends
        na, nb = (post[b], pre[a]), (post[a], pre[b])
        if na[0] == na[1] or nb[0] == nb[1] or na in present or nb in present:
            continue
        present.discard((post[a], pre[a]))
        present.discard((post[b], pre[b]))
        present.add(na)
        present.add(nb)
        post[a], post[b] = post[b], post[a]
    out_mask = np.zeros_like(mask)
    out_mask[post, pre] = True
    out_val = np.zeros_like(values)
    out_val[post, pre] = val
    return out_mask, out_val


def features(atl, names, classes):
    """Scaled signed chemical counts split by (presynaptic transmitter, sign) groups, gaps."""
    chem, gap, sign = connectome_arrays(atl, "cook2019")
    np.fill_diagonal(chem, 0.0)
    signed = chem * sign + gap
    k = 0.3 / np.max(np.abs(np.linalg.eigvals(signed)))  # connectome_prior's scale
    neurons = atl.neurons.loc[names]
    tx = [
        classical_transmitters(w, f)
        for w, f in zip(neurons["transmitter"], neurons["transmitter_fenyves"])
    ]
    tkey = np.array(["+".join(t) if len(t) == 1 else ("mixed" if t else "none") for t in tx])
    groups, labels = [], []
    for t in np.unique(tkey):
        for s in (1, -1):
            g = k * chem * sign * (sign == s) * (tkey == t)[None, :]
            if np.any(g):
                groups.append(g)
                labels.append(f"{t}{'+' if s > 0 else '-'}")
    cls_names = sorted(set(classes))
    cls_idx = np.array([cls_names.index(c) for c in classes])
    return np.stack(groups), labels, k * gap, cls_idx, len(cls_names), k


def peptide_layers(atl, scale_like):
    """Neuropeptide / monoamine coupling layers P_k [post, pre], each scaled to the Frobenius
    norm of the chemical prior (their gains start at 0)."""
    layers, labels = [], []
    fam = {}
    ds = atl.dataset("bentley_peptide")
    for lig in [str(x) for x in ds.ligand.values]:
        fam.setdefault(lig.split("-")[0], []).append(lig)
    for f, ligs in sorted(fam.items()):
        p = sum(
            np.nan_to_num(atl.extrasynaptic("bentley_peptide", ligand=lig).to_numpy())
            for lig in ligs
        )
        layers.append(p)
        labels.append(f"bentley_{f}")
    for lig in [str(x) for x in atl.dataset("bentley_monoamine").ligand.values]:
        layers.append(np.nan_to_num(atl.extrasynaptic("bentley_monoamine", ligand=lig).to_numpy()))
        labels.append(f"bentley_{lig}")
    layers.append(np.nan_to_num(atl.extrasynaptic("ripoll_sanchez_short").to_numpy()))
    labels.append("ripoll_sanchez_short")
    norm = np.linalg.norm(scale_like)
    out = []
    for p in layers:
        p = p.astype(float).copy()
        np.fill_diagonal(p, 0.0)
        out.append(p * norm / max(np.linalg.norm(p), 1e-12))
    return np.stack(out), labels


# --------------------------------------------------------------------------- feature model
def _feature_w(p, S, gap, P, cls, flags):
    """W from shared gains: chemical groups × per-class modulation, symmetric gap, peptides."""
    u = flags[0] * p["u"][cls]  # presynaptic class (columns)
    v = flags[0] * p["v"][cls]  # postsynaptic class (rows)
    chem = jnp.einsum("g,gij->ij", p["g"], S) * (1.0 + u[None, :] + v[:, None])
    hc = flags[1] * p["hc"][cls]
    gj = gap * (p["h"] + hc[:, None] + hc[None, :])
    pep = flags[2] * jnp.einsum("k,kij->ij", p["a"], P)
    return chem + gj + pep


def _feature_objective(p, rows, cols, values, ew, S, gap, P, cls, flags, ridge_cls, delta):
    w = _feature_w(p, S, gap, P, cls, flags)
    pred = neumann_response(w)[rows, cols]
    fit = jnp.sum(ew * huber(values - pred, delta)) / jnp.maximum(jnp.sum(ew), 1e-12)
    pen = jnp.mean(p["u"] ** 2) + jnp.mean(p["v"] ** 2) + jnp.mean(p["hc"] ** 2)
    return fit + ridge_cls * pen + 1e-3 * jnp.mean(p["a"] ** 2)


@functools.partial(jax.jit, static_argnames=("steps", "lr"))
def _feature_run(p0, rows, cols, values, ew, S, gap, P, cls, flags, ridge_cls, delta, steps, lr):
    opt = optax.adam(lr)
    grad = jax.vmap(
        jax.value_and_grad(_feature_objective),
        in_axes=(0, None, None, None, 0, None, None, None, None, None, None, None),
    )

    def step(carry, _):
        p, s = carry
        val, g = grad(p, rows, cols, values, ew, S, gap, P, cls, flags, ridge_cls, delta)
        upd, s = opt.update(g, s)
        return (optax.apply_updates(p, upd), s), val

    (p, _), hist = jax.lax.scan(step, (p0, opt.init(p0)), None, length=steps)
    w = jax.vmap(lambda q: _feature_w(q, S, gap, P, cls, flags))(p)
    return p, w, hist.T


def fit_features(
    table,
    masks,
    S,
    gap,
    P,
    cls,
    n_cls,
    *,
    per_class,
    peptides,
    ridge_cls,
    delta,
    steps=300,
    lr=1e-2,
):
    b = masks.shape[0]
    p0 = {
        "g": jnp.ones((b, S.shape[0])), "h": jnp.ones((b,)), "u": jnp.zeros((b, n_cls)),
        "v": jnp.zeros((b, n_cls)), "hc": jnp.zeros((b, n_cls)), "a": jnp.zeros((b, P.shape[0])),
    }  # fmt: skip
    ew = jnp.asarray(masks[:, table.rows, table.cols], jnp.float32)
    flags = jnp.array([float(per_class), float(per_class), float(peptides)])
    p, w, hist = _feature_run(
        p0, jnp.asarray(table.rows), jnp.asarray(table.cols),
        jnp.asarray(table.values, jnp.float32), ew, jnp.asarray(S, jnp.float32),
        jnp.asarray(gap, jnp.float32), jnp.asarray(P, jnp.float32), jnp.asarray(cls),
        flags, jnp.float32(ridge_cls), jnp.float32(delta), steps, lr,
    )  # fmt: skip
    n_par = S.shape[0] + 1 + (3 * n_cls if per_class else 0) + (P.shape[0] if peptides else 0)
    return np.asarray(w), n_par, jax.tree_util.tree_map(np.asarray, p)


# --------------------------------------------------------------------------- low-rank residual
def _lowrank_w(p, base, P, off):
    """W = base (a fitted feature model) + sum_k alpha_k P_k + U V^T, zero diagonal."""
    return jnp.where(off, base + jnp.einsum("k,kij->ij", p["a"], P) + p["u"] @ p["v"].T, 0.0)


def _lowrank_objective(p, base, rows, cols, values, ew, P, off, ridge, delta):
    w = _lowrank_w(p, base, P, off)
    n = w.shape[-1]
    pred = jnp.linalg.solve(jnp.eye(n) - w, jnp.eye(n))[rows, cols]  # exact steady state
    fit = jnp.sum(ew * huber(values - pred, delta)) / jnp.maximum(jnp.sum(ew), 1e-12)
    pen = jnp.mean(p["u"] ** 2) + jnp.mean(p["v"] ** 2)
    return fit + ridge * pen + 1e-3 * jnp.mean(p["a"] ** 2)


@functools.partial(jax.jit, static_argnames=("steps", "lr"))
def _lowrank_run(p0, base, rows, cols, values, ew, P, off, ridge, delta, steps, lr):
    opt = optax.adam(lr)
    grad = jax.vmap(
        jax.value_and_grad(_lowrank_objective),
        in_axes=(0, 0, None, None, None, 0, None, None, None, None),
    )

    def step(carry, _):
        p, st = carry
        val, g = grad(p, base, rows, cols, values, ew, P, off, ridge, delta)
        upd, st = opt.update(g, st)
        return (optax.apply_updates(p, upd), st), val

    (p, _), hist = jax.lax.scan(step, (p0, opt.init(p0)), None, length=steps)
    w = jax.vmap(lambda q, b: _lowrank_w(q, b, P, off))(p, base)
    return p, w, hist.T


def fit_lowrank(table, masks, base, P, rank, ridge, delta, steps=300, lr=3e-3, seed=0):
    """Fit peptide-layer gains and a rank-``rank`` residual on top of each fold's ``base``."""
    b, n = masks.shape[0], masks.shape[1]
    rng = np.random.default_rng(seed)
    p0 = {
        "a": jnp.zeros((b, P.shape[0])),
        "u": jnp.asarray(rng.normal(0, 0.01, (b, n, rank)), jnp.float32),
        "v": jnp.asarray(rng.normal(0, 0.01, (b, n, rank)), jnp.float32),
    }
    ew = jnp.asarray(masks[:, table.rows, table.cols], jnp.float32)
    off = jnp.asarray(~np.eye(n, dtype=bool))
    p, w, hist = _lowrank_run(
        p0, jnp.asarray(base, jnp.float32), jnp.asarray(table.rows), jnp.asarray(table.cols),
        jnp.asarray(table.values, jnp.float32), ew, jnp.asarray(P, jnp.float32), off,
        jnp.float32(ridge), jnp.float32(delta), steps, lr,
    )  # fmt: skip
    return np.asarray(w), jax.tree_util.tree_map(np.asarray, p)


# --------------------------------------------------------------------------- harness
def response_matrix(w):
    """Exact steady state for scoring (numpy LU)."""
    w = np.asarray(w, float)
    eye = np.eye(w.shape[-1])
    return np.linalg.solve(eye - w, np.broadcast_to(eye, w.shape))


def col_masks(n, splits):
    m = np.zeros((len(splits), n, n), bool)
    for i, (_, _, tr, _) in enumerate(splits):
        m[i][:, tr] = True
    return m


def evaluate(preds, wt, splits):
    rows = []
    for pred, (f, k, _, held) in zip(preds, splits):
        s = score(np.asarray(pred, float), wt, columns=held)
        rows.append(
            {
                "outer": f,
                "inner": k,
                **{m: s[m] for m in ("pearson_clipped", "spearman", "sign_accuracy", "n_pairs")},
            }
        )
    r = np.array([x["pearson_clipped"] for x in rows])
    sp = np.array([x["spearman"] for x in rows])
    return {
        "r_mean": float(r.mean()),
        "r_sd": float(r.std(ddof=1)),
        "spearman_mean": float(sp.mean()),
        "spearman_sd": float(sp.std(ddof=1)),
        "per_fold": rows,
    }


def radius(ws):
    return float(np.max([np.max(np.abs(np.linalg.eigvals(w))) for w in ws]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="inner folds of 2 of the 5 outer folds")
    ap.add_argument("--inner", type=int, default=4, help="inner class folds (default 4)")
    ap.add_argument("--only", default="", help="comma-separated choice names to run")
    ap.add_argument("--out", default="/tmp/fidelity_choices.json")
    ap.add_argument(
        "--exact",
        action="store_true",
        help="use the library's LU solve in the fits (about 25x slower here)",
    )
    args = ap.parse_args()
    if not args.exact:  # same objective, faster (I - W)^-1 inside the library's fitter
        _lr.response_matrix = neumann_response
    outer_used = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    t0 = time.time()
    atl, names, classes, wt, dff, trials, splits = load(args.inner, outer_used)
    n = len(names)
    table = trial_table(trials)
    masks = col_masks(n, splits)
    lin = LinearCVSettings()
    ctx = baseline_context(atl)
    prior = connectome_prior(ctx.signed)
    off = ~np.eye(n, dtype=bool)
    support = union_support(atl, n)
    shuf_mask, shuf_prior = degree_preserving_shuffle(support, prior, np.random.default_rng(0))
    S, glabels, gap, cls, n_cls, _ = features(atl, names, classes)
    P, plabels = peptide_layers(atl, prior)
    print(
        f"setup {time.time() - t0:.1f} s; {len(splits)} inner folds "
        f"(outer {outer_used}); support {support.sum()} edges; groups {glabels}",
        flush=True,
    )
    only = set(filter(None, args.only.split(",")))
    results: dict = {}
    ws: dict = {}

    def record(name, preds, n_par, wall, note="", w=None):
        res = evaluate(preds, wt, splits)
        res.update(n_params=n_par, wall_s=round(wall, 1), note=note)
        if w is not None:
            res["max_spectral_radius"] = radius(w)
        results[name] = res
        print(
            f"{name:28s} r {res['r_mean']:.3f} ± {res['r_sd']:.3f}  spearman "
            f"{res['spearman_mean']:.3f}  params {n_par}  {wall:.1f} s  {note}",
            flush=True,
        )

    def want(name):
        return not only or name in only

    # baselines (train = inner-training columns only)
    t = time.time()
    for bname in ("anatomy", "anatomy_steady_state", "nearest_neighbour", "responder_mean"):
        t = time.time()
        preds = []
        for _, _, tr, _ in splits:
            train = np.full_like(dff, np.nan)
            train[:, tr] = dff[:, tr]
            preds.append(BASELINES[bname](train, ctx))
        record(f"baseline_{bname}", preds, 0, time.time() - t)

    def linear(name, edges, target, ridge, steps, lr, note, prior_per_fold=None):
        if not want(name):
            return
        t = time.time()
        if prior_per_fold is None:
            fit = fit_linear_batch(
                table, edges, prior=target, train=masks, ridge=np.full(len(splits), ridge),
                delta=lin.huber_delta, steps=steps, learning_rate=lr,
            )  # fmt: skip
            w = fit.w
        else:  # one fit per fold (the ridge target differs per fold)
            w = np.stack([
                fit_linear_batch(
                    table, edges | (np.abs(prior_per_fold[i]) > 0), prior=prior_per_fold[i],
                    train=masks[i:i + 1],
                    ridge=np.array([ridge]), delta=lin.huber_delta, steps=steps,
                    learning_rate=lr,
                ).w[0]
                for i in range(len(splits))
            ])  # fmt: skip
        preds = response_matrix(w)
        ws[name] = w
        record(name, preds, int(edges.sum()), time.time() - t, note, w)

    linear(
        "dense_ridge",
        off,
        prior,
        1.0,
        lin.steps,
        lin.learning_rate,
        "today: dense, ridge 1 to signed Cook",
    )
    linear(
        "mask_ridge", support, prior, 1.0, lin.steps, lin.learning_rate, "union support, ridge 1"
    )
    linear(
        "shuffled_ridge",
        shuf_mask,
        shuf_prior,
        1.0,
        lin.steps,
        lin.learning_rate,
        "degree-preserving shuffled support, ridge 1",
    )
    linear("mask_free", support, prior, 0.0, 1000, 1e-3, "union support, ridge 0, 1000 steps")
    linear(
        "shuffled_free",
        shuf_mask,
        shuf_prior,
        0.0,
        1000,
        1e-3,
        "shuffled support, ridge 0, 1000 steps",
    )

    feats = {}

    def feature(name, per_class, peptides, ridge_cls, note):
        if not want(name):
            return
        t = time.time()
        w, n_par, p = fit_features(
            table,
            masks,
            S,
            gap,
            P,
            cls,
            n_cls,
            per_class=per_class,
            peptides=peptides,
            ridge_cls=ridge_cls,
            delta=lin.huber_delta,
        )
        preds = response_matrix(w)
        feats[name] = w
        record(name, preds, n_par, time.time() - t, note, w)
        gains = list(p["g"].mean(0)) + [float(p["h"].mean())]
        results[name]["gains_mean"] = {lab: float(v) for lab, v in zip(glabels + ["gap"], gains)}
        if peptides:
            results[name]["peptide_gains_mean"] = dict(zip(plabels, map(float, p["a"].mean(0))))

    feature("feat_groups", False, False, 0.0, f"{len(glabels)} group gains + 1 gap gain")
    feature("feat_class_r1e-3", True, False, 1e-3, "groups × per-class pre/post, class gap")
    feature("feat_class_r1e-2", True, False, 1e-2, "as above, class ridge 1e-2")
    feature("feat_groups_pep", False, True, 0.0, "feat_groups + peptide/monoamine gains")
    feature("feat_class_r1e-2_pep", True, True, 1e-2, "feat_class_r1e-2 + peptide gains")

    # hybrids: best feature model (by inner r among those run) as the target of a residual
    fnames = [k for k in feats if not k.endswith("_pep")]
    if fnames:
        best = max(fnames, key=lambda k: results[k]["r_mean"])
        base = feats[best]
        linear(
            "hybrid_mask",
            support,
            None,
            1.0,
            lin.steps,
            lin.learning_rate,
            f"{best} + ridge-1 residual on support",
            base,
        )
        linear(
            "hybrid_dense",
            off,
            None,
            1.0,
            lin.steps,
            lin.learning_rate,
            f"{best} + ridge-1 dense residual",
            base,
        )
        pnames = [k for k in feats if k.endswith("_pep")]
        if pnames:
            bestp = max(pnames, key=lambda k: results[k]["r_mean"])
            # the residual lives on the support and on the peptide layers' (fixed) pairs
            linear(
                "hybrid_mask_pep",
                support,
                None,
                1.0,
                lin.steps,
                lin.learning_rate,
                f"{bestp} + ridge-1 residual on support",
                feats[bestp],
            )

    # the pipeline's target (library fit_feature_gains: exact steady state, radius guard 0.95)
    new_choices = ("hybrid_dense_lib", "lowrank10_pep", "lowrank30_pep", "lowrank30",
                   "lowrank30_fast", "lowrank30_long", "lowrank60_long")  # fmt: skip
    if any(want(c) for c in new_choices):
        t = time.time()
        lib = fit_feature_gains(table, feature_basis_from_atlas(atl, PRIOR_RADIUS), masks,
                                delta=lin.huber_delta)  # fmt: skip
        lib_base = np.where(off, lib.w, 0.0)
        print(f"library feature targets: {time.time() - t:.1f} s, radius max "
              f"{lib.radius.max():.3f}, shrunk in {int((lib.shrink < 1).sum())} folds")  # fmt: skip
        linear("hybrid_dense_lib", off, None, 1.0, lin.steps, lin.learning_rate,
               "library feature target + ridge-1 dense residual (the pipeline, 1 member)",
               lib_base)  # fmt: skip
        variants = ((10, True, 1.0, 3e-3, "", 300), (30, True, 1.0, 3e-3, "", 300),
                    (30, False, 1.0, 3e-3, "", 300), (30, False, 0.1, 1e-2, "_fast", 300),
                    (30, False, 0.1, 1e-2, "_long", 3000),
                    (60, False, 0.1, 1e-2, "_long", 3000))  # fmt: skip
        for rank, use_pep, ridge, lr, tag, steps in variants:
            name = f"lowrank{rank}{'_pep' if use_pep else ''}{tag}"
            if not want(name):
                continue
            t = time.time()
            layers = P if use_pep else np.zeros((1, n, n))
            w, p = fit_lowrank(table, masks, lib_base, layers, rank, ridge, lin.huber_delta,
                               steps=steps, lr=lr)  # fmt: skip
            n_par = 2 * n * rank + (P.shape[0] if use_pep else 0) + len(glabels) + 1
            record(name, response_matrix(w), n_par, time.time() - t,
                   f"library target + {'peptide gains + ' if use_pep else ''}rank-{rank} "
                   f"U V^T (ridge {ridge:g}, Adam {lr:g}, {steps} steps)", w)  # fmt: skip
            if use_pep:
                results[name]["peptide_gains_mean"] = dict(zip(plabels, map(float, p["a"].mean(0))))

    out = {
        "protocol": {
            "outer": "folds_for(wt, classes, 'class', 5, 0)",
            "outer_used": outer_used,
            "inner": f"class_folds_within(names, classes, train_cols, {args.inner}, 0)",
            "n_inner_folds": len(splits),
            "score": "validate.score on inner held-out columns (pearson_clipped 0.5-99.5 %, "
            "spearman)",
            "linear_settings": {
                "steps": lin.steps,
                "learning_rate": lin.learning_rate,
                "huber_delta": lin.huber_delta,
                "unit": 1.0,
            },
            "support": list(SUPPORT),
            "support_edges": int(support.sum()),
            "groups": glabels,
            "peptide_layers": plabels,
        },
        "results": results,
        "total_wall_s": round(time.time() - t0, 1),
    }
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    print()
    print(
        "| choice | inner clipped r (mean ± s.d.) | inner Spearman | free params | wall s | note |"
    )
    print("|---|---|---|---|---|---|")
    for k, v in results.items():
        print(
            f"| {k} | {v['r_mean']:.3f} ± {v['r_sd']:.3f} | {v['spearman_mean']:.3f} ± "
            f"{v['spearman_sd']:.3f} | {v['n_params']} | {v['wall_s']} | {v['note']} |"
        )
    print(f"\nwrote {args.out}; total {out['total_wall_s']} s")


if __name__ == "__main__":
    main()
