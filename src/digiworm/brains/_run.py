"""One run of a larger brain, as ``digiworm simulate --connectome FILE`` does it.

The brain is an edge-list file (:func:`~digiworm.brains.load`), ``flyvis[:EXTENT]`` (the optic
lobe, :func:`~digiworm.brains.flyvis_optic_lobe`) or ``synthetic-flywire[:SCALE]``
(:func:`~digiworm.brains.synthetic_flywire`); the model is ``graded``
(:func:`~digiworm.brains.graded_from_connectome`: a pulse into the stimulated neurons, the
activity of every neuron written at ``save_dt_s``) or ``lif`` (Shiu et al.'s model: the
stimulated neurons get Poisson input, every neuron's rate per trial is written).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

from .._errors import DigiwormError

__all__ = ["BRAIN_MODELS", "build_brain_model", "load_brain", "run_brain"]

#: Models a connectome file can run.
BRAIN_MODELS = ("graded", "lif")
SYNTHETIC = "synthetic-flywire"
FLYVIS = "flyvis"


def is_brain_file(spec: str) -> bool:
    """Say whether ``--connectome`` names a file or the synthetic fly graph (not the worm's)."""
    s = str(spec)
    return s.startswith((SYNTHETIC, FLYVIS)) or s.endswith((".parquet", ".csv"))


def load_brain(spec: str, neurons=None, seed: int = 0):
    """Return the :class:`~digiworm.brains.Connectome` a ``--connectome`` value names."""
    from ._connectome import load
    from ._synthetic import synthetic_flywire

    s = str(spec)
    if s.startswith(FLYVIS):
        from ._flyvis import flyvis_optic_lobe

        _, _, extent = s.partition(":")
        if extent and not (extent.isdigit() and 1 <= int(extent) <= 15):
            raise DigiwormError(f"{s!r}: the extent after 'flyvis:' must be a whole number 1-15")
        return flyvis_optic_lobe(int(extent) if extent else 15)
    if s.startswith(SYNTHETIC):
        _, _, scale = s.partition(":")
        try:
            value = float(scale) if scale else 1.0
        except ValueError:
            raise DigiwormError(
                f"{s!r}: the scale after '{SYNTHETIC}:' must be a number in (0, 1]"
            ) from None
        return synthetic_flywire(value, seed=seed)
    if not Path(s).is_file():
        raise DigiwormError(f"connectome file {s!r} does not exist")
    return load(s, neurons)


def build_brain_model(connectome, model: str):
    """Return the network ``model`` (``graded`` or ``lif``) runs on ``connectome``."""
    if model == "lif":
        from ._lif import lif_from_connectome

        return lif_from_connectome(connectome)
    from ._graded import graded_from_connectome

    return graded_from_connectome(connectome)


def run_brain(
    connectome,
    model: str = "graded",
    *,
    stimulate=(),
    duration_s: float = 1.0,
    dt_s: float | None = None,
    amplitude: float | None = None,
    onset_s: float | None = None,
    pulse_s: float | None = None,
    trials: int = 1,
    seed: int = 0,
    save_dt_s: float = 0.05,
    net=None,
) -> xr.Dataset:
    """Run ``model`` on ``connectome``; return its Dataset (module docstring).

    ``net``: the network :func:`build_brain_model` built from ``connectome`` for ``model``
    (built here if not given; pass it when running many conditions on one brain).
    """
    import jax

    if model not in BRAIN_MODELS:
        from .._errors import UnknownNameError

        raise UnknownNameError("model for a connectome file", model, list(BRAIN_MODELS))
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise DigiwormError(f"duration must be a number of seconds > 0; got {duration_s}")
    stim = connectome.index(stimulate) if len(stimulate) else np.zeros(0, np.int64)
    ids = [str(i) for i in connectome.ids]
    attrs = {"connectome": connectome.source, "model": model,
             "stimulated": ",".join(str(s) for s in stimulate),
             "neurons": connectome.n_neurons, "edges": connectome.n_edges,
             "evidence": "; ".join(connectome.notes) or "as the file gives it"}  # fmt: skip
    if model == "lif":
        from ._lif import SHIU_PARAMS, simulate_lif

        dt = 1e-4 if dt_s is None else dt_s
        rate = SHIU_PARAMS["r_poi_hz"] if amplitude is None else amplitude
        net = build_brain_model(connectome, model) if net is None else net
        out = simulate_lif(net, duration_s, dt_s=dt,
                           stimulated=stim, rate_hz=rate, key=jax.random.PRNGKey(seed),
                           trials=trials)  # fmt: skip
        ds = xr.Dataset(
            {"rate_hz": (("trial", "neuron"), out["rate_hz"]),
             "count": (("trial", "neuron"), out["counts"])},
            coords={"trial": np.arange(trials), "neuron": ids},
            attrs={**attrs, "dt_s": dt, "poisson_rate_hz": rate, "seed": seed,
                   "parameters": str(SHIU_PARAMS),
                   "reference": "Shiu et al. 2024 Nature 634:210 (model and constants)"},
        )  # fmt: skip
        ds["rate_hz"].attrs["long_name"] = "spike rate over the run, per trial"
        return ds
    from ..simulate import Protocol, simulate

    if trials != 1:
        raise DigiwormError("the graded network is deterministic: trials must be 1")
    net = build_brain_model(connectome, model) if net is None else net
    dt = 0.01 if dt_s is None else dt_s
    onset = min(0.25 * duration_s, 1.0) if onset_s is None else onset_s
    pulse = 0.5 if pulse_s is None else pulse_s
    amp = 40.0 if amplitude is None else amplitude
    protocol = Protocol.single(net.names, [[ids[i] for i in stim]], amplitude=amp,
                               onset_s=onset, duration_s=pulse)  # fmt: skip
    ds = simulate(net, protocol, duration_s, dt, save_dt_s=save_dt_s)
    ds.attrs.update(
        {
            **attrs,
            "amplitude_mV": amp,
            "onset_s": onset,
            "pulse_s": pulse,
            "parameters": "graded defaults (uncalibrated, chosen for the worm)",
        }
    )
    return ds
