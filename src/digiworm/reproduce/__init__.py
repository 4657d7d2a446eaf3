"""The main job: ``digiworm reproduce`` — fit, cross-validate, score, predict unc-31, report."""

from ._final import fitted_ensemble
from ._outputs import predictions_dataset, write_outputs
from ._pipeline import (
    ReproduceSettings,
    Reproduction,
    run_reproduce,
    unwired_removed,
)

__all__ = [
    "ReproduceSettings",
    "Reproduction",
    "fitted_ensemble",
    "predictions_dataset",
    "run_reproduce",
    "unwired_removed",
    "write_outputs",
]
