r"""Identify a linear network from single-neuron stimulation: the steady-state response model.

A linear network :math:`\tau \dot x = -x + W x + e_j u` driven by a sustained input at neuron
*j* settles at :math:`x = (I - W)^{-1} e_j u`, so the matrix of responses to stimulating each
neuron in turn is :math:`R = (I - W)^{-1}` (column *j*: response to *j*). Given per-trial
measurements of *R*'s columns, :func:`fit_linear_response` estimates *W* on an allowed set of
edges by minimising a robust (Huber) loss over every measured trial plus a ridge pull towards a
prior (e.g. the scaled connectome), with Adam (optax) in a compiled ``lax.scan``.

The trials are held as a table of (responding, stimulated, value) rows, so the loss costs one
gather per step however sparse the measured pairs are, and a batch of fits (ensemble members
with bootstrap weights, ridge values, training masks of cross-validation folds) runs as one
vectorised call (:func:`fit_linear_batch`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._errors import DigiwormError
from ._losses import huber

__all__ = [
    "LinearResponseFit",
    "TrialTable",
    "fit_linear_batch",
    "fit_linear_response",
    "response_matrix",
    "trial_table",
]


def response_matrix(w):
    """Return :math:`(I - W)^{-1}`, the steady-state response to each neuron's stimulation."""
    n = w.shape[-1]
    eye = jnp.eye(n, dtype=w.dtype)
    return jnp.linalg.solve(eye - w, jnp.broadcast_to(eye, w.shape))


