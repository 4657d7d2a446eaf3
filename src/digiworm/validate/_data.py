"""Perturbation datasets and prediction files: the documented NetCDF schema, checked on load.

Schema (dims ``stimulated``, ``responding``, optional ``trial``; coordinates are neuron ids):

* ``dff`` (required) — fractional ΔF/F of ``responding`` after stimulating ``stimulated``:
  either trial means ``(responding, stimulated)`` or per-trial values
  ``(responding, stimulated, trial)`` (NaN-padded), from which the means are taken;
* ``dff_trials`` (optional, with trial-mean ``dff``) — the per-trial values beside the means;
* ``n_trials`` (optional, >= 0) — trials per pair;
* ``q`` and ``q_eq`` (optional, in [0, 1]) — FDR q of a response and of a confident absence;
* ``kernel`` (optional, ``(responding, stimulated, time)``, coordinate ``time`` in s, evenly
  spaced from 0) — the response kernel of each pair: the response of ``responding`` per unit
  activity of ``stimulated`` (Randi et al. 2023 fit one per measured pair); NaN where none.
  ``digiworm fit --model kernel`` needs it.

Neuron ids are matched case-insensitively to the 302 canonical names (AWCON → AWCR, VB01 → VB1);
an unknown id is an error with a suggestion. The data are placed on the canonical index (NaN
where a pair was not measured). The bundled atlas (``atlas.functional``) is one such dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .._errors import DigiwormError, UnknownNameError
from ..atlas._names import to_canonical
from ._metrics import nanmean

__all__ = ["SchemaError", "check_perturbation", "load_perturbation"]

DIMS = ("responding", "stimulated")


class SchemaError(DigiwormError):
    """A perturbation or prediction file that does not follow digiworm's schema."""


