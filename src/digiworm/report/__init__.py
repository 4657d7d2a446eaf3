"""Human-readable outputs: neuron cards and HTML reports with figures."""

from ._atlas_report import anatomy_vs_response, type_order, write_atlas_report
from ._behaviour_report import write_behaviour_report
from ._card import neuron_card
from ._cell_validation import write_cell_validation_report

__all__ = [
    "anatomy_vs_response",
    "neuron_card",
    "type_order",
    "write_atlas_report",
    "write_behaviour_report",
    "write_cell_validation_report",
]
