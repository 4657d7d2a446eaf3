r"""Couplings shared across neurons: one gain per (transmitter, sign) group and one gap gain.

A held-out stimulated class has outgoing couplings that no training column measures
directly. Gains shared by every synapse of the same kind transfer to it. The basis is the
signed Cook 2019 connectome ``[post, pre]``, scaled like :func:`~._linear_cv.connectome_prior`
(same spectral-radius scale), split into groups by the presynaptic neuron's classical
transmitter(s) and the receptor-rule sign of the synapse, plus the gap junctions:

.. math::

    W(g, h) = \sum_k g_k\, S_k + h\, G ,

so all gains at 1 give back the connectome prior. :func:`fit_feature_gains` fits the gains to
per-trial responses with the library's robust loss and the exact steady state
:math:`(I - W)^{-1}`. On the inner class folds of the wild-type atlas (``docs/fidelity.md``)
these ten numbers alone predict held-out classes poorly, but as the ridge target of the dense
linear fit (``LinearCVSettings(target="features")``) they beat the fixed-scale prior.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._errors import DigiwormError
from ._linear_response import TrialTable, response_matrix
from ._losses import huber

__all__ = ["FeatureBasis", "FeatureFit", "feature_basis", "feature_basis_from_atlas",
           "fit_feature_gains"]  # fmt: skip


class FeatureBasis(NamedTuple):
    """Connectome split into shared-gain groups (all ``[post, pre]``, zero diagonal)."""

    groups: np.ndarray
    """Scaled signed chemical counts of each group, shape (G, n, n)."""
    gap: np.ndarray
    """Scaled gap-junction counts (symmetric), shape (n, n)."""
    labels: tuple[str, ...]
    """Group names, e.g. ``ACh+`` (presynaptic transmitter, receptor-rule sign)."""
    scale: float
    """Counts-to-coupling factor (the connectome prior's spectral-radius scale)."""

    def couplings(self, gains: np.ndarray) -> np.ndarray:
        """Return ``W`` for gains ``(G + 1,)`` (the last one is the gap gain); batch allowed."""
        gains = np.asarray(gains, dtype=float)
        return (
            np.einsum("...g,gij->...ij", gains[..., :-1], self.groups)
            + gains[..., -1, None, None] * self.gap
        )


def _group_key(transmitters: tuple[str, ...]) -> str:
    if len(transmitters) == 1:
        return transmitters[0]
    return "mixed" if transmitters else "none"


def feature_basis(
    chem: np.ndarray,
    gap: np.ndarray,
    sign: np.ndarray,
    transmitters: list[tuple[str, ...]],
    radius: float,
) -> FeatureBasis:
    """Split counts ``chem``, ``gap`` with ``sign`` ``[post, pre]`` by presynaptic transmitter.

    ``radius``: the spectral radius the whole signed connectome ``chem * sign + gap`` (diagonal
    included, as in the linear prior) is scaled to.
    """
    chem, gap, sign = (np.asarray(a, dtype=float) for a in (chem, gap, sign))
    n = chem.shape[0]
    if chem.shape != (n, n) or gap.shape != (n, n) or sign.shape != (n, n):
        raise DigiwormError(
            f"chem, gap and sign must all be (n, n); got {chem.shape}, {gap.shape}, {sign.shape}"
        )
    if len(transmitters) != n:
        raise DigiwormError(f"need one transmitter tuple per neuron ({n}); got {len(transmitters)}")
    rho = np.max(np.abs(np.linalg.eigvals(chem * sign + gap)))
    k = radius / rho
    off = ~np.eye(n, dtype=bool)
    key = np.array([_group_key(tuple(t)) for t in transmitters])
    groups, labels = [], []
    for t in sorted(set(key)):
        for s in (1, -1):
            g = np.where(off, k * chem * sign * (sign == s) * (key == t)[None, :], 0.0)
            if np.any(g):
                groups.append(g)
                labels.append(f"{t}{'+' if s > 0 else '-'}")
    return FeatureBasis(np.stack(groups), np.where(off, k * gap, 0.0), tuple(labels), float(k))


def feature_basis_from_atlas(atlas, radius: float, connectome: str = "cook2019") -> FeatureBasis:
    """:func:`feature_basis` of the atlas's connectome, signs and transmitters."""
    from ..models import connectome_arrays
    from ..models._signs import classical_transmitters

    chem, gap, sign = connectome_arrays(atlas, connectome)
    neurons = atlas.neurons.loc[list(atlas.names)]
    tx = [
        classical_transmitters(w, f)
        for w, f in zip(neurons["transmitter"], neurons["transmitter_fenyves"])
    ]
    return feature_basis(chem, gap, sign, tx, radius)


class FeatureFit(NamedTuple):
    """Result of :func:`fit_feature_gains` (leading batch axis)."""

    gains: np.ndarray
    """Fitted gains (batch, G + 1); the last column is the gap gain."""
    w: np.ndarray
    """Couplings they imply (batch, n, n)."""
    loss: np.ndarray
    """Objective at every step (batch, steps)."""
    radius: np.ndarray
    """Spectral radius of each returned ``w`` (at most ``max_radius``)."""
    shrink: np.ndarray
    """Fraction ``t`` of the way from gains 1 to the fitted gains that was kept:
    ``1 + t (g - 1)``; below 1 where the fitted gains made the network unstable."""


def _w(gains, groups, gap):
    return jnp.einsum("g,gij->ij", gains[:-1], groups) + gains[-1] * gap


def _objective(gains, rows, cols, values, weights, groups, gap, unit, delta):
    pred = response_matrix(_w(gains, groups, gap))[rows, cols]
    loss = huber(values / unit - pred, delta / unit)
    return jnp.sum(weights * loss) / jnp.maximum(jnp.sum(weights), 1e-12)


@functools.partial(jax.jit, static_argnames=("learning_rate", "steps"))
def _run(gains, rows, cols, values, weights, groups, gap, unit, delta, learning_rate, steps):
    opt = optax.adam(learning_rate)
    grad_fn = jax.vmap(
        jax.value_and_grad(_objective), in_axes=(0, None, None, None, 0, None, None, 0, None)
    )

    def step(carry, _):
        p, state = carry
        value, grad = grad_fn(p, rows, cols, values, weights, groups, gap, unit, delta)
        updates, state = opt.update(grad, state)
        return (optax.apply_updates(p, updates), state), value

    (gains, _), history = jax.lax.scan(step, (gains, opt.init(gains)), None, length=steps)
    return gains, history.T


def fit_feature_gains(
    table: TrialTable,
    basis: FeatureBasis,
    train: np.ndarray,
    *,
    delta: float,
    unit: np.ndarray | float = 1.0,
    steps: int = 300,
    learning_rate: float = 1e-2,
    max_radius: float = 0.95,
) -> FeatureFit:
    """Fit the shared gains of ``basis`` (from 1) for each training mask of ``train``.

    Parameters
    ----------
    table : TrialTable
        Per-trial responses (the diagonal left out).
    basis : FeatureBasis
    train : bool array (batch, n, n)
        Pairs each fit may use (e.g. a fold's training columns).
    delta : float
        Huber threshold (ΔF/F).
    unit : float or array (batch,)
        Response unit, as in :func:`~._linear_response.fit_linear_response`.
    steps, learning_rate
        Adam iterations and step size (300 at 1e-2 is what ``docs/fidelity.md`` measured).
    max_radius : float
        Stability guard: fitted gains whose network has a larger spectral radius (few training
        columns can drive the excitatory gains up until the steady state diverges) are
        shrunk towards 1 (the connectome prior, radius of the basis scale) by bisection until
        the radius is ``max_radius``. On the full wild-type atlas the fit reaches 0.93, below
        the guard.
    """
    train = np.asarray(train, dtype=bool)
    n = basis.gap.shape[0]
    if train.ndim != 3 or train.shape[1:] != (n, n):
        raise DigiwormError(f"train must be (batch, {n}, {n}); got {train.shape}")
    batch = train.shape[0]
    unit = np.broadcast_to(np.asarray(unit, dtype=float), (batch,))
    if not np.all(unit > 0):
        raise DigiwormError(f"unit must be > 0; got {unit}")
    n_gains = basis.groups.shape[0] + 1
    gains, history = _run(
        jnp.ones((batch, n_gains), jnp.float32), jnp.asarray(table.rows),
        jnp.asarray(table.cols), jnp.asarray(table.values, jnp.float32),
        jnp.asarray(train[:, table.rows, table.cols], jnp.float32),
        jnp.asarray(basis.groups, jnp.float32), jnp.asarray(basis.gap, jnp.float32),
        jnp.asarray(unit, jnp.float32), jnp.float32(delta), learning_rate, steps,
    )  # fmt: skip
    gains = np.asarray(gains, dtype=float)
    shrink = np.ones(batch)
    for b in range(batch):
        if _radius(basis.couplings(gains[b])) > max_radius:
            lo, hi = 0.0, 1.0
            for _ in range(30):
                mid = 0.5 * (lo + hi)
                ok = _radius(basis.couplings(1.0 + mid * (gains[b] - 1.0))) <= max_radius
                lo, hi = (mid, hi) if ok else (lo, mid)
            shrink[b] = lo
    gains = 1.0 + shrink[:, None] * (gains - 1.0)
    w = basis.couplings(gains)
    radius = np.array([_radius(x) for x in w])
    return FeatureFit(gains, w, np.asarray(history), radius, shrink)


def _radius(w: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(w))))
