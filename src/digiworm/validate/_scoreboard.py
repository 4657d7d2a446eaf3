"""Cross-validated scores of predictors against a measured perturbation atlas."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from .._errors import DigiwormError
from ._baselines import (
    BaselineContext,
    anatomy,
    anatomy_steady_state,
    mirror,
    nearest_neighbour,
    responder_mean,
)
from ._metrics import auroc, pearson, pearson_clipped, scale_ratio, sign_accuracy, spearman
from ._splits import class_folds, neuron_folds

__all__ = ["BASELINES", "baseline_context", "cross_validate", "folds_for", "score"]

METRICS = ("pearson_clipped", "spearman", "sign_accuracy", "auroc")

BASELINES: dict[str, Callable] = {
    "anatomy": anatomy,
    "anatomy_steady_state": anatomy_steady_state,
    "responder_mean": responder_mean,
    "nearest_neighbour": nearest_neighbour,
    "mirror": mirror,
}


def score(pred: np.ndarray, measured: xr.Dataset, columns: np.ndarray | None = None) -> dict:
    """Score a prediction ``[responding, stimulated]`` against ``measured`` off the diagonal.

    Parameters
    ----------
    pred : array (n, n)
        Predicted ΔF/F on the measured dataset's index.
    measured : xarray.Dataset
        With ``dff`` and, optionally, ``q`` and ``q_eq`` (dims responding, stimulated); without
        them sign accuracy and AUROC are NaN.
    columns : int array, optional
        Stimulated columns to score (default all).

    Returns
    -------
    dict
        ``pearson_clipped`` (0.5–99.5 percentile clipping), ``pearson_raw``, ``spearman``,
        ``sign_accuracy`` (q < 0.05 pairs), ``auroc`` (q < 0.05 vs q_eq < 0.05),
        ``scale_ratio`` (median |predicted| / |measured| over q < 0.05 pairs: 1 is the measured
        size; meaningless for predictors not in ΔF/F, e.g. synapse counts), ``n_pairs``.
    """
    dff = measured["dff"].to_numpy()
    if pred.shape != dff.shape:
        raise DigiwormError(f"prediction has shape {pred.shape}; the atlas is {dff.shape}")
    keep = np.isfinite(dff) & ~np.eye(*dff.shape, dtype=bool) & np.isfinite(pred)
    if columns is not None:
        cols = np.zeros(dff.shape[1], dtype=bool)
        cols[columns] = True
        keep &= cols[None, :]
    p, m = pred[keep], dff[keep]
    nan = np.full(dff.shape, np.nan)  # datasets without q / q_eq get NaN for those metrics
    q = (measured["q"].to_numpy() if "q" in measured else nan)[keep]
    q_eq = (measured["q_eq"].to_numpy() if "q_eq" in measured else nan)[keep]
    return {
        "pearson_clipped": pearson_clipped(p, m),
        "pearson_raw": pearson(p, m),
        "spearman": spearman(p, m),
        "sign_accuracy": sign_accuracy(p, m, q),
        "auroc": auroc(p, q, q_eq),
        "scale_ratio": scale_ratio(p, m, q),
        "n_pairs": int(keep.sum()),
    }


def folds_for(measured: xr.Dataset, classes: Sequence[str], split: str, k: int, seed: int):
    """Held-out stimulated-column indices per fold for a ``class`` or ``neuron`` split."""
    stimulated = [str(s) for s in measured["stimulated"].to_numpy()]
    dff = measured["dff"].to_numpy()
    measured_cols = np.flatnonzero(np.isfinite(dff).any(axis=0))
    names = [stimulated[j] for j in measured_cols]
    if split == "class":
        folds = class_folds(names, [classes[j] for j in measured_cols], k, seed)
    elif split == "neuron":
        folds = neuron_folds(names, k, seed)
    else:
        raise DigiwormError(f"unknown split {split!r}; use 'class' or 'neuron'")
    return [measured_cols[f] for f in folds]


def cross_validate(
    predictor: Callable[[np.ndarray], np.ndarray], measured: xr.Dataset, folds
) -> np.ndarray:
    """Out-of-fold predictions: for each fold, hide its stimulated columns and predict them.

    ``predictor(train) -> prediction`` receives the measured matrix with the held-out columns
    set to NaN and must return a full matrix; only the held-out columns are kept.
    """
    dff = measured["dff"].to_numpy()
    out = np.full(dff.shape, np.nan)
    for held in folds:
        train = dff.copy()
        train[:, held] = np.nan
        pred = np.asarray(predictor(train), dtype=float)
        out[:, held] = pred[:, held]
    return out


def baseline_context(atlas, connectome: str = "cook2019") -> BaselineContext:
    """Connectome and mirror indices for the baselines, on the atlas's neuron order."""
    from ..models import connectome_arrays

    chem, gap, sign = connectome_arrays(atlas, connectome)
    names = list(atlas.names)
    index = {n: i for i, n in enumerate(names)}
    partner = atlas.neurons.loc[names, "bilateral_partner"]
    mirror_idx = np.array([index.get(p, i) if p else i for i, p in enumerate(partner)])
    return BaselineContext(weights=chem + gap, signed=chem * sign + gap, partner=mirror_idx)
