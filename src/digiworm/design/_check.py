"""Formula vs Monte-Carlo: where the expected-error approximation holds and where it breaks."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ._linear import decaying_covariance, expected_error, monte_carlo_error

__all__ = ["formula_vs_monte_carlo", "plot_formula_check"]


def formula_vs_monte_carlo(
    cases: Iterable[tuple[int, int, str, np.ndarray | float | None]],
    sigma: float = 0.1,
    *,
    reps: int = 20,
    outputs: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """Tabulate :func:`expected_error` (large-n and exact) against least-squares simulations.

    Parameters
    ----------
    cases : iterable of (p, n, label, cov)
        ``cov`` is a covariance matrix, a decay rate for :func:`decaying_covariance`, or None
        (identity); ``label`` names the input kind (e.g. "isotropic", "decay 0.9").

    Returns
    -------
    pandas.DataFrame
        One row per case: p, n, n/p, label, condition number, tr(Σ⁻¹)/p, the large-n formula,
        the exact Gaussian value, the Monte-Carlo error and its standard error, and the ratios
        formula / Monte-Carlo.
    """
    rows = []
    for k, (p, n, label, cov) in enumerate(cases):
        if isinstance(cov, float):
            cov = decaying_covariance(p, cov, seed=seed + k)
        est = expected_error(p, n, sigma, cov)
        mc, se = monte_carlo_error(p, n, sigma, cov, outputs=outputs, reps=reps, seed=seed + k)
        rows.append({
            "p": p, "n": n, "n_over_p": n / p, "inputs": label,
            "condition_number": est.condition_number, "trace_inv_per_p": est.trace_inv_per_p,
            "formula": est.approx, "exact_gaussian": est.exact_gaussian,
            "monte_carlo": mc, "monte_carlo_se": se,
            "formula_over_mc": est.approx / mc, "exact_over_mc": est.exact_gaussian / mc,
        })  # fmt: skip
    return pd.DataFrame(rows)


def formula_check_figure(table: pd.DataFrame):
    """Return the figure of formula / Monte-Carlo against n/p for each input kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for k, (label, group) in enumerate(table.groupby("inputs", sort=False)):
        g = group.sort_values("n_over_p")
        ax.plot(g["n_over_p"], g["formula_over_mc"], "o-", c=f"C{k}", label=f"{label}: large-n")
        ax.plot(g["n_over_p"], g["exact_over_mc"], "s--", c=f"C{k}", alpha=0.6,
                label=f"{label}: exact (Gaussian)")  # fmt: skip
    ax.axhline(1.0, c="0.5", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("samples per input, n / p")
    ax.set_ylabel("formula / Monte-Carlo error")
    ax.set_title("σ·√(p/n)·√(tr Σ⁻¹/p) against least-squares fits", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def plot_formula_check(table: pd.DataFrame, path: str | Path) -> Path:
    """Plot formula / Monte-Carlo against n/p for each input kind (PNG, written atomically)."""
    import matplotlib.pyplot as plt

    from .._io import atomic_path

    fig = formula_check_figure(table)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
