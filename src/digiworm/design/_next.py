r"""Which neuron to stimulate next: greedy optimal design on a fitted linear network.

The fitted :class:`~digiworm.models.LinearModel` predicts the steady response to stimulating
neuron *j* as column *j* of :math:`R = -A^{-1}\mathrm{diag}(b)`. Its uncertain quantity here is
each neuron's *output gain* :math:`g_j` — how strongly it drives the others — parameterised as
:math:`A_{ij} \to A_{ij} e^{\theta_j}` for :math:`i \ne j` (302 parameters, :math:`\theta = 0`
at the fit). Stimulating *j* for one trial observes every responder's column-*j* response with
the responder's trial noise :math:`\sigma_i`, giving Fisher information :math:`J_j^T
\mathrm{diag}(\sigma^{-2}) J_j` with :math:`J_j = \partial R_{:,j}/\partial\theta` from JAX
autodiff of that prediction. The information already in hand is the atlas's own design (trials
per stimulated neuron) plus a weak prior; :func:`greedy_design` then picks the next *k* trials.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._errors import DigiwormError
from ..fit._uncertainty import pair_trial_variance, row_medians

__all__ = ["atlas_design", "gain_fishers", "next_stimulations", "write_plan_report"]


def _predict(a, b):
    n = a.shape[0]
    off = ~jnp.eye(n, dtype=bool)

    def predict(theta):
        scaled = jnp.where(off, a * jnp.exp(theta)[None, :], a)
        return -jnp.linalg.solve(scaled, jnp.diag(b))

    return predict


def gain_fishers(model, sigma: np.ndarray, observed: np.ndarray | None = None) -> np.ndarray:
    """Per-trial Fisher information of the output gains for stimulating each neuron.

    Parameters
    ----------
    model : LinearModel
        The fitted network.
    sigma : array (n,)
        Trial noise s.d. of each responder (ΔF/F), > 0.
    observed : bool array (n,), optional
        Responders an experiment records (default all; the atlas imaged head neurons only).

    Returns
    -------
    array (n, n, n)
        ``F[j]``: information about the n log output gains from one trial stimulating ``j``
        (the stimulated neuron's own response is not counted).
    """
    a = jnp.asarray(model.a_per_s, dtype=jnp.float64 if jax.config.jax_enable_x64 else None)
    b = jnp.asarray(model.b_per_s, dtype=a.dtype)
    n = a.shape[0]
    sigma = np.asarray(sigma, dtype=float)
    if sigma.shape != (n,) or not np.all(sigma > 0):
        raise DigiwormError(f"sigma must be {n} positive values (one per responder)")
    jac = np.asarray(jax.jacfwd(_predict(a, b))(jnp.zeros(n, dtype=a.dtype)), dtype=float)
    observed = np.ones(n, dtype=bool) if observed is None else np.asarray(observed, dtype=bool)
    out = np.empty((n, n, n))
    weights = np.where(observed, 1.0 / sigma**2, 0.0)
    for j in range(n):
        w = weights.copy()
        w[j] = 0.0  # the stimulated neuron's own response is the input, not a readout
        out[j] = (jac[:, j, :] * w[:, None]).T @ jac[:, j, :]
    return out


def next_stimulations(
    model,
    sigma: np.ndarray,
    trials_done: np.ndarray,
    k: int = 10,
    criterion: str = "A",
    prior_sd: float = 1.0,
    observed: np.ndarray | None = None,
    sets: dict[str, np.ndarray] | None = None,
    target_pairs: np.ndarray | None = None,
    improving: int = 3,
) -> pd.DataFrame:
    r"""Rank the next ``k`` stimulation trials by greedy optimal design.

    Parameters
    ----------
    model : LinearModel
        Fitted network (e.g. ``model_linear.dwm`` of ``digiworm reproduce``).
    sigma : array (n,)
        Responder trial noise s.d.
    trials_done : array (n,)
        Single-neuron trials already run stimulating each neuron (the atlas's design).
    k : int
        Trials to choose (a candidate may be chosen more than once).
    criterion : {"A", "D", "V"}
        A: summed variance of the output gains; D: log det of their information; V: summed
        predictive variance of the responses on ``target_pairs`` (for a linear-Gaussian model
        the expected information gain about predictions :math:`z = G\theta` equals the D
        criterion whenever *G* has full column rank, so V is the criterion that weighs
        predictions differently from parameters).
    prior_sd : float
        Prior s.d. of each log output gain (weak; keeps unstimulated neurons finite).
    observed : bool array (n,), optional
        Responders recorded (see :func:`gain_fishers`).
    sets : dict of name -> int array, optional
        Extra candidates: neurons stimulated together in one trial (e.g. a class's members),
        beside every single neuron.
    target_pairs : bool array (n, n), optional
        Responses whose predictive variance V sums (default: every off-diagonal pair of
        observed responders).
    improving : int
        How many responders to name per trial in ``improves_most``.

    Returns
    -------
    pandas.DataFrame
        One row per chosen trial: ``rank``, ``neuron`` (or set name), ``size`` (neurons
        stimulated), ``trials_done`` (before this design, single neurons), ``criterion``
        after the choice, ``reduction`` — the fraction of the criterion's variance removed
        so far (A, V), or the log det information gained (D) — and ``improves_most``: the
        observed responders whose predictions gain most from the trial (the largest relative
        drops of :math:`\sum_j \mathrm{Var}\,R_{ij}`, the predictive variance of their
        responses to every stimulation, under the Gaussian posterior of the gains), separated
        by ``;``.
    """
    from ._study import CRITERIA, fisher_factors, gain_response, greedy_a_order, prediction_weight

    if criterion not in CRITERIA:  # checked before the Fisher matrices are built
        raise DigiwormError(f"criterion must be one of {', '.join(CRITERIA)}; got {criterion!r}")
    if k < 1:
        raise DigiwormError(f"k must be >= 1; got {k}")
    n = len(model.names)
    trials_done = np.asarray(trials_done, dtype=float)
    if trials_done.shape != (n,) or np.any(trials_done < 0):
        raise DigiwormError(f"trials_done must be {n} counts >= 0")
    if not prior_sd > 0:
        raise DigiwormError(f"prior_sd must be > 0; got {prior_sd}")
    sigma = np.asarray(sigma, dtype=float)
    if sigma.shape != (n,) or not np.all(sigma > 0):
        raise DigiwormError(f"sigma must be {n} positive values (one per responder)")
    observed = np.ones(n, dtype=bool) if observed is None else np.asarray(observed, dtype=bool)
    a = np.asarray(model.a_per_s, dtype=float)
    b = np.asarray(model.b_per_s, dtype=float)
    singles = fisher_factors(a, b, sigma, observed, energy=1.0)
    names = list(model.names)
    sizes = [1] * n
    factors = singles
    if sets:
        extra = fisher_factors(a, b, sigma, observed, energy=1.0, sets=list(sets.values()))
        r = max(singles.shape[2], extra.shape[2])
        pad = lambda f: np.pad(f, ((0, 0), (0, 0), (0, r - f.shape[2])))  # noqa: E731
        factors = np.concatenate([pad(singles), pad(extra)])
        names += list(sets)
        sizes += [len(v) for v in sets.values()]
    info = np.eye(n) / prior_sd**2 + np.einsum("j,jpr,jqr->pq", trials_done, singles, singles)
    weight = None
    if criterion == "V":
        pairs = observed[:, None] & ~np.eye(n, dtype=bool)
        pairs = pairs if target_pairs is None else np.asarray(target_pairs, bool)
        weight = prediction_weight(a, b, pairs)

    def value(m):
        if criterion == "D":
            return float(np.linalg.slogdet(m)[1])
        cov = np.linalg.inv(m)
        return float(np.trace(cov) if criterion == "A" else np.sum(weight * cov))

    start = value(info)
    order = greedy_a_order(factors, info, k, criterion=criterion, weight=weight)
    # each responder's summed predictive variance over every stimulation: for R_ij's gradient
    # -P_ik R_kj, sum_j Var R_ij = P_i (C o S) P_i^T with S = R R^T
    r, p, _ = gain_response(a, b, np.zeros(n))
    s = r @ r.T

    def per_responder(m):
        return np.einsum("ik,kl,il->i", p, np.linalg.inv(m) * s, p)

    before = per_responder(info)
    rows = []
    for rank, e in enumerate(order, start=1):
        info = info + factors[e] @ factors[e].T
        v = value(info)
        reduction = v - start if criterion == "D" else 1 - v / start
        done = int(trials_done[e]) if e < n else 0
        after = per_responder(info)
        # relative drops: responders with large predictions would otherwise top every trial
        drop = np.where(observed & (before > 0), (before - after) / np.maximum(before, 1e-300),
                        -np.inf)  # fmt: skip
        best = [list(model.names)[i] for i in np.argsort(-drop)[:improving] if drop[i] > 0]
        before = after
        rows.append({"rank": rank, "neuron": names[e], "size": sizes[e], "trials_done": done,
                     "criterion": v, "reduction": reduction,
                     "improves_most": ";".join(best)})  # fmt: skip
    return pd.DataFrame(rows)


def atlas_design(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Responder noise, trials done per stimulated neuron and recorded responders of a dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        Checked perturbation dataset with ``dff_trials`` (see :mod:`digiworm.validate`).

    Returns
    -------
    sigma : array (n,)
        Median within-pair trial s.d. of each responder (the median over responders where a
        responder has no pair with two or more trials).
    trials_done : array (n,)
        Median trial count over the recorded responders of each stimulated neuron (0 if never
        stimulated).
    observed : bool array (n,)
        Responders with any measurement.
    """
    if "dff_trials" not in ds:
        raise DigiwormError("the dataset has no per-trial values ('dff_trials'); noise unknown")
    var, count = pair_trial_variance(ds["dff_trials"].to_numpy())
    usable = count >= 2
    sd = np.sqrt(var)
    sigma = row_medians(sd, usable)
    sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, np.median(sd[usable]))
    trials_done = np.array([np.median(c[c > 0]) if (c > 0).any() else 0.0 for c in count.T])
    observed = (count > 0).any(axis=1)
    return sigma, trials_done, observed


def write_plan_report(plan, model, sigma, trials_done, observed, criterion, folder, what,
                      target_pairs=None, draws: int = 10, seed: int = 0):  # fmt: skip
    """Write ``folder/index.html`` and ``plan.png``: expected uncertainty against trials.

    The plan (a :func:`next_stimulations` table) beside the same number of trials spent on
    single neurons drawn at random (mean of ``draws``), by the same criterion (``target_pairs``
    as the plan's, for V). Returns the page's path. The curves are expectations under the
    fitted model's Fisher information (the plan is designed at the fit; refit after each block
    of real trials).
    """
    import html
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .._io import atomic_path, atomic_write_text
    from ..report._atlas_report import _img, _png
    from ._study import fisher_factors

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(model.names)
    a = np.asarray(model.a_per_s, dtype=float)
    b = np.asarray(model.b_per_s, dtype=float)
    u = fisher_factors(a, b, np.asarray(sigma, float), np.asarray(observed, bool), energy=1.0)
    info0 = np.eye(n) + np.einsum("j,jpr,jqr->pq", np.asarray(trials_done, float), u, u)

    def value(m):
        return (
            float(np.linalg.slogdet(m)[1])
            if criterion == "D"
            else float(np.trace(np.linalg.inv(m)))
        )

    start = value(info0)
    rng = np.random.default_rng(seed)
    random_curves = []
    for _ in range(draws):
        info, curve = info0.copy(), []
        for j in rng.integers(0, n, len(plan)):
            info = info + u[j] @ u[j].T
            v = value(info)
            curve.append(v - start if criterion == "D" else 1 - v / start)
        random_curves.append(curve)
    trials = np.arange(1, len(plan) + 1)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(trials, plan["reduction"], "o-", ms=3, label=f"plan ({criterion}-optimal)")
    mean = np.mean(random_curves, axis=0)
    ax.plot(trials, mean, "s--", ms=3, c="0.4", label=f"random single neurons (mean of {draws})")
    ax.set_xlabel("planned stimulation trials")
    ax.set_ylabel({"A": "fraction of the gains' summed variance removed",
                   "D": "log det information gained",
                   "V": "fraction of the predictive variance removed"}[criterion])  # fmt: skip
    ax.set_title(f"expected uncertainty vs trials, from {what}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    figure = _png(fig)
    with atomic_path(folder / "plan.png") as tmp:
        Path(tmp).write_bytes(figure)
    rows = "".join(
        f"<tr><td>{r.rank}</td><td>{html.escape(str(r.neuron))}</td><td>{r.trials_done}</td>"
        f"<td>{r.reduction:.4f}</td><td>{html.escape(r.improves_most.replace(';', ', '))}</td></tr>"
        for r in plan.itertuples()
    )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>digiworm design plan</title><style>body{{font-family:system-ui,sans-serif;max-width:
1000px;margin:2em auto}}td,th{{border:1px solid #ccc;padding:3px 8px}}table{{border-collapse:
collapse;font-size:13px}}</style></head><body><h1>Next {len(plan)} stimulations</h1>
<p>Fitted to {html.escape(what)}; {criterion}-optimal greedy order. Expected reductions under the
fit's Fisher information: refit after each block of real trials and plan again
(<code>digiworm design plan</code> on the new data).</p>
{
        _img(
            "plan",
            figure,
            "Expected uncertainty removed against trials: the plan against the same "
            "number of random single-neuron trials.",
        )
    }
<table><tr><th>rank</th><th>stimulate</th><th>trials done</th><th>reduction</th>
<th>predictions improving most</th></tr>{rows}</table></body></html>"""
    atomic_write_text(folder / "index.html", page)
    return folder / "index.html"
