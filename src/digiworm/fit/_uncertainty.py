r"""Prediction intervals for perturbation responses: ensemble spread + noise, calibrated in-fold.

A held-out measurement :math:`y_{ij}` (the trial mean of responder *i* to stimulating *j*) is
modelled as the ensemble mean :math:`\hat y_{ij}` plus three independent errors:

* the spread of the bootstrap ensemble (uncertainty of the fitted parameters),
  :math:`v^{ens}_{ij}`;
* measurement noise of a mean of :math:`n_{ij}` trials, :math:`\sigma_i^2 / n_{ij}`, with the
  responder's trial variance :math:`\sigma_i^2` estimated from training pairs only;
* model misfit :math:`\sigma^2_{model}` (what no parameter setting explains), estimated by the
  method of moments from inner cross-validation residuals: mean squared residual minus the
  mean noise variance of those pairs.

The interval is :math:`\hat y \pm c\,s_{ij}` with :math:`s^2_{ij}` the sum of the three and
*c* the 90 % quantile of :math:`|y - \hat y| / s` over the inner cross-validation residuals
(split-conformal calibration; heavy-tailed residuals make *c* larger than the Gaussian 1.645).
Nothing here looks at held-out data.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._errors import InsufficientDataError

__all__ = [
    "Calibration",
    "calibrate",
    "coverage",
    "interval_scale",
    "noise_variance",
    "pair_trial_variance",
    "predictive_sd",
    "row_medians",
]


def pair_trial_variance(trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unbiased within-pair variance of NaN-padded trials ``(..., trial)`` and the trial counts.

    The variance is NaN where a pair has fewer than two trials.
    """
    finite = np.isfinite(trials)
    count = finite.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, trials, 0.0).sum(-1) / np.maximum(count, 1)
        var = np.where(finite, (trials - mean[..., None]) ** 2, 0.0).sum(-1) / (count - 1)
    return np.where(count >= 2, var, np.nan), count


def row_medians(values: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Median of each row's ``usable`` entries (NaN for a row with none)."""
    return np.array(
        [np.median(v[u]) if u.any() else np.nan for v, u in zip(values, usable, strict=True)]
    )


def noise_variance(trials: np.ndarray, train: np.ndarray) -> np.ndarray:
    r"""Variance of each pair's trial mean, :math:`\sigma_i^2 / n_{ij}`, from training pairs.

    Parameters
    ----------
    trials : array (responding, stimulated, trial)
        NaN-padded per-trial responses.
    train : bool array (responding, stimulated)
        Pairs whose trials may be used to estimate the responders' trial variance.

    Returns
    -------
    array (responding, stimulated)
        :math:`\sigma_i^2 / \max(n_{ij}, 1)`, with :math:`\sigma_i^2` the median within-pair
        variance of responder *i* over training pairs with at least two trials (the median over
        all responders where a responder has none).
    """
    var, count = pair_trial_variance(trials)
    usable = train & (count >= 2) & ~np.eye(*count.shape, dtype=bool)
    if not usable.any():
        raise InsufficientDataError(
            "no training pair has two or more trials; cannot estimate noise"
        )
    per_row = row_medians(var, usable)
    per_row = np.where(np.isfinite(per_row), per_row, np.median(var[usable]))
    return per_row[:, None] / np.maximum(count, 1)


def predictive_sd(ens_var, noise_var, model_var) -> np.ndarray:
    """Return the standard deviation of a held-out measurement about the ensemble mean."""
    return np.sqrt(np.asarray(ens_var) + np.asarray(noise_var) + float(model_var))


def interval_scale(residual: np.ndarray, sd: np.ndarray, level: float = 0.9) -> float:
    """Conformal multiplier: the ``level`` quantile of ``|residual| / sd`` (finite entries)."""
    z = np.abs(residual) / sd
    z = z[np.isfinite(z)]
    if z.size == 0:
        raise InsufficientDataError("no finite residuals to calibrate the intervals on")
    n = z.size  # finite-sample split-conformal quantile
    q = min(1.0, np.ceil((n + 1) * level) / n)
    return float(np.quantile(z, q, method="higher"))


class Calibration(NamedTuple):
    """Predictive s.d. and conformal scale of one training fold (see module docstring)."""

    sd: np.ndarray
    """Predictive s.d. of every pair (responding, stimulated)."""
    scale: float
    """Interval half-width in units of ``sd``."""
    model_var: float
    """Misfit variance (method of moments)."""
    z: np.ndarray
    """Inner residuals over their predictive s.d. (to re-calibrate at other levels)."""


def calibrate(
    measured: np.ndarray,
    inner_pred: np.ndarray,
    trials: np.ndarray,
    train_cols: np.ndarray,
    ens_var: np.ndarray | float = 0.0,
    level: float = 0.9,
) -> Calibration:
    """Calibrate intervals on inner-CV predictions of the training columns only.

    Parameters
    ----------
    measured : array (n, n)
        Trial means; only the training columns are read.
    inner_pred : array (n, n)
        Inner cross-validation predictions of the training columns.
    trials : array (n, n, trial)
        Per-trial responses (noise from the training columns only).
    train_cols : int array
        Training stimulated columns.
    ens_var : array (n, n) or float
        Parameter-ensemble variance of the prediction (0 without an ensemble).
    level : float
        Nominal coverage.
    """
    n = measured.shape[0]
    train = np.zeros((n, n), dtype=bool)
    train[:, train_cols] = True
    noise = noise_variance(trials, train)
    keep = train & ~np.eye(n, dtype=bool) & np.isfinite(measured) & np.isfinite(inner_pred)
    resid = (measured - inner_pred)[keep]
    model_var = max(0.0, float(np.mean(resid**2) - np.mean(noise[keep])))
    sd = predictive_sd(ens_var, noise, model_var)
    return Calibration(sd, interval_scale(resid, sd[keep], level), model_var, resid / sd[keep])


def coverage(measured: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Fraction of finite measured values inside ``[lower, upper]``."""
    keep = np.isfinite(measured) & np.isfinite(lower) & np.isfinite(upper)
    if not keep.any():
        return float("nan")
    inside = (measured[keep] >= lower[keep]) & (measured[keep] <= upper[keep])
    return float(inside.mean())
