"""Extrasynaptic (wireless) networks: neuropeptides and monoamines, oriented ``[post, pre]``.

* Ripoll-Sanchez et al. 2023 neuropeptide connectome (short/mid/long diffusion range), from
  cect's caches (``[pre, post]``, transposed here): weight = number of peptide–receptor pairs
  linking sender to receiver.
* Bentley et al. 2016 monoamine and neuropeptide networks, from wormneuroatlas's edge lists
  (sender, receiver, ligand, receptor): ``weight`` counts ligand–receptor pairs, ``by_ligand``
  splits them per ligand.
* Beets et al. 2023 peptide–GPCR deorphanisation table (EC50 per peptide and receptor).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ._connectomes import _reindex, cect_matrices
from ._names import to_canonical

__all__ = ["bentley_network", "peptide_gpcr_table", "ripoll_sanchez"]


def ripoll_sanchez(path: Path, names: list[str]) -> xr.Dataset:
    """Build one Ripoll-Sanchez 2023 range model as ``weight[post, pre]``."""
    nodes, mats = cect_matrices(path)
    matrix, dropped, missing = _reindex(mats["Peptidergic"].T, nodes, names)
    da = xr.DataArray(
        matrix,
        dims=("post", "pre"),
        coords={"post": names, "pre": names},
        attrs={
            "units": "number of peptide-GPCR pairs linking pre to post",
            "orientation": "W[post, pre]",
        },
    )
    ds = xr.Dataset({"weight": da})
    ds.attrs.update(
        n_mapped=len(names) - len(missing),
        not_in_dataset=",".join(missing),
        dropped_nodes=",".join(dropped),
    )
    return ds


def bentley_network(path: Path, names: list[str]) -> xr.Dataset:
    """Build a Bentley 2016 network from its edge list ``sender, receiver, ligand, receptor``."""
    edges = pd.read_csv(path, header=None, comment="#", usecols=[0, 1, 2, 3], dtype=str)
    edges.columns = ["pre", "post", "ligand", "receptor"]
    index = {n: i for i, n in enumerate(names)}
    pre = edges["pre"].map(lambda n: to_canonical(n, index))
    post = edges["post"].map(lambda n: to_canonical(n, index))
    unmapped = sorted(set(edges["pre"][pre.isna()]) | set(edges["post"][post.isna()]))
    ok = pre.notna() & post.notna()
    edges = edges[ok].assign(pre=pre[ok], post=post[ok])
    ligands = sorted(edges["ligand"].unique())
    by_ligand = np.zeros((len(ligands), len(names), len(names)), dtype=np.int16)
    lig_index = {lig: k for k, lig in enumerate(ligands)}
    np.add.at(
        by_ligand,
        (
            edges["ligand"].map(lig_index).to_numpy(),
            edges["post"].map(index).to_numpy(),
            edges["pre"].map(index).to_numpy(),
        ),
        1,
    )
    coords = {"ligand": ligands, "post": names, "pre": names}
    ds = xr.Dataset(
        {
            "by_ligand": (("ligand", "post", "pre"), by_ligand),
            "weight": (("post", "pre"), by_ligand.sum(axis=0).astype(float)),
        },
        coords=coords,
    )
    ds["weight"].attrs.update(units="number of ligand-receptor pairs", orientation="W[post, pre]")
    covered = set(edges["pre"]) | set(edges["post"])
    ds.attrs.update(
        n_mapped=len(covered),
        unmapped=",".join(unmapped),
        receptors=",".join(sorted(edges["receptor"].dropna().unique())),
    )
    return ds


def peptide_gpcr_table(path: Path) -> xr.Dataset:
    """Parse the peptide–GPCR deorphanisation table (one row per peptide–receptor pair)."""
    raw = pd.read_csv(path)
    table = pd.DataFrame(
        {
            "gpcr_id": raw["GPCR ID"].astype(str).str.strip(),
            "gpcr": raw["GPCR name"].astype(str).str.strip().str.lower(),
            "peptide": raw["Peptide"].astype(str).str.strip().str.lower(),
            "log10_ec50_M": pd.to_numeric(raw["log EC50 (M)"], errors="coerce"),
            "ec50_M": pd.to_numeric(raw["EC50 (M)"], errors="coerce"),
        }
    ).dropna(subset=["gpcr_id"])
    ds = xr.Dataset({c: ("pair", table[c].to_numpy()) for c in table.columns})
    ds["ec50_M"].attrs["units"] = "mol/L"
    ds.attrs["n_pairs"] = len(table)
    return ds
