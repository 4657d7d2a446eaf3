r"""The worm: brain, command switch, motor circuits, muscles and body in one compiled loop.

What each layer does:

* **Brain.** Any digiworm model (:class:`~digiworm.models.AbstractModel`: the fitted graded or
  linear worm, the conductance network, …) receives the sensory input (a touch drives ALM and
  AVM, or PLM) and is stepped at its own step (20 ms by default).
* **Command switch.** The backward command interneurons (AVA, AVD, AVE) against the forward
  ones (AVB, PVC) set one bistable, noisy state :math:`r` (backward when :math:`r > 0`):

  .. math:: \tau \dot r = -r + \tanh\!\big(w r + g\,(\overline{\Delta x}_{back}
            - \overline{\Delta x}_{fwd}) + b\big) + \sigma \xi(t),

  where :math:`\Delta x` is each command neuron's output (activity or ΔF/F) minus its value at
  rest, averaged over the neurons still alive, and :math:`b < 0` makes forward the preferred
  state. Noise makes spontaneous reversals; the brain's command neurons bias them. This is the
  two-state picture of Roberts et al. (2016, eLife 5:e12572), with *assumed* parameters.
* **Motor circuits.** Two stretch-reflex circuits (:func:`~digiworm.body.reflex_circuit`):
  B-types going forward, A-types going backward. Both always follow the body; the switch's
  gate :math:`\sigma(k r)` picks whose output reaches the muscles. Each circuit's output is
  scaled by the share of its command input still alive: the connectome's synapses and gap
  junctions onto the B-types from AVB and PVC, onto the A-types from AVA, AVD and AVE (so
  killing AVA, which makes most of the A-types' command input, weakens backward crawling).
* **Muscles and body** as in :func:`~digiworm.body.simulate_reflex`, at 1 ms.

Ablated neurons are removed from the brain (:class:`~digiworm.experiments.Ablate`), from the
command averages and from the motor neurons' output.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .._errors import DigiwormError
from ._muscles import Muscles
from ._params import check_parameters
from ._reflex import ReflexCircuit, reflex_circuit, start_state
from ._rod import Body, BodyTrajectory, Medium, _stepper

__all__ = [
    "COMMAND_CLASSES",
    "TOUCH_NEURONS",
    "CommandSwitch",
    "Worm",
    "simulate_worm",
    "simulate_worm_protocol",
    "simulate_worms",
    "worm_from_atlas",
]

#: The command interneuron classes of each direction (Chalfie et al. 1985).
COMMAND_CLASSES = {"backward": ("AVA", "AVD", "AVE"), "forward": ("AVB", "PVC")}
#: The touch receptor neurons each touch drives (Chalfie et al. 1985).
TOUCH_NEURONS = {"anterior": ("ALML", "ALMR", "AVM"), "posterior": ("PLML", "PLMR")}


class CommandSwitch(eqx.Module):
    """The bistable forward/backward state driven by the command neurons (module docstring)."""

    backward: jax.Array
    """Weights ``(neuron,)`` averaging the backward command neurons (sum 1, or all 0)."""
    forward: jax.Array
    """The same for the forward command neurons."""
    rest: jax.Array
    """The brain's output at rest ``(neuron,)``."""
    gain: float = 10.0
    self_excitation: float = 2.0
    bias: float = -0.45
    noise: float = 0.8
    tau_s: float = 0.5
    steepness: float = 6.0

    evidence = {
        "architecture": "literature (Chalfie et al. 1985; Roberts et al. 2016: a two-state switch)",
        "parameters": "assumed (gain, self-excitation, bias, noise, time constant)",
    }

    def __check_init__(self):
        check_parameters(
            self,
            positive=("tau_s", "steepness"),
            nonnegative=("noise",),
            finite=("gain", "self_excitation", "bias"),
        )

    def drive(self, output):
        """Return the command input: mean backward minus mean forward change from rest."""
        delta = jnp.nan_to_num(output - self.rest)
        return self.gain * ((self.backward - self.forward) @ delta)

    def step(self, r, output, dt_s, xi):
        """Advance ``r`` by ``dt_s`` (Euler–Maruyama; ``xi`` a standard normal draw)."""
        target = jnp.tanh(self.self_excitation * r + self.drive(output) + self.bias)
        return r + dt_s / self.tau_s * (target - r) + self.noise * jnp.sqrt(dt_s) * xi

    def gate(self, r):
        """How much the backward circuit drives the muscles, in [0, 1]."""
        return jax.nn.sigmoid(self.steepness * r)


