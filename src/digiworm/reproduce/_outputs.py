"""Write a :class:`Reproduction`: scores.json, predictions.nc, fitted models, report.html."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .._io import atomic_path, atomic_write_json
from ..models import save_model
from ._pipeline import Reproduction

__all__ = ["predictions_dataset", "write_outputs"]


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
    ds["dff"].attrs["description"] = "out-of-fold prediction (5-fold class split), wild type"
    ds["dff_lower"].attrs["description"] = "lower bound of the nominal 90% prediction interval"
    ds["dff_upper"].attrs["description"] = "upper bound of the nominal 90% prediction interval"
    ds["unc31_dff"].attrs["description"] = "unc-31 prediction of the model fitted on wild type"
    ds.attrs["orientation"] = "[responding, stimulated]: response of row to stimulating column"
    return ds


def write_outputs(result: Reproduction, out_dir: Path, atlas, wall_s: float) -> list[Path]:
    """Write everything into ``out_dir`` (each file atomically); return the paths written."""
    from ._report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in result.models.items():
        written.append(save_model(out_dir / f"model_{name}.dwm", model))
    if result.kernel is not None:
        written.append(save_model(out_dir / "model_kernel.dwm", result.kernel.model))
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
