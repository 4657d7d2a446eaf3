"""The neuron table: 302 canonical neurons with identity, anatomy and transmitter."""

from __future__ import annotations

import json

import numpy as np
import openpyxl
import pandas as pd
import xarray as xr

from ._names import (
    bilateral_partner,
    cengen_class,
    dv_partner,
    natural_key,
    neuron_class,
    to_canonical,
)
from ._sources import package_file

__all__ = ["NEURON_COLUMNS", "build_neurons", "neurons_frame"]

#: Columns of :meth:`digiworm.atlas.Atlas.neurons`, with their meaning.
NEURON_COLUMNS: dict[str, str] = {
    "neuron_class": "anatomical class (White et al. 1986), e.g. AVA",
    "bilateral_partner": "left/right homologue, e.g. AVAR for AVAL",
    "dv_partner": "dorsal/ventral homologue, e.g. SMDVL for SMDDL",
    "type": "sensory | interneuron | motor | pharyngeal | unknown (Cook et al. 2019 via cect)",
    "ganglion": "ganglion of the soma (wormneuroatlas)",
    "x": "soma position, left(+)/right(-) axis, atlas units (wormneuroatlas)",
    "y": "soma position, anterior(-)/posterior(+) axis, atlas units (wormneuroatlas)",
    "z": "soma position, dorsoventral axis, atlas units (wormneuroatlas)",
    "transmitter": "'+'-joined transmitters released (Wang et al. 2024 via cect)",
    "transmitter_fenyves": "dominant[+alternative] classical transmitter (Fenyves et al. 2020)",
    "cengen_class": "CeNGEN cell type that profiles the neuron (Taylor et al. 2021)",
    "awc_state": "ON/OFF for AWCR/AWCL (wormneuroatlas convention AWCL=OFF, AWCR=ON)",
}

_TYPE_LISTS = {
    "sensory": "SENSORY_NEURONS_COOK",
    "interneuron": "INTERNEURONS_NONPHARYNGEAL_COOK",
    "motor": "MOTORNEURONS_NONPHARYNGEAL_COOK",
    "pharyngeal": "PHARYNGEAL_NEURONS",
    "unknown": "UNKNOWN_FUNCTION_NEURONS",
}
_FENYVES_NT = {"ACh": "acetylcholine", "Glu": "glutamate", "GABA": "GABA"}


def _canonical_names() -> tuple[list[str], dict[str, str]]:
    from cect import Cells  # imported only while building: it pulls in pandas plotting helpers

    names = sorted(Cells.PREFERRED_HERM_NEURON_NAMES, key=natural_key)
    types = {}
    for label, attr in _TYPE_LISTS.items():
        for n in getattr(Cells, attr):
            types.setdefault(n, label)
    return names, types


def _positions(names: list[str]) -> tuple[np.ndarray, list[str]]:
    path = package_file("wormneuroatlas", "data/anatlas_neuron_positions.txt")
    header = path.read_text().splitlines()[0].lstrip("#").split()
    xyz = np.loadtxt(path)
    out = np.full((len(names), 3), np.nan)
    index = {n: i for i, n in enumerate(names)}
    unmapped = []
    for row, raw in enumerate(header):  # the file lists PVCL twice with identical rows
        canon = to_canonical(raw, index)
        if canon is None:
            unmapped.append(raw)
        elif np.isnan(out[index[canon], 0]):
            out[index[canon]] = xyz[row]
    return out, unmapped


def _ganglia(names: list[str]) -> tuple[list[str], list[str]]:
    path = package_file("wormneuroatlas", "data/aconnectome_ids_ganglia.json")
    groups = json.loads(path.read_text())
    index = set(names)
    ganglion = dict.fromkeys(names, "")
    unmapped = []
    for group, members in groups.items():
        if group in ("head", "pharynx"):  # these list ganglia, not neurons
            continue
        for raw in members:
            canon = to_canonical(raw, index)
            if canon is None:
                unmapped.append(raw)
            else:
                ganglion[canon] = group
    return [ganglion[n] for n in names], unmapped


def _wang_transmitters(names: list[str]) -> list[str]:
    path = package_file("cect", "cache/Wang2024HermReader.json")
    data = json.loads(path.read_text())
    nodes = {n: i for i, n in enumerate(data["nodes"])}
    layers = {nt: np.asarray(m, dtype=bool) for nt, m in data["connections"].items()}
    out = []
    for n in names:
        i = nodes.get(n)
        released = [] if i is None else [nt for nt, m in layers.items() if m[i].any()]
        out.append("+".join(sorted(released)))
    return out


def _fenyves_transmitters(names: list[str]) -> tuple[list[str], list[str]]:
    path = package_file("wormneuroatlas", "data/journal.pcbi.1007974.s003.xlsx")
    wb = openpyxl.load_workbook(path, read_only=True)
    found = {}
    unmapped = []
    for row in wb["1. NT expr"].iter_rows(min_row=2, values_only=True):
        if not row[0]:
            continue
        canon = to_canonical(row[0], set(names))
        if canon is None:
            unmapped.append(str(row[0]))
            continue
        found[canon] = "+".join(_FENYVES_NT[v] for v in row[1:3] if v)
    wb.close()
    return [found.get(n, "") for n in names], unmapped


def _cengen_ids() -> list[str]:
    import h5py

    with h5py.File(package_file("wormneuroatlas", "data/cengen.h5"), "r") as h5:
        return [x.decode() if isinstance(x, bytes) else str(x) for x in h5["neuron_ids"][:]]


def build_neurons() -> xr.Dataset:
    """Parse the neuron table from the installed data packages (see :data:`NEURON_COLUMNS`)."""
    names, types = _canonical_names()
    classes = [neuron_class(n, names) for n in names]
    xyz, pos_unmapped = _positions(names)
    ganglia, gang_unmapped = _ganglia(names)
    fenyves, fen_unmapped = _fenyves_transmitters(names)
    cengen_ids = _cengen_ids()
    columns = {
        "neuron_class": classes,
        "bilateral_partner": [bilateral_partner(n, names) or "" for n in names],
        "dv_partner": [dv_partner(n, names) or "" for n in names],
        "type": [types.get(n, "") for n in names],
        "ganglion": ganglia,
        "x": xyz[:, 0],
        "y": xyz[:, 1],
        "z": xyz[:, 2],
        "transmitter": _wang_transmitters(names),
        "transmitter_fenyves": fenyves,
        "cengen_class": [cengen_class(n, c, cengen_ids) or "" for n, c in zip(names, classes)],
        "awc_state": [{"AWCL": "OFF", "AWCR": "ON"}.get(n, "") for n in names],
    }
    ds = xr.Dataset({k: ("neuron", np.asarray(v)) for k, v in columns.items()})
    ds = ds.assign_coords(neuron=np.asarray(names))
    missing = {
        col: [n for n, v in zip(names, ds[col].values) if v == "" or v != v]
        for col in ("type", "ganglion", "x", "transmitter", "transmitter_fenyves", "cengen_class")
    }
    ds.attrs["unmapped"] = ",".join(pos_unmapped + gang_unmapped + fen_unmapped)
    ds.attrs["missing"] = json.dumps(missing)
    ds.attrs["n_mapped"] = len(names)
    return ds


def neurons_frame(ds: xr.Dataset) -> pd.DataFrame:
    """Return the cached neuron table as a DataFrame indexed by neuron, blanks as missing."""
    df = ds.to_dataframe()
    df.index.name = "neuron"
    for col in df.columns:
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            df[col] = df[col].astype(object).where(df[col] != "", None)
    df.attrs.update(ds.attrs)
    return df