class Worm(eqx.Module):
    """Brain, command switch, motor circuits, muscles and body (see the module docstring)."""

    brain: eqx.Module
    switch: CommandSwitch
    forward: ReflexCircuit
    backward: ReflexCircuit
    muscles: Muscles
    body: Body
    alive: jax.Array
    """1 for a neuron present, 0 for an ablated one ``(neuron,)``."""
    forward_share: jax.Array
    """Each forward command neuron's share of the B-types' command input ``(neuron,)``."""
    backward_share: jax.Array
    """Each backward command neuron's share of the A-types' command input ``(neuron,)``."""
    neuron_position: tuple[float, ...] = eqx.field(
        static=True, converter=lambda x: tuple(float(v) for v in x)
    )
    """Each neuron's soma along the body, head 0 to tail 1 (the atlas's anatomy, scaled)."""
    brain_dt_s: float = eqx.field(static=True, default=0.02)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.brain.names)

    def ablate(self, neurons) -> Worm:
        """Return this worm without ``neurons`` (canonical ids): brain, commands and motor."""
        from ..experiments import Ablate

        names = list(self.names)
        unknown = [n for n in neurons if n not in names]
        if unknown:
            raise DigiwormError(f"cannot ablate {unknown}: not neurons of this worm")
        keep = np.asarray(self.alive).copy()
        keep[[names.index(n) for n in neurons]] = 0.0
        brain = Ablate(tuple(neurons))(self.brain)
        switch = eqx.tree_at(
            lambda s: (s.backward, s.forward),
            self.switch,
            (_weights(self.switch.backward != 0, keep), _weights(self.switch.forward != 0, keep)),
        )
        return eqx.tree_at(lambda w: (w.brain, w.switch, w.alive), self,
                           (brain, switch, jnp.asarray(keep)))  # fmt: skip

    def with_brain(self, brain) -> Worm:
        """Return this worm with ``brain`` (a perturbed copy of its own) in its place.

        The command switch keeps the rest it was built with, so a knockout's or a drug's shift
        of the command neurons from the unperturbed rest reaches it. Ablations already made
        stay: ablated neurons are ablated in ``brain`` too.
        """
        from ..experiments import Ablate

        if tuple(brain.names) != self.names:
            raise DigiwormError(
                f"the new brain must be a model of this worm's {len(self.names)} neurons in "
                f"its order; got one of {len(tuple(brain.names))}"
            )
        dead = tuple(n for n, a in zip(self.names, np.asarray(self.alive)) if a == 0)
        if dead:
            brain = Ablate(dead)(brain)
        return eqx.tree_at(lambda w: w.brain, self, brain)

    def command_shares(self) -> tuple[jax.Array, jax.Array]:
        """Return the alive share of the forward and the backward circuit's command input."""
        return self.forward_share @ self.alive, self.backward_share @ self.alive


def _weights(members, alive) -> jax.Array:
    w = np.asarray(members, float) * np.asarray(alive, float)
    return jnp.asarray(w / w.sum() if w.sum() > 0 else w)


def _class_members(names, classes) -> np.ndarray:
    from ..atlas._names import neuron_class

    return np.array([neuron_class(n, names) in classes for n in names])


#: The worm's motor defaults: the muscles' drive gain and maximal curvature and the reflex
#: circuits' parameters. *Chosen in sample*: the best of a quasi-random scan (192 points, then
#: 64 more about the best) scored on the crawling frequency, speed and wavelength and the
#: swimming frequency and speed of :func:`~digiworm.body.behaviour_targets` (docs/body.md).
#: The tone's stiffening is off: its scale is unmeasured and the scan ran without it. Set to 3
#: (full co-contraction quadruples the bending stiffness), it slows unc-25 to ×0.51 of the
#: wild type (×0.69 without) but shortens the swimming wave by 11 % and halves the reversals
#: read from the motion (docs/body.md); a scan with it is what would settle its value.
WORM_MUSCLES = {"drive_gain": 8.1, "max_curvature_per_mm": 15.1, "tone_stiffening": 0.0}
WORM_CIRCUIT = {"field_body_lengths": 0.25, "tau_s": 0.056, "gain": 5.7, "self_excitation": 1.77}
#: How the worm's motor defaults were obtained (carried into every behaviour summary).
WORM_MOTOR_EVIDENCE = (
    "chosen in sample: a quasi-random scan against the crawling frequency, speed and "
    "wavelength and the swimming frequency and speed targets (those scores are not "
    "independent tests)"
)


