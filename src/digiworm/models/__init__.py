"""Whole-brain models and the calcium-indicator forward model.

Graded connectome network, identified linear and kernel models; each is an equinox Module
acting on one unbatched example.
"""

from ._base import METHODS, AbstractModel, rk_step
from ._graded import GradedNetwork, GradedState, connectome_arrays, graded_from_atlas
from ._indicator import CalciumIndicator, GCaMP6s
from ._io import load_model, save_model
from ._linear import (
    KernelModel,
    LinearModel,
    kernel_from_atlas,
    linear_from_atlas,
    linear_from_couplings,
)
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
    "connectome_arrays",
    "graded_from_atlas",
    "kernel_from_atlas",
    "linear_from_atlas",
    "linear_from_couplings",
    "load_model",
    "rk_step",
    "save_model",
    "synapse_signs",
]
