"""The interface every digiworm model implements, and the fixed-step integrators."""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax

from .._errors import InvalidParameterError

__all__ = ["METHODS", "AbstractModel", "rk_step"]

#: Fixed-step explicit Runge–Kutta methods.
METHODS = ("euler", "heun", "rk4")


def rk_step(vector_field, t, y, u, dt, method: str = "heun"):
    """Advance ``y`` by one explicit Runge–Kutta step with the input ``u`` held constant.

    Parameters
    ----------
    vector_field : callable
        ``vector_field(t, y, u) -> dy/dt`` (a pytree like ``y``).
    t : float
        Time at the start of the step, s.
    y : pytree
        State.
    u : array
        Input held over the step (zero-order hold).
    dt : float
        Step, s.
    method : {"euler", "heun", "rk4"}
        Forward Euler (order 1), Heun (order 2) or classical RK4 (order 4).
    """

    def axpy(a, x, z):
        return jax.tree_util.tree_map(lambda xi, zi: zi + a * xi, x, z)

    k1 = vector_field(t, y, u)
    if method == "euler":
        return axpy(dt, k1, y)
    if method == "heun":
        k2 = vector_field(t + dt, axpy(dt, k1, y), u)
        return jax.tree_util.tree_map(lambda a, b, yi: yi + 0.5 * dt * (a + b), k1, k2, y)
    if method == "rk4":
        k2 = vector_field(t + 0.5 * dt, axpy(0.5 * dt, k1, y), u)
        k3 = vector_field(t + 0.5 * dt, axpy(0.5 * dt, k2, y), u)
        k4 = vector_field(t + dt, axpy(dt, k3, y), u)
        return jax.tree_util.tree_map(
            lambda a, b, c, d, yi: yi + dt / 6.0 * (a + 2 * b + 2 * c + d), k1, k2, k3, k4, y
        )
    raise InvalidParameterError(f"unknown method {method!r}; use one of {METHODS}")


class AbstractModel(eqx.Module):
    """A whole-brain model acting on one unbatched example (batch with ``jax.vmap``).

    Subclasses define the neuron ``names``, a state pytree, its ``vector_field`` and a
    ``readout``. ``output`` says what the readout is: ``"activity"`` (in [0, 1], passed through
    a calcium indicator to become ΔF/F) or ``"dff"`` (already fractional ΔF/F, e.g. a model
    identified from imaging data).
    """

    names: eqx.AbstractVar[tuple[str, ...]]
    output: eqx.AbstractClassVar[str]
    #: integration methods :meth:`stepper` accepts; the first is the default
    methods: ClassVar[tuple[str, ...]] = ("heun", "euler", "rk4")

    @property
    def n_neurons(self) -> int:
        """Number of neurons."""
        return len(self.names)

    @abc.abstractmethod
    def init_state(self):
        """Return the state at rest before any input (an unbatched pytree)."""

    @abc.abstractmethod
    def vector_field(self, t, y, u):
        """Return ``dy/dt`` at time ``t`` (s) for state ``y`` and input ``u`` (per neuron)."""

    @abc.abstractmethod
    def readout(self, y):
        """Return the per-neuron output of state ``y`` (activity or ΔF/F, see ``output``)."""

    def stepper(self, dt, method: str = "heun"):
        """Return ``step(t, y, u) -> y`` advancing ``dt`` s with ``u`` held over the step.

        The default is an explicit Runge–Kutta step of :meth:`vector_field`; linear models
        override it with their exact zero-order-hold discretisation (computed once here, not
        per step).
        """
        return lambda t, y, u: rk_step(self.vector_field, t, y, u, dt, method)

    def max_rate(self):
        """Upper bound (1/s) on the fastest linearised rate, for step-size checks; None = any."""
        return None