def worm_motor(atlas) -> tuple[Muscles, ReflexCircuit]:
    """Return the worm's default muscles and forward circuit.

    Their parameters are :data:`WORM_MUSCLES` and :data:`WORM_CIRCUIT`.
    """
    from ._muscles import muscles_from_atlas

    muscles = muscles_from_atlas(atlas, **WORM_MUSCLES)
    return muscles, reflex_circuit(muscles, "forward", **WORM_CIRCUIT)


def worm_from_atlas(
    atlas,
    brain,
    *,
    connectome: str = "cook2019",
    brain_dt_s: float = 0.02,
    muscles: Muscles | None = None,
    body: Body | None = None,
    switch: dict | None = None,
    circuit: dict | None = None,
) -> Worm:
    """Build a :class:`Worm` around ``brain`` (any model on the atlas's 302 neurons).

    ``muscles`` default to :func:`worm_motor`'s; ``switch`` and ``circuit`` set
    :class:`CommandSwitch` and :class:`~digiworm.body.ReflexCircuit` parameters (both
    circuits share them; default :data:`WORM_CIRCUIT`).
    """
    from ..models._graded import connectome_arrays
    from ..simulate import model_precision, rest_state

    names = tuple(brain.names)
    if names != tuple(atlas.names):
        raise DigiwormError(
            "the brain must be a model of the atlas's neurons in the atlas's order "
            f"({len(atlas.names)} neurons); got one of {len(names)}"
        )
    if not (math.isfinite(brain_dt_s) and 0 < brain_dt_s <= 0.1):
        raise DigiwormError(f"brain_dt_s must be in (0, 0.1] s; got {brain_dt_s}")
    muscles = worm_motor(atlas)[0] if muscles is None else muscles
    circuit = dict(WORM_CIRCUIT) if circuit is None else circuit
    body = Body() if body is None else body
    with model_precision(brain):
        rest = jnp.nan_to_num(brain.readout(rest_state(brain, dt_s=brain_dt_s)))
    alive = np.ones(len(names))
    back = _class_members(names, COMMAND_CLASSES["backward"])
    fwd = _class_members(names, COMMAND_CLASSES["forward"])
    sw = CommandSwitch(backward=_weights(back, alive), forward=_weights(fwd, alive), rest=rest,
                       **(switch or {}))  # fmt: skip
    chem, gap, _ = connectome_arrays(atlas, connectome)
    contacts = chem + gap  # [post, pre]

    def share(targets, commands):
        into = contacts[np.ix_(_class_members(names, targets), commands)].sum(axis=0)
        out = np.zeros(len(names))
        out[commands] = into / max(into.sum(), 1e-12)
        return jnp.asarray(out)

    return Worm(
        brain=brain,
        switch=sw,
        forward=reflex_circuit(muscles, "forward", **circuit),
        backward=reflex_circuit(muscles, "backward", **circuit),
        muscles=muscles,
        body=body,
        alive=jnp.asarray(alive),
        forward_share=share(("DB", "VB"), np.nonzero(fwd)[0]),
        backward_share=share(("DA", "VA"), np.nonzero(back)[0]),
        neuron_position=_positions(atlas, names),
        brain_dt_s=brain_dt_s,
    )


def _positions(atlas, names) -> np.ndarray:
    y = atlas.neurons.loc[list(names), "y"].to_numpy(dtype=float)
    return (y - np.nanmin(y)) / (np.nanmax(y) - np.nanmin(y))


def _touch_input(worm: Worm, touch, n_steps: int, touch_s: float, amplitude: float):
    """Return the brain's input ``(step, neuron)``: each touch drives its receptors."""
    names = list(worm.names)
    u = np.zeros((n_steps, len(names)))
    t = np.arange(n_steps) * worm.brain_dt_s
    for where, at_s in touch:
        if where not in TOUCH_NEURONS:
            raise DigiwormError(f"touch {where!r} is not one of {', '.join(TOUCH_NEURONS)}")
        if not (math.isfinite(at_s) and 0 <= at_s < n_steps * worm.brain_dt_s):
            raise DigiwormError(
                f"touch time {at_s} s is outside the run [0, {n_steps * worm.brain_dt_s:g}) s"
            )
        on = (t >= at_s) & (t < at_s + touch_s)
        for n in TOUCH_NEURONS[where]:
            u[on, names.index(n)] += amplitude
    return u


