r"""How much data identifies a linear system: the analytical anchor of experiment design.

For :math:`y = A x + \varepsilon` with *p* inputs of covariance :math:`\Sigma`, *n* samples and
independent noise of s.d. :math:`\sigma` on each output, the least-squares estimate of a row
:math:`a` of *A* has error covariance :math:`\sigma^2 (X X^T)^{-1}`, so

.. math::

    \mathbb{E}\,\lVert \hat a - a \rVert^2 = \sigma^2\, \mathrm{tr}\,\mathbb{E}(X X^T)^{-1}
    \approx \sigma^2\, \frac{\mathrm{tr}\,\Sigma^{-1}}{n}
    = \Big(\sigma \sqrt{p/n}\, \sqrt{\mathrm{tr}\,\Sigma^{-1}/p}\Big)^2 ,

the large-*n* approximation :func:`expected_error` returns. For Gaussian inputs the expectation
is exact in closed form, :math:`\mathbb{E}(XX^T)^{-1} = \Sigma^{-1}/(n - p - 1)` (the mean of an
inverse Wishart matrix, *n* > *p* + 1), which shows where the approximation breaks: as *n*
approaches *p* the true error grows without bound while :math:`1/n` stays finite. Data needed
grow linearly with *p* and with :math:`\mathrm{tr}\,\Sigma^{-1}/p`, which explodes as the inputs
become correlated (ill-conditioned :math:`\Sigma`). :func:`monte_carlo_error` measures the same
quantity by fitting simulated data, to check both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import DigiwormError

__all__ = [
    "ErrorEstimate",
    "decaying_covariance",
    "expected_error",
    "monte_carlo_error",
    "samples_needed",
]


def _check_cov(cov: np.ndarray | None, p: int) -> np.ndarray:
    if cov is None:
        return np.eye(p)
    cov = np.asarray(cov, dtype=float)
    if cov.shape != (p, p):
        raise DigiwormError(f"the input covariance must be ({p}, {p}) for p = {p}; got {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise DigiwormError("the input covariance has NaN or infinite entries")
    if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-12 * np.max(np.abs(cov))):
        raise DigiwormError("the input covariance must be symmetric")
    eig = np.linalg.eigvalsh(cov)
    if eig[0] <= eig[-1] * 1e-12:
        raise DigiwormError(
            f"the input covariance is singular (smallest eigenvalue {eig[0]:.3g}, largest "
            f"{eig[-1]:.3g}): some input direction is never excited, so its coefficients are "
            "not identifiable from any number of samples"
        )
    return cov


def _check_scalars(p, n=None, sigma=None) -> None:
    if not isinstance(p, (int, np.integer)) or p <= 0:
        raise DigiwormError(f"p (number of inputs) must be a positive integer; got {p!r}")
    if n is not None and (not np.isfinite(n) or n < p):
        raise DigiwormError(
            f"n = {n} samples < p = {p} inputs: the least-squares problem is underdetermined "
            "and the error formula undefined; use n >= p (n > p + 1 for the exact value)"
        )
    if sigma is not None and (not np.isfinite(sigma) or sigma < 0):
        raise DigiwormError(f"sigma (noise s.d.) must be finite and >= 0; got {sigma}")


@dataclass(frozen=True)
class ErrorEstimate:
    """The expected estimation error of one output row's coefficients, with its parts."""

    approx: float
    r"""Large-*n* value :math:`\sigma\sqrt{\mathrm{tr}\,\Sigma^{-1}/n}`."""
    exact_gaussian: float
    r""":math:`\sigma\sqrt{\mathrm{tr}\,\Sigma^{-1}/(n-p-1)}`, Gaussian inputs (inf if n <= p+1)."""
    trace_inv_per_p: float
    r""":math:`\mathrm{tr}\,\Sigma^{-1}/p` (1 for isotropic unit-variance inputs)."""
    condition_number: float


