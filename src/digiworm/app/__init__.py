"""The application layer the CLI and the explorer share: requests, models, runs, outputs.

A run is a :class:`SimulationRequest` (what ``digiworm simulate`` and the explorer's forms ask
for), checked against the atlas before any compute, built into a perturbed model
(:func:`build_model`) and run (:func:`run_request`: one condition, spontaneous activity or the
whole in-silico atlas with progress and cancellation). ``digiworm.cli`` and
``digiworm.serve`` call these; neither calls the other.
"""

from ._plot import plot_traces
from ._simulation import (
    CONDUCTANCE_MAX_DT_S,
    DEFAULT_ONSET_S,
    FITTED_KINDS,
    MODEL_KINDS,
    UNCALIBRATED_KINDS,
    SimulationRequest,
    build_model,
    check_output_path,
    default_dt_s,
    default_onset_s,
    model_evidence,
    parse_drug,
    run_request,
    write_netcdf,
)

__all__ = [
    "CONDUCTANCE_MAX_DT_S",
    "DEFAULT_ONSET_S",
    "FITTED_KINDS",
    "MODEL_KINDS",
    "UNCALIBRATED_KINDS",
    "SimulationRequest",
    "build_model",
    "check_output_path",
    "default_dt_s",
    "default_onset_s",
    "model_evidence",
    "parse_drug",
    "plot_traces",
    "run_request",
    "write_netcdf",
]
