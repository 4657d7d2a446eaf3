"""Scores of predicted against measured responses (the scoreboard's metrics).

All take flat arrays over the same neuron pairs; NaNs are dropped pairwise. Pearson is computed
on values clipped to each variable's 0.5–99.5 percentiles (the per-trial data have heavy
outliers), beside the rank-based Spearman, which needs no clipping.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .._errors import InvalidParameterError

__all__ = [
    "CLIP_PERCENTILES",
    "auroc",
    "clip_percentiles",
    "pearson",
    "pearson_clipped",
    "scale_ratio",
    "sign_accuracy",
    "spearman",
]

#: Percentiles each variable is clipped to before a Pearson correlation.
CLIP_PERCENTILES = (0.5, 99.5)


def nanmean(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """Mean over finite values along ``axis``; NaN (silently) where there are none."""
    finite = np.isfinite(x)
    total = np.where(finite, x, 0.0).sum(axis=axis, keepdims=keepdims)
    count = finite.sum(axis=axis, keepdims=keepdims)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _pairs(*arrays):
    arrays = [np.asarray(a, dtype=float).ravel() for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise InvalidParameterError(
            f"arrays must have the same number of pairs; got {sorted(shapes)}"
        )
    keep = np.all([np.isfinite(a) for a in arrays], axis=0)
    return [a[keep] for a in arrays]


def clip_percentiles(x: np.ndarray, percentiles=CLIP_PERCENTILES) -> np.ndarray:
    """Clip ``x`` to its own ``percentiles`` (default 0.5–99.5)."""
    lo, hi = np.percentile(x, percentiles)
    return np.clip(x, lo, hi)


def pearson(pred, meas) -> float:
    """Pearson r over the pairs where both are finite (NaN if < 3 pairs or constant)."""
    p, m = _pairs(pred, meas)
    if p.size < 3 or np.ptp(p) == 0 or np.ptp(m) == 0:
        return float("nan")
    return float(stats.pearsonr(p, m)[0])


def pearson_clipped(pred, meas, percentiles=CLIP_PERCENTILES) -> float:
    """Pearson r after clipping each variable to its own percentiles (default 0.5–99.5)."""
    p, m = _pairs(pred, meas)
    if p.size < 3:
        return float("nan")
    return pearson(clip_percentiles(p, percentiles), clip_percentiles(m, percentiles))


def spearman(pred, meas) -> float:
    """Spearman rank correlation over the pairs where both are finite."""
    p, m = _pairs(pred, meas)
    if p.size < 3 or np.ptp(p) == 0 or np.ptp(m) == 0:
        return float("nan")
    return float(stats.spearmanr(p, m)[0])


def sign_accuracy(pred, meas, q, alpha: float = 0.05) -> float:
    """Fraction of significant pairs (q < ``alpha``) whose predicted sign matches the measured.

    A prediction of exactly 0 counts as wrong (it predicts no response).
    """
    p, m, qq = _pairs(pred, meas, q)
    sig = qq < alpha
    if not sig.any():
        return float("nan")
    return float(np.mean(np.sign(p[sig]) == np.sign(m[sig])))


def auroc(pred, q, q_eq, alpha: float = 0.05) -> float:
    """AUROC of |prediction| separating responding pairs (q < α) from confident non-responses.

    Negatives are pairs with ``q_eq < alpha`` (Randi et al.'s test for an absent response);
    pairs that are neither are left out. Ties count one half (Mann–Whitney U / (n₊ n₋)).
    """
    p, qq, qe = _pairs(pred, q, q_eq)
    pos, neg = np.abs(p[qq < alpha]), np.abs(p[(qe < alpha) & ~(qq < alpha)])
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    return float(u / (pos.size * neg.size))


def scale_ratio(pred, meas, q, alpha: float = 0.05) -> float:
    """Median of |predicted| / |measured| ΔF/F over the significant pairs (q < ``alpha``).

    Correlations ignore scale; this says whether a model's responses have the measured size
    (1: the same; 0.01: a hundred times too small). NaN without significant pairs.

    Examples
    --------
    >>> scale_ratio([0.2, -0.4, 9.0], [0.1, -0.2, 0.3], [0.01, 0.01, 0.5])
    2.0
    """
    p, m, qq = _pairs(pred, meas, q)
    sig = (qq < alpha) & (m != 0)
    if not sig.any():
        return float("nan")
    return float(np.median(np.abs(p[sig]) / np.abs(m[sig])))
