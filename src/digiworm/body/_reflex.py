r"""A first closed loop: B-type motor units driven by the body's stretch (no central rhythm).

The architecture of Boyle, Berri & Cohen (2012, Front Comput Neurosci 6:10): the ventral cord
is cut into ``n_units`` units along the body. Unit *i* has one state :math:`z_i`, with its
dorsal B-type neurons active as :math:`\sigma(\beta z_i)` and its ventral ones as
:math:`\sigma(-\beta z_i)`; the D-type neurons follow the opposite side's B-types (DD with VB,
VD with DB) and inhibit their own side's muscles through the neuromuscular junctions. Each
unit is bistable (self-excitation :math:`w > 1`) and is pushed by the stretch of the body just
*posterior* to it (its receptive field: from its own row over ``field_body_lengths``):

.. math:: \tau \dot z_i = -z_i + \tanh\!\left(w z_i + g\, \bar\kappa_i L / 7\right),

ventral bending (:math:`\bar\kappa_i > 0`, the mean curvature over the field) stretching the
dorsal side and so turning the dorsal units on. With the muscles and the body this makes a
relaxation oscillator at every unit: no rhythm is imposed. Its frequency is set by how fast the
body bends, so it falls as the medium's drag rises (Boyle, Berri & Cohen's account of gait
adaptation).

Each B- and D-type neuron joins the unit nearest the mean position of the muscles it synapses
onto. Every parameter here is *assumed*: chosen so that the loop oscillates, not fitted to the
measured gait (docs/body.md gives how far it is).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import DigiwormError
from ._muscles import ROWS, Muscles
from ._params import check_parameters
from ._rod import (
    Body,
    BodyTrajectory,
    Medium,
    _n_saves,
    _scan_saving,
    _stepper,
    initial_coordinates,
    trajectory,
)

__all__ = ["ReflexCircuit", "ReflexTrajectory", "reflex_circuit", "simulate_reflex"]

DIRECTIONS = ("forward", "backward")


class ReflexCircuit(eqx.Module):
    """Stretch-driven B-type units (see the module docstring)."""

    unit_of: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = eqx.field(static=True)
    """Per class (``DB``, ``VB``, ``DD``, ``VD``; ``DA``, ``VA`` backward): its neurons'
    indices and their units."""
    direction: str = eqx.field(static=True, default="forward")
    """``forward``: B-types, each unit pushed by the stretch posterior to it; ``backward``: the
    mirror image, A-types pushed by the stretch anterior to them."""
    n_units: int = eqx.field(static=True, default=12)
    field_body_lengths: float = eqx.field(static=True, default=1 / 12)
    gain: float = 8.0
    self_excitation: float = 1.5
    steepness: float = 6.0
    tau_s: float = 0.05

    evidence = {
        "architecture": "literature (Boyle, Berri & Cohen 2012)",
        "parameters": "assumed (chosen to oscillate, not fitted)",
    }

    def __check_init__(self):
        if self.direction not in DIRECTIONS:
            raise DigiwormError(
                f"direction must be one of {', '.join(DIRECTIONS)}; got {self.direction!r}"
            )
        check_parameters(
            self,
            positive=("field_body_lengths", "steepness", "tau_s"),
            finite=("gain", "self_excitation"),
        )

    def receptive_fields(self, body: Body) -> jax.Array:
        """Matrix ``(unit, joint)``: each unit's mean over its receptive field.

        The field lies posterior to the unit going forward, anterior to it going backward.
        """
        u = body.joint_positions()
        centres = (np.arange(self.n_units) + 0.5) / self.n_units
        half_row = 0.5 / self.n_units
        out = np.zeros((self.n_units, u.size))
        for i, c in enumerate(centres):
            if self.direction == "forward":
                sel = (u >= c - half_row) & (u <= c + self.field_body_lengths)
            else:
                sel = (u <= c + half_row) & (u >= c - self.field_body_lengths)
            out[i, sel] = 1.0 / max(sel.sum(), 1)
        return jnp.asarray(out)

    def step(self, z, kappa_field_per_body_length, dt_s):
        """Advance the unit states by ``dt_s`` (explicit Euler; ``tau_s`` ≫ the step)."""
        drive = jnp.tanh(self.self_excitation * z + self.gain * kappa_field_per_body_length / 7.0)
        return z + dt_s / self.tau_s * (drive - z)

    def activity(self, z, n_neurons: int):
        """Neuron activities ``(neuron,)`` in [0, 1] from the unit states."""
        dorsal = jax.nn.sigmoid(self.steepness * z)
        ventral = jax.nn.sigmoid(-self.steepness * z)
        a = jnp.zeros(n_neurons, z.dtype)
        side = {"DB": dorsal, "VB": ventral, "DA": dorsal, "VA": ventral, "DD": ventral,
                "VD": dorsal}  # fmt: skip
        for cls, neurons, units in self.unit_of:
            a = a.at[jnp.asarray(neurons)].set(side[cls][jnp.asarray(units)])
        return a


def reflex_circuit(muscles: Muscles, direction: str = "forward", **params) -> ReflexCircuit:
    """Place the DB, VB, DD and VD neurons in units by where their muscles are.

    The ``backward`` circuit has DA and VA instead of the B-types. A neuron's position is the
    mean position of the muscles it synapses onto (``muscles``, from
    :func:`~digiworm.body.muscles_from_atlas`); ``params`` set the circuit's parameters.
    """
    if direction not in DIRECTIONS:
        raise DigiwormError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
    n_units = int(params.get("n_units", 12))
    if n_units < 2:
        raise DigiwormError(f"n_units must be >= 2; got {n_units}")
    counts = np.asarray(muscles.excitatory + muscles.inhibitory)
    row_pos = (np.asarray(muscles.row) - 0.5) / ROWS
    total = counts.sum(axis=0)
    pos = (row_pos[:, None] * counts).sum(axis=0) / np.maximum(total, 1e-12)
    names = list(muscles.neurons)
    unit_of = []
    excitors = ("DB", "VB") if direction == "forward" else ("DA", "VA")
    for cls in (*excitors, "DD", "VD"):
        idx = np.array([i for i, n in enumerate(names)
                        if n.startswith(cls) and n[2:].isdigit() and total[i] > 0])  # fmt: skip
        units = np.clip((pos[idx] * n_units).astype(int), 0, n_units - 1)
        unit_of.append((cls, tuple(int(i) for i in idx), tuple(int(k) for k in units)))
    return ReflexCircuit(unit_of=tuple(unit_of), direction=direction, **params)


def start_state(body: Body, n_units: int, curvature_per_body_length: float, dtype):
    """Return the loop's start: the body bent in one travelling-wave shape, and unit states.

    The shape has the given amplitude (κL) and a wavelength of 0.65 body lengths; the units
    are in the matching phase (dorsal units on, ``z > 0``, where the shape is about to bend
    dorsally).
    """
    if not np.isfinite(curvature_per_body_length):
        raise DigiwormError(
            f"initial_curvature_per_body_length must be finite; got {curvature_per_body_length}"
        )
    u = body.joint_positions()
    kappa0 = curvature_per_body_length / body.length_mm * np.sin(2 * np.pi * u / 0.65)
    q0 = initial_coordinates(body, jnp.asarray(kappa0, dtype))
    centres = (np.arange(n_units) + 0.5) / n_units
    return q0, jnp.asarray(0.5 * np.cos(2 * np.pi * centres / 0.65), dtype)


class ReflexTrajectory(NamedTuple):
    """What :func:`simulate_reflex` returns."""

    body: BodyTrajectory
    activation: jax.Array
    """Muscle activations ``(time, muscle)``."""
    units: jax.Array
    """Unit states ``(time, unit)``."""


def simulate_reflex(
    body: Body,
    medium: Medium,
    muscles: Muscles,
    circuit: ReflexCircuit,
    duration_s: float,
    *,
    dt_s: float = 1e-3,
    save_every: int = 10,
    initial_curvature_per_body_length: float = 1.0,
) -> ReflexTrajectory:
    """Run the closed loop: units → motor neurons → muscles → body → stretch → units.

    The body starts bent in one travelling-wave shape of the given amplitude (wavelength 0.65
    body lengths) and the units in the matching phase; after that nothing is imposed.
    """
    n_save = _n_saves(duration_s, dt_s, save_every)
    dtype = jnp.asarray(0.0).dtype
    q0, z0 = start_state(body, circuit.n_units, initial_curvature_per_body_length, dtype)
    a0 = jnp.zeros(len(muscles.names), dtype)
    fields = circuit.receptive_fields(body).astype(dtype)
    side_maps = muscles.side_maps(body).astype(dtype)
    qs, acts, zs = _integrate(body, medium, muscles, circuit, fields, side_maps, q0, a0, z0,
                              dt_s, save_every, n_save)  # fmt: skip
    return ReflexTrajectory(
        body=trajectory(body, q0, qs, save_every * dt_s),
        activation=jnp.concatenate([a0[None], acts]),
        units=jnp.concatenate([z0[None], zs]),
    )


@eqx.filter_jit
def _integrate(
    body, medium, muscles, circuit, fields, side_maps, q0, a0, z0, dt_s, save_every, n_save
):
    body_step = _stepper(body, medium, q0.dtype)
    n_neurons = len(muscles.neurons)

    def step(carry, _):
        q, a, z = carry
        stretch = fields @ (body.curvature(q) * body.length_mm)
        z = circuit.step(z, stretch, dt_s)
        a_next = muscles.step(a, circuit.activity(z, n_neurons), dt_s)
        kappa, tone = muscles.bending(0.5 * (a + a_next), side_maps)
        q = body_step(q, kappa, dt_s, tone)
        return (q, a_next, z), None

    return _scan_saving(step, (q0, a0, z0), save_every, n_save, lambda c: c)
