"""CeNGEN single-cell expression (Taylor et al. 2021) by neuron class and threshold.

``cengen.h5`` holds TPM matrices ``tpm_th{1..4}`` (128 cell types × 13,669 genes) at four
expression thresholds (1 liberal … 4 stringent); each threshold lists its genes in its own
order, so every matrix is re-indexed here onto threshold 1's gene order.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from .._errors import DataPackageError
from ._sources import package_dir

__all__ = ["THRESHOLDS", "build_expression", "gene_roles_path", "load_gene_roles"]

THRESHOLDS = (1, 2, 3, 4)


def _strings(values) -> np.ndarray:
    return np.asarray([v.decode() if isinstance(v, bytes) else str(v) for v in values])


def build_expression(path: Path) -> xr.Dataset:
    """Parse CeNGEN TPM into ``tpm[threshold, cengen_class, gene]`` (float32, TPM)."""
    with h5py.File(path, "r") as h5:
        classes = _strings(h5["neuron_ids"][:])
        genes = _strings(h5["gene_names_th1"][:])
        wbids = _strings(h5["gene_wbids_th1"][:])
        tpm = np.empty((len(THRESHOLDS), len(classes), len(genes)), dtype=np.float32)
        order = {g: i for i, g in enumerate(wbids)}
        for k, th in enumerate(THRESHOLDS):
            ids_th = _strings(h5[f"gene_wbids_th{th}"][:])
            if set(ids_th) != set(wbids):
                raise DataPackageError(f"CeNGEN threshold {th} lists other genes than threshold 1")
            perm = np.fromiter((order[g] for g in ids_th), dtype=np.int64, count=len(ids_th))
            tpm[k][:, perm] = h5[f"tpm_th{th}"][:]
    ds = xr.Dataset(
        {"tpm": (("threshold", "cengen_class", "gene"), tpm)},
        coords={
            "threshold": list(THRESHOLDS),
            "cengen_class": classes,
            "gene": genes,
            "wbgene": ("gene", wbids),
        },
    )
    ds["tpm"].attrs.update(
        units="transcripts per million",
        thresholds="1 liberal, 2 medium, 3 conservative, 4 stringent (Taylor et al. 2021)",
    )
    ds.attrs["n_genes"] = len(genes)
    ds.attrs["n_classes"] = len(classes)
    return ds


def gene_roles_path() -> Path:
    """Path of digiworm's curated table of neuronal gene roles (shipped with the package)."""
    return package_dir("digiworm") / "atlas" / "data" / "gene_roles.csv"


def load_gene_roles() -> pd.DataFrame:
    """Return the curated gene-role table indexed by gene (see DATA.md for its columns)."""
    table = pd.read_csv(gene_roles_path(), dtype=str, keep_default_na=False)
    return table.set_index("gene")
