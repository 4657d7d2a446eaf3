"""In-silico screens: many perturbed experiments, read out as phenotypes and ranked.

A screen is a condition table (:func:`parse_grid`, :func:`read_table`; one row per
experiment: drug and dose, knockouts, ablations, stimulation, medium, model, seed), checked
row by row before anything runs (:func:`check_table`), then run in resumable chunks with
batched simulations (:func:`run_screen`; ``digiworm screen``).
"""

from ._run import PARALYSIS_MM_PER_S, READOUTS, run_screen
from ._table import COLUMNS, check_table, parse_grid, read_table, table_digest

__all__ = [
    "COLUMNS",
    "PARALYSIS_MM_PER_S",
    "READOUTS",
    "check_table",
    "parse_grid",
    "read_table",
    "run_screen",
    "table_digest",
]
