"""The atlas report: figures exist and the printed correlation matches an independent one."""

from __future__ import annotations

import re

import numpy as np

from digiworm.report import anatomy_vs_response, neuron_card, type_order, write_atlas_report


def test_anatomy_vs_response_pearson_matches_numpy(atlas):
    summary = anatomy_vs_response(atlas)
    dff = atlas.functional("wt", kernel_time_s=None)["dff"].to_pandas()
    w = (atlas.connectome("cook2019", "chemical") + atlas.connectome("cook2019", "gap")).to_pandas()
    w = w.loc[dff.index, dff.columns].to_numpy()
    d = dff.to_numpy()
    keep = np.isfinite(d) & np.isfinite(w) & ~np.eye(len(d), dtype=bool)
    assert summary["n"] == keep.sum()
    assert np.isclose(summary["pearson_raw"], np.corrcoef(w[keep], d[keep])[0, 1])
    # anatomy is a weak predictor of measured responses (DESIGN.md: raw r ~ 0.03 on a split)
    assert -0.05 < summary["pearson_raw"] < 0.2


def test_report_writes_page_with_four_figures(atlas, tmp_path):
    index = write_atlas_report(atlas, tmp_path / "report")
    page = index.read_text()
    assert page.count("data:image/png;base64,") == 4
    for name in ("connectome", "functional", "channels", "anatomy_vs_response"):
        png = tmp_path / "report" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = float(re.search(r"over \d+ measured off-diagonal pairs:\s*<b>(-?[\d.]+)</b>", page)[1])
    assert abs(r - anatomy_vs_response(atlas)["pearson_raw"]) < 5e-4
    assert not list((tmp_path / "report").glob(".*.tmp"))


def test_type_order_groups_types(atlas):
    order = type_order(atlas.neurons)
    types = atlas.neurons.loc[order, "type"].tolist()
    assert sorted(order) == sorted(atlas.names)
    first = {t: types.index(t) for t in set(types)}
    assert first["sensory"] < first["interneuron"] < first["motor"] < first["pharyngeal"]


def test_neuron_card_counts_agree_with_the_atlas(atlas):
    card = neuron_card(atlas, "AVAL", top=3)
    assert card["identity"]["class"] == "AVA"
    assert card["identity"]["left/right partner"] == "AVAR"
    chem = card["sections"]["Chemical synapses (synapse counts)"]
    assert chem["outputs to (cook2019)"].startswith("PVCL (21)")
    fun = atlas.functional("wt", kernel_time_s=None)
    sig = (fun.q.sel(stimulated="AVAL") < 0.05).drop_sel(responding="AVAL").sum().item()
    text = card["sections"]["Functional atlas (Randi 2023, wild type, q < 0.05, dF/F)"]
    assert text["stimulating it drives"].startswith(f"{sig} of ")
