"""Simulate models under stimulation protocols, batched over conditions."""

from ._atlas import insilico_atlas
from ._protocol import DEFAULT_PULSE_S, Noise, Protocol
from ._simulate import rest_residual, rest_state, simulate, simulate_arrays, simulate_ensemble
from ._spontaneous import spontaneous_correlation

__all__ = [
    "DEFAULT_PULSE_S",
    "Noise",
    "Protocol",
    "insilico_atlas",
    "rest_residual",
    "rest_state",
    "simulate",
    "simulate_arrays",
    "simulate_ensemble",
    "spontaneous_correlation",
]
