"""The worm's body: a planar rod in a resistive medium, and the behaviour read off it.

:func:`simulate_body` moves a :class:`Body` in a :class:`Medium` under a preferred curvature
(an imposed wave, :func:`travelling_wave`, or the muscles' output); :func:`gait` and
:func:`eigenworm_variance` read the behaviour as trackers do. :func:`simulate_worm` runs a
whole :class:`Worm` (a brain model, the command switch, the motor circuits, the muscles and the
body) and :func:`behaviour` reads its reversals, speeds and gait.
"""

from ._adaptation import adaptation_media, gait_adaptation
from ._behaviour import animate_worm, behaviour, motion_direction, plot_worm
from ._drive import DrivenTrajectory, simulate_driven
from ._muscles import Muscles, muscles_from_atlas
from ._pharmacology import L_ACHR_SHARE, NMJ_GENES, neuromuscular_perturbation
from ._readouts import eigenworm_variance, gait, plot_gait
from ._reflex import ReflexCircuit, ReflexTrajectory, reflex_circuit, simulate_reflex
from ._rod import Body, BodyTrajectory, Medium, simulate_body, travelling_wave
from ._targets import behaviour_targets, score_behaviour
from ._worm import (
    COMMAND_CLASSES,
    TOUCH_NEURONS,
    CommandSwitch,
    Worm,
    body_trajectory,
    simulate_worm,
    simulate_worm_protocol,
    simulate_worms,
    worm_from_atlas,
    worm_motor,
)

__all__ = [
    "COMMAND_CLASSES",
    "L_ACHR_SHARE",
    "NMJ_GENES",
    "TOUCH_NEURONS",
    "Body",
    "BodyTrajectory",
    "CommandSwitch",
    "DrivenTrajectory",
    "Medium",
    "Muscles",
    "ReflexCircuit",
    "ReflexTrajectory",
    "Worm",
    "adaptation_media",
    "animate_worm",
    "behaviour",
    "behaviour_targets",
    "body_trajectory",
    "eigenworm_variance",
    "gait",
    "gait_adaptation",
    "motion_direction",
    "muscles_from_atlas",
    "neuromuscular_perturbation",
    "plot_gait",
    "plot_worm",
    "reflex_circuit",
    "score_behaviour",
    "simulate_body",
    "simulate_driven",
    "simulate_reflex",
    "simulate_worm",
    "simulate_worm_protocol",
    "simulate_worms",
    "travelling_wave",
    "worm_from_atlas",
    "worm_motor",
]
