"""The fly's optic lobe of flyvis, expanded from its cell types to its cells.

Lappalainen et al. (2024, Nature 634:1132; the ``flyvis`` package, MIT licence) built a
connectome-constrained model of the fly visual system from a *type-level* connectome: 65 cell
types on a hexagonal lattice of columns and 605 type-to-type connections, each a list of column
offsets ``(du, dv)`` with an average synapse count and a sign. digiworm ships that table
(``data/flyvis_types.csv``, ``data/flyvis_edges.csv``; converted from the package's
``fib25-fib19_v2.2.json``, see DATA.md) and expands it with the package's rules:

1. The columns are the hexagon of radius ``extent`` (15) in axial coordinates: every ``(u, v)``
   with ``|u|, |v|, |u + v| <= extent`` (721 columns), ``u`` major.
2. Each type has a cell in every column whose ``u`` and ``v`` are multiples of its strides
   (1 for 63 types; Lawf1 and Lawf2 every third ``u`` and second ``v``), in type order.
3. Offsets are filled in: for a connection with at least three offsets, every lattice point of
   the offsets' convex hull that is not an offset already joins with one synapse (flyvis's
   ``n_syn_fill`` = 1; flyvis tests membership with a polygon routine that leaves out the
   interior points of a hull edge lying flat along the lowest ``dv``, and so does this).
4. Each cell of the source type at ``(u, v)`` connects to the target type's cell at
   ``(u + du, v + dv)`` when there is one; connections leaving the lattice are dropped.

The result has 45,669 cells and 1,513,231 connections, the published counts (tested).
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from .._errors import DigiwormError
from ._connectome import Connectome

__all__ = ["FLYVIS_CITATION", "flyvis_optic_lobe"]

FLYVIS_CITATION = (
    "Lappalainen JK et al. (2024) Connectome-constrained networks predict neural activity "
    "across the fly visual system. Nature 634:1132-1140 (flyvis 1.2.0, MIT licence)"
)


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    root = resources.files("digiworm.brains") / "data"
    with (root / "flyvis_types.csv").open() as f:
        types = pd.read_csv(f)
    with (root / "flyvis_edges.csv").open() as f:
        edges = pd.read_csv(f)
    return types, edges


def _hexagon(extent: int) -> np.ndarray:
    rows = []
    for u in range(-extent, extent + 1):
        rows += [(u, v) for v in range(max(-extent, -extent - u), min(extent, extent - u) + 1)]
    return np.array(rows)


def _filled(offsets: np.ndarray) -> np.ndarray:
    """Lattice points of the offsets' convex hull that are not offsets (step 3)."""
    from scipy.spatial import ConvexHull, QhullError

    if len(offsets) < 3:
        return np.zeros((0, 2), dtype=int)
    try:
        hull = ConvexHull(offsets.astype(float))
    except QhullError:  # collinear: the offsets already lie next to each other
        return np.zeros((0, 2), dtype=int)
    corners = offsets[hull.vertices]  # counter-clockwise
    lo, hi = offsets.min(0), offsets.max(0)
    grid = np.array([(a, b) for a in range(lo[0], hi[0] + 1) for b in range(lo[1], hi[1] + 1)])
    inside = np.ones(len(grid), dtype=bool)
    flat_low = np.zeros(len(grid), dtype=bool)
    for a, b in zip(corners, np.roll(corners, -1, axis=0)):
        edge, rel = b - a, grid - a
        cross = edge[0] * rel[:, 1] - edge[1] * rel[:, 0]
        inside &= cross >= 0
        if edge[1] == 0 and a[1] == lo[1]:  # flat along the lowest dv: its interior is out
            between = (rel[:, 1] == 0) & (np.minimum(a[0], b[0]) < grid[:, 0])
            flat_low |= between & (grid[:, 0] < np.maximum(a[0], b[0]))
    known = {tuple(o) for o in offsets}
    keep = inside & ~flat_low & np.array([tuple(g) not in known for g in grid])
    return grid[keep]


def flyvis_optic_lobe(extent: int = 15, fill: bool = True) -> Connectome:
    """Return the flyvis optic lobe as a cell-level :class:`~digiworm.brains.Connectome`.

    Neuron ids are ``TYPE@U_V`` (e.g. ``T4a@-3_2``); ``types`` holds the cell type;
    ``positions`` the column's axial ``(u, v)`` and 0. Weights are the average synapse
    counts, signed. ``fill=False`` leaves out step 3 (1,357,269 connections at extent 15).
    """
    if not (isinstance(extent, int) and 1 <= extent <= 15):
        raise DigiwormError(
            f"extent must be a whole number of columns from 1 to 15; got {extent!r}"
        )
    types, edges = _tables()
    columns = _hexagon(extent)
    ids, kinds, where, index = [], [], [], {}
    for row in types.itertuples():
        for u, v in columns:
            if u % row.stride_u == 0 and v % row.stride_v == 0:
                index[(row.type, u, v)] = len(ids)
                ids.append(f"{row.type}@{u}_{v}")
                kinds.append(row.type)
                where.append((u, v, 0))
    cells = {t: np.array([(u, v) for (tt, u, v) in index if tt == t]) for t in types["type"]}
    pre, post, weight = [], [], []
    for (src, tar), group in edges.groupby(["src", "tar"], sort=False):
        offsets = group[["du", "dv"]].to_numpy()
        counts = group["n_syn"].to_numpy(float)
        sign = int(group["sign"].iloc[0])
        if fill:
            extra = _filled(offsets)
            offsets = np.concatenate([offsets, extra])
            counts = np.concatenate([counts, np.ones(len(extra))])
        for (du, dv), n_syn in zip(offsets, counts):
            for u, v in cells[src]:
                j = index.get((tar, u + du, v + dv))
                if j is not None:
                    pre.append(index[(src, u, v)])
                    post.append(j)
                    weight.append(sign * n_syn)
    return Connectome(
        ids=np.asarray(ids, dtype=object), types=np.asarray(kinds, dtype=object),
        pre=np.asarray(pre, np.int32), post=np.asarray(post, np.int32),
        weight=np.asarray(weight), electrical=np.zeros(len(pre), dtype=bool),
        positions=np.asarray(where, float), source=f"flyvis optic lobe (extent {extent})",
        notes=(FLYVIS_CITATION,),
    )  # fmt: skip
