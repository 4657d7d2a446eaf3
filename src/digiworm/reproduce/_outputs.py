"""Write a :class:`Reproduction`: scores.json, predictions.nc, fitted models, report.html."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .._io import atomic_path, atomic_write_json
from ..models import save_model
from ._pipeline import Reproduction

__all__ = ["predictions_dataset", "provenance", "write_outputs"]


def predictions_dataset(result: Reproduction) -> xr.Dataset:
    """Out-of-fold predictions, intervals, unc-31 predictions and spontaneous correlations.

    ``dff(model, responding, stimulated)`` follows the perturbation schema once a model is
    selected (``digiworm validate predictions.nc --model linear``).
    """
    names = result.names
    models = [m for m in result.models]
    nan = np.full((len(names), len(names)), np.nan)

    def stack(d, keys):
        return np.stack([d.get(k, nan) for k in keys])

    baselines = [k for k in result.oof if k not in result.models]
    pair = ("responding", "stimulated")
    ds = xr.Dataset(
        {
            "dff": (("model", *pair), stack(result.oof, models)),
            "dff_lower": (("model", *pair), stack(result.lower, models)),
            "dff_upper": (("model", *pair), stack(result.upper, models)),
            "unc31_dff": (("model", *pair), stack(result.unc31, models)),
            "baseline_dff": (("baseline", *pair), stack(result.oof, baselines)),
            "spontaneous_corr": (("model", "neuron", "neuron_"), stack(result.spontaneous, models)),
            "measured_wt_dff": (pair, result.measured["wt"]),
            "measured_unc31_dff": (pair, result.measured["unc31"]),
        },
        coords={
            "model": models,
            "baseline": baselines,
            "responding": names,
            "stimulated": names,
            "neuron": names,
            "neuron_": names,
        },
    )
    if result.kernel is not None:
        ds["kernel_tau_s"] = ("neuron", result.kernel.tau_s)
        ds["kernel_tau_s"].attrs["description"] = (
            "time constant of each neuron, fitted to the shapes of the measured response kernels"
        )
        if result.kernel.readout_tau_s is not None:
            ds["kernel_readout_tau_s"] = ("neuron", result.kernel.readout_tau_s)
            ds["kernel_readout_tau_s"].attrs["description"] = (
                "time constant of each neuron's readout filter (observed dF/F lags activity), "
                "fitted with kernel_tau_s"
            )
    ds["dff"].attrs["description"] = "out-of-fold prediction (5-fold class split), wild type"
    ds["dff_lower"].attrs["description"] = "lower bound of the nominal 90% prediction interval"
    ds["dff_upper"].attrs["description"] = "upper bound of the nominal 90% prediction interval"
    ds["unc31_dff"].attrs["description"] = "unc-31 prediction of the model fitted on wild type"
    ds.attrs["orientation"] = "[responding, stimulated]: response of row to stimulating column"
    return ds


def provenance(result: Reproduction, files: dict[str, Path], wall_s: float) -> dict:
    """Describe the fitted models: data, settings, final choices, scores, file checksums.

    Shipping ``reproduce``'s model files as :func:`digiworm.models.fitted` copies this beside
    them as ``provenance.json``.
    """
    import hashlib
    from datetime import UTC, datetime
    from importlib.metadata import version

    from .. import __version__

    scores = result.scores
    models = scores.get("models", {})
    return {
        "digiworm_version": __version__,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "digiworm reproduce" + (" --quick" if scores["settings"]["quick"] else ""),
        "quick": scores["settings"]["quick"],
        "wall_time_s": wall_s,
        "data": {
            "fitted_on": "wild-type signal propagation atlas (Randi et al. 2023, Nature "
            "623:406), every measured stimulation, per-trial responses",
            "connectome": "Cook et al. 2019 (signs: receptor-expression rule, CeNGEN threshold 2)",
            "wormneuroatlas": version("wormneuroatlas"),
            "cect": version("cect"),
        },
        "settings": scores["settings"],
        "final": {
            name: models[name].get("final") for name in ("linear", "graded") if name in models
        }
        | (
            {"kernel": {k: models["kernel"][k] for k in ("tau_s", "readout_tau_s")}}
            if "kernel" in models
            else {}
        ),
        "heldout": {
            name: {
                k: models[name]["heldout"][k]
                for k in ("pearson_clipped", "spearman", "scale_ratio", "n_pairs")
            }
            for name in ("linear", "graded")
            if name in models
        },
        "noise_ceiling": scores["noise_ceiling"].get("ceiling"),
        "readout_gain": result.readout_gain,
        "files": {
            name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()
        },
    }


def write_outputs(result: Reproduction, out_dir: Path, atlas, wall_s: float) -> list[Path]:
    """Write everything into ``out_dir`` (each file atomically); return the paths written."""
    from ._report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in result.models.items():
        written.append(save_model(out_dir / f"model_{name}.dwm", model))
    if result.kernel is not None:
        written.append(save_model(out_dir / "model_kernel.dwm", result.kernel.model))
    files = {p.name: p for p in written}
    atomic_write_json(out_dir / "provenance.json", provenance(result, files, wall_s))
    written.append(out_dir / "provenance.json")
    path = out_dir / "predictions.nc"
    with atomic_path(path) as tmp:
        predictions_dataset(result).to_netcdf(tmp, engine="h5netcdf")
    written.append(path)
    scores = dict(result.scores)
    scores["wall_time_s"] = wall_s
    atomic_write_json(out_dir / "scores.json", scores)
    written.append(out_dir / "scores.json")
    written.append(write_report(result, atlas, out_dir, wall_s))
    return written
