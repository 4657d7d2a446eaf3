"""The body driven through its muscles by given motor-neuron activity (open loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .._errors import DigiwormError
from ._muscles import Muscles
from ._rod import (
    Body,
    BodyTrajectory,
    Medium,
    _checked_q0,
    _n_saves,
    _scan_saving,
    _stepper,
    initial_coordinates,
    trajectory,
)

__all__ = ["DrivenTrajectory", "simulate_driven"]


class DrivenTrajectory(NamedTuple):
    """What :func:`simulate_driven` returns."""

    body: BodyTrajectory
    activation: jax.Array
    """Muscle activations ``(time, muscle)`` at the body's samples, in [0, 1]."""


def simulate_driven(
    body: Body,
    medium: Medium,
    muscles: Muscles,
    activity: Callable,
    duration_s: float,
    *,
    dt_s: float = 1e-3,
    save_every: int = 10,
    q0=None,
    heading_rad: float = 0.0,
) -> DrivenTrajectory:
    """Move ``body`` with its muscles driven by the neuron activities ``activity(t_s)``.

    ``activity`` maps time (s) to every neuron's activity in [0, 1], in the order of
    ``muscles.neurons``, and must be traceable by JAX. Muscles start relaxed and the body
    straight (unless ``q0``). Each step advances the activations exactly for the drive at the
    step's middle, then the body under the curvature they set.
    """
    n_save = _n_saves(duration_s, dt_s, save_every)
    s0 = jnp.asarray(activity(0.0))
    if s0.shape != (len(muscles.neurons),):
        raise DigiwormError(
            f"activity(t) must give one value per neuron, shape ({len(muscles.neurons)},); "
            f"got {s0.shape}"
        )
    dtype = s0.dtype
    side_maps = muscles.side_maps(body).astype(dtype)
    zeros = jnp.zeros(body.n_segments - 1, dtype)
    q0 = initial_coordinates(body, zeros, heading_rad) if q0 is None else q0
    q0 = _checked_q0(body, q0, dtype)
    a0 = jnp.zeros(len(muscles.names), dtype)
    qs, acts = _integrate(body, medium, muscles, side_maps, activity, q0, a0, dt_s, save_every,
                          n_save)  # fmt: skip
    return DrivenTrajectory(
        body=trajectory(body, q0, qs, save_every * dt_s),
        activation=jnp.concatenate([a0[None], acts]),
    )


@eqx.filter_jit
def _integrate(body, medium, muscles, side_maps, activity, q0, a0, dt_s, save_every, n_save):
    body_step = _stepper(body, medium, q0.dtype)

    def step(carry, _):
        q, a, t = carry
        a_next = muscles.step(a, activity(t + 0.5 * dt_s), dt_s)
        kappa, tone = muscles.bending(0.5 * (a + a_next), side_maps)
        return (body_step(q, kappa, dt_s, tone), a_next, t + dt_s), None

    start = (q0, a0, jnp.zeros((), q0.dtype))
    return _scan_saving(step, start, save_every, n_save, lambda c: c[:2])
