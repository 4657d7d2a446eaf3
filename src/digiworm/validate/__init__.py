"""The scoreboard: metrics, noise ceiling, cross-validation splits and baselines."""

from ._baselines import (
    BaselineContext,
    anatomy,
    anatomy_steady_state,
    mirror,
    nearest_neighbour,
    responder_mean,
)
from ._ceiling import split_half, split_half_reliability
from ._cell_knockouts import KNOCKOUT_GENES, channel_knockouts, knockout_agreement, steady_readout
from ._cell_population import channel_genes_without_kinetics, expression_population
from ._cells import CellValidation, compare_responses, leave_one_out_cells
from ._data import SchemaError, check_perturbation, load_perturbation
from ._metrics import (
    CLIP_PERCENTILES,
    auroc,
    clip_percentiles,
    pearson,
    pearson_clipped,
    scale_ratio,
    sign_accuracy,
    spearman,
)
from ._scoreboard import BASELINES, METRICS, baseline_context, cross_validate, folds_for, score
from ._splits import class_folds, neuron_folds, split_trials, trial_halves
from ._validate import validate_prediction

__all__ = [
    "BASELINES",
    "CLIP_PERCENTILES",
    "METRICS",
    "BaselineContext",
    "CellValidation",
    "SchemaError",
    "anatomy",
    "anatomy_steady_state",
    "auroc",
    "baseline_context",
    "check_perturbation",
    "class_folds",
    "clip_percentiles",
    "compare_responses",
    "cross_validate",
    "folds_for",
    "leave_one_out_cells",
    "KNOCKOUT_GENES",
    "expression_population",
    "channel_genes_without_kinetics",
    "channel_knockouts",
    "knockout_agreement",
    "steady_readout",
    "load_perturbation",
    "mirror",
    "nearest_neighbour",
    "neuron_folds",
    "pearson",
    "pearson_clipped",
    "responder_mean",
    "scale_ratio",
    "score",
    "sign_accuracy",
    "spearman",
    "split_half",
    "split_half_reliability",
    "split_trials",
    "trial_halves",
    "validate_prediction",
]