def simulate_worm(
    worm: Worm,
    medium: Medium,
    duration_s: float,
    *,
    key: jax.Array,
    touch: tuple[tuple[str, float], ...] = (),
    touch_s: float = 1.0,
    touch_amplitude: float = 1.0,
    dt_s: float = 1e-3,
    initial_curvature_per_body_length: float = 1.0,
) -> xr.Dataset:
    """Run the worm in ``medium`` for ``duration_s`` seconds; return what it did.

    ``touch`` lists ``(where, time_s)`` with ``where`` in :data:`TOUCH_NEURONS`: the touch
    receptors get ``touch_amplitude`` (the brain's input unit) for ``touch_s``. ``key`` seeds
    the command switch's noise. Samples are saved every brain step.

    Returns a Dataset over ``time`` (s) with the brain's output ``(time, neuron)`` (named
    ``dff`` or ``activity`` by the brain's ``output``; its kind is in ``attrs["output_kind"]``),
    ``muscle_activation`` ``(time, muscle)``, the body's ``xy_mm`` ``(time, segment, xy)``,
    ``angle_rad`` ``(time, segment)`` and ``curvature_per_mm`` ``(time, joint)``, the
    switch's ``command`` state and ``backward_gate`` ``(time,)``, and the ``touch`` input
    ``(time,)`` (the number of receptors driven).
    """
    maps, start, u, xi, n_inner = _prepare(
        worm, duration_s, key, touch, touch_s, touch_amplitude, dt_s,
        initial_curvature_per_body_length,
    )  # fmt: skip
    saved = _run(worm, medium, maps, start, u, xi, dt_s, n_inner)
    return _dataset(worm, medium, saved, u, touch)


def _prepare(worm, duration_s, key, touch, touch_s, touch_amplitude, dt_s, curvature):
    """Check a run's times; return :func:`_run`'s inputs.

    They are the circuits' receptive fields and the joint map, the start ``(brain at rest,
    switch forward, body, activations, forward and backward units)``, the brain's input, the
    switch's noise and the body steps per brain step.
    """
    from ..simulate import model_precision, rest_state

    if not (math.isfinite(duration_s) and duration_s > 0):
        raise DigiwormError(f"duration must be a number of seconds > 0; got {duration_s}")
    if not (math.isfinite(touch_s) and touch_s > 0):
        raise DigiwormError(f"touch_s must be a number of seconds > 0; got {touch_s}")
    n_inner = round(worm.brain_dt_s / dt_s)
    if n_inner < 1 or abs(n_inner * dt_s - worm.brain_dt_s) > 1e-9:
        raise DigiwormError(
            f"dt_s {dt_s} must divide the brain's step {worm.brain_dt_s} s into whole steps"
        )
    n_steps = int(round(duration_s / worm.brain_dt_s))
    if n_steps < 1:
        raise DigiwormError(f"duration {duration_s} s is shorter than one brain step")
    with model_precision(worm.brain):
        y0 = rest_state(worm.brain, dt_s=worm.brain_dt_s)
    dtype = jnp.asarray(0.0).dtype
    u = jnp.asarray(_touch_input(worm, touch, n_steps, touch_s, touch_amplitude), dtype)
    xi = jax.random.normal(key, (n_steps,), dtype)
    body = worm.body
    q0, z0 = start_state(body, worm.forward.n_units, curvature, dtype)
    a0 = jnp.zeros(len(worm.muscles.names), dtype)
    start = (y0, jnp.asarray(-1.0, dtype), q0, a0, z0, z0)
    maps = (worm.forward.receptive_fields(body).astype(dtype),
            worm.backward.receptive_fields(body).astype(dtype),
            worm.muscles.side_maps(body).astype(dtype))  # fmt: skip
    return maps, start, u, xi, n_inner


