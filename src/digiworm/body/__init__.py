"""The worm's body: a planar rod in a resistive medium, and the behaviour read off it.

:func:`simulate_body` moves a :class:`Body` in a :class:`Medium` under a preferred curvature
(an imposed wave, :func:`travelling_wave`, or the muscles' output); :func:`gait` and
:func:`eigenworm_variance` read the behaviour as trackers do.
"""

from ._readouts import eigenworm_variance, gait
from ._rod import Body, BodyTrajectory, Medium, simulate_body, travelling_wave

__all__ = [
    "Body",
    "BodyTrajectory",
    "Medium",
    "eigenworm_variance",
    "gait",
    "simulate_body",
    "travelling_wave",
]
