"""Score a prediction file against the measured atlas, beside the ceiling and a baseline."""

from __future__ import annotations

import numpy as np

from ._baselines import anatomy
from ._ceiling import split_half_reliability
from ._scoreboard import baseline_context, score

__all__ = ["validate_prediction"]


def validate_prediction(atlas, prediction, strain: str = "wt", n_splits: int = 4) -> dict:
    """Score ``prediction['dff']`` against the measured ``strain`` atlas over measured pairs.

    The prediction is taken as out-of-sample as its maker says it is: no cross-validation is
    done here. Beside it: the anatomy baseline over the same pairs and the split-half noise
    ceiling of the measurement.

    Returns
    -------
    dict
        ``prediction`` and ``anatomy`` metric dicts (see :func:`score`), ``noise_ceiling``
        (see :func:`split_half_reliability`), ``fraction_of_ceiling`` (clipped r / ceiling;
        None where the ceiling is 0).
    """
    measured = atlas.functional(strain, kernel_time_s=None)
    pred = prediction["dff"].transpose("responding", "stimulated").to_numpy().astype(float)
    result = {"strain": strain, "prediction": score(pred, measured)}
    mask = np.isfinite(pred)
    base = np.where(mask, anatomy(None, baseline_context(atlas)), np.nan)
    result["anatomy"] = score(base, measured)
    off = ~np.eye(pred.shape[0], dtype=bool)
    ceiling = split_half_reliability(
        measured["dff_trials"].to_numpy(), mask=off & mask, n_splits=n_splits
    )
    result["noise_ceiling"] = ceiling
    # a few pairs can have split halves that do not agree at all (reliability <= 0): no ceiling
    c = ceiling["ceiling"]
    result["fraction_of_ceiling"] = result["prediction"]["pearson_clipped"] / c if c > 0 else None
    return result
