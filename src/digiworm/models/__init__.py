"""Whole-brain models and the calcium-indicator forward model.

Graded connectome network, identified linear and kernel models; each is an equinox Module
acting on one unbatched example.
"""

from ._base import METHODS, AbstractModel, rk_step
from ._graded import GradedNetwork, GradedState, graded_from_atlas
from ._indicator import CalciumIndicator, GCaMP6s
from ._linear import KernelModel, LinearModel, kernel_from_atlas
from ._signs import classical_transmitters, synapse_signs

__all__ = [
    "METHODS",
    "AbstractModel",
    "CalciumIndicator",
    "GCaMP6s",
    "GradedNetwork",
    "GradedState",
    "KernelModel",
    "LinearModel",
    "classical_transmitters",
    "graded_from_atlas",
    "kernel_from_atlas",
    "rk_step",
    "synapse_signs",
]
