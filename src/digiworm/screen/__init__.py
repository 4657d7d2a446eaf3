"""In-silico screens: many perturbed experiments, read out as phenotypes and ranked.

A screen is a condition table (:func:`parse_grid`, :func:`read_table`; one row per
experiment: drug and dose, knockouts, ablations, stimulation, medium, model, seed,
neuromodulatory state), checked row by row before anything runs (:func:`check_table`), then
run in resumable chunks, here or on Ray actors (:func:`run_screen`; ``digiworm screen``), and
reported: Hill fits per compound (:func:`dose_responses`), the top hits' traces and an HTML
report (:mod:`._report`).
"""

from ._ensemble import hit_ensemble
from ._report import DOSE_PHENOTYPES, dose_responses, fit_hill, write_hit_traces, write_report
from ._run import PARALYSIS_MM_PER_S, READOUTS, batch_strategy, chunk_phenotypes, run_screen
from ._table import COLUMNS, check_table, parse_grid, read_table, table_digest

__all__ = [
    "COLUMNS",
    "DOSE_PHENOTYPES",
    "PARALYSIS_MM_PER_S",
    "READOUTS",
    "batch_strategy",
    "check_table",
    "chunk_phenotypes",
    "dose_responses",
    "fit_hill",
    "hit_ensemble",
    "parse_grid",
    "read_table",
    "run_screen",
    "table_digest",
    "write_hit_traces",
    "write_report",
]
