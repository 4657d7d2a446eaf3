"""In-silico experiments change exactly what they say, and nothing else."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from digiworm import DigiwormError, UnknownNameError
from digiworm.experiments import Ablate, Drug, Knockout, Mutant, drug_table
from digiworm.models import graded_from_atlas, linear_from_atlas
from digiworm.simulate import Protocol, insilico_atlas, simulate

FIELDS = ("g_gap", "g_chem", "e_chem_mV", "w_pep_mV", "tau_m_s", "v_rest_mV", "v_th_mV",
          "g_tonic", "e_tonic_mV", "alive")  # fmt: skip


@pytest.fixture(scope="module")
def model(atlas):
    return graded_from_atlas(atlas)


def _changed(a, b) -> set[str]:
    return {f for f in FIELDS if not bool(jnp.array_equal(getattr(a, f), getattr(b, f)))}


def test_ablate_removes_every_edge_of_the_neurons(model):
    out = Ablate(["RIML", "RIMR"])(model)
    idx = [model.names.index(n) for n in ("RIML", "RIMR")]
    for field in ("g_gap", "g_chem", "w_pep_mV"):
        m = np.asarray(getattr(out, field))
        assert not m[idx, :].any() and not m[:, idx].any()
        keep = np.setdiff1d(np.arange(302), idx)
        before = np.asarray(getattr(model, field))
        np.testing.assert_array_equal(m[np.ix_(keep, keep)], before[np.ix_(keep, keep)])
    assert not bool(out.alive[idx[0]]) and int(out.alive.sum()) == 300
    assert np.asarray(model.g_chem)[idx, :].any()  # the input model is untouched
    ds = simulate(out, Protocol.single(out.names, ["AVAL"]), 2.0, 0.02, settle_s=2.0)
    assert np.isnan(ds.dff.sel(neuron="RIML")).all()
    assert np.isfinite(ds.dff.sel(neuron="AVAL")).all()


def test_ablate_unknown_neuron(model):
    with pytest.raises(UnknownNameError, match="AVAL"):
        Ablate(["AVLA"])(model)


def test_unc31_zeroes_the_peptide_layer_only(atlas, model):
    out = Knockout("unc-31", atlas)(model)
    assert float(jnp.abs(model.w_pep_mV).sum()) > 0
    assert float(jnp.abs(out.w_pep_mV).sum()) == 0.0
    assert _changed(model, out) == {"w_pep_mV"}


def test_partial_loss_scales(atlas, model):
    out = Knockout("unc-31", atlas, residual=0.25)(model)
    np.testing.assert_allclose(out.w_pep_mV, 0.25 * model.w_pep_mV, rtol=1e-6)


def test_innexin_knockout_removes_gap_junctions_of_expressing_neurons(atlas, model):
    ko = Knockout("unc-7", atlas)
    out = ko(model)
    assert _changed(model, out) == {"g_gap"}
    expr = np.array(ko.expressing)
    pair = expr[:, None] | expr[None, :]
    gap = np.asarray(out.g_gap)
    assert not gap[pair].any()
    np.testing.assert_array_equal(gap[~pair], np.asarray(model.g_gap)[~pair])
    np.testing.assert_array_equal(gap, gap.T)


def test_eat4_removes_glutamatergic_output_of_expressing_neurons(atlas, model):
    out = Knockout("eat-4", atlas)(model)
    assert _changed(model, out) == {"g_chem"}
    cols = np.flatnonzero(~np.all(np.asarray(out.g_chem) == np.asarray(model.g_chem), axis=0))
    expr = atlas.expression("eat-4").to_pandas()
    for j in cols:
        name = model.names[j]
        assert expr[name] > 0
        assert "Glutamate" in (atlas.neurons.loc[name, "transmitter"] or "") or "glutamate" in (
            atlas.neurons.loc[name, "transmitter_fenyves"] or ""
        )
        assert not np.asarray(out.g_chem)[:, j].any()
    assert "ASHL" in [model.names[j] for j in cols]  # ASH is glutamatergic (Lee et al. 1999)
    assert "AVAL" not in [model.names[j] for j in cols]  # AVA is cholinergic


def test_single_peptide_gene_reduces_part_of_the_peptide_layer(atlas, model):
    out = Knockout("flp-18", atlas)(model)
    assert _changed(model, out) == {"w_pep_mV"}
    before, after = np.abs(np.asarray(model.w_pep_mV)), np.abs(np.asarray(out.w_pep_mV))
    assert (after <= before + 1e-7).all()
    assert 0 < after.sum() < before.sum()


def test_gene_without_a_modelled_role_is_an_error(atlas, model):
    with pytest.raises(DigiwormError, match="does not model"):
        Knockout("glr-1", atlas)
    # an ion channel acts on conductance-based cells, never silently on the graded network
    with pytest.raises(DigiwormError, match="conductance-based"):
        Knockout("shk-1", atlas)(model)


def test_unknown_gene_suggests(atlas):
    with pytest.raises(UnknownNameError, match="unc-31"):
        Knockout("unc31x", atlas)


def test_knockout_needs_a_mechanistic_model(atlas):
    with pytest.raises(DigiwormError, match="mechanistic"):
        Knockout("unc-31", atlas)(linear_from_atlas(atlas))


def test_mutant_is_the_composition_of_knockouts(atlas, model):
    both = Mutant(["unc-31", "unc-7"], atlas)(model)
    seq = Knockout("unc-7", atlas)(Knockout("unc-31", atlas)(model))
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(both, f), getattr(seq, f))


def test_aldicarb_dose_response(atlas, model):
    row = drug_table().loc["aldicarb"]
    ach = np.array(
        ["Acetylcholine" in (t or "") for t in atlas.neurons.loc[list(model.names), "transmitter"]]
    )
    assert ach.any()
    zero = Drug("aldicarb", 0.0, atlas)(model)
    assert not _changed(model, zero)
    previous = 1.0
    for dose in (0.1 * row.ec50_uM, row.ec50_uM, 10 * row.ec50_uM):
        drug = Drug("aldicarb", dose, atlas)
        out = drug(model)
        h = dose**row.hill / (dose**row.hill + row.ec50_uM**row.hill)
        assert drug.effect == pytest.approx(h)
        ratio = np.asarray(out.g_chem).sum(0) / np.where(
            np.asarray(model.g_chem).sum(0) > 0, np.asarray(model.g_chem).sum(0), 1
        )
        has = np.asarray(model.g_chem).sum(0) > 0
        np.testing.assert_allclose(ratio[ach & has], 1 + row.emax * h, rtol=1e-5)
        np.testing.assert_allclose(ratio[~ach & has], 1.0, rtol=1e-6)
        assert ratio[ach & has][0] > previous
        previous = ratio[ach & has][0]


def test_ivermectin_opens_inhibitory_tonic_conductance_in_glucl_neurons(atlas, model):
    row = drug_table().loc["ivermectin"]
    out = Drug("ivm", row.ec50_uM, atlas)(model)  # alias accepted
    assert _changed(model, out) == {"g_tonic", "e_tonic_mV"}
    targets = row.target_genes.split(";")
    expr = np.any([atlas.expression(g).to_numpy() > 0 for g in targets], axis=0)
    g = np.asarray(out.g_tonic)
    np.testing.assert_allclose(g[expr], 0.5 * row.gmax_rel, rtol=1e-6)
    assert not g[~expr].any()
    np.testing.assert_allclose(np.asarray(out.e_tonic_mV)[expr], row.reversal_mV)


@pytest.mark.parametrize(
    ("name", "dose", "match"),
    [("aspirin", 1.0, "unknown drug"), ("aldicarb", -1.0, ">= 0"), ("aldicarb", 1e12, "100x")],
)
def test_bad_drug(atlas, name, dose, match):
    with pytest.raises(DigiwormError, match=match):
        Drug(name, dose, atlas)


def test_insilico_atlas_layout_and_batching(atlas):
    model = graded_from_atlas(atlas)
    kwargs = dict(baseline_s=2.0, window_s=4.0, dt_s=0.02, settle_s=5.0)
    one = insilico_atlas(model, ["ASHL", "AIYL", "AVAL"], batch_size=2, **kwargs)
    two = insilico_atlas(model, ["ASHL", "AIYL", "AVAL"], batch_size=3, **kwargs)
    assert one.dff.dims == ("responding", "stimulated")
    assert one.dff.shape == (302, 3)
    np.testing.assert_allclose(one.dff, two.dff, rtol=1e-5, atol=1e-7)
    for n in ("ASHL", "AIYL", "AVAL"):  # the stimulated neuron responds most
        col = one.dff.sel(stimulated=n).to_pandas()
        assert col.idxmax() == n and col[n] > 0.01


def test_transforms_are_pure_and_jit_friendly(atlas, model):
    before = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
    Knockout("unc-31", atlas)(model)
    after = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
    assert all(bool(jnp.array_equal(a, b)) for a, b in zip(before, after))