def load_perturbation(
    path: str | Path, names: list[str], what: str = "dataset", model: str | None = None
) -> xr.Dataset:
    """Open a NetCDF perturbation dataset or prediction file and check it (see module docs).

    Parameters
    ----------
    path : path
        NetCDF file.
    names : list of str
        Canonical neuron ids to place the data on (``atlas.names``).
    what : str
        Word for messages ("dataset" or "prediction").
    model : str, optional
        For files with a ``model`` dimension (``reproduce``'s predictions.nc): the model whose
        predictions to take.

    Raises
    ------
    SchemaError
        Missing file, unreadable file, wrong dims, all-NaN, negative counts, q out of range.
    UnknownNameError
        A neuron id that matches none of the 302 neurons.
    """
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"{what} file {str(path)!r} does not exist")
    try:
        ds = xr.load_dataset(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise SchemaError(f"cannot read {str(path)!r} as NetCDF ({type(exc).__name__})") from exc
    if "model" in ds.dims:
        choices = [str(m) for m in ds["model"].values]
        if model is None:
            raise SchemaError(
                f"{what} {path.name} holds several models: choose one with --model NAME "
                f"(model=NAME in Python), NAME one of {', '.join(choices)}"
            )
        if model not in choices:
            raise UnknownNameError("model", model, choices)
        ds = ds.sel(model=model, drop=True)
        ds = ds[[v for v in ds.data_vars if set(ds[v].dims) <= {*DIMS, "trial"}]]
    elif model is not None:
        raise SchemaError(f"{what} {path.name} has no 'model' dimension to choose {model!r} from")
    return check_perturbation(ds, names, what=f"{what} {path.name}")


def _canonical_coord(values, names: list[str], dim: str, what: str) -> list[str]:
    index = set(names)
    out = []
    for raw in values:
        canon = to_canonical(str(raw), index)
        if canon is None:
            raise UnknownNameError(
                "neuron", str(raw), names, hint=f"(in the {dim!r} coordinate of {what})"
            )
        out.append(canon)
    if len(set(out)) != len(out):
        dupes = sorted({n for n in out if out.count(n) > 1})
        raise SchemaError(f"{what}: {dim} lists {', '.join(dupes)} more than once")
    return out


def check_perturbation(ds: xr.Dataset, names: list[str], what: str = "dataset") -> xr.Dataset:
    """Check ``ds`` against the schema; return it on the canonical (responding, stimulated)."""
    if "dff" not in ds:
        raise SchemaError(f"{what} has no variable 'dff'; variables found: {list(ds.data_vars)}")
    dff = ds["dff"]
    extra = [d for d in dff.dims if d not in (*DIMS, "trial")]
    missing = [d for d in DIMS if d not in dff.dims]
    if missing or extra:
        raise SchemaError(
            f"{what}: 'dff' must have dims (responding, stimulated[, trial]); got {dff.dims}"
        )
    coords = {}
    for dim in DIMS:
        if dim not in ds.coords:
            raise SchemaError(f"{what}: dimension {dim!r} needs neuron ids as its coordinate")
        coords[dim] = _canonical_coord(ds[dim].values, names, dim, what)
    ds = ds.assign_coords(coords)
    dff = ds["dff"]  # with the canonical coordinates
    values = dff.transpose(*DIMS, ...).to_numpy().astype(float)
    if not np.isfinite(values).any():
        raise SchemaError(f"{what}: 'dff' is all NaN; nothing was measured")
    out = xr.Dataset(coords={"responding": names, "stimulated": names})
    if "trial" in dff.dims:
        trials = dff.transpose(*DIMS, "trial")
        out["dff_trials"] = trials.reindex(responding=names, stimulated=names)
        values = out["dff_trials"].to_numpy()
        out["dff"] = (DIMS, nanmean(values, axis=-1))
        out["n_trials"] = (DIMS, np.isfinite(values).sum(-1).astype(np.int64))
    else:
        out["dff"] = dff.transpose(*DIMS).reindex(responding=names, stimulated=names)
        if "dff_trials" in ds:  # trial means given beside the per-trial values
            trials = ds["dff_trials"]
            if set(trials.dims) != {*DIMS, "trial"}:
                raise SchemaError(
                    f"{what}: 'dff_trials' must have dims (responding, stimulated, trial); "
                    f"got {trials.dims}"
                )
            out["dff_trials"] = trials.transpose(*DIMS, "trial").reindex(
                responding=names, stimulated=names
            )
    if "n_trials" in ds:
        counts = ds["n_trials"].to_numpy()
        if np.any(counts[np.isfinite(counts)] < 0):
            raise SchemaError(f"{what}: 'n_trials' has negative counts")
        out["n_trials"] = (
            ds["n_trials"]
            .transpose(*DIMS)
            .reindex(responding=names, stimulated=names, fill_value=0)
        )
    for var in ("q", "q_eq"):
        if var in ds:
            q = ds[var].to_numpy()
            bad = np.isfinite(q) & ((q < 0) | (q > 1))
            if bad.any():
                raise SchemaError(f"{what}: {var!r} must lie in [0, 1]; found {q[bad][0]:g}")
            out[var] = ds[var].transpose(*DIMS).reindex(responding=names, stimulated=names)
    if "kernel" in ds:
        out["kernel"] = _checked_kernel(ds, what).reindex(responding=names, stimulated=names)
    out.attrs.update(ds.attrs)
    return out


def _checked_kernel(ds: xr.Dataset, what: str) -> xr.DataArray:
    kernel = ds["kernel"]
    if set(kernel.dims) != {*DIMS, "time"}:
        raise SchemaError(
            f"{what}: 'kernel' must have dims (responding, stimulated, time); got {kernel.dims}"
        )
    if "time" not in ds.coords:
        raise SchemaError(f"{what}: 'kernel' needs a 'time' coordinate (s)")
    t = np.asarray(ds["time"].values, dtype=float)
    step = np.diff(t)
    if (
        t.size < 2
        or not np.all(np.isfinite(t))
        or t[0] != 0
        or step[0] <= 0
        or not np.allclose(step, step[0], rtol=1e-6)
    ):
        raise SchemaError(
            f"{what}: kernel 'time' must be evenly spaced seconds from 0; got {t[:4]}..."
        )
    kernel = kernel.transpose(*DIMS, "time")
    values = kernel.to_numpy()
    partial = np.isfinite(values).any(-1) & ~np.isfinite(values).all(-1)
    if partial.any():
        i, j = np.argwhere(partial)[0]
        raise SchemaError(
            f"{what}: the kernel of ({kernel['responding'].values[i]}, "
            f"{kernel['stimulated'].values[j]}) is NaN at some times only; a pair's kernel is "
            "all finite or all NaN"
        )
    return kernel
