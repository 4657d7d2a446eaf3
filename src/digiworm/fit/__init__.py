"""System identification: transforms, robust losses and fitting routines."""

from ._command import FIT_MODELS, fit_dataset
from ._features import (
    FeatureBasis,
    FeatureFit,
    feature_basis,
    feature_basis_from_atlas,
    fit_feature_gains,
)
from ._graded_fit import (
    GradedFit,
    GradedFitSettings,
    fit_graded,
    graded_from_linear,
    rest_of,
    small_signal_response,
)
from ._kernel_fit import (
    KernelFit,
    KernelFitSettings,
    clamped_kernels,
    fit_kernel_taus,
    identify_kernel_taus,
    kernel_cross_validation,
    kernel_scores,
)
from ._linear_cv import (
    LinearCVSettings,
    LinearEnsemble,
    feature_targets,
    fit_linear_ensemble,
    nested_linear_cv,
)
from ._linear_response import (
    LinearResponseFit,
    TrialTable,
    fit_linear_batch,
    fit_linear_response,
    response_matrix,
    trial_table,
)
from ._losses import huber, trial_loss
from ._transforms import Identity, Interval, Positive

__all__ = [
    "FeatureBasis",
    "FeatureFit",
    "GradedFit",
    "GradedFitSettings",
    "FIT_MODELS",
    "Identity",
    "KernelFit",
    "KernelFitSettings",
    "clamped_kernels",
    "fit_kernel_taus",
    "identify_kernel_taus",
    "kernel_cross_validation",
    "kernel_scores",
    "LinearCVSettings",
    "LinearEnsemble",
    "Interval",
    "LinearResponseFit",
    "Positive",
    "TrialTable",
    "feature_basis",
    "feature_basis_from_atlas",
    "feature_targets",
    "fit_dataset",
    "fit_feature_gains",
    "fit_graded",
    "graded_from_linear",
    "fit_linear_batch",
    "fit_linear_ensemble",
    "fit_linear_response",
    "huber",
    "nested_linear_cv",
    "response_matrix",
    "rest_of",
    "small_signal_response",
    "trial_loss",
    "trial_table",
]
