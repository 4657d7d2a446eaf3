"""System identification: transforms, robust losses and fitting routines."""

from ._linear_response import LinearResponseFit, fit_linear_response, response_matrix
from ._losses import huber, trial_loss
from ._transforms import Identity, Interval, Positive

__all__ = [
    "Identity",
    "Interval",
    "LinearResponseFit",
    "Positive",
    "fit_linear_response",
    "huber",
    "response_matrix",
    "trial_loss",
]
