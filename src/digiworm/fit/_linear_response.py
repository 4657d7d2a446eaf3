r"""Identify a linear network from single-neuron stimulation: the steady-state response model.

A linear network :math:`\tau \dot x = -x + W x + e_j u` driven by a sustained input at neuron
*j* settles at :math:`x = (I - W)^{-1} e_j u`, so the matrix of responses to stimulating each
neuron in turn is :math:`R = (I - W)^{-1}` (column *j*: response to *j*). Given per-trial
measurements of *R*'s columns, :func:`fit_linear_response` estimates *W* on an allowed set of
edges by minimising the robust :func:`trial_loss` plus a ridge pull towards a prior (e.g. the
scaled connectome), with Adam (optax) in a compiled ``lax.scan``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._losses import trial_loss

__all__ = ["LinearResponseFit", "fit_linear_response", "response_matrix"]


def response_matrix(w):
    """Return :math:`(I - W)^{-1}`, the steady-state response to each neuron's stimulation."""
    n = w.shape[-1]
    return jnp.linalg.solve(jnp.eye(n, dtype=w.dtype) - w, jnp.eye(n, dtype=w.dtype))


class LinearResponseFit(NamedTuple):
    """Result of :func:`fit_linear_response`."""

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
) -> LinearResponseFit:
    """Fit ``W`` so that ``(I - W)^{-1}`` matches per-trial responses.

    Parameters
    ----------
    trials : array (responding, stimulated, trial)
        Per-trial ΔF/F (NaN-padded); the diagonal (a neuron's response to its own
        stimulation) is the input and is left out of the loss.
    edges : bool array (n, n)
        Allowed couplings ``[post, pre]``.
    train : bool array (n, n), optional
        Pairs the loss may use (e.g. only training stimulations' columns).
    prior : array (n, n), optional
        Ridge target for ``W`` (default 0).
    ridge, delta : float
        Ridge strength (on the mean squared deviation from ``prior`` over allowed edges) and
        Huber threshold (ΔF/F).
    steps, learning_rate
        Adam iterations and step size.
    """
    trials = jnp.asarray(trials)
    n = trials.shape[0]
    edges = jnp.asarray(edges, dtype=bool)
    mask = ~jnp.eye(n, dtype=bool)
    if train is not None:
        mask = mask & jnp.asarray(train, dtype=bool)
    target = jnp.zeros((n, n)) if prior is None else jnp.asarray(prior)

    theta0 = jnp.where(edges, target, 0.0)
    # data go in as arguments, not closure constants: XLA would otherwise constant-fold them
    theta, history = _run(theta0, trials, edges, mask, target, ridge, delta, learning_rate, steps)
    return LinearResponseFit(np.asarray(jnp.where(edges, theta, 0.0)), np.asarray(history))


def _objective(theta, trials, edges, mask, target, ridge, delta):
    w = jnp.where(edges, theta, 0.0)
    fit = trial_loss(response_matrix(w), trials, delta, mask)
    penalty = jnp.sum(jnp.where(edges, theta - target, 0.0) ** 2) / jnp.maximum(edges.sum(), 1)
    return fit + ridge * penalty


@functools.partial(jax.jit, static_argnames=("learning_rate", "steps"))
def _run(theta, trials, edges, mask, target, ridge, delta, learning_rate, steps):
    opt = optax.adam(learning_rate)
    grad_fn = jax.value_and_grad(_objective)

    def step(carry, _):
        theta, state = carry
        value, grad = grad_fn(theta, trials, edges, mask, target, ridge, delta)
        updates, state = opt.update(grad, state)
        return (optax.apply_updates(theta, updates), state), value

    (theta, _), history = jax.lax.scan(step, (theta, opt.init(theta)), None, length=steps)
    return theta, history
