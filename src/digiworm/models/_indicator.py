r"""Calcium-indicator forward model: neural activity → free calcium → GCaMP → ΔF/F.

Two first-order stages per neuron, so any model's output can be compared with imaging in the
units of the data:

.. math::

    \tau_{Ca}\,\dot c = c_{rest} + c_{gain}\,a(t) - c, \qquad
    \dot b = k_{on}\, c^{n} (1 - b) - k_{off}\, b,

with activity :math:`a \in [0, 1]`, free calcium :math:`c` (µM) and the indicator's bound
fraction :math:`b`. At equilibrium :math:`b = c^n / (c^n + K_d^n)`, so
:math:`k_{on} = k_{off} / K_d^n`. Fluorescence is
:math:`F = F_{min}\,(1 + (R - 1)\, b)` with dynamic range :math:`R = F_{max}/F_{min}`, and
:math:`\Delta F/F = (F - F_0)/F_0` against the resting :math:`F_0`; optional photobleaching
multiplies F by :math:`e^{-t/\tau_{bleach}}`.

GCaMP6s constants (Chen et al. 2013, Nature 499:295-300, purified protein): :math:`K_d` =
144 nM, Hill coefficient 2.90, dynamic range 63.2. The unbinding rate is set by GCaMP6s's
half-decay after a single action potential, 1.8 s in the same paper (so
:math:`k_{off} = \ln 2 / 1.8` s⁻¹). Resting calcium (50 nM), the activity-to-calcium gain and
the calcium time constant are digiworm's assumptions: 40 nM at zero activity plus 40 nM at
full activity keeps a resting neuron (activity ≈ 0.2) near 50 nM and puts a fully active one
at ΔF/F ≈ 2, the range of GCaMP6s responses in whole-brain worm imaging; fit them if the data
call for it.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["CalciumIndicator", "GCaMP6s", "LinearIndicator"]


class CalciumIndicator(eqx.Module):
    """A two-stage calcium and indicator-binding model (see module docstring).

    Parameters
    ----------
    kd_uM : float
        Indicator dissociation constant, µM.
    hill : float
        Hill coefficient of calcium binding.
    dynamic_range : float
        :math:`F_{max}/F_{min}`.
    koff_per_s : float
        Unbinding rate, 1/s.
    tau_ca_s : float
        Free-calcium time constant, s.
    ca_rest_uM, ca_gain_uM : float
        Calcium at zero activity and the calcium added at full activity (a = 1), µM.
    tau_bleach_s : float
        Photobleaching time constant, s (``inf`` = none).
    """

    kd_uM: Float[Array, ""]
    hill: Float[Array, ""]
    dynamic_range: Float[Array, ""]
    koff_per_s: Float[Array, ""]
    tau_ca_s: Float[Array, ""]
    ca_rest_uM: Float[Array, ""]
    ca_gain_uM: Float[Array, ""]
    tau_bleach_s: Float[Array, ""]

    def __init__(
        self,
        kd_uM: float = 0.144,
        hill: float = 2.90,
        dynamic_range: float = 63.2,
        koff_per_s: float = math.log(2.0) / 1.8,
        tau_ca_s: float = 0.2,
        ca_rest_uM: float = 0.04,
        ca_gain_uM: float = 0.04,
        tau_bleach_s: float = float("inf"),
    ):
        self.kd_uM = jnp.asarray(kd_uM, dtype=float)
        self.hill = jnp.asarray(hill, dtype=float)
        self.dynamic_range = jnp.asarray(dynamic_range, dtype=float)
        self.koff_per_s = jnp.asarray(koff_per_s, dtype=float)
        self.tau_ca_s = jnp.asarray(tau_ca_s, dtype=float)
        self.ca_rest_uM = jnp.asarray(ca_rest_uM, dtype=float)
        self.ca_gain_uM = jnp.asarray(ca_gain_uM, dtype=float)
        self.tau_bleach_s = jnp.asarray(tau_bleach_s, dtype=float)

    @property
    def kon(self) -> Float[Array, ""]:
        """Binding rate constant :math:`k_{off}/K_d^n`, 1/(s·µM^n)."""
        return self.koff_per_s / self.kd_uM**self.hill

    def bound_equilibrium(self, ca_uM: Float[Array, "*n"]) -> Float[Array, "*n"]:
        """Return the equilibrium bound fraction :math:`c^n/(c^n + K_d^n)`."""
        cn = ca_uM**self.hill
        return cn / (cn + self.kd_uM**self.hill)

    def calcium_target(self, activity: Float[Array, "*n"]) -> Float[Array, "*n"]:
        """Return the free calcium (µM) that activity ``a`` drives towards."""
        return self.ca_rest_uM + self.ca_gain_uM * activity

    def init(self, activity: Float[Array, " n"]) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
        """Return the steady state ``(ca_uM, bound)`` for constant ``activity``."""
        ca = self.calcium_target(activity)
        return ca, self.bound_equilibrium(ca)

    def vector_field(self, t, state, activity: Float[Array, " n"]):
        """Return ``(dca/dt, db/dt)`` for state ``(ca_uM, bound)`` driven by ``activity``."""
        ca, bound = state
        dca = (self.calcium_target(activity) - ca) / self.tau_ca_s
        db = self.kon * jnp.maximum(ca, 0.0) ** self.hill * (1.0 - bound) - self.koff_per_s * bound
        return dca, db

    def fluorescence(self, bound: Float[Array, "*n"], t_s=0.0) -> Float[Array, "*n"]:
        """Return fluorescence in units of :math:`F_{min}` (bleaching applied at time ``t_s``)."""
        return (1.0 + (self.dynamic_range - 1.0) * bound) * jnp.exp(-t_s / self.tau_bleach_s)

    def dff(self, bound: Float[Array, "*n"], bound0: Float[Array, "*n"], t_s=0.0):
        """Return ΔF/F (fractional) of ``bound`` against the resting ``bound0`` (unbleached)."""
        f0 = self.fluorescence(bound0)
        return (self.fluorescence(bound, t_s) - f0) / f0


def GCaMP6s(**overrides) -> CalciumIndicator:  # noqa: N802 - reads like the indicator's name
    """Return GCaMP6s (Chen et al. 2013 constants), with any parameter overridden by keyword."""
    return CalciumIndicator(**overrides)


class LinearIndicator(eqx.Module):
    r"""ΔF/F linear in activity, with the indicator's two time constants.

    .. math::

        \tau_{Ca}\,\dot c = a - c, \qquad \tau_{decay}\,\dot b = c - b, \qquad
        \Delta F/F = g\,(b - b_0).

    For a model identified by its small-signal response, such as the fitted graded network
    (:func:`digiworm.fit.graded_from_linear`), the gain :math:`g` (ΔF/F per unit activity) is part
    of the identification. The nonlinear :class:`CalciumIndicator` with its assumed calcium
    scale cannot reach it: at rest, GCaMP6s's steepest possible slope is about 16 ΔF/F per unit
    activity, and the fitted network needs about 128. The time constants default to
    GCaMP6s's (calcium 0.2 s, unbinding ``1.8 s / ln 2``), so the traces keep the indicator's
    smoothing.
    """

    gain: Float[Array, ""]
    tau_ca_s: Float[Array, ""]
    tau_decay_s: Float[Array, ""]

    def __init__(self, gain: float, tau_ca_s: float = 0.2, tau_decay_s: float = 1.8 / math.log(2)):
        if not (math.isfinite(gain) and gain > 0):
            from .._errors import InvalidParameterError

            raise InvalidParameterError(f"indicator gain must be a finite number > 0; got {gain}")
        self.gain = jnp.asarray(gain, dtype=float)
        self.tau_ca_s = jnp.asarray(tau_ca_s, dtype=float)
        self.tau_decay_s = jnp.asarray(tau_decay_s, dtype=float)

    def init(self, activity):
        """Return the steady state for constant ``activity``: both stages equal to it."""
        return activity, activity

    def vector_field(self, t, state, activity):
        """Return the two stages' rates of change."""
        c, b = state
        return (activity - c) / self.tau_ca_s, (c - b) / self.tau_decay_s

    def dff(self, bound, bound0, t_s=0.0):
        """Return ΔF/F: the gain times the second stage's change from rest."""
        return self.gain * (bound - bound0)
