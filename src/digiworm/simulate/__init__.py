"""Simulate models under stimulation protocols, batched over conditions; patch-clamp protocols."""

from ._atlas import RESPONSE_WINDOW_S, insilico_atlas, response_change
from ._clamp import (
    current_clamp,
    depolarising_current,
    reference_trace_run,
    resting_potentials,
    resting_state,
    run_currents,
    steady_iv,
    voltage_clamp,
)
from ._protocol import DEFAULT_PULSE_S, Noise, Protocol
from ._reference import reference_solution
from ._simulate import (
    batch_strategy,
    model_precision,
    rest_residual,
    rest_stability,
    rest_state,
    simulate,
    simulate_arrays,
    simulate_ensemble,
    stack_models,
)
from ._spontaneous import spontaneous_correlation

__all__ = [
    "DEFAULT_PULSE_S",
    "RESPONSE_WINDOW_S",
    "Noise",
    "Protocol",
    "batch_strategy",
    "current_clamp",
    "depolarising_current",
    "insilico_atlas",
    "model_precision",
    "reference_solution",
    "reference_trace_run",
    "response_change",
    "rest_residual",
    "rest_stability",
    "rest_state",
    "resting_potentials",
    "resting_state",
    "run_currents",
    "simulate",
    "simulate_arrays",
    "simulate_ensemble",
    "stack_models",
    "spontaneous_correlation",
    "steady_iv",
    "voltage_clamp",
]
