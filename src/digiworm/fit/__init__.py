"""System identification: transforms, robust losses and fitting routines."""

from ._command import FIT_MODELS, fit_dataset
from ._linear_response import LinearResponseFit, fit_linear_response, response_matrix
from ._losses import huber, trial_loss
from ._transforms import Identity, Interval, Positive

__all__ = [
    "FIT_MODELS",
    "Identity",
    "Interval",
    "LinearResponseFit",
    "Positive",
    "fit_dataset",
    "fit_linear_response",
    "huber",
    "response_matrix",
    "trial_loss",
]
