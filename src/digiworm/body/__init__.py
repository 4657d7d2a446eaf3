"""The worm's body: a planar rod in a resistive medium, and the behaviour read off it.

:func:`simulate_body` moves a :class:`Body` in a :class:`Medium` under a preferred curvature
(an imposed wave, :func:`travelling_wave`, or the muscles' output); :func:`gait` and
:func:`eigenworm_variance` read the behaviour as trackers do.
"""

from ._drive import DrivenTrajectory, simulate_driven
from ._muscles import Muscles, muscles_from_atlas
from ._readouts import eigenworm_variance, gait, plot_gait
from ._reflex import ReflexCircuit, ReflexTrajectory, reflex_circuit, simulate_reflex
from ._rod import Body, BodyTrajectory, Medium, simulate_body, travelling_wave
from ._targets import behaviour_targets, score_behaviour

__all__ = [
    "Body",
    "BodyTrajectory",
    "DrivenTrajectory",
    "Medium",
    "Muscles",
    "ReflexCircuit",
    "ReflexTrajectory",
    "behaviour_targets",
    "eigenworm_variance",
    "gait",
    "muscles_from_atlas",
    "plot_gait",
    "reflex_circuit",
    "score_behaviour",
    "simulate_body",
    "simulate_driven",
    "simulate_reflex",
    "travelling_wave",
]
