"""Neuromuscular connections: neurons onto the 95 body-wall muscles, and muscle-muscle coupling.

Read from cect's Cook et al. (2019) hermaphrodite reconstruction (``[pre, post]`` there,
``[muscle, neuron]`` here, the ``W[post, pre]`` convention). The body-wall muscles are the four
quadrants dorsal/ventral × left/right, 24 rows each from head to tail, less MVL24, which the
animal lacks. Each muscle's position along the body is taken as the middle of its row with
the rows evenly spaced, which is an approximation: the atlas has no muscle coordinates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ._connectomes import cect_matrices
from ._names import to_canonical

__all__ = ["BODY_WALL_QUADRANTS", "body_wall_muscles", "build_neuromuscular"]

#: Quadrant prefixes: dorsal left/right, ventral left/right.
BODY_WALL_QUADRANTS = ("MDL", "MDR", "MVL", "MVR")
ROWS = 24


def body_wall_muscles(nodes) -> list[str]:
    """Return the body-wall muscles among ``nodes`` (e.g. ``MDL01``), quadrant by quadrant."""
    found = [n for n in nodes if n[:3] in BODY_WALL_QUADRANTS and n[3:].isdigit()]
    return sorted(found, key=lambda m: (BODY_WALL_QUADRANTS.index(m[:3]), int(m[3:])))


def build_neuromuscular(path: Path, names: list[str]) -> xr.Dataset:
    """Build the neuron → muscle chemical synapses and gap junctions, and muscle gap junctions.

    Variables: ``chemical`` and ``gap`` ``(muscle, neuron)`` (neuron onto muscle, counts as in
    the source), ``muscle_gap`` ``(muscle, muscle_pre)``. Coordinates of ``muscle``:
    ``quadrant`` (MDL …), ``side`` (dorsal/ventral), ``row`` (1–24) and ``position`` (head 0 to
    tail 1, the middle of the row).
    """
    nodes, mats = cect_matrices(path)
    index = {n: i for i, n in enumerate(names)}
    muscles = body_wall_muscles(nodes)
    where = {n: k for k, n in enumerate(nodes)}
    m_idx = np.array([where[m] for m in muscles])
    neuron_cols = np.full(len(names), -1)
    for k, raw in enumerate(nodes):
        canon = to_canonical(raw, index)
        if canon is not None:
            neuron_cols[index[canon]] = k
    covered = neuron_cols >= 0

    def onto_muscles(matrix_pre_post):
        out = np.full((len(muscles), len(names)), np.nan)
        out[:, covered] = matrix_pre_post[np.ix_(neuron_cols[covered], m_idx)].T
        return out

    rows = np.array([int(m[3:]) for m in muscles])
    coords = {
        "muscle": muscles,
        "neuron": names,
        "quadrant": ("muscle", [m[:3] for m in muscles]),
        "side": ("muscle", ["dorsal" if m[1] == "D" else "ventral" for m in muscles]),
        "row": ("muscle", rows),
        "position": ("muscle", (rows - 0.5) / ROWS),
    }
    attrs = {
        "units": "synapse count (EM, as in the source)",
        "orientation": "W[muscle, neuron]: the muscle receives from the neuron",
    }
    cs, gj = mats["Generic_CS"], mats["Generic_GJ"]
    ds = xr.Dataset(
        {
            "chemical": (("muscle", "neuron"), onto_muscles(cs), attrs),
            "gap": (("muscle", "neuron"), onto_muscles(gj), attrs),
            "muscle_gap": (
                ("muscle", "muscle_pre"),
                gj[np.ix_(m_idx, m_idx)].T,
                {"units": "gap junction count", "orientation": "symmetric in the source"},
            ),
        },
        coords=coords | {"muscle_pre": muscles},
    )
    ds.attrs.update(
        n_muscles=len(muscles),
        not_in_dataset=",".join(n for n, c in zip(names, covered) if not c),
        position="row middles, rows evenly spaced head to tail (approximate)",
    )
    return ds
