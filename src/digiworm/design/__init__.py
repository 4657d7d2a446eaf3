"""Experiment design: how much data identifies the worm, and which experiment to run next."""

from ._check import formula_vs_monte_carlo, plot_formula_check
from ._fisher import GreedyDesign, experiment_fisher, greedy_design, response_column_jacobian
from ._linear import (
    ErrorEstimate,
    decaying_covariance,
    expected_error,
    monte_carlo_error,
    samples_needed,
)
from ._next import atlas_design, gain_fishers, next_stimulations
from ._spontaneous import shared_drive_covariance, spontaneous_vs_stimulation, stationary_covariance
from ._study import (
    CRITERIA,
    StudyResult,
    StudySettings,
    Unknowns,
    design_study,
    greedy_a_order,
    output_gains,
    refit_gains,
    wired_couplings,
)

__all__ = [
    "CRITERIA",
    "StudyResult",
    "StudySettings",
    "Unknowns",
    "output_gains",
    "wired_couplings",
    "atlas_design",
    "design_study",
    "greedy_a_order",
    "refit_gains",
    "shared_drive_covariance",
    "spontaneous_vs_stimulation",
    "stationary_covariance",
    "GreedyDesign",
    "ErrorEstimate",
    "decaying_covariance",
    "expected_error",
    "experiment_fisher",
    "formula_vs_monte_carlo",
    "gain_fishers",
    "greedy_design",
    "monte_carlo_error",
    "next_stimulations",
    "plot_formula_check",
    "response_column_jacobian",
    "samples_needed",
]