def simulate_worm_protocol(
    worm: Worm,
    protocol,
    duration_s: float,
    medium: Medium,
    *,
    key: jax.Array,
    dt_s: float = 1e-3,
    initial_curvature_per_body_length: float = 1.0,
) -> xr.Dataset:
    """Run the worm once per condition of ``protocol`` (vmapped); return what each did.

    ``protocol`` (:class:`~digiworm.simulate.Protocol`) drives the brain's neurons in the
    brain's input unit, as :func:`~digiworm.simulate.simulate` does for a brain alone. Every
    condition shares ``key``, so the command switch's noise is the same in each (paired
    conditions: differences come from the stimulation). This is what
    ``digiworm.simulate(worm, protocol, ...)`` calls.

    Returns the Dataset of :func:`simulate_worm` with a leading ``condition`` dimension
    (labelled by the protocol) and the brain's input ``stimulus`` ``(condition, time,
    neuron)`` in place of ``touch``; :func:`~digiworm.body.behaviour` reads one condition
    (``ds.isel(condition=c)``).
    """
    if tuple(np.asarray(protocol.amplitude).shape[1:]) != (len(worm.names),):
        raise DigiwormError(
            f"the protocol drives {np.asarray(protocol.amplitude).shape[1]} neurons; this "
            f"worm has {len(worm.names)}"
        )
    maps, start, u0, xi, n_inner = _prepare(
        worm, duration_s, key, (), 1.0, 0.0, dt_s, initial_curvature_per_body_length
    )
    t0 = jnp.arange(u0.shape[0], dtype=u0.dtype) * worm.brain_dt_s
    drive = jax.vmap(  # condition, then step: the pulse averaged over each brain step
        lambda a, on, d: jax.vmap(lambda t: protocol.drive(a, on, d, t, worm.brain_dt_s))(t0)
    )
    u = drive(protocol.amplitude, protocol.onset_s, protocol.duration_s).astype(u0.dtype)
    run = eqx.filter_vmap(_run, in_axes=(None, None, None, None, 0, None, None, None))
    saved = run(worm, medium, maps, start, u, xi, dt_s, n_inner)
    runs = [
        _dataset(worm, medium, tuple(x[c] for x in saved), u[c], ())
        .drop_vars("touch")
        .assign(stimulus=(("time", "neuron"), np.asarray(u[c])))
        for c in range(protocol.n_conditions)
    ]
    ds = xr.concat(runs, dim="condition", combine_attrs="override")
    ds = ds.assign_coords(condition=list(protocol.labels))
    ds["stimulus"].attrs["long_name"] = "the brain's input (the protocol, per brain step)"
    return ds


def simulate_worms(
    worms,
    medium: Medium,
    duration_s: float,
    *,
    key: jax.Array,
    touch: tuple[tuple[str, float], ...] = (),
    touch_s: float = 1.0,
    touch_amplitude=1.0,
    dt_s: float = 1e-3,
    initial_curvature_per_body_length: float = 1.0,
) -> list[xr.Dataset]:
    """Run several worms at once (one ``vmap``); return each one's :func:`simulate_worm` Dataset.

    The worms differ in their arrays only (perturbed brains, muscles, ablations: each
    :class:`Worm`'s leaves of the same shapes; every non-array field equal), and share the
    medium, the run's times, the touches and ``key`` (the same switch noise, so paired runs
    differ by their perturbations only). ``touch_amplitude`` is one number or one per worm.
    Each worm starts from its own brain's rest. The results equal ``simulate_worm`` run on
    each worm in turn, to rounding.
    """
    worms = list(worms)
    if not worms:
        raise DigiwormError("simulate_worms needs at least one worm")
    amplitudes = np.broadcast_to(np.asarray(touch_amplitude, dtype=float), (len(worms),))
    prepared = [
        _prepare(w, duration_s, key, touch, touch_s, amp, dt_s, initial_curvature_per_body_length)
        for w, amp in zip(worms, amplitudes)
    ]
    from ..simulate import stack_models

    xi, n_inner = prepared[0][3], prepared[0][4]
    stacked = stack_models(worms, "worms", "run them one at a time with simulate_worm")
    maps, start, u = (stack_models([p[i] for p in prepared], "worms' inputs") for i in range(3))
    # Only the arrays are batched (filter_vmap would map the worm's Python floats too).
    arrays, fixed = eqx.partition(stacked, eqx.is_array)
    saved = _run_batch(arrays, fixed, medium, maps, start, u, xi, dt_s, n_inner)
    return [
        _dataset(w, medium, tuple(x[i] for x in saved), u[i], touch) for i, w in enumerate(worms)
    ]


@eqx.filter_jit
def _run_batch(arrays, fixed, medium, maps, start, u, xi, dt_s, n_inner):
    def one(arrays_i, maps_i, start_i, u_i):
        return _run(eqx.combine(arrays_i, fixed), medium, maps_i, start_i, u_i, xi, dt_s, n_inner)

    return jax.vmap(one)(arrays, maps, start, u)


