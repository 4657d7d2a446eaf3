"""Experiment design: how much data identifies the worm, and which experiment to run next."""

from ._linear import (
    ErrorEstimate,
    decaying_covariance,
    expected_error,
    monte_carlo_error,
    samples_needed,
)

__all__ = [
    "ErrorEstimate",
    "decaying_covariance",
    "expected_error",
    "monte_carlo_error",
    "samples_needed",
]
