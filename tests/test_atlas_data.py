"""The atlas on real data: neuron table, orientation, coverage and published facts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import digiworm
from digiworm import DigiwormError, UnknownNameError
from digiworm.atlas import CONNECTOMES, DATASETS, EXTRASYNAPTIC, NEURON_COLUMNS

# -- neurons ---------------------------------------------------------------------------------


def test_302_neurons(atlas):
    n = atlas.neurons
    assert isinstance(n, pd.DataFrame)
    assert n.shape[0] == 302
    assert n.index.is_unique
    assert list(n.index) == atlas.names
    assert n.index.name == "neuron"


def test_neuron_columns(atlas):
    n = atlas.neurons
    assert list(n.columns) == list(NEURON_COLUMNS)
    # identity columns are complete
    for col in ("neuron_class", "type", "cengen_class"):
        assert n[col].notna().all(), col
    # soma positions are finite for every neuron
    assert np.isfinite(n[["x", "y", "z"]].to_numpy(dtype=float)).all()
    # nearly every neuron has a ganglion and a Wang 2024 transmitter entry
    assert n["ganglion"].notna().sum() >= 295
    assert n["transmitter"].notna().sum() >= 270
    assert n["transmitter_fenyves"].notna().sum() >= 250
    # AWC ON/OFF convention (wormneuroatlas: AWCL = OFF, AWCR = ON), blank elsewhere
    assert n.loc["AWCL", "awc_state"] == "OFF"
    assert n.loc["AWCR", "awc_state"] == "ON"
    assert n["awc_state"].notna().sum() == 2
    assert n["neuron_class"].nunique() == 118


def test_neuron_partners_in_table(atlas):
    n = atlas.neurons
    assert n.loc["AVAL", "bilateral_partner"] == "AVAR"
    assert n.loc["SMDDL", "dv_partner"] == "SMDVL"
    assert n.loc["RMED", "dv_partner"] == "RMEV"
    assert n.loc["RID", "bilateral_partner"] is None
    for name, partner in n["bilateral_partner"].dropna().items():
        assert n.loc[partner, "bilateral_partner"] == name


def test_neuron_positions_anterior_posterior(atlas):
    n = atlas.neurons
    # y is anterior(-)/posterior(+): head neurons lie anterior of tail neurons
    assert n.loc["AVAL", "y"] < n.loc["PVCL", "y"]
    assert n.loc["ASHL", "y"] < n.loc["DA9", "y"]
    # x is left(+)/right(-)
    assert n.loc["AVAL", "x"] > n.loc["AVAR", "x"]


def test_type_counts(atlas):
    # cect's Cook et al. 2019 lists
    counts = atlas.neurons["type"].value_counts().to_dict()
    assert counts == {"sensory": 83, "interneuron": 81, "motor": 116, "pharyngeal": 20,
                      "unknown": 2}  # fmt: skip
    t = atlas.neurons["type"]
    assert t["ASHL"] == "sensory"
    assert t["AVAL"] == "interneuron"
    assert t["VA8"] == "motor"
    assert t["M4"] == "pharyngeal"


@pytest.mark.parametrize(
    ("neuron", "transmitter"),
    [("AVAL", "Acetylcholine"), ("DD1", "GABA"), ("NSML", "Serotonin"), ("ADEL", "Dopamine"),
     ("RIML", "Tyramine"), ("ASHL", "Glutamate")],
)  # fmt: skip
def test_wang2024_transmitters(atlas, neuron, transmitter):
    released = atlas.neurons.loc[neuron, "transmitter"].split("+")
    assert transmitter in released


def test_neuron_lookup(atlas):
    assert atlas.neuron("awcon") == "AWCR"
    assert atlas.neuron_list("AVAL, avar,VB01") == ["AVAL", "AVAR", "VB1"]
    with pytest.raises(UnknownNameError):
        atlas.neuron("NOTANEURON")


# -- connectomes -----------------------------------------------------------------------------


def test_cook2019_orientation(atlas):
    chem = atlas.connectome("cook2019", "chemical")
    assert chem.dims == ("post", "pre")
    assert chem.shape == (302, 302)
    assert chem.sel(post="VA8", pre="AVAL").item() == 7
    assert chem.sel(post="AVAL", pre="VA8").item() == 0
    assert "Cook" in chem.attrs["citation"]
    assert chem.attrs["n_mapped"] == 302
    assert not np.isnan(chem.values).any()


@pytest.mark.parametrize("name", list(CONNECTOMES))
def test_gap_junctions_symmetric(atlas, name):
    gap = atlas.connectome(name, "gap").values
    np.testing.assert_array_equal(gap, gap.T)  # NaN positions must match too
    assert np.nansum(gap) > 0


@pytest.mark.parametrize("name", list(CONNECTOMES))
def test_connectome_coverage_consistent(atlas, name):
    chem = atlas.connectome(name, "chemical")
    values = chem.values
    missing = np.isnan(values).all(axis=1)
    # a neuron absent from a reconstruction is NaN in its row and its column, nowhere else
    assert (np.isnan(values).all(axis=0) == missing).all()
    assert not np.isnan(values[np.ix_(~missing, ~missing)]).any()
    assert np.nanmin(values) >= 0
    listed = [n for n in chem.attrs["not_in_dataset"].split(",") if n]
    assert sorted(listed) == sorted(np.asarray(atlas.names)[missing].tolist())
    assert chem.attrs["n_mapped"] == 302 - missing.sum()


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def test_orientation_agrees_across_sources(atlas):
    # wormneuroatlas's h5 is [post, pre] natively, cect's White 1986 is transposed on load:
    # they agree only if both ended up [post, pre].
    wna = atlas.connectome("wormneuroatlas", "chemical").values
    white = atlas.connectome("white1986", "chemical").values
    cook = atlas.connectome("cook2019", "chemical").values
    assert _pearson(wna, white) > 0.5
    assert _pearson(wna.T, white) < 0.2
    assert _pearson(wna, cook) > 0.5
    assert _pearson(wna.T, cook) < 0.2
    assert _pearson(white, cook) > 0.5


def test_witvliet_development_coverage(atlas):
    first = atlas.connectome("witvliet2021_1", "chemical")
    last = atlas.connectome("witvliet2021_8", "chemical")
    n_first = int(np.isfinite(first.values).any(axis=1).sum())
    n_last = int(np.isfinite(last.values).any(axis=1).sum())
    assert n_first < n_last < 302
    # nerve-ring reconstructions: ventral cord motor neurons are not reconstructed -> NaN
    assert np.isnan(first.sel(post="VA12")).all()
    assert np.isnan(first.sel(pre="VA12")).all()
    assert np.isfinite(first.sel(post="AVAL", pre="AVAR")).item()
    # total synapses grow from L1 to adult
    assert np.nansum(last.values) > np.nansum(first.values)


def test_connectome_bad_names(atlas):
    with pytest.raises(UnknownNameError) as info:
        atlas.connectome("cook2018")
    assert "cook2019" in info.value.suggestions
    assert "cook2019" in str(info.value)
    with pytest.raises(UnknownNameError):
        atlas.connectome("cook2019", "electrical")


# -- extrasynaptic ---------------------------------------------------------------------------


def test_ripoll_sanchez_ranges_nested(atlas):
    short, mid, long_ = (
        atlas.extrasynaptic(f"ripoll_sanchez_{r}").values for r in ("short", "mid", "long")
    )
    for m in (short, mid, long_):
        assert m.shape == (302, 302)
        assert not np.isnan(m).any()
    in_short, in_mid, in_long = short > 0, mid > 0, long_ > 0
    # a wider diffusion range only adds edges: short ⊆ mid ⊆ long, strictly
    assert not (in_short & ~in_mid).any()
    assert not (in_mid & ~in_long).any()
    assert in_short.sum() < in_mid.sum() < in_long.sum()
    # and never lowers the number of peptide-GPCR pairs on an edge
    assert (short <= mid).all() and (mid <= long_).all()


def test_bentley_monoamine_tyramine(atlas):
    # RIM releases tyramine; ALM expresses lgc-55 (Bentley et al. 2016 edge
    # "RIML,ALML,tyramine,lgc-55")
    tyr = atlas.extrasynaptic("bentley_monoamine", ligand="tyramine")
    assert tyr.dims == ("post", "pre")
    assert tyr.sel(pre="RIML", post="ALML").item() > 0
    assert tyr.sel(pre="ALML", post="RIML").item() == 0
    # only tyraminergic RIM (and RIM-like) senders in the tyramine layer
    senders = tyr.pre.values[tyr.values.sum(axis=0) > 0]
    assert {"RIML", "RIMR"} <= set(senders)
    assert "lgc-55" in atlas.dataset("bentley_monoamine").attrs["receptors"].split(",")
    ser = atlas.extrasynaptic("bentley_monoamine", ligand="serotonin")
    assert ser.sel(pre="NSML").sum().item() > 0
    total = atlas.extrasynaptic("bentley_monoamine")
    by_ligand = atlas.dataset("bentley_monoamine")["by_ligand"].sum("ligand")
    np.testing.assert_array_equal(total.values, by_ligand.values)


def test_extrasynaptic_errors(atlas):
    with pytest.raises(UnknownNameError) as info:
        atlas.extrasynaptic("bentley_monoamine", ligand="tyramin")
    assert "tyramine" in info.value.suggestions
    with pytest.raises(DigiwormError):
        atlas.extrasynaptic("ripoll_sanchez_short", ligand="flp-1")
    with pytest.raises(UnknownNameError):
        atlas.extrasynaptic("ripoll_sanchez_huge")


def test_peptide_gpcr_table(atlas):
    table = atlas.peptide_gpcr()
    assert len(table) > 100
    assert {"gpcr", "peptide", "ec50_M", "log10_ec50_M"} <= set(table.columns)
    both = table.dropna(subset=["ec50_M", "log10_ec50_M"])
    assert len(both) > 0
    np.testing.assert_allclose(np.log10(both["ec50_M"]), both["log10_ec50_M"], atol=0.05)


# -- expression ------------------------------------------------------------------------------


def test_unc25_gabaergic(atlas):
    # unc-25 (GAD; McIntire et al. 1993, Jin et al. 1999): DD/VD and RME, not AVA
    e = atlas.expression("unc-25", threshold=2)
    assert e.dims == ("neuron",)
    assert e.attrs["threshold"] == 2
    for n in ("DD1", "DD3", "VD5", "VD13", "RMED", "RMEV", "RMEL", "RMER"):
        assert e.sel(neuron=n).item() > 0, n
    for n in ("AVAL", "AVAR"):
        assert e.sel(neuron=n).item() == 0, n


def test_unc17_cholinergic_ava(atlas):
    e = atlas.expression("unc-17")
    assert e.sel(neuron="AVAL").item() > 0
    assert e.sel(neuron="AVAR").item() > 0


def test_eat4_glutamatergic_ash(atlas):
    e = atlas.expression("eat-4")
    assert e.sel(neuron="ASHL").item() > 0
    assert e.sel(neuron="ASHR").item() > 0


def test_expression_thresholds_nested(atlas):
    # stricter thresholds only remove detections
    m1 = atlas.expression_matrix(1).values
    m4 = atlas.expression_matrix(4).values
    assert m1.shape == m4.shape
    assert ((m4 > 0) <= (m1 > 0)).all()
    assert (m4 > 0).sum() < (m1 > 0).sum()


def test_gene_lookup(atlas):
    assert atlas.gene("SHK-1") == "shk-1"
    wb = str(atlas.dataset("cengen").wbgene.sel(gene="shk-1").item())
    assert wb.startswith("WBGene")
    assert atlas.gene(wb) == "shk-1"
    np.testing.assert_array_equal(atlas.expression(wb).values, atlas.expression("shk-1").values)


def test_expression_bad_threshold(atlas):
    with pytest.raises(DigiwormError) as info:
        atlas.expression("shk-1", threshold=7)
    msg = str(info.value)
    assert "7" in msg
    for k in "1234":
        assert k in msg
    with pytest.raises(DigiwormError):
        atlas.expression("shk-1", threshold=True)


def test_expression_unknown_gene(atlas):
    with pytest.raises(UnknownNameError) as info:
        atlas.expression("shk-11x")
    assert "shk-11x" in str(info.value)
    assert "shk-1" in info.value.suggestions


# -- functional atlas ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wt(atlas):
    return atlas.functional("wt")


@pytest.fixture(scope="module")
def unc31(atlas):
    return atlas.functional("unc31", kernel_time_s=None)


def test_functional_dims(wt):
    assert wt.sizes["responding"] == 302
    assert wt.sizes["stimulated"] == 302
    assert wt["dff"].dims == ("responding", "stimulated")
    assert wt["kernel"].dims == ("responding", "stimulated", "time")
    assert wt["kernel"].dtype == np.float64
    np.testing.assert_array_equal(wt["time"].values, digiworm.atlas.DEFAULT_KERNEL_TIME_S)


def test_functional_all_neurons_mapped(wt, unc31):
    for ds in (wt, unc31):
        assert ds.attrs["n_mapped"] == 300
        assert ds.attrs["unmapped"] == ""


def test_functional_can_never_measured(wt):
    for n in ("CANL", "CANR"):
        assert np.isnan(wt["dff"].sel(responding=n)).all()
        assert np.isnan(wt["dff"].sel(stimulated=n)).all()
        assert n in wt.attrs["never_measured"].split(",")


def test_functional_q_count(wt):
    q = wt["q"].values
    off = ~np.eye(302, dtype=bool)
    # counted straight from the package's file (wt/q, 300 ids) and through digiworm's loader
    import h5py
    import wormneuroatlas

    with h5py.File(Path(wormneuroatlas.__file__).parent / "data" / "funatlas.h5") as f:
        raw = f["wt"]["q"][()]
    expected = int((raw[~np.eye(300, dtype=bool)] < 0.05).sum())
    assert int((q[off] < 0.05).sum()) == expected == 1151  # 1,151 in DESIGN.md's reading


def test_functional_matches_raw_h5(wt):
    # every value on the canonical index equals the raw funatlas.h5 value of that pair
    import h5py

    from digiworm.atlas._sources import package_file

    path = package_file("wormneuroatlas", "data/funatlas.h5")
    with h5py.File(path, "r") as h5:
        ids = [x.decode() for x in h5["neuron_ids"][:]]
        raw_dff = h5["wt/dFF"][:]
        raw_q = h5["wt/q"][:]
        raw_occ = h5["wt/occ1"][:]
    canon = [{"AWCOF": "AWCL", "AWCON": "AWCR"}.get(i, i) for i in ids]
    ours = wt["dff"].sel(responding=canon, stimulated=canon).values
    np.testing.assert_array_equal(ours, raw_dff)
    np.testing.assert_array_equal(wt["q"].sel(responding=canon, stimulated=canon).values, raw_q)
    occ = wt["n_trials"].sel(responding=canon, stimulated=canon).values
    np.testing.assert_array_equal(occ, raw_occ)
    # the two AWC spellings land on the right cells: AWCOF(F) is AWCL, AWCON is AWCR
    awcl, awcr = ids.index("AWCOF"), ids.index("AWCON")
    np.testing.assert_array_equal(
        wt["dff"].sel(responding="AWCL", stimulated=canon).values, raw_dff[awcl]
    )
    np.testing.assert_array_equal(
        wt["dff"].sel(responding=canon, stimulated="AWCR").values, raw_dff[:, awcr]
    )


def test_dff_is_mean_of_trials(wt):
    dff = wt["dff"].values
    trials = wt["dff_trials"].values
    measured = np.isfinite(dff)
    assert measured.sum() > 20000
    per_pair = trials[measured]
    count = np.isfinite(per_pair).sum(axis=1)
    assert (count > 0).all()
    mean = np.where(np.isfinite(per_pair), per_pair, 0.0).sum(axis=1) / count
    np.testing.assert_allclose(mean, dff[measured], rtol=1e-9, atol=1e-12)
    # unmeasured pairs carry no trials
    assert np.isnan(trials[~measured]).all()


def test_n_trials(wt):
    n = wt["n_trials"].values
    assert np.issubdtype(n.dtype, np.integer)
    assert (n >= 0).all()
    measured = np.isfinite(wt["dff"].values)
    assert (n[measured] > 0).all()  # every measured pair had at least one trial


def test_unc31_fewer_measured_pairs(wt, unc31):
    n_wt = int(np.isfinite(wt["dff"].values).sum())
    n_unc31 = int(np.isfinite(unc31["dff"].values).sum())
    assert 0 < n_unc31 < n_wt
    assert "kernel" not in unc31  # kernel_time_s=None skips the evaluation


def test_functional_unknown_strain(atlas):
    with pytest.raises(UnknownNameError) as info:
        atlas.functional("unc-31")
    assert "unc31" in info.value.suggestions


def test_functional_copy_does_not_leak(atlas):
    a = atlas.functional("wt", kernel_time_s=[0.0, 1.0])
    b = atlas.functional("wt", kernel_time_s=None)
    assert "kernel" in a and "kernel" not in b
    assert a.sizes["time"] == 2


# -- provenance ------------------------------------------------------------------------------


def test_catalogue(atlas):
    cat = atlas.catalogue()
    assert list(cat.index) == list(DATASETS)
    assert set(EXTRASYNAPTIC) <= set(cat.index)
    for col in ("citation", "licence", "version", "kind", "measures"):
        assert cat[col].map(lambda v: isinstance(v, str) and v.strip() != "").all(), col
    assert cat.loc["funatlas_wt", "neurons"] == "300/302"
    assert "Randi" in cat.loc["funatlas_wt", "citation"]
    assert "Cook" in cat.loc["cook2019", "citation"]
    assert "GPL" in cat.loc["cengen", "licence"]
    assert "MIT" in cat.loc["cook2019", "licence"]


@pytest.mark.parametrize("name", list(DATASETS))
def test_dataset_provenance_attrs(atlas, name):
    ds = atlas.dataset(name)
    for key in ("source", "citation", "licence", "version"):
        assert isinstance(ds.attrs[key], str) and ds.attrs[key], key


def test_unknown_dataset(atlas):
    with pytest.raises(UnknownNameError):
        atlas.dataset("cook2018")


def test_returned_arrays_do_not_alias_the_cache(atlas):
    # A caller cleaning a matrix in place (W.values[...] = 0) must not change what the atlas
    # returns next: either the arrays are read-only or they are copies. Uses its own Atlas
    # (cache hits) so a leak cannot spoil the session fixture.
    fresh = digiworm.atlas.load()
    original = fresh.connectome("cook2019", "chemical").sel(post="VA8", pre="AVAL").item()
    returned = fresh.connectome("cook2019", "chemical")
    try:
        returned.loc[{"post": "VA8", "pre": "AVAL"}] = -1.0
    except ValueError:
        pass  # read-only arrays are an acceptable answer
    again = fresh.connectome("cook2019", "chemical").sel(post="VA8", pre="AVAL").item()
    assert again == original
