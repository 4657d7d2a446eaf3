"""Experiment design: how much any allocation of single-neuron trials can beat uniform ones.

The synthetic study (``digiworm design study``) scores designs by the trials random
stimulation needs over the trials a design needs for the same error of the unknowns (the 302
output gains). This script computes, for the study's linearised problem (the Fisher
information of each single-neuron trial on the atlas's responders and noise, prior N(0, 0.5²)),
the posterior variance tr C after N trials for

- **uniform** allocation (N/302 trials per neuron, fractional: what random stimulation tends to
  once every neuron is covered; below N ≈ 302 no set of whole trials can reach it, since
  spreading a little information over every gain lowers tr C most),
- **random** stimulation (each trial a neuron drawn uniformly; mean tr C over 20 draws of the
  trial counts),
- the **greedy** A-optimal order (:func:`digiworm.design.greedy_a_order`, the study's design),
- the **A-optimal continuous allocation** (weights on the simplex minimising
  tr (prior + N Σ_j w_j F_j)⁻¹, by the multiplicative algorithm of Silvey, Titterington and
  Torsney 1978, with its equivalence-theorem gap: max_j tr(C F_j C) / Σ_j w_j tr(C F_j C) − 1,
  zero at the optimum),

and the ratios that matter: the uniform trials needed to match each allocation's tr C, over N,
and the random trials needed to match the optimum's (the study's own comparison; mean tr C of
random trials on a grid of budgets, interpolated in log trials).
It does so at the fitted model and at settled ground truths of the study. A ratio near 1 says
no design can save trials once random covers every neuron; the study's ≥ 2× goal at 3,000
trials is then out of reach for these unknowns.

    python benchmarks/design_ceiling.py [--model FILE] [--trials 300,600,3000] [--truths 1]
        [--out benchmarks/results/design_ceiling.json]

``--smoke`` runs tiny budgets with few iterations: a check that it works, not a measurement.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def _uniform_trials_for(target: float, eig: np.ndarray, precision: float, n: int) -> float:
    """Uniform trials N' with tr (prior + N' Σ F / n)⁻¹ = target (bisection in log N')."""
    lo, hi = 1e-3, 1e9
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        if np.sum(1.0 / (precision + mid * eig / n)) > target:
            lo = mid
        else:
            hi = mid
    return float(hi)


def _random_trace(fisher, prior, trials: int, rng, draws: int) -> float:
    n = fisher.shape[0]
    counts = rng.multinomial(trials, np.full(n, 1.0 / n), size=draws)
    info = np.einsum("dj,jpq->dpq", counts, fisher) + prior
    return float(np.mean(np.trace(np.linalg.inv(info), axis1=1, axis2=2)))


def _random_trials_for(target, fisher, prior, trials: int, draws: int) -> float:
    """Random trials whose mean tr C equals ``target`` (grid of budgets up to 8 N)."""
    rng = np.random.default_rng(1)
    grid = np.unique(np.round(np.geomspace(0.5 * trials, 8 * trials, 12)).astype(int))
    traces = np.array([_random_trace(fisher, prior, int(t), rng, draws) for t in grid])
    below = np.flatnonzero(traces <= target)
    if below.size == 0 or below[0] == 0:
        return float("nan")  # outside the grid
    k = below[0]
    frac = (traces[k - 1] - target) / (traces[k - 1] - traces[k])
    return float(np.exp(np.log(grid[k - 1]) + frac * np.log(grid[k] / grid[k - 1])))


def _optimal_allocation(fisher: np.ndarray, prior: np.ndarray, trials: int, iterations: int):
    """A-optimal weights (multiplicative algorithm); returns weights, tr C, gap, monotone."""
    n = fisher.shape[0]
    w = np.full(n, 1.0 / n)
    traces, monotone = [], True
    for _ in range(iterations):
        cov = np.linalg.inv(prior + trials * np.einsum("j,jpq->pq", w, fisher))
        traces.append(float(np.trace(cov)))
        if len(traces) > 1 and traces[-1] > traces[-2] * (1 + 1e-12):
            monotone = False
        d = np.einsum("jpq,pq->j", fisher, cov @ cov)  # tr(C F_j C): minus the gradient / N
        w = w * d / (w @ d)
    cov = np.linalg.inv(prior + trials * np.einsum("j,jpq->pq", w, fisher))
    d = np.einsum("jpq,pq->j", fisher, cov @ cov)
    return w, float(np.trace(cov)), float(d.max() / (w @ d) - 1.0), monotone


def ceiling(a, b, sigma, observed, theta, trials, iterations, energy, prior_sd=0.5,
            draws=10) -> list[dict]:  # fmt: skip
    """Rows of tr C and trial ratios for uniform, greedy and A-optimal allocations."""
    from digiworm.design._study import fisher_factors, greedy_a_order

    n = a.shape[0]
    factors = fisher_factors(a, b, sigma, observed, energy, theta=theta)
    fisher = np.einsum("jpr,jqr->jpq", factors, factors)
    precision = 1.0 / prior_sd**2
    prior = np.eye(n) * precision
    eig = np.linalg.eigvalsh(fisher.sum(0))
    order = greedy_a_order(factors, prior, max(trials))
    rows = []
    for t in trials:
        uniform = float(np.sum(1.0 / (precision + t * eig / n)))
        counts = np.bincount(order[:t], minlength=n)
        greedy = float(np.trace(np.linalg.inv(prior + np.einsum("j,jpq->pq", counts, fisher))))
        random = _random_trace(fisher, prior, t, np.random.default_rng(0), 2 * draws)
        w, optimal, gap, monotone = _optimal_allocation(fisher, prior, t, iterations)
        rows.append({
            "trials": int(t),
            "trace_uniform": uniform,
            "trace_random": random,
            "trace_greedy": greedy,
            "trace_optimal": optimal,
            "ratio_greedy": _uniform_trials_for(greedy, eig, precision, n) / t,
            "ratio_optimal": _uniform_trials_for(optimal, eig, precision, n) / t,
            "random_ratio_optimal": _random_trials_for(optimal, fisher, prior, t, draws) / t,
            "optimal_gap": gap,
            "optimal_monotone": monotone,
            "optimal_max_weight": float(w.max()),
            "optimal_support": int(np.sum(w > 1e-4 / n)),
        })  # fmt: skip
    return rows


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, (label, rows) in enumerate(result["points"].items()):
        t = [r["trials"] for r in rows]
        ax.plot(t, [r["ratio_optimal"] for r in rows], "o-", c=f"C{k}",
                label=f"A-optimal allocation, {label}")  # fmt: skip
        ax.plot(t, [r["ratio_greedy"] for r in rows], "s--", c=f"C{k}", alpha=0.7,
                label=f"greedy order, {label}")  # fmt: skip
        ax.plot(t, [r["random_ratio_optimal"] for r in rows], "^:", c=f"C{k}",
                label=f"A-optimal over random trials, {label}")  # fmt: skip
    ax.axhline(2.0, c="0.5", ls=":", label="the study's goal (2×)")
    ax.axhline(1.0, c="0.8", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("trials N")
    ax.set_ylabel("uniform (or random) trials for the same tr C / N")
    ax.set_title("How much a single-neuron design can save over uniform trials", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="fitted linear model (.dwm); default: fit now")
    parser.add_argument("--trials", default="300,600,3000")
    parser.add_argument("--truths", type=int, default=1, help="settled ground truths (seeds)")
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--energy", type=float, default=0.999)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "design_ceiling.json")
    args = parser.parse_args(argv)
    from digiworm._io import atomic_path, atomic_write_json
    from digiworm.cli._design import _atlas, _design_data, _design_model
    from digiworm.design import StudySettings, atlas_design
    from digiworm.design._study import _settling_truth

    trials = [int(x) for x in args.trials.split(",")]
    iterations, energy, draws = args.iterations, args.energy, 10
    if args.smoke:
        trials, iterations, energy, draws = [40, 80], 5, 0.9, 2
    start = time.perf_counter()
    atl = _atlas()
    model = _design_model(args.model, atl)
    sigma, _, observed = atlas_design(_design_data(atl)[0])
    a, b = np.asarray(model.a_per_s, float), np.asarray(model.b_per_s, float)
    points = {"fitted model": np.zeros(a.shape[0])}
    for seed in range(args.truths):
        theta, _ = _settling_truth(a, StudySettings(), np.random.default_rng(seed))
        points[f"truth seed {seed}"] = theta
    result = {"smoke": args.smoke, "trials": trials, "iterations": iterations, "energy": energy,
              "model": str(args.model) if args.model else "fitted to the atlas now",
              "points": {}}  # fmt: skip
    for label, theta in points.items():
        rows = ceiling(a, b, sigma, observed, theta, trials, iterations, energy, draws=draws)
        result["points"][label] = rows
        for r in rows:
            print(
                f"{label:>14}  N={r['trials']:>5}  greedy {r['ratio_greedy']:.2f}x  "
                f"A-optimal {r['ratio_optimal']:.2f}x  (gap {r['optimal_gap']:.1e}) of uniform;"
                f" A-optimal {r['random_ratio_optimal']:.2f}x of random",
                flush=True,
            )
    result["wall_s"] = time.perf_counter() - start
    atomic_write_json(args.out, result)
    with atomic_path(args.out.with_suffix(".png")) as tmp:
        _plot(result, Path(tmp))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')} ({result['wall_s']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
