"""Cross-validation splits of a perturbation dataset over *stimulated* neurons.

A model never sees the responses to a held-out stimulation. Splitting by neuron class keeps a
class's left/right and dorsal/ventral members together, because the atlas is bilaterally
symmetric: predicting AVAL's responses from AVAR's measured ones is not a prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._errors import DigiwormError

__all__ = ["split_trials", "class_folds", "neuron_folds", "trial_halves"]


def class_folds(
    stimulated: Sequence[str], classes: Sequence[str], k: int = 5, seed: int = 0
) -> list[np.ndarray]:
    """Assign stimulated neurons to ``k`` folds by class; return each fold's held-out indices.

    Classes are shuffled (seeded) and dealt to folds largest first so fold sizes stay close.

    Parameters
    ----------
    stimulated : sequence of str
        Neurons whose stimulations form the dataset.
    classes : sequence of str
        Class of each (same length).
    k : int
        Number of folds (2 <= k <= number of classes).
    seed : int
        Shuffle seed.
    """
    classes = np.asarray(classes)
    unique = np.unique(classes)
    if not 2 <= k <= unique.size:
        raise DigiwormError(f"need 2 <= k <= {unique.size} classes for class folds; got k={k}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(unique)
    sizes = {c: int(np.sum(classes == c)) for c in order}
    order = sorted(order, key=lambda c: -sizes[c])  # stable: ties keep the shuffled order
    load = np.zeros(k, dtype=int)
    assignment = {}
    for c in order:
        f = int(np.argmin(load))
        assignment[c] = f
        load[f] += sizes[c]
    fold_of = np.array([assignment[c] for c in classes])
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def neuron_folds(stimulated: Sequence[str], k: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Assign stimulated neurons to ``k`` folds individually (partners may be split)."""
    n = len(stimulated)
    if not 2 <= k <= n:
        raise DigiwormError(f"need 2 <= k <= {n} neurons for neuron folds; got k={k}")
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(perm[f::k]) for f in range(k)]


def trial_halves(trials: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split every pair's trials at random into a training and a test half (trial means).

    Pairs with fewer than two trials get NaN in both.
    """
    from ._ceiling import split_half

    return split_half(trials, np.random.default_rng(seed))


def split_trials(trials: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split each pair's trials at random into a training and a test half (NaN-padded).

    Pairs with two or more trials give ``n // 2`` trials to the training half and the rest to
    the test half; pairs with a single trial go to the training half only (they cannot be
    tested). Both outputs have the input's shape.
    """
    trials = np.asarray(trials, dtype=float)
    rng = np.random.default_rng(seed)
    flat = trials.reshape(-1, trials.shape[-1])
    train = np.full(flat.shape, np.nan)
    test = np.full(flat.shape, np.nan)
    count = np.isfinite(flat).sum(axis=1)
    for k in np.flatnonzero(count > 0):
        idx = np.flatnonzero(np.isfinite(flat[k]))
        if idx.size == 1:
            train[k, idx] = flat[k, idx]
            continue
        perm = rng.permutation(idx)
        half = idx.size // 2
        train[k, perm[:half]] = flat[k, perm[:half]]
        test[k, perm[half:]] = flat[k, perm[half:]]
    return train.reshape(trials.shape), test.reshape(trials.shape)
