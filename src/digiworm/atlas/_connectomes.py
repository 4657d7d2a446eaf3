"""Anatomical connectomes on the canonical neuron index, oriented ``W[post, pre]``.

cect stores matrices ``[pre, post]``; they are transposed here. wormneuroatlas's default
connectome is already ``[post, pre]``. Non-neuronal nodes (muscles, other cells) are dropped and
counted; canonical neurons absent from a reconstruction get NaN rows and columns (unknown, not
zero), and are listed in the ``not_in_dataset`` attribute.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import xarray as xr

from ._names import to_canonical

__all__ = ["cect_matrices", "from_cect", "from_wormneuroatlas", "funatlas_ids"]


def _reindex(
    matrix_post_pre: np.ndarray, nodes: list[str], names: list[str]
) -> tuple[np.ndarray, list[str], list[str]]:
    """Place a ``[post, pre]`` matrix over ``nodes`` onto the canonical ``names`` index."""
    index = {n: i for i, n in enumerate(names)}
    rows, cols, dropped = [], [], []
    for k, raw in enumerate(nodes):
        canon = to_canonical(raw, index)
        if canon is None:
            dropped.append(raw)
        else:
            rows.append(index[canon])
            cols.append(k)
    out = np.full((len(names), len(names)), np.nan)
    covered = np.zeros(len(names), dtype=bool)
    covered[rows] = True
    out[np.ix_(covered, covered)] = 0.0
    rows = np.asarray(rows)
    cols = np.asarray(cols)
    out[np.ix_(rows, rows)] = matrix_post_pre[np.ix_(cols, cols)]
    missing = [n for n, c in zip(names, covered) if not c]
    return out, dropped, missing


def _dataarray(matrix: np.ndarray, names: list[str], kind: str, dropped, missing) -> xr.DataArray:
    return xr.DataArray(
        matrix,
        dims=("post", "pre"),
        coords={"post": names, "pre": names},
        name=kind,
        attrs={
            "units": "synapse count (EM sections or contacts, as in the source)",
            "orientation": "W[post, pre]: row receives from column",
            "n_mapped": int(len(names) - len(missing)),
            "not_in_dataset": ",".join(missing),
            "dropped_nodes": len(dropped),
        },
    )


def cect_matrices(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Read one cect JSON cache: its node names and ``[pre, post]`` matrices by synapse class."""
    data = json.loads(Path(path).read_text())
    mats = {k: np.asarray(v, dtype=float) for k, v in data["connections"].items()}
    return list(data["nodes"]), mats


def from_cect(path: Path, names: list[str], layers: dict[str, str]) -> xr.Dataset:
    """Build a connectome Dataset from a cect cache, transposing to ``[post, pre]``.

    Parameters
    ----------
    path : path
        cect ``cache/<Reader>.json``.
    names : list of str
        Canonical neuron ids.
    layers : dict
        Output variable name → cect synapse class, e.g. ``{"chemical": "Generic_CS"}``.
    """
    nodes, mats = cect_matrices(path)
    ds = xr.Dataset()
    dropped: list[str] = []
    for kind, cect_class in layers.items():
        matrix, dropped, missing = _reindex(mats[cect_class].T, nodes, names)
        ds[kind] = _dataarray(matrix, names, kind, dropped, missing)
    return _with_coverage(ds, dropped)


def _with_coverage(ds: xr.Dataset, dropped: list[str]) -> xr.Dataset:
    first = ds[next(iter(ds.data_vars))].attrs
    ds.attrs.update(
        dropped_nodes=",".join(dropped),
        not_in_dataset=first["not_in_dataset"],
        n_mapped=first["n_mapped"],
    )
    return ds


def funatlas_ids(funatlas_path: Path) -> list[str]:
    """Return the neuron order of wormneuroatlas's matrices (``neuron_ids`` of funatlas.h5).

    Its ``neuron_ids.txt`` lists the same neurons in another order (AS2 before AS10); the h5
    matrices follow the lexicographic order stored in funatlas.h5, truncated to 5 bytes.
    """
    with h5py.File(funatlas_path, "r") as h5:
        return [x.decode() for x in h5["neuron_ids"][:]]


def from_wormneuroatlas(h5_path: Path, funatlas_path: Path, names: list[str]) -> xr.Dataset:
    """Build wormneuroatlas's default adult connectome (already ``[post, pre]``)."""
    ids = funatlas_ids(funatlas_path)
    ds = xr.Dataset()
    dropped: list[str] = []
    with h5py.File(h5_path, "r") as h5:
        for kind, key in (("chemical", "chem"), ("gap", "gap")):
            matrix, dropped, missing = _reindex(h5[key][:], ids, names)
            ds[kind] = _dataarray(matrix, names, kind, dropped, missing)
    return _with_coverage(ds, dropped)
