"""Robust losses on per-trial responses (the trial data have heavy outliers)."""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["huber", "trial_loss"]


def huber(residual, delta: float):
    r"""Return the Huber loss: quadratic within ``delta``, linear beyond it.

    :math:`r^2/2` if :math:`|r| \le \delta`, else :math:`\delta(|r| - \delta/2)`.
    """
    a = jnp.abs(residual)
    return jnp.where(a <= delta, 0.5 * residual**2, delta * (a - 0.5 * delta))


def trial_loss(pred, trials, delta: float = 0.1, mask=None):
    """Mean Huber loss of every measured trial against the predicted mean response.

    Each trial counts once, so a pair measured n times weighs n times (trial-count weighting).

    Parameters
    ----------
    pred : array (responding, stimulated)
        Predicted ΔF/F.
    trials : array (responding, stimulated, trial)
        Measured per-trial ΔF/F, NaN-padded.
    delta : float
        Huber threshold (ΔF/F); residuals beyond it count linearly.
    mask : bool array (responding, stimulated), optional
        Pairs to include (e.g. the training stimulations, off the diagonal).
    """
    finite = jnp.isfinite(trials)
    if mask is not None:
        finite = finite & mask[..., None]
    resid = jnp.where(finite, jnp.nan_to_num(trials) - pred[..., None], 0.0)
    return jnp.sum(jnp.where(finite, huber(resid, delta), 0.0)) / jnp.maximum(jnp.sum(finite), 1)
