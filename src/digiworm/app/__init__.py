"""The application layer the CLI and the explorer share: requests, models, runs, outputs.

A run is a :class:`SimulationRequest` (what ``digiworm simulate`` and the explorer's forms ask
for), checked against the atlas before any compute, built into a perturbed model
(:func:`build_model`) and run (:func:`run_request`: one condition, spontaneous activity or the
whole in-silico atlas with progress and cancellation); a :class:`BehaviourRequest` is a brain
in a body (``digiworm behave``), run by :func:`run_behaviour` (several at once:
:func:`run_behaviours`). ``digiworm.cli`` and
``digiworm.serve`` call these; neither calls the other.
"""

from ._behaviour import (
    BEHAVE_KINDS,
    BehaviourRequest,
    build_worm,
    parse_medium,
    parse_touch,
    run_behaviour,
    run_behaviours,
)
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
    "BEHAVE_KINDS",
    "CONDUCTANCE_MAX_DT_S",
    "DEFAULT_ONSET_S",
    "FITTED_KINDS",
    "MODEL_KINDS",
    "UNCALIBRATED_KINDS",
    "BehaviourRequest",
    "SimulationRequest",
    "build_model",
    "build_worm",
    "check_output_path",
    "default_dt_s",
    "default_onset_s",
    "model_evidence",
    "parse_drug",
    "parse_medium",
    "parse_touch",
    "plot_traces",
    "run_behaviour",
    "run_behaviours",
    "run_request",
    "write_netcdf",
]
