"""Whole-brain models and the calcium-indicator forward model.

Graded connectome network, identified linear and kernel models; each is an equinox Module
acting on one unbatched example. Conductance-based neurons from the channel library
(:mod:`._channels`, :mod:`._conductance`) and the published reference neurons.
"""

from ._base import METHODS, AbstractModel, rk_step
from ._c302 import C2, C2Parameters, C302Network, C302State, c302_connectome, c302_network
from ._channels import CHANNEL_GENES, CHANNELS, Channel, channel, channels_of_gene
from ._conductance import CellState, ConductanceCell, cell_from_conductances, resting_potentials
from ._conductance_network import (
    ConductanceNetwork,
    ConductanceNetworkState,
    conductance_network_from_atlas,
)
from ._expression_cells import (
    ExpressionMap,
    calibrate_expression_map,
    cells_from_expression,
    channel_tpm,
    fit_expression_map,
    fit_neuron_effects,
)
from ._expression_maps import (
    fit_expression_maps,
    fit_settings,
    fitted_expression_map,
    fitted_expression_maps,
    jackknife_maps,
    read_expression_maps,
    write_expression_maps,
)
from ._fitted import FITTED_MODELS, fitted, fitted_dir, fitted_heldout, fitted_provenance
from ._graded import GradedNetwork, GradedState, connectome_arrays, graded_from_atlas
from ._indicator import CalciumIndicator, GCaMP6s, LinearIndicator
from ._io import load_model, save_model
from ._linear import (
    KernelModel,
    LinearModel,
    kernel_from_atlas,
    linear_from_atlas,
    linear_from_couplings,
)
from ._neuroml import export_neuroml
from ._reference_cells import REFERENCE_CELLS, ReferenceCell, reference_cell
from ._signs import classical_transmitters, synapse_signs

__all__ = [
    "C2",
    "C2Parameters",
    "C302Network",
    "C302State",
    "c302_connectome",
    "c302_network",
    "CHANNELS",
    "FITTED_MODELS",
    "CHANNEL_GENES",
    "METHODS",
    "REFERENCE_CELLS",
    "CellState",
    "Channel",
    "ConductanceCell",
    "ConductanceNetwork",
    "ConductanceNetworkState",
    "ExpressionMap",
    "ReferenceCell",
    "calibrate_expression_map",
    "cell_from_conductances",
    "cells_from_expression",
    "channel",
    "channel_tpm",
    "fit_expression_map",
    "fit_expression_maps",
    "fit_neuron_effects",
    "fit_settings",
    "fitted_expression_map",
    "fitted_expression_maps",
    "jackknife_maps",
    "read_expression_maps",
    "write_expression_maps",
    "channels_of_gene",
    "reference_cell",
    "resting_potentials",
    "AbstractModel",
    "CalciumIndicator",
    "GCaMP6s",
    "GradedNetwork",
    "GradedState",
    "KernelModel",
    "LinearIndicator",
    "LinearModel",
    "classical_transmitters",
    "conductance_network_from_atlas",
    "connectome_arrays",
    "export_neuroml",
    "fitted",
    "fitted_dir",
    "fitted_heldout",
    "fitted_provenance",
    "graded_from_atlas",
    "kernel_from_atlas",
    "linear_from_atlas",
    "linear_from_couplings",
    "load_model",
    "rk_step",
    "save_model",
    "synapse_signs",
]
