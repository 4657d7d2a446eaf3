"""Baseline predictors of the response matrix ``dff[responding, stimulated]``.

Each baseline is a function ``(train, context) -> prediction`` where ``train`` is the measured
matrix with the held-out stimulations' columns set to NaN and the prediction is a full matrix;
only held-out columns are scored. ``context`` carries the connectome and the neuron table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._metrics import nanmean, pearson_clipped

__all__ = [
    "BaselineContext",
    "anatomy",
    "anatomy_steady_state",
    "mirror",
    "nearest_neighbour",
    "responder_mean",
]


@dataclass(frozen=True)
class BaselineContext:
    """What baselines may use besides the training responses.

    Attributes
    ----------
    weights : array (n, n)
        Synapse counts chemical + gap, ``[post, pre]`` (unsigned).
    signed : array (n, n)
        Signed connectome (chemical × receptor-rule sign + gap), ``[post, pre]``.
    partner : int array (n,)
        Index of each neuron's left/right mirror (itself when unpaired).
    """

    weights: np.ndarray
    signed: np.ndarray
    partner: np.ndarray


def anatomy(train: np.ndarray, ctx: BaselineContext) -> np.ndarray:
    """Predict a response by the number of synapses from the stimulated to the responder."""
    return ctx.weights.astype(float)


def _steady_state(signed: np.ndarray, radius: float) -> np.ndarray:
    w = signed.astype(float)
    rho = np.max(np.abs(np.linalg.eigvals(w)))
    w = w * (radius / rho) if rho > 0 else w
    return np.linalg.solve(np.eye(len(w)) - w, np.eye(len(w)))  # column j: response to j


def anatomy_steady_state(
    train: np.ndarray, ctx: BaselineContext, radii=(0.3, 0.5, 0.7, 0.9)
) -> np.ndarray:
    r"""Steady state of the signed connectome's linear network, :math:`(I - W)^{-1}`.

    ``W`` is scaled to a spectral radius chosen among ``radii`` by the clipped Pearson r on the
    training stimulations only (so nothing of the held-out columns leaks in).
    """
    best, best_r = None, -np.inf
    for radius in radii:
        pred = _steady_state(ctx.signed, radius)
        r = pearson_clipped(_offdiag(pred), _offdiag(train))
        if r > best_r:
            best, best_r = pred, r
    return best


def _offdiag(m: np.ndarray) -> np.ndarray:
    out = m.astype(float).copy()
    np.fill_diagonal(out, np.nan)
    return out


def responder_mean(train: np.ndarray, ctx: BaselineContext) -> np.ndarray:
    """Predict each responder's mean measured response over the training stimulations."""
    mean = nanmean(_offdiag(train), axis=1, keepdims=True)
    return np.broadcast_to(np.nan_to_num(mean), train.shape).copy()


def nearest_neighbour(train: np.ndarray, ctx: BaselineContext, k_choices=(1, 3, 5, 10)):
    """Average the responses to the training stimulations of the most similar neurons.

    Similarity is the cosine between two neurons' connectome profiles (inputs and outputs
    concatenated). ``k`` is chosen by leave-one-out on the training stimulations.
    """
    w = ctx.weights.astype(float)
    profile = np.concatenate([w, w.T], axis=1)
    norm = np.linalg.norm(profile, axis=1, keepdims=True)
    unit = profile / np.where(norm > 0, norm, 1.0)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    measured_cols = np.flatnonzero(np.isfinite(train).any(axis=0))

    def predict(k: int, cols: np.ndarray, pool: np.ndarray) -> np.ndarray:
        out = np.zeros(train.shape)
        for j in cols:
            cand = pool[pool != j]
            nearest = cand[np.argsort(-sim[j, cand])[:k]]
            out[:, j] = np.nan_to_num(nanmean(train[:, nearest], axis=1))
        return out

    best_k, best_r = k_choices[0], -np.inf
    for k in k_choices:  # leave-one-out over the training stimulations
        loo = predict(k, measured_cols, measured_cols)
        r = pearson_clipped(_offdiag(loo)[:, measured_cols], _offdiag(train)[:, measured_cols])
        if r > best_r:
            best_k, best_r = k, r
    return predict(best_k, np.arange(train.shape[1]), measured_cols)


def mirror(train: np.ndarray, ctx: BaselineContext) -> np.ndarray:
    """Predict ``dff[i, j]`` by the measured ``dff[mirror(i), mirror(j)]`` (per-neuron split).

    Only meaningful when a neuron's partner can be in the training set (a per-neuron split);
    under a class split the partner is held out too and the prediction is all NaN.
    """
    p = ctx.partner
    return train[np.ix_(p, p)]
