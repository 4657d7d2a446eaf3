"""Neuron → body-wall muscle connections read from Cook et al. 2019 (via cect)."""

from __future__ import annotations

import numpy as np
import pytest


def test_the_95_body_wall_muscles_and_their_coordinates(atlas):
    w = atlas.neuromuscular()
    assert w.dims == ("muscle", "neuron") and w.shape == (95, 302)
    quads = {q: int((w.quadrant == q).sum()) for q in ("MDL", "MDR", "MVL", "MVR")}
    assert quads == {"MDL": 24, "MDR": 24, "MVL": 23, "MVR": 24}  # no MVL24 in the animal
    assert "MVL24" not in w.muscle.values
    row = w.sel(muscle="MDR12")
    assert int(row.row) == 12 and str(row.side.item()) == "dorsal"
    assert float(row.position) == pytest.approx(11.5 / 24)
    assert "Cook" in w.attrs["citation"] and "cect" in w.attrs["source"]


def test_motor_neuron_classes_innervate_their_own_side(atlas):
    """Published anatomy: the ventral-cord classes divide the body wall by side (White et al.
    1986): VA, VB, VD onto ventral muscles, DA, DB, DD and AS onto dorsal ones. In the EM counts
    at least 98 % of each class's synapses land on its side (a few sections cross)."""
    w = atlas.neuromuscular().fillna(0.0)
    side = w.side.values
    for prefix, want in (("VA", "ventral"), ("VB", "ventral"), ("VD", "ventral"),
                         ("DA", "dorsal"), ("DB", "dorsal"), ("DD", "dorsal"),
                         ("AS", "dorsal")):  # fmt: skip
        members = [n for n in atlas.names if n.startswith(prefix) and n[len(prefix) :].isdigit()]
        total = w.sel(neuron=members).sum("neuron").values
        assert total.sum() > 50, prefix
        assert total[side == want].sum() >= 0.98 * total.sum(), prefix
    # orientation: VB5 synapses onto muscles, never the reverse (the dataset has no reverse)
    assert float(w.sel(neuron="VB5", muscle="MVL14")) == 8.0


def test_muscle_gap_junctions_are_symmetric_and_between_neighbours(atlas):
    ds = atlas.dataset("neuromuscular")
    g = np.nan_to_num(ds["muscle_gap"].values)
    np.testing.assert_array_equal(g, g.T)
    rows = ds.row.values
    i, j = np.nonzero(g)
    assert i.size > 0
    # coupled muscles are in the same or a nearby row
    assert np.all(np.abs(rows[i] - rows[j]) <= 2)


def test_the_catalogue_lists_the_neuromuscular_dataset(atlas):
    row = atlas.catalogue().loc["neuromuscular"]
    assert row["kind"] == "neuromuscular" and "95 muscles" in row["neurons"]
