"""The in-silico signal propagation atlas: stimulate every neuron in turn, image the brain.

The output has the layout of the measured atlas (``atlas.functional``): ``dff[responding,
stimulated]`` is the mean ΔF/F over the response window after the pulse onset minus the mean
over the baseline before it, so the validation code compares the two directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .._errors import DigiwormError
from ._protocol import DEFAULT_PULSE_S, Protocol
from ._simulate import simulate

__all__ = ["RESPONSE_WINDOW_S", "insilico_atlas", "response_change"]

#: The measured atlas's response window after the stimulus onset, s (Randi et al. 2023: the
#: 0-30 s mean ΔF/F after the stimulation).
RESPONSE_WINDOW_S = 30.0


def response_change(
    dff: xr.DataArray, onset_s: float, window_s: float = RESPONSE_WINDOW_S
) -> xr.DataArray:
    """Return the mean of ``dff`` over ``(onset, onset + window]`` minus its mean before onset.

    The one definition of a response that the in-silico atlas and the explorer's comparison
    with the measured atlas share (``dff`` has a ``time`` dimension, s).
    """
    t = dff["time"].to_numpy()
    before = np.flatnonzero(t < onset_s)
    after = np.flatnonzero((t > onset_s) & (t <= onset_s + window_s + 1e-9))
    if before.size == 0 or after.size == 0:
        raise DigiwormError(
            f"no samples before the onset ({onset_s:g} s) or in the {window_s:g} s after it"
        )
    return dff.isel(time=after).mean("time") - dff.isel(time=before).mean("time")


def insilico_atlas(
    model,
    neurons: Sequence[str] | None = None,
    *,
    amplitude=40.0,
    pulse_s: float = DEFAULT_PULSE_S,
    baseline_s: float = 5.0,
    window_s: float = 30.0,
    dt_s: float = 0.02,
    save_dt_s: float = 0.5,
    method: str | None = None,
    batch_size: int = 64,
    keep_traces: bool = False,
    progress: bool = False,
    subtract_control: bool = False,
    on_batch=None,
    **simulate_kwargs,
) -> xr.Dataset:
    """Stimulate each neuron alone and record every neuron's response.

    Parameters
    ----------
    model : AbstractModel
        The model to probe.
    neurons : sequence of str, optional
        Neurons to stimulate (default all).
    amplitude : float or mapping
        Drive of the stimulated neuron (model input units; mV for the graded network, pA for
        conductance networks); a mapping gives each stimulated neuron its own.
    pulse_s : float
        Pulse length, s.
    baseline_s, window_s : float
        Pre-stimulus baseline and post-onset response window, s (the measured atlas averages
        ΔF/F over 0–30 s after stimulation).
    dt_s, save_dt_s, method
        Passed to :func:`simulate`.
    batch_size : int
        Conditions per compiled call (the last batch is padded, so one compilation serves all).
    keep_traces : bool
        Also return ``traces[stimulated, time, responding]``.
    progress : bool
        Show a progress bar over batches.
    subtract_control : bool
        Run an unstimulated condition with every batch and subtract its change over the same
        windows (for models whose rest is not stationary, e.g. slowly oscillating cells).
    on_batch : callable, optional
        ``on_batch(done, total)`` after every batch (stimulations done so far, all); whatever
        it raises stops the run (a caller's cancellation).

    Returns
    -------
    xarray.Dataset, dims (responding, stimulated)
        ``dff`` (fractional), ``n_trials`` (1 per simulated pair), optional ``traces``.
    """
    names = list(model.names)
    stimulated = list(names if neurons is None else neurons)
    if not stimulated:
        raise DigiwormError("neurons is empty: give at least one neuron to stimulate (or None)")
    if batch_size < 1 + subtract_control:
        raise DigiwormError(f"batch_size must be >= {1 + subtract_control}; got {batch_size}")
    if isinstance(amplitude, dict):
        missing = [n for n in stimulated if n not in amplitude]
        if missing:
            raise DigiwormError(f"amplitude mapping lacks stimulated neuron(s) {missing[:5]}")
        amps = {n: float(amplitude[n]) for n in stimulated}
    else:
        amps = {n: float(amplitude) for n in stimulated}
    if not all(np.isfinite(a) for a in amps.values()):
        raise DigiwormError("stimulation amplitudes must be finite")
    batch_size = min(batch_size, len(stimulated) + subtract_control)  # no padding beyond need
    per_batch = batch_size - subtract_control
    duration = baseline_s + window_s
    batches = [stimulated[k : k + per_batch] for k in range(0, len(stimulated), per_batch)]
    responses, traces = [], []
    used_method = None
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("in-silico atlas", total=len(stimulated))
    try:
        for batch in batches:
            padded = batch + [[]] * (batch_size - len(batch))  # pad: same shape, one compile
            protocol = Protocol.single(
                names, padded, amplitude=1.0, onset_s=baseline_s, duration_s=pulse_s
            )
            scale = np.array([amps[t] if t else 0.0 for t in padded])[:, None]
            protocol = eqx.tree_at(
                lambda p: p.amplitude, protocol, protocol.amplitude * jnp.asarray(scale)
            )
            ds = simulate(
                model, protocol, duration, dt_s, save_dt_s=save_dt_s, method=method,
                **simulate_kwargs,
            )  # fmt: skip
            used_method = ds.attrs["method"]
            change = response_change(ds["dff"], baseline_s, window_s)
            dff = ds["dff"].isel(condition=slice(0, len(batch)))
            response = change.isel(condition=slice(0, len(batch))).to_numpy()
            if subtract_control:
                response = response - change.isel(condition=-1).to_numpy()[None, :]
            responses.append(response)
            if keep_traces:
                traces.append(dff.to_numpy())
            if bar is not None:
                bar.update(task, advance=len(batch))
            if on_batch is not None:
                on_batch(sum(len(r) for r in responses), len(stimulated))
    finally:
        if bar is not None:
            bar.stop()
    matrix = np.concatenate(responses, axis=0).T  # [responding, stimulated]
    out = xr.Dataset(
        {
            "dff": (("responding", "stimulated"), matrix, {"units": "fractional dF/F"}),
            "n_trials": (("responding", "stimulated"), np.ones_like(matrix, dtype=np.int64)),
        },
        coords={"responding": names, "stimulated": stimulated},
    )
    if keep_traces:
        out["traces"] = (
            ("stimulated", "time", "responding"),
            np.concatenate(traces, axis=0),
            {"units": "fractional dF/F"},
        )
        out = out.assign_coords(time=ds["time"].to_numpy())
    out.attrs.update(
        model=type(model).__name__,
        amplitude=amplitude if np.isscalar(amplitude) else "per neuron",
        subtract_control=int(subtract_control),
        pulse_s=pulse_s,
        baseline_s=baseline_s,
        window_s=window_s,
        dt_s=dt_s,
        save_dt_s=save_dt_s,
        method=used_method,  # what the run used (the model's default when None was asked)
        definition="mean dF/F over (onset, onset + window] minus mean over [0, onset)",
    )
    return out