def expected_error(p: int, n: float, sigma: float, cov: np.ndarray | None = None) -> ErrorEstimate:
    r"""Return the error :math:`\sqrt{\mathbb{E}\lVert\hat a - a\rVert^2}` of a least-squares row.

    Parameters
    ----------
    p : int
        Number of inputs (coefficients per output).
    n : float
        Number of samples (trials × time points used), >= p.
    sigma : float
        Noise s.d. of each output sample.
    cov : array (p, p), optional
        Input covariance :math:`\Sigma` (default identity).

    Examples
    --------
    >>> e = expected_error(p=300, n=5000, sigma=0.1)
    >>> round(e.approx, 4), round(e.exact_gaussian, 4)
    (0.0245, 0.0253)
    """
    _check_scalars(p, n, sigma)
    cov = _check_cov(cov, p)
    eig = np.linalg.eigvalsh(cov)
    trace_inv = float(np.sum(1.0 / eig))
    dof = n - p - 1
    exact = sigma * np.sqrt(trace_inv / dof) if dof > 0 else float("inf")
    return ErrorEstimate(
        approx=float(sigma * np.sqrt(trace_inv / n)),
        exact_gaussian=float(exact),
        trace_inv_per_p=trace_inv / p,
        condition_number=float(eig[-1] / eig[0]),
    )


def samples_needed(
    target: float, p: int, sigma: float, cov: np.ndarray | None = None, exact: bool = True
) -> float:
    r"""Return the samples *n* for which :func:`expected_error` equals ``target``.

    ``exact`` (Gaussian inputs): :math:`n = \sigma^2\mathrm{tr}\,\Sigma^{-1}/e^2 + p + 1`;
    otherwise the large-*n* :math:`n = \sigma^2\mathrm{tr}\,\Sigma^{-1}/e^2`.
    """
    _check_scalars(p, sigma=sigma)
    if not np.isfinite(target) or target <= 0:
        raise DigiwormError(f"the target error must be > 0; got {target}")
    cov = _check_cov(cov, p)
    n = sigma**2 * float(np.sum(1.0 / np.linalg.eigvalsh(cov))) / target**2
    n = n + p + 1 if exact else n
    return float(max(n, p))


def decaying_covariance(p: int, decay: float, seed: int = 0) -> np.ndarray:
    r"""Return a covariance with eigenvalues :math:`\propto` ``decay``:sup:`k`, random basis.

    Eigenvalues are scaled to mean 1 (so :math:`\mathrm{tr}\,\Sigma = p`, the same total input
    power as the identity); the condition number is ``decay``:sup:`-(p-1)`.
    """
    _check_scalars(p)
    if not 0 < decay <= 1:
        raise DigiwormError(f"decay must lie in (0, 1]; got {decay}")
    if (p - 1) * np.log10(decay) < -12:  # the check of every input covariance refuses it
        smallest = 10 ** (-12 / (p - 1))
        raise DigiwormError(
            f"decay {decay:g} over p = {p} inputs gives a condition number of "
            f"{decay ** -(p - 1):.2g} (over 1e12: numerically singular); use a decay >= "
            f"{np.ceil(smallest * 1000) / 1000:g}"
        )
    eig = decay ** np.arange(p, dtype=float)
    eig *= p / eig.sum()
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((p, p)))
    q *= np.sign(np.diag(r))  # a Haar-random rotation
    return (q * eig) @ q.T


def monte_carlo_error(
    p: int,
    n: int,
    sigma: float,
    cov: np.ndarray | None = None,
    *,
    outputs: int = 20,
    reps: int = 20,
    seed: int = 0,
) -> tuple[float, float]:
    r"""Measure :math:`\sqrt{\mathbb{E}\lVert\hat a - a\rVert^2}` by least squares on simulations.

    Inputs are drawn Gaussian with covariance ``cov``, ``outputs`` rows of *A* at random, noise
    Gaussian; each of ``reps`` data sets is fitted by least squares. Returns the root mean
    squared row error and its standard error (over repetitions).
    """
    _check_scalars(p, n, sigma)
    cov = _check_cov(cov, p)
    if n <= p:
        raise DigiwormError(f"Monte-Carlo least squares needs n > p; got n = {n}, p = {p}")
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(cov)
    per_rep = np.empty(reps)
    for k in range(reps):
        x = chol @ rng.standard_normal((p, n))
        a = rng.standard_normal((outputs, p))
        y = a @ x + sigma * rng.standard_normal((outputs, n))
        a_hat = np.linalg.lstsq(x.T, y.T, rcond=None)[0].T
        per_rep[k] = np.mean(np.sum((a_hat - a) ** 2, axis=1))
    mean_sq = per_rep.mean()
    se_sq = per_rep.std(ddof=1) / np.sqrt(reps) if reps > 1 else 0.0
    return float(np.sqrt(mean_sq)), float(se_sq / (2 * np.sqrt(mean_sq)))
