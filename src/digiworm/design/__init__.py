"""Experiment design: how much data identifies the worm, and which experiment to run next."""

from ._check import formula_vs_monte_carlo, plot_formula_check
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
    "formula_vs_monte_carlo",
    "monte_carlo_error",
    "plot_formula_check",
    "samples_needed",
]