class TrialTable(NamedTuple):
    """Every finite off-diagonal trial as one row: ``values[k]`` measured at (rows, cols)[k]."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    @property
    def size(self) -> int:
        return int(self.values.shape[0])


def trial_table(trials: np.ndarray, diagonal: bool = False) -> TrialTable:
    """Flatten NaN-padded trials ``(responding, stimulated, trial)`` into a :class:`TrialTable`.

    The diagonal (a neuron's response to its own stimulation) is left out unless ``diagonal``:
    the linear response model fixes it (unit input), while models with a readout gain use it
    to identify that gain.
    """
    trials = np.asarray(trials, dtype=float)
    if trials.ndim != 3 or trials.shape[0] != trials.shape[1]:
        raise DigiwormError(
            f"trials must be (responding, stimulated, trial) with a square first two axes; "
            f"got shape {trials.shape}"
        )
    keep = np.isfinite(trials)
    if not diagonal:
        keep[np.arange(trials.shape[0]), np.arange(trials.shape[0]), :] = False
    rows, cols, _ = np.nonzero(keep)
    return TrialTable(rows.astype(np.int32), cols.astype(np.int32), trials[keep])


class LinearResponseFit(NamedTuple):
    """Result of :func:`fit_linear_response` (leading batch axis for :func:`fit_linear_batch`)."""

    w: np.ndarray
    """Fitted coupling ``W[post, pre]`` (zero off the allowed edges)."""
    loss: np.ndarray
    """Objective at every optimisation step."""


def fit_linear_response(
    trials: np.ndarray,
    edges: np.ndarray,
    *,
    train: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    ridge: float = 0.0,
    delta: float = 0.1,
    steps: int = 2000,
    learning_rate: float = 1e-2,
    weights: np.ndarray | None = None,
    unit: float = 1.0,
) -> LinearResponseFit:
    """Fit ``W`` so that ``unit * (I - W)^{-1}`` matches per-trial responses.

    Parameters
    ----------
    trials : array (responding, stimulated, trial) or TrialTable
        Per-trial ΔF/F (NaN-padded); the diagonal is left out of the loss. Each trial counts
        once, so a pair measured n times weighs n times (trial-count weighting).
    edges : bool array (n, n)
        Allowed couplings ``[post, pre]``.
    train : bool array (n, n), optional
        Pairs the loss may use (e.g. only training stimulations' columns).
    prior : array (n, n), optional
        Ridge target for ``W`` (default 0); also the starting point.
    ridge, delta : float
        Ridge strength (on the mean squared deviation from ``prior`` over allowed edges) and
        Huber threshold (ΔF/F).
    steps, learning_rate
        Adam iterations and step size.
    weights : array (n_table_rows,), optional
        Per-trial weights (e.g. bootstrap); default 1.
    unit : float
        Response (ΔF/F) of a stimulated neuron to a unit input in the uncoupled network: the
        data are divided by it before fitting (with ``delta``). It trades off against the
        learning rate and the ridge, so it is a hyperparameter to choose by cross-validation.
    """
    table = trials if isinstance(trials, TrialTable) else trial_table(trials)
    n = edges.shape[0]
    train = np.ones((n, n), dtype=bool) if train is None else np.asarray(train, dtype=bool)
    weights = np.ones(table.size) if weights is None else np.asarray(weights, dtype=float)
    fit = fit_linear_batch(
        table, edges, train=train[None], prior=prior, ridge=np.array([ridge]),
        weights=weights[None], delta=delta, steps=steps, learning_rate=learning_rate,
        unit=np.array([unit]),
    )  # fmt: skip
    return LinearResponseFit(fit.w[0], fit.loss[0])


def fit_linear_batch(
    table: TrialTable,
    edges: np.ndarray,
    *,
    train: np.ndarray,
    ridge: np.ndarray,
    weights: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    delta: float = 0.1,
    steps: int = 300,
    learning_rate: float = 3e-4,
    unit: np.ndarray | None = None,
) -> LinearResponseFit:
    """Run a batch of :func:`fit_linear_response` fits as one vectorised computation.

    Parameters
    ----------
    table : TrialTable
        The trials (see :func:`trial_table`).
    edges : bool array (n, n)
        Allowed couplings, shared by the batch.
    train : bool array (batch, n, n)
        Pairs each fit may use.
    ridge : array (batch,)
        Ridge strength of each fit.
    weights : array (batch, n_table_rows), optional
        Per-trial weights of each fit (bootstrap); default 1.
    prior : array (n, n) or (batch, n, n), optional
        Ridge target (and starting point), shared or one per fit.
    delta, steps, learning_rate
        As in :func:`fit_linear_response`, shared by the batch.
    unit : array (batch,), optional
        Each fit's response unit (see :func:`fit_linear_response`); default 1.

    Returns
    -------
    LinearResponseFit
        ``w`` of shape (batch, n, n) and ``loss`` of shape (batch, steps).
    """
    train = np.asarray(train, dtype=bool)
    ridge = np.asarray(ridge, dtype=float)
    if train.ndim != 3 or ridge.shape != (train.shape[0],):
        raise DigiwormError(
            f"train must be (batch, n, n) and ridge (batch,); got {train.shape} and {ridge.shape}"
        )
    batch, n = train.shape[0], edges.shape[0]
    if weights is None:
        weights = np.ones((batch, table.size))
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (batch, table.size):
        raise DigiwormError(
            f"weights must be (batch={batch}, trials={table.size}); got {weights.shape}"
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise DigiwormError("trial weights must be finite and >= 0")
    unit = np.ones(batch) if unit is None else np.asarray(unit, dtype=float)
    if unit.shape != (batch,) or not np.all(unit > 0):
        raise DigiwormError(f"unit must be (batch={batch},) positive values; got {unit}")
    entry_weights = weights * train[:, table.rows, table.cols]
    edges = jnp.asarray(edges, dtype=bool)
    target = jnp.zeros((n, n)) if prior is None else jnp.asarray(prior, dtype=jnp.float32)
    if target.shape not in ((n, n), (batch, n, n)):
        raise DigiwormError(
            f"prior must be ({n}, {n}) or (batch={batch}, {n}, {n}); got {target.shape}"
        )
    target = jnp.broadcast_to(target, (batch, n, n))
    theta0 = jnp.where(edges, target, 0.0)
    # data go in as arguments, not closure constants: XLA would otherwise constant-fold them
    theta, history = _run_batch(
        theta0, jnp.asarray(table.rows), jnp.asarray(table.cols),
        jnp.asarray(table.values, dtype=jnp.float32), jnp.asarray(entry_weights, jnp.float32),
        edges, target, jnp.asarray(ridge, jnp.float32), jnp.asarray(unit, jnp.float32),
        jnp.float32(delta), learning_rate, steps,
    )  # fmt: skip
    w = np.asarray(jnp.where(edges, theta, 0.0))
    return LinearResponseFit(w, np.asarray(history))


def _objective(theta, rows, cols, values, entry_weights, edges, target, ridge, unit, delta):
    w = jnp.where(edges, theta, 0.0)
    pred = response_matrix(w)[rows, cols]
    fit = jnp.sum(entry_weights * huber(values / unit - pred, delta / unit)) / jnp.maximum(
        jnp.sum(entry_weights), 1e-12
    )
    penalty = jnp.sum(jnp.where(edges, theta - target, 0.0) ** 2) / jnp.maximum(edges.sum(), 1)
    return fit + ridge * penalty


@functools.partial(jax.jit, static_argnames=("learning_rate", "steps"))
def _run_batch(
    theta, rows, cols, values, entry_weights, edges, target, ridge, unit, delta, learning_rate,
    steps,
):  # fmt: skip
    opt = optax.adam(learning_rate)
    grad_fn = jax.vmap(
        jax.value_and_grad(_objective), in_axes=(0, None, None, None, 0, None, 0, 0, 0, None)
    )

    def step(carry, _):
        theta, state = carry
        value, grad = grad_fn(
            theta, rows, cols, values, entry_weights, edges, target, ridge, unit, delta
        )
        updates, state = opt.update(grad, state)
        return (optax.apply_updates(theta, updates), state), value

    (theta, _), history = jax.lax.scan(step, (theta, opt.init(theta)), None, length=steps)
    return theta, history.T
