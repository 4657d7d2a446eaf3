r"""Spontaneous activity or stimulation as the input for identifying the network's couplings.

Identifying the couplings of a linear network :math:`\dot x = A x + \xi` from its activity is
the regression of each neuron's output on the activity of all *p* neurons: the inputs are the
activity itself, with covariance :math:`\Sigma` — for spontaneous activity, the stationary
covariance solving :math:`A\Sigma + \Sigma A^T + Q = 0` for noise covariance *Q*. Random
single-neuron stimulation instead makes the inputs the stimuli: each trial drives one neuron
chosen uniformly, :math:`\Sigma = (c^2/p) I` for amplitude *c* — perfectly conditioned. By the
error formula :math:`e \approx \sigma\sqrt{\mathrm{tr}\,\Sigma^{-1}/n}`, at equal input power
(:math:`\mathrm{tr}\,\Sigma` the same) the samples needed for the same error stand in the ratio

.. math:: n_{\mathrm{spont}} / n_{\mathrm{stim}} = \mathrm{tr}(\Sigma^{-1})\,\mathrm{tr}(\Sigma)/p^2
   \;\ge 1,

with equality only for isotropic spontaneous activity. Whole-brain imaging finds the worm's
spontaneous activity dominated by a few brain-wide modes (Kato et al. 2015, Cell 163:656), so
:func:`spontaneous_vs_stimulation` takes the fitted network's activity under private noise and
adds low-rank shared fluctuations, tuned to put a chosen fraction of the variance in the top
modes, and reports the ratio for each fraction. Samples are taken as independent: the
autocorrelation of real recordings only lowers the effective *n* of spontaneous data further.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg

from .._errors import DigiwormError

__all__ = ["shared_drive_covariance", "spontaneous_vs_stimulation", "stationary_covariance"]


def stationary_covariance(a: np.ndarray, noise_cov: np.ndarray) -> np.ndarray:
    r"""Return :math:`\Sigma` solving :math:`A\Sigma + \Sigma A^T + Q = 0` (stable *A*)."""
    a = np.asarray(a, dtype=float)
    if np.max(np.linalg.eigvals(a).real) >= 0:
        raise DigiwormError("the network is unstable: no stationary spontaneous activity")
    cov = scipy.linalg.solve_continuous_lyapunov(a, -np.asarray(noise_cov, dtype=float))
    return 0.5 * (cov + cov.T)


def _top_fraction(cov: np.ndarray, modes: int) -> float:
    eig = np.linalg.eigvalsh(cov)
    return float(eig[-modes:].sum() / eig.sum())


def shared_drive_covariance(
    a: np.ndarray, fraction: float, modes: int = 3, seed: int = 0
) -> tuple[np.ndarray, float]:
    r"""Return the covariance of private-noise activity plus a low-rank shared component.

    :math:`\Sigma = \Sigma_{\mathrm{private}} + c\,VV^T`: the network's stationary covariance
    under independent unit noise per neuron, plus shared fluctuations along ``modes`` random
    orthonormal directions *V* (a factor-analysis covariance: shared latents plus private
    variance). *c* is found by bisection so that the top ``modes`` principal components hold
    ``fraction`` of the variance. Returns ``(cov, c)``.
    """
    n = a.shape[0]
    if not 0 < modes < n:
        raise DigiwormError(f"modes must lie in (0, {n}); got {modes}")
    v = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, modes)))[0]
    private = stationary_covariance(a, np.eye(n))
    private *= n / np.trace(private)
    shared = v @ v.T
    base = _top_fraction(private, modes)
    if not base <= fraction < 1:
        raise DigiwormError(
            f"fraction must lie in [{base:.3f}, 1): private noise alone already puts {base:.3f} "
            f"of the variance in the top {modes} modes; got {fraction}"
        )
    lo, hi = 0.0, 1.0
    while _top_fraction(private + hi * shared, modes) < fraction:
        hi *= 4.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _top_fraction(private + mid * shared, modes) < fraction else (lo, mid)
    c = 0.5 * (lo + hi)
    return private + c * shared, c


def spontaneous_vs_stimulation(
    a: np.ndarray,
    fractions=(None, 0.5, 0.7, 0.9),
    modes: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    r"""Tabulate the samples spontaneous inputs need, relative to random stimulation.

    Parameters
    ----------
    a : array (n, n)
        System matrix of the fitted network (``LinearModel.a_per_s``).
    fractions : sequence of float or None
        Fraction of the activity variance in the top ``modes`` modes; ``None`` is private
        noise alone.

    Returns
    -------
    pandas.DataFrame
        One row per setting: ``top_modes_fraction`` (achieved), ``condition_number`` of
        :math:`\Sigma`, ``trace_inv_per_p`` at mean variance 1 (= :math:`n_{spont}/n_{stim}`,
        the samples ratio for the same error; random single-neuron stimulation has 1).
    """
    a = np.asarray(a, dtype=float)
    n = a.shape[0]
    rows = []
    for f in fractions:
        if f is None:
            cov, c = stationary_covariance(a, np.eye(n)), 0.0
        else:
            cov, c = shared_drive_covariance(a, f, modes, seed)
        cov = cov * (n / np.trace(cov))  # equal input power: mean variance 1
        eig = np.linalg.eigvalsh(cov)
        rows.append({
            "setting": "private noise" if f is None else f"shared drive ({modes} modes)",
            "top_modes_fraction": _top_fraction(cov, modes),
            "shared_scale": c,
            "condition_number": float(eig[-1] / eig[0]),
            "trace_inv_per_p": float(np.sum(1.0 / eig) / n),
        })  # fmt: skip
    return pd.DataFrame(rows)
