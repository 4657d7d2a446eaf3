r"""The noise ceiling: how well the measured atlas can be predicted by anything at all.

Split-half reliability: each pair's trials are split at random into two halves; the half means
are correlated across pairs (Pearson on clipped values, and Spearman), averaged over several
random splits. The Spearman–Brown formula :math:`r_{full} = 2r/(1+r)` extrapolates to the
reliability of the full-data mean, and :math:`\sqrt{r_{full}}` is the correlation a perfect
model of the true mean response can reach against the noisy measurement.
"""

from __future__ import annotations

import numpy as np

from ._metrics import pearson, pearson_clipped, spearman

__all__ = ["split_half", "split_half_reliability"]


def split_half(trials: np.ndarray, rng: np.random.Generator, mask: np.ndarray | None = None):
    """Return the two half means of every pair with >= 2 finite trials (NaN elsewhere).

    Parameters
    ----------
    trials : array (..., trial)
        Per-trial values, NaN-padded.
    rng : numpy.random.Generator
        Source of the random splits (pass a seeded one).
    mask : bool array (...), optional
        Pairs to use (default all).
    """
    trials = np.asarray(trials, dtype=float)
    flat = trials.reshape(-1, trials.shape[-1])
    use = np.sum(np.isfinite(flat), axis=1) >= 2
    if mask is not None:
        use &= np.asarray(mask, dtype=bool).ravel()
    h1 = np.full(flat.shape[0], np.nan)
    h2 = np.full(flat.shape[0], np.nan)
    for k in np.flatnonzero(use):
        x = flat[k][np.isfinite(flat[k])]
        perm = rng.permutation(x.size)
        half = x.size // 2
        h1[k] = x[perm[:half]].mean()
        h2[k] = x[perm[half:]].mean()
    return h1.reshape(trials.shape[:-1]), h2.reshape(trials.shape[:-1])


def split_half_reliability(
    trials: np.ndarray, mask: np.ndarray | None = None, n_splits: int = 10, seed: int = 0
) -> dict[str, float]:
    """Split-half reliability of trial means and the implied ceiling (see module docstring).

    Returns
    -------
    dict
        ``r_half_raw``, ``r_half_clipped``, ``spearman_half``, ``reliability`` (Spearman–Brown
        of the clipped r), ``ceiling`` (its square root), ``n_pairs``, ``n_splits``.
    """
    rng = np.random.default_rng(seed)
    raw, clipped, rank = [], [], []
    n_pairs = 0
    for _ in range(n_splits):
        h1, h2 = split_half(trials, rng, mask)
        raw.append(pearson(h1, h2))
        clipped.append(pearson_clipped(h1, h2))
        rank.append(spearman(h1, h2))
        n_pairs = int(np.isfinite(h1).sum())
    r = float(np.mean(clipped))
    reliability = 2 * r / (1 + r)
    return {
        "r_half_raw": float(np.mean(raw)),
        "r_half_clipped": r,
        "spearman_half": float(np.mean(rank)),
        "reliability": reliability,
        "ceiling": float(np.sqrt(max(reliability, 0.0))),
        "n_pairs": n_pairs,
        "n_splits": n_splits,
    }
