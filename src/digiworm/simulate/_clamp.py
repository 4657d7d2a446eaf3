"""Patch-clamp protocols on conductance-based cells: rest, current clamp, voltage clamp, I–V.

Times here are in ms and currents in pA, the units of single-neuron electrophysiology (see
:mod:`digiworm.models._conductance`). Every protocol runs all its conditions at once: the
state carries a leading condition axis and the cell's per-neuron parameters broadcast over it.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .._errors import DigiwormError
from ..models._conductance import CellState, ConductanceCell, resting_potentials
from ..models._conductance import run_current as _run_current
from ._simulate import _steps

__all__ = [
    "current_clamp",
    "depolarising_current",
    "resting_potentials",
    "resting_state",
    "run_currents",
    "steady_iv",
    "voltage_clamp",
]


def _count(total: float, step: float, what: str) -> int:
    return _steps(total, step, what, unit="ms")


@eqx.filter_jit
def _run_voltage(cell, y0, v_cmd, dt_ms, n_inner):
    def inner(y, v):
        y, i = cell.clamp_step(y, v, dt_ms)
        return y, i

    def outer(y, block):
        y, i = jax.lax.scan(inner, y, block)
        return y, i[-1]

    blocks = v_cmd.reshape(-1, n_inner, *v_cmd.shape[1:])
    return jax.lax.scan(outer, y0, blocks)


def _broadcast_state(y: CellState, k: int) -> CellState:
    return jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (k, *a.shape)), y)


def resting_state(
    cell: ConductanceCell, v0_mV: float = -70.0, settle_ms: float = 20000.0, dt_ms: float = 0.1
) -> CellState:
    """Integrate from the steady state at ``v0_mV`` with no input for ``settle_ms``.

    The default 20 s covers ten time constants of the slowest gates of the library (SHK-1
    inactivation, 1.4 s; UNC-103 activation, up to ~1.9 s).
    """
    n = _count(settle_ms, dt_ms, "settle")
    y0 = cell.steady_state(v0_mV)
    i_ext = jnp.zeros((n, cell.n_cells), dtype=y0.v_mV.dtype)
    y, _ = _run_current(cell, y0, i_ext, dt_ms, n)
    return y


def _pulse_train(t, onset, duration, amplitude):
    return np.where((t >= onset) & (t < onset + duration), amplitude, 0.0)


def current_clamp(
    cell: ConductanceCell,
    steps_pA,
    *,
    onset_ms: float,
    duration_ms: float,
    total_ms: float,
    extra_pulses=(),
    dt_ms: float = 0.025,
    save_dt_ms: float = 0.5,
    rest: CellState | None = None,
) -> xr.Dataset:
    """Inject current steps from rest; return ``v_mV`` and ``ca_mM`` (step, time, neuron).

    Parameters
    ----------
    cell : ConductanceCell
    steps_pA : sequence of float
        Step amplitudes, one condition each (every cell gets the same step).
    onset_ms, duration_ms, total_ms : float
        When the step starts, how long it lasts, and the recording length (from rest).
    extra_pulses : sequence of (pA, onset ms, duration ms)
        Pulses added to every condition (e.g. RMD's −15 pA pulse after the step).
    dt_ms, save_dt_ms : float
        Integration step and sampling interval.
    rest : CellState, optional
        Starting state (default :func:`resting_state` from −70 mV).
    """
    steps = np.asarray(steps_pA, dtype=float).reshape(-1)
    if steps.size == 0 or not np.all(np.isfinite(steps)):
        raise DigiwormError(f"current steps must be finite numbers in pA; got {steps_pA!r}")
    n_inner = _count(save_dt_ms, dt_ms, "save_dt")
    n_save = _count(total_ms, save_dt_ms, "recording")
    t = (np.arange(n_save * n_inner) + 0.5) * dt_ms  # current at each step's midpoint
    drive = _pulse_train(t[:, None], onset_ms, duration_ms, steps[None, :])
    for amp, on, dur in extra_pulses:
        drive = drive + _pulse_train(t, on, dur, amp)[:, None]
    y0 = resting_state(cell) if rest is None else rest
    i_ext = jnp.asarray(np.repeat(drive[:, :, None], cell.n_cells, axis=2), y0.v_mV.dtype)
    _, (v, ca) = _run_current(cell, _broadcast_state(y0, steps.size), i_ext, dt_ms, n_inner)
    time = (np.arange(n_save) + 1) * save_dt_ms
    coords = {"step_pA": steps, "time_ms": time, "neuron": list(cell.names)}
    dims = ("step_pA", "time_ms", "neuron")
    v0 = np.broadcast_to(np.asarray(y0.v_mV), (steps.size, cell.n_cells))
    return xr.Dataset(
        {
            "v_mV": (dims, np.moveaxis(np.asarray(v), 0, 1)),
            "ca_mM": (dims, np.moveaxis(np.asarray(ca), 0, 1)),
            "rest_mV": (("step_pA", "neuron"), v0),
        },
        coords=coords,
        attrs={
            "dt_ms": dt_ms,
            "onset_ms": onset_ms,
            "duration_ms": duration_ms,
            "source": cell.source,
        },
    )


def voltage_clamp(
    cell: ConductanceCell,
    steps_mV,
    *,
    hold_mV: float,
    onset_ms: float,
    duration_ms: float,
    total_ms: float,
    dt_ms: float = 0.025,
    save_dt_ms: float = 0.5,
) -> xr.Dataset:
    """Step the clamped potential from ``hold_mV``; return the clamp current (step, time, neuron).

    The protocol starts with gates and Ca²⁺ at their closed-form steady state at ``hold_mV``, as
    in a whole-cell recording held there long before the protocol.
    """
    steps = np.asarray(steps_mV, dtype=float).reshape(-1)
    if steps.size == 0 or not np.all(np.isfinite(steps)):
        raise DigiwormError(f"voltage steps must be finite numbers in mV; got {steps_mV!r}")
    n_inner = _count(save_dt_ms, dt_ms, "save_dt")
    n_save = _count(total_ms, save_dt_ms, "recording")
    t = (np.arange(n_save * n_inner) + 0.5) * dt_ms
    on = (t >= onset_ms) & (t < onset_ms + duration_ms)
    v_cmd = np.where(on[:, None], steps[None, :], hold_mV)
    y0 = cell.steady_state(hold_mV)
    y0 = _broadcast_state(y0, steps.size)
    v = jnp.asarray(np.repeat(v_cmd[:, :, None], cell.n_cells, axis=2), y0.v_mV.dtype)
    _, i = _run_voltage(cell, y0, v, dt_ms, n_inner)
    time = (np.arange(n_save) + 1) * save_dt_ms
    return xr.Dataset(
        {"i_pA": (("step_mV", "time_ms", "neuron"), np.moveaxis(np.asarray(i), 0, 1))},
        coords={"step_mV": steps, "time_ms": time, "neuron": list(cell.names)},
        attrs={"hold_mV": hold_mV, "onset_ms": onset_ms, "duration_ms": duration_ms},
    )


def steady_iv(cell: ConductanceCell, v_mV) -> xr.DataArray:
    """Closed-form steady-state I–V: current (pA) at each clamped potential (mV), per cell."""
    v = np.asarray(v_mV, dtype=float).reshape(-1)
    grid = jnp.asarray(np.repeat(v[:, None], cell.n_cells, axis=1))
    i = np.asarray(cell.steady_current(grid))
    return xr.DataArray(
        i, dims=("v_mV", "neuron"), coords={"v_mV": v, "neuron": list(cell.names)}, name="i_pA"
    )


def run_currents(model, currents_pA, *, dt_ms: float, save_dt_ms: float, y0=None) -> xr.Dataset:
    """Inject a current time course into a conductance model; return ``v_mV`` and ``ca_mM``.

    Parameters
    ----------
    model : ConductanceCell or C302Network
        Anything with ``step(y, i_pA, dt_ms)``, ``init_state`` or a given ``y0``, and ``names``.
    currents_pA : array (step, neuron)
        Current into each neuron during each integration step.
    dt_ms, save_dt_ms : float
        Step and sampling interval (``save_dt_ms`` a whole number of steps; the number of
        steps a whole number of samples).
    y0 : state, optional
        Start (default ``model.init_state()``).
    """
    currents = np.asarray(currents_pA, dtype=float)
    n = len(model.names)
    if currents.ndim != 2 or currents.shape[1] != n:
        raise DigiwormError(f"currents must be (step, {n} neurons); got shape {currents.shape}")
    if not np.all(np.isfinite(currents)):
        raise DigiwormError("currents contain NaN or infinite values")
    n_inner = _count(save_dt_ms, dt_ms, "save_dt")
    if currents.shape[0] % n_inner:
        raise DigiwormError(
            f"{currents.shape[0]} steps are not a whole number of {n_inner}-step samples"
        )
    y0 = model.init_state() if y0 is None else y0
    i_ext = jnp.asarray(currents, dtype=y0.v_mV.dtype)
    _, (v, ca) = _run_current(model, y0, i_ext, dt_ms, n_inner)
    time = (np.arange(v.shape[0]) + 1) * save_dt_ms
    dims = ("time_ms", "neuron")
    coords = {"time_ms": time, "neuron": list(model.names)}
    return xr.Dataset({"v_mV": (dims, np.asarray(v)), "ca_mM": (dims, np.asarray(ca))}, coords)


def depolarising_current(cell: ConductanceCell, delta_mV: float) -> np.ndarray:
    """Return the smallest current (pA) that takes each isolated cell ``delta_mV`` from rest.

    From the closed-form steady-state I–V over [V_rest, V_rest + Δ], V_rest the lowest stable
    resting potential: where I_ss rises monotonically there, I_ss(V_rest + Δ), the current that
    holds the cell at V_rest + Δ; where the I–V has a hump, any current below its top leaves the
    cell on a steady state short of the target, so the result is the top plus 0.01 pA, which
    carries the cell to V_rest + Δ or beyond (to the next stable branch). Δ < 0 mirrors this.
    A protocol sized this way drives every neuron by at least the same voltage whatever its
    input resistance (neurons differ a hundredfold), and never the wrong way.
    """
    if not (np.isfinite(delta_mV) and delta_mV != 0):
        raise DigiwormError(f"delta_mV must be a finite nonzero voltage; got {delta_mV}")
    rests = resting_potentials(cell)
    if any(len(r) == 0 for r in rests):
        bad = [n for n, r in zip(cell.names, rests) if len(r) == 0]
        raise DigiwormError(f"no stable rest for {bad[:5]}: cannot size a depolarising step")
    v0 = np.array([r[0] for r in rests])
    grid = v0[None, :] + np.linspace(0.0, delta_mV, 201)[:, None]
    i = np.asarray(eqx.filter_jit(ConductanceCell.steady_current)(cell, jnp.asarray(grid)))
    i = (i - i[0]) * np.sign(delta_mV)  # I_ss(V_rest) = 0 up to the root's interpolation error
    top, end = i.max(axis=0), i[-1]
    return np.sign(delta_mV) * np.where(top > end, top + 0.01, end)


def reference_trace_run(ref, total_ms: float | None = None, **kw):
    """Run ``ref`` (a :class:`~digiworm.models.ReferenceCell`) under its published protocol.

    The protocol is the one its published trace points were recorded with.

    A reference with no trace points runs its own step protocol from rest.
    """
    cell = ref.cell()
    rest = None if ref.trace_v0_mV is None else cell.steady_state(ref.trace_v0_mV)
    onset = ref.trace_onset_ms if ref.trace_points else ref.onset_ms
    last = max((t for _, t, _ in ref.trace_points), default=ref.total_ms)
    return current_clamp(
        cell,
        ref.steps_pA,
        onset_ms=onset,
        duration_ms=ref.duration_ms,
        total_ms=total_ms or max(ref.total_ms, last),
        extra_pulses=ref.extra_pulses,
        rest=rest,
        **kw,
    )
