r"""Fisher information of model parameters for a set of experiments, and greedy optimal design.

For Gaussian measurement noise, an experiment *e* observing :math:`y_e = f_e(\theta) +
\varepsilon`, :math:`\varepsilon \sim N(0, \sigma^2 I)`, repeated :math:`m_e` times, carries
Fisher information :math:`F_e = m_e J_e^T J_e / \sigma^2` with :math:`J_e = \partial f_e /
\partial\theta` (JAX autodiff of the model's prediction). Information adds over independent
experiments; with a Gaussian prior of precision :math:`P_0` the posterior covariance is
approximately :math:`(P_0 + \sum_e F_e)^{-1}` (Laplace / Cramér–Rao).

:func:`greedy_design` picks experiments one at a time (repeats allowed), each maximising the
gain of an optimality criterion: A-optimal (largest drop of :math:`\mathrm{tr}\,C`, the summed
parameter variance) or D-optimal (largest rise of :math:`\log\det` of the information). Greedy
selection is near-optimal for D (the log-determinant is submodular) and a standard heuristic
for A.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import DigiwormError

__all__ = ["GreedyDesign", "experiment_fisher", "greedy_design", "response_column_jacobian"]


def experiment_fisher(
    predict: Callable, theta, sigma: float | np.ndarray, repeats: float = 1.0
) -> np.ndarray:
    r"""Return the Fisher information :math:`m J^T \mathrm{diag}(1/\sigma^2) J` of one experiment.

    Parameters
    ----------
    predict : callable
        ``theta -> prediction`` (a vector of observed quantities), differentiable by JAX.
    theta : array (p,)
        Parameters at which to evaluate.
    sigma : float or array (n_obs,)
        Noise s.d. of each observation (> 0).
    repeats : float
        Number of independent repetitions (trials).
    """
    sigma = np.asarray(sigma, dtype=float)
    if not np.all(sigma > 0):
        raise DigiwormError(f"noise s.d. must be > 0; got {sigma}")
    jac = np.asarray(jax.jacfwd(predict)(jnp.asarray(theta)), dtype=float)
    jac = jac.reshape(-1, jac.shape[-1])
    weights = repeats / np.broadcast_to(sigma, (jac.shape[0],)) ** 2
    return (jac * weights[:, None]).T @ jac


def response_column_jacobian(w: np.ndarray, mask: np.ndarray, j: int) -> Callable:
    """Prediction of stimulating neuron ``j`` in the linear response model, as a function.

    Returns ``theta -> column j of (I - W)^{-1}`` without its diagonal entry, where ``W`` is
    ``w`` with the entries on ``mask`` replaced by ``theta`` (in ``np.nonzero(mask)`` order).
    """
    rows, cols = np.nonzero(mask)
    n = w.shape[0]
    keep = np.arange(n) != j
    base = jnp.asarray(w)

    def predict(theta):
        full = base.at[rows, cols].set(theta)
        e = jnp.zeros(n, dtype=full.dtype).at[j].set(1.0)
        return jnp.linalg.solve(jnp.eye(n, dtype=full.dtype) - full, e)[keep]

    return predict


class GreedyDesign(NamedTuple):
    """Result of :func:`greedy_design`."""

    chosen: list[int]
    """Experiment indices in the order chosen."""
    criterion: list[float]
    """The criterion after each choice (A: trace of covariance; D: log det information)."""


def _criterion(info: np.ndarray, kind: str) -> float:
    if kind == "A":
        return float(np.trace(np.linalg.inv(info)))
    sign, logdet = np.linalg.slogdet(info)
    return float(logdet) if sign > 0 else -np.inf


def greedy_design(
    fishers: Sequence[np.ndarray],
    prior_precision: np.ndarray,
    k: int,
    criterion: str = "A",
    repeats: bool = True,
) -> GreedyDesign:
    """Choose ``k`` experiments greedily from candidates with information ``fishers``.

    Parameters
    ----------
    fishers : sequence of arrays (p, p)
        Information of one run of each candidate experiment.
    prior_precision : array (p, p)
        Information already in hand (prior precision plus experiments done); must be
        positive definite.
    k : int
        Number of experiments to choose.
    criterion : {"A", "D"}
        A: minimise the trace of the posterior covariance; D: maximise log det information.
    repeats : bool
        Whether a candidate may be chosen more than once.
    """
    if criterion not in ("A", "D"):
        raise DigiwormError(f"criterion must be 'A' or 'D'; got {criterion!r}")
    if k < 1:
        raise DigiwormError(f"k must be >= 1; got {k}")
    if not repeats and k > len(fishers):
        raise DigiwormError(f"k = {k} > {len(fishers)} candidates without repeats")
    info = np.array(prior_precision, dtype=float)
    if np.linalg.eigvalsh(0.5 * (info + info.T))[0] <= 0:
        raise DigiwormError("prior_precision must be positive definite")
    chosen, values = [], []
    for _ in range(k):
        best, best_value = None, None
        for e, f in enumerate(fishers):
            if not repeats and e in chosen:
                continue
            value = _criterion(info + f, criterion)
            better = best_value is None or (
                value < best_value if criterion == "A" else value > best_value
            )
            if better:
                best, best_value = e, value
        chosen.append(best)
        values.append(best_value)
        info = info + fishers[best]
    return GreedyDesign(chosen, values)
