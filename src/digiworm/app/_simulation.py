"""One simulation request, from validation to the written result.

The CLI (``digiworm simulate``) and the explorer (``digiworm serve``, its atlas jobs included)
both describe a run as a :class:`SimulationRequest`, validate it against the atlas
(:meth:`SimulationRequest.check`), build the perturbed model (:func:`build_model`) and run it
(:func:`run_request`); neither calls the other.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .._errors import DigiwormError
from .._io import write_with

__all__ = [
    "CONDUCTANCE_MAX_DT_S",
    "DEFAULT_ONSET_S",
    "FITTED_KINDS",
    "MODEL_KINDS",
    "UNCALIBRATED_KINDS",
    "SimulationRequest",
    "build_model",
    "check_output_path",
    "default_dt_s",
    "default_onset_s",
    "model_evidence",
    "parse_drug",
    "run_request",
    "write_netcdf",
]

FITTED_KINDS = ("graded", "linear", "kernel")
"""The shipped fitted worm (:func:`digiworm.models.fitted`), identified from the whole atlas."""
UNCALIBRATED_KINDS = ("graded-uncalibrated", "linear-uncalibrated", "kernel-atlas")
"""The models built from the atlas without fitting: the graded network and the linear network
with assumed conductance scales, and the measured response kernels replayed."""
MODEL_KINDS = (*FITTED_KINDS, "conductance", *UNCALIBRATED_KINDS)
#: The largest step the conductance level takes (its spikes and Ca²⁺ need it), s.
CONDUCTANCE_MAX_DT_S = 0.0005
#: The unfitted stand-in for each fitted kind (for another connectome).
UNCALIBRATED_OF = {"graded": "graded-uncalibrated", "linear": "linear-uncalibrated",
                   "kernel": "linear-uncalibrated"}  # fmt: skip
#: Default integration step, s, where not 0.02 s.
DEFAULT_DT_S = {"conductance": CONDUCTANCE_MAX_DT_S}
#: Default stimulus onset, s (the measured atlas's pre-stimulus baseline; shorter runs: 1/4).
DEFAULT_ONSET_S = 5.0


def parse_drug(spec: str) -> tuple[str, float]:
    """Parse ``name:dose_uM`` (e.g. ``aldicarb:1000``)."""
    name, sep, dose = spec.partition(":")
    if not sep or not name.strip():
        raise DigiwormError(f"drug {spec!r} must be NAME:DOSE_uM, e.g. aldicarb:1000")
    try:
        value = float(dose)
    except ValueError:
        raise DigiwormError(f"drug dose {dose!r} in {spec!r} is not a number (uM)") from None
    return name.strip(), value


def check_output_path(path: Path, suffixes: tuple[str, ...]) -> Path:
    """Fail early if ``path`` has the wrong suffix or its folder is missing or not writable."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise DigiwormError(f"output {str(path)!r} must end in {' or '.join(suffixes)}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DigiwormError(f"output folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise DigiwormError(f"output folder {str(folder)!r} is not writable")
    if path.is_dir():
        raise DigiwormError(f"output {str(path)!r} is a folder, not a file")
    return path


def _finite_positive(name: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise DigiwormError(f"{name} must be a finite number > 0; got {value}")
    return value


@dataclass
class SimulationRequest:
    """Everything ``digiworm simulate`` was asked for, validated by :meth:`check`."""

    model: str = "graded"
    stimulate: tuple[str, ...] = ()
    duration_s: float = 30.0
    dt_s: float | None = None
    """Default: :func:`default_dt_s` of the model."""
    amplitude: float | None = None
    onset_s: float | None = None
    pulse_s: float | None = None
    """Default: the fitted worm is driven from the onset to the end (it was identified from
    the steady state of sustained input, which is what its 0–30 s window means equal); other
    models get the simulator's default pulse (``digiworm.simulate.DEFAULT_PULSE_S``)."""
    ablate: tuple[str, ...] = ()
    knockout: tuple[str, ...] = ()
    drugs: tuple[tuple[str, float], ...] = ()
    modulation: tuple[tuple[str, float], ...] = ()
    """A neuromodulatory state: ``(amine, level)`` pairs (``experiments.Neuromodulation``)."""
    connectome: str = "cook2019"
    spontaneous: bool = False
    noise_sigma: float = 2.0
    seed: int | None = None
    atlas_mode: bool = False

    def check(self, atlas) -> SimulationRequest:
        """Validate names and numbers against the atlas before any compute; return self."""
        if self.model not in MODEL_KINDS and not Path(self.model).is_file():
            raise DigiwormError(
                f"model {self.model!r} is neither one of {', '.join(MODEL_KINDS)} nor an "
                "existing model file"
            )
        _finite_positive("duration", self.duration_s)
        if self.dt_s is None:
            self.dt_s = default_dt_s(self.model)
        _finite_positive("dt", self.dt_s)
        if self.dt_s >= self.duration_s:
            raise DigiwormError(f"dt ({self.dt_s:g} s) must be smaller than the duration")
        if self.model == "conductance" and self.dt_s > CONDUCTANCE_MAX_DT_S:
            raise DigiwormError(
                f"the conductance model needs dt <= {CONDUCTANCE_MAX_DT_S:g} s; got {self.dt_s:g}"
            )
        if self.onset_s is None:
            self.onset_s = default_onset_s(self.duration_s)
        if self.pulse_s is None:
            from ..simulate import DEFAULT_PULSE_S

            sustained = self.model in FITTED_KINDS and self.duration_s > self.onset_s
            self.pulse_s = self.duration_s - self.onset_s if sustained else DEFAULT_PULSE_S
        _finite_positive("pulse length", self.pulse_s)
        stimulating = bool(self.stimulate) or self.atlas_mode
        if stimulating and not (
            math.isfinite(self.onset_s) and 0 <= self.onset_s < self.duration_s
        ):
            raise DigiwormError(
                f"onset must be in [0, duration) = [0, {self.duration_s:g}) s; got "
                f"{self.onset_s} (set it with --onset, e.g. --onset "
                f"{default_onset_s(self.duration_s):g})"
            )
        if self.amplitude is not None and not math.isfinite(self.amplitude):
            raise DigiwormError(f"amplitude must be finite; got {self.amplitude}")
        self.stimulate = tuple(atlas.neuron_list(list(self.stimulate)))
        self.ablate = tuple(atlas.neuron_list(list(self.ablate)))
        self.knockout = tuple(atlas.gene(g) for g in self.knockout)
        if self.modulation:
            from ..experiments import Neuromodulation

            self.modulation = Neuromodulation(dict(self.modulation), atlas).levels
        if self.connectome not in _connectomes():
            from .._errors import UnknownNameError

            raise UnknownNameError("connectome", self.connectome, _connectomes())
        if self.model in FITTED_KINDS and self.connectome != "cook2019":
            raise DigiwormError(
                f"the fitted {self.model} worm was identified on the cook2019 connectome; for "
                f"--connectome {self.connectome} use --model {UNCALIBRATED_OF[self.model]} "
                "(not fitted)"
            )
        if self.spontaneous and self.seed is None:
            raise DigiwormError("--spontaneous needs --seed N (results are reproducible per seed)")
        if self.spontaneous:
            _finite_positive("noise sigma", self.noise_sigma)
        if self.atlas_mode and self.spontaneous:
            raise DigiwormError("--atlas and --spontaneous cannot be combined: choose one")
        if not (self.stimulate or self.spontaneous or self.atlas_mode):
            raise DigiwormError("nothing to do: give --stimulate NEURONS, --spontaneous or --atlas")
        return self


def default_dt_s(model: str) -> float:
    """Return the default integration step of the model kind ``model``, s.

    0.02 s unless :data:`DEFAULT_DT_S` names the kind.
    """
    return DEFAULT_DT_S.get(model, 0.02)


def default_onset_s(duration_s: float) -> float:
    """Return the default stimulus onset for a run of ``duration_s`` seconds.

    5 s (the measured atlas's pre-stimulus baseline) when the run is at least 20 s long, else a
    quarter of the duration, so that every valid duration has a valid default onset.

    Examples
    --------
    >>> default_onset_s(30.0), default_onset_s(5.0)
    (5.0, 1.25)
    """
    return min(DEFAULT_ONSET_S, duration_s / 4)


def _connectomes() -> list[str]:
    from ..atlas import CONNECTOMES

    return list(CONNECTOMES)


def build_model(req: SimulationRequest, atlas, base=None, absent=()):
    """Return the (perturbed) model the request describes (``base``: the unperturbed model).

    ``absent``: genes lost besides the request's knockouts, which its drugs see (a receptor
    mutant resists its agonist) although the model has no knockout of its own for them.
    """
    from ..experiments import Ablate, Drug, Knockout, Neuromodulation
    from ..models import (
        fitted,
        graded_from_atlas,
        kernel_from_atlas,
        linear_from_atlas,
        load_model,
    )

    if base is not None:
        model = base
    elif req.model in FITTED_KINDS:
        model = fitted(req.model)
    elif req.model == "conductance":
        from ..models import conductance_network_from_atlas

        model = conductance_network_from_atlas(atlas, connectome=req.connectome)
    elif req.model == "graded-uncalibrated":
        model = graded_from_atlas(atlas, connectome=req.connectome)
    elif req.model == "linear-uncalibrated":
        model = linear_from_atlas(atlas, connectome=req.connectome)
    elif req.model == "kernel-atlas":
        model = kernel_from_atlas(atlas)  # float64 (kernels cancel large factors), no global flag
    else:
        import jax

        with jax.enable_x64(True):  # thread-local: a saved model keeps its own dtypes
            model = load_model(req.model)
    # build every transform first so that a bad gene or drug fails before any compute
    transforms = [Knockout(g, atlas) for g in req.knockout]
    lost = (*req.knockout, *absent)
    transforms += [Drug(name, dose, atlas, absent=lost) for name, dose in req.drugs]
    if req.modulation:
        transforms.append(Neuromodulation(dict(req.modulation), atlas))
    if req.ablate:
        transforms.append(Ablate(req.ablate))
    from ..simulate import model_precision

    with model_precision(model):  # a float64 model stays float64 through its perturbations
        for transform in transforms:
            model = transform(model)
    return model


def run_request(
    req: SimulationRequest,
    atlas,
    progress: bool = True,
    model=None,
    *,
    on_batch=None,
    batch_size: int = 64,
) -> xr.Dataset:
    """Run a validated request and return the result Dataset (not yet written).

    Parameters
    ----------
    req : SimulationRequest
        Checked with :meth:`SimulationRequest.check`.
    atlas : digiworm.atlas.Atlas
        The atlas the request was checked against.
    progress : bool
        Show a progress bar over the in-silico atlas's batches (``req.atlas_mode``).
    model : AbstractModel, optional
        The request's model already built (:func:`build_model`); built here if None.
    on_batch : callable, optional
        In-silico atlas only: ``on_batch(done, total)`` after each batch; whatever it raises
        stops the run (a caller's cancellation).
    batch_size : int
        In-silico atlas only: stimulations per compiled call.

    Returns
    -------
    xarray.Dataset
        ``dff(condition, time, neuron)`` (one run) or ``dff(responding, stimulated)`` (the
        atlas), with the request in its attributes.
    """
    from ..simulate import model_precision

    model = build_model(req, atlas) if model is None else model
    with model_precision(model):  # the protocol in the model's precision (float64 kernels)
        return _run_request(req, model, progress, on_batch, batch_size)


def _run_request(req: SimulationRequest, model, progress, on_batch, batch_size) -> xr.Dataset:
    import jax

    from ..experiments import drug_evidence
    from ..simulate import Noise, Protocol, insilico_atlas, simulate

    kind = req.model if req.model in MODEL_KINDS else type(model).__name__
    amplitude = req.amplitude
    per_neuron = None

    if amplitude is None and hasattr(model, "cells"):  # conductance level: pA per neuron
        from ..simulate import depolarising_current

        per_neuron = np.asarray(depolarising_current(model.cells, 20.0))
        amplitude = "20 mV above each neuron's rest"
    elif amplitude is None:
        amplitude = stimulation_unit(model)
    if req.atlas_mode:
        amps = amplitude if per_neuron is None else dict(zip(model.names, per_neuron))
        ds = insilico_atlas(
            model, list(req.stimulate) or None, amplitude=amps, pulse_s=req.pulse_s,
            baseline_s=req.onset_s, window_s=req.duration_s - req.onset_s, dt_s=req.dt_s,
            progress=progress, subtract_control=per_neuron is not None, on_batch=on_batch,
            batch_size=batch_size,
        )  # fmt: skip
    else:
        targets = [list(req.stimulate)] if req.stimulate else [[]]
        protocol = Protocol.single(
            model.names, targets, amplitude=1.0 if per_neuron is not None else amplitude,
            onset_s=req.onset_s, duration_s=req.pulse_s,
        )  # fmt: skip
        if per_neuron is not None:
            import equinox as eqx
            import jax.numpy as jnp

            protocol = eqx.tree_at(
                lambda p: p.amplitude, protocol, protocol.amplitude * jnp.asarray(per_neuron)
            )
        noise = Noise(sigma=req.noise_sigma) if req.spontaneous else None
        key = jax.random.PRNGKey(req.seed) if req.seed is not None else None
        save_dt = 0.5 if req.dt_s <= 0.5 else req.dt_s
        if per_neuron is not None:
            save_dt = 0.5
        if not np.isclose(save_dt / req.dt_s, round(save_dt / req.dt_s)):
            raise DigiwormError(f"dt ({req.dt_s:g} s) must divide the 0.5 s imaging interval")
        ds = simulate(
            model, protocol, req.duration_s, req.dt_s, save_dt_s=save_dt, noise=noise, key=key
        )
    ds.attrs.update(
        command_model=kind,
        stimulated=",".join(req.stimulate),
        ablated=",".join(req.ablate),
        knockouts=",".join(req.knockout),
        drugs=",".join(f"{n}:{d:g}" for n, d in req.drugs),
        state=",".join(f"{a}={v:g}" for a, v in req.modulation),
        connectome=req.connectome,
        amplitude=amplitude,
        onset_s=req.onset_s,
        pulse_s=req.pulse_s,
        evidence=model_evidence(req.model),
        drug_evidence="; ".join(f"{k}: {v}" for k, v in drug_evidence(req.drugs).items()),
    )
    return ds


def stimulation_unit(model) -> float:
    """Return the default drive of a (non-conductance) model's stimulated neuron.

    An identified model's unit (1; graded: 1 mV); an unidentified activity model's scale,
    40 (mV).
    """
    identified = getattr(model, "dff_per_activity", None) is not None
    return 40.0 if model.output == "activity" and not identified else 1.0


def model_evidence(model: str) -> str:
    """Return how the parameters of the model ``model`` (a kind or a file) were obtained."""
    if model in FITTED_KINDS:
        from ..models import fitted_heldout, fitted_provenance

        prov = fitted_provenance()
        r = fitted_heldout(model)["pearson_clipped"]
        return (
            f"fitted: identified from the wild-type atlas by digiworm reproduce "
            f"({prov['created_utc'][:10]}); held-out r {r:.3f} on unseen stimulated classes "
            "(digiworm.models.fitted_provenance())"
        )
    if model in ("graded-uncalibrated", "linear-uncalibrated"):
        return "uncalibrated: assumed conductance scales (not fitted to any recording)"
    if model == "kernel-atlas":
        return "measured: the atlas's fitted response kernels, replayed (measured pairs only)"
    if model == "conductance":
        return (
            "expression-derived: channel densities from CeNGEN through a map calibrated on "
            "published neuron models; network coupling scales assumed"
        )
    return "a saved model file: see the scores.json written beside it"


def write_netcdf(ds: xr.Dataset, path: Path) -> None:
    """Write ``ds`` to NetCDF atomically."""
    write_with(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))
