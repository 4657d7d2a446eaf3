"""Simulate models under stimulation protocols, batched over conditions."""

from ._protocol import DEFAULT_PULSE_S, Noise, Protocol
from ._simulate import rest_state, simulate

__all__ = ["DEFAULT_PULSE_S", "Noise", "Protocol", "rest_state", "simulate"]