@eqx.filter_jit
def _run(worm, medium, maps, start, u, xi, dt_s, n_inner):
    body, muscles = worm.body, worm.muscles
    y0, r0, q0, a0, zf0, zb0 = start
    f_fields, b_fields, side_maps = maps
    brain_step = worm.brain.stepper(worm.brain_dt_s, worm.brain.methods[0])
    body_step = _stepper(body, medium, q0.dtype)
    brain_dtype = jax.tree_util.tree_leaves(y0)[0].dtype
    n = len(worm.names)
    share_f, share_b = worm.command_shares()

    def body_loop(gate):
        def step(carry, _):
            q, a, zf, zb = carry
            stretch = body.curvature(q) * body.length_mm
            zf = worm.forward.step(zf, f_fields @ stretch, dt_s)
            zb = worm.backward.step(zb, b_fields @ stretch, dt_s)
            act = ((1 - gate) * share_f * worm.forward.activity(zf, n)
                   + gate * share_b * worm.backward.activity(zb, n)) * worm.alive  # fmt: skip
            a_next = muscles.step(a, act, dt_s)
            kappa, tone = muscles.bending(0.5 * (a + a_next), side_maps)
            q = body_step(q, kappa, dt_s, tone)
            return (q, a_next, zf, zb), None

        return step

    def brain_loop(carry, inputs):
        t, y, r, q, a, zf, zb = carry
        u_t, xi_t = inputs
        y_new = brain_step(t.astype(brain_dtype), y, u_t.astype(brain_dtype))
        y = jax.tree_util.tree_map(lambda new, old: new.astype(old.dtype), y_new, y)
        out = worm.brain.readout(y).astype(q0.dtype)
        r = worm.switch.step(r, out, worm.brain_dt_s, xi_t)
        gate = worm.switch.gate(r)
        (q, a, zf, zb), _ = jax.lax.scan(body_loop(gate), (q, a, zf, zb), None, length=n_inner)
        carry = (t + worm.brain_dt_s, y, r, q, a, zf, zb)
        return carry, (out, r, gate, q, a)

    carry0 = (jnp.zeros((), q0.dtype), y0, r0, q0, a0, zf0, zb0)
    return jax.lax.scan(brain_loop, carry0, (u, xi))[1]


def _dataset(worm: Worm, medium: Medium, saved, u, touch) -> xr.Dataset:
    out, r, gate, q, a = (np.asarray(x) for x in saved)
    body = worm.body
    t = (np.arange(out.shape[0]) + 1) * worm.brain_dt_s
    xy = np.asarray(jax.vmap(body.centres)(jnp.asarray(q)))
    kappa = np.asarray(jax.vmap(body.curvature)(jnp.asarray(q)))
    output_name = getattr(worm.brain, "output", "activity")
    ds = xr.Dataset(
        {
            output_name: (("time", "neuron"), out),
            "muscle_activation": (("time", "muscle"), a),
            "xy_mm": (("time", "segment", "xy"), xy),
            "angle_rad": (("time", "segment"), q[:, 2:]),
            "curvature_per_mm": (("time", "joint"), kappa),
            "command": ("time", r),
            "backward_gate": ("time", gate),
            "touch": ("time", (np.asarray(u) > 0).sum(axis=1)),
        },
        coords={
            "time": t,
            "neuron": list(worm.names),
            "neuron_position": ("neuron", np.asarray(worm.neuron_position, float)),
            "muscle": list(worm.muscles.names),
            "segment": np.arange(body.n_segments),
            "xy": ["x", "y"],
            "joint": body.joint_positions(),
        },
        attrs={
            "medium": medium.name,
            "drag_normal_Ns_per_m2": float(medium.drag_normal_Ns_per_m2),
            "drag_tangential_Ns_per_m2": float(medium.drag_tangential_Ns_per_m2),
            "body_length_mm": float(body.length_mm),
            "output_kind": output_name,
            "touch": ";".join(f"{w}@{s:g}" for w, s in touch),
            "ablated": ",".join(n for n, k in zip(worm.names, np.asarray(worm.alive)) if k == 0),
        },
    )
    ds[output_name].attrs["long_name"] = f"the brain's output ({output_name})"
    ds["backward_gate"].attrs["long_name"] = "share of the muscles' drive from the backward circuit"
    return ds


def body_trajectory(ds: xr.Dataset) -> BodyTrajectory:
    """Return the :class:`~digiworm.body.BodyTrajectory` of a :func:`simulate_worm` run."""
    xy = ds["xy_mm"].values
    q = np.concatenate([xy.mean(axis=1), ds["angle_rad"].values], axis=1)
    return BodyTrajectory(
        t_s=jnp.asarray(ds["time"].values),
        q=jnp.asarray(q),
        xy_mm=jnp.asarray(xy),
        curvature_per_mm=jnp.asarray(ds["curvature_per_mm"].values),
    )
