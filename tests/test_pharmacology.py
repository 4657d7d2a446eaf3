"""The drug table is cited and complete, and every drug action and state changes what it says."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from digiworm import DigiwormError, UnknownNameError
from digiworm.experiments import (
    AMINES,
    EVIDENCE_LEVELS,
    Drug,
    Neuromodulation,
    drug_evidence,
    drug_table,
    monoamine_receptors,
)
from digiworm.experiments._experiments import _released
from digiworm.models import ConductanceCell, fitted
from digiworm.models._graded import E_EXC_MV, E_INH_MV

MODES = {"agonist", "block", "opener", "inhibitor of breakdown", "inhibitor of reuptake",
         "depleter"}  # fmt: skip


@pytest.fixture(scope="module")
def model():
    return fitted("graded")


def _expr(atlas, gene, names):
    e = atlas.expression(gene, 2).to_pandas().reindex(list(names)).to_numpy()
    return np.nan_to_num(e, nan=0.0) > 0


def test_drug_table_is_cited_and_covers_the_classes_of_worm_pharmacology(atlas):
    table = drug_table()
    assert len(table) >= 20
    assert set(table["evidence"]) <= set(EVIDENCE_LEVELS)
    assert set(table["mode"]) <= MODES
    for drug, row in table.iterrows():
        for col in ("citation", "potency_source", "mechanism", "molecular_targets"):
            assert isinstance(row[col], str) and len(row[col]) >= 5, (drug, col)
        for gene in row["molecular_targets"].split(";") + row["target_genes"].split(";"):
            assert atlas.gene(gene) == gene, (drug, gene)  # a worm gene the atlas knows
        assert row["ec50_uM"] > 0 and row["typical_dose"] > 0 and row["hill"] > 0
    classes = " ".join(table["class"])
    for family in ("anthelmintic", "cholinergic", "GABAergic", "monoaminergic", "channel"):
        assert family in classes, family
    for amine in AMINES:  # exogenous amines through their receptors
        assert table.loc[amine, "action"] == f"monoamine:{amine}"
    assert "measured" in set(table["evidence"]) or "literature range" in set(table["evidence"])


def test_every_drug_acts_on_a_model(atlas, model):
    """Each drug changes the graded network at its typical dose, or (channel blockers) a cell."""
    for drug, row in drug_table().iterrows():
        d = Drug(drug, float(row["typical_dose"]), atlas)
        assert d.evidence == row["evidence"]
        if row["action"] == "channel_block":
            with pytest.raises(DigiwormError, match="conductance"):
                d(model)
            from digiworm.models import reference_cell

            cell = reference_cell("RMD").cell()
            assert isinstance(cell, ConductanceCell)
            out = d(cell)
            assert any(float(out.g_nS[c][0]) < float(cell.g_nS[c][0]) for c in cell.g_nS), drug
            continue
        out = d(model)
        changed = [f for f in ("g_chem", "g_tonic") if not jnp.array_equal(
            getattr(out, f), getattr(model, f))]  # fmt: skip
        assert changed, drug


def test_receptor_antagonist_blocks_only_synapses_onto_its_receptor(atlas, model):
    row = drug_table().loc["dihydro-beta-erythroidine"]
    d = Drug("dhbe", float(row["typical_dose"]), atlas)
    out = np.asarray(d(model).g_chem)
    before = np.asarray(model.g_chem)
    post = _expr(atlas, "acr-16", model.names)
    pre = np.array(["acetylcholine" in rel for rel in _released(atlas, model.names)])
    factor = 1 + row["emax"] * d.effect
    hit = np.outer(post, pre) & (before > 0)
    assert hit.any()
    np.testing.assert_allclose(out[hit], before[hit] * factor, rtol=1e-5)
    np.testing.assert_array_equal(out[~np.outer(post, pre)], before[~np.outer(post, pre)])


def test_depleter_scales_every_monoamine_releaser(atlas, model):
    d = Drug("reserpine", 1e3, atlas)
    ratio_of = np.asarray(d(model).g_chem).sum(0) / np.maximum(np.asarray(model.g_chem).sum(0),
                                                                 1e-30)  # fmt: skip
    released = _released(atlas, model.names)
    has = np.asarray(model.g_chem).sum(0) > 0
    amine = np.array([bool(rel & set(AMINES)) for rel in released]) & has
    assert amine.sum() >= 4
    np.testing.assert_allclose(ratio_of[amine], 1 - 0.9 * d.effect, rtol=1e-5)
    np.testing.assert_allclose(ratio_of[~amine & has], 1.0, rtol=1e-6)


def test_exogenous_amine_acts_through_each_receptor_with_its_sign(atlas, model):
    row = drug_table().loc["serotonin"]
    d = Drug("5-ht", float(row["ec50_uM"]), atlas)  # half effect
    out = d(model)
    receptors = monoamine_receptors()
    rec = receptors[receptors["amine"] == "serotonin"]
    names = model.names
    plus = sum(_expr(atlas, g, names) for g in rec.index[rec["sign"] > 0])
    minus = sum(_expr(atlas, g, names) for g in rec.index[rec["sign"] < 0])
    g = np.asarray(out.g_tonic) - np.asarray(model.g_tonic)
    np.testing.assert_allclose(g, 0.5 * row["gmax_rel"] * (plus + minus), rtol=1e-5, atol=1e-9)
    e = np.asarray(out.e_tonic_mV)
    only_inhibitory = (minus > 0) & (plus == 0) & (np.asarray(model.g_tonic) == 0)
    only_excitatory = (plus > 0) & (minus == 0) & (np.asarray(model.g_tonic) == 0)
    assert only_inhibitory.any() and only_excitatory.any()
    np.testing.assert_allclose(e[only_inhibitory], E_INH_MV)
    np.testing.assert_allclose(e[only_excitatory], E_EXC_MV)


def test_neuromodulatory_state_reaches_only_the_amine_network_receivers(atlas, model):
    assert Neuromodulation({"serotonin": 0.0}, atlas)(model) is model
    fed = Neuromodulation({"serotonin": 1.0}, atlas)(model)
    g = np.asarray(fed.g_tonic) - np.asarray(model.g_tonic)
    receivers = atlas.extrasynaptic("bentley_monoamine", "serotonin").sum("pre") > 0
    receivers = receivers.to_pandas().reindex(list(model.names)).to_numpy()
    assert (g > 0).any()
    assert not g[~receivers].any()
    starved = Neuromodulation({"octopamine": 1.0, "tyramine": 1.0}, atlas)(model)
    assert not np.allclose(np.asarray(starved.g_tonic), np.asarray(fed.g_tonic))
    with pytest.raises(DigiwormError, match=r"\[0, 1\]"):
        Neuromodulation({"serotonin": 2.0}, atlas)
    with pytest.raises(UnknownNameError, match="did you mean"):
        Neuromodulation({"serotonine": 0.5}, atlas)


def test_openers_are_refused_on_conductance_cells(atlas):
    from digiworm.models import reference_cell

    cell = reference_cell("RMD").cell()
    with pytest.raises(DigiwormError, match="opener"):
        Drug("emodepside", 1.0, atlas)(cell)


def test_drug_evidence_reaches_simulate_and_behave_outputs(atlas):
    from digiworm.app import BehaviourRequest, SimulationRequest, run_request

    ev = drug_evidence([("pyrantel", 100.0), "ethanol"])
    assert ev["pyrantel"].startswith("assumed") and ev["ethanol"].startswith("literature range")
    req = SimulationRequest(stimulate=("AVAL",), duration_s=2.0, drugs=(("pyrantel", 100.0),))
    ds = run_request(req.check(atlas), atlas, progress=False)
    assert "pyrantel: assumed" in ds.attrs["drug_evidence"]
    from digiworm.app import run_behaviour

    breq = BehaviourRequest(duration_s=5.0, drugs=(("ethanol", 1e5),)).check(atlas)
    _, summary = run_behaviour(breq, atlas)
    assert summary["evidence"]["drug potencies"]["ethanol"].startswith("literature range")


def test_l_achr_agonists_share_the_junction_rule():
    from digiworm.body import Muscles, neuromuscular_perturbation

    z = jnp.zeros((2, 1))
    m = Muscles(excitatory=z, inhibitory=z, side=jnp.zeros(2), row=jnp.zeros(2, int),
                names=("a", "b"), neurons=("n",))  # fmt: skip
    for drug in ("pyrantel", "tribendimidine"):
        out, effects = neuromuscular_perturbation(m, (), ((drug, 1e4),))
        assert float(out.tonic) > 0.9, drug
        resistant, _ = neuromuscular_perturbation(m, ("unc-29",), ((drug, 1e4),))
        assert float(resistant.tonic) == 0.0
        assert "L-AChR agonist" in effects[0]["at the junction"]


def test_inhibitory_anthelmintics_act_at_the_junction_and_their_mutants_resist():
    """Muscimol and piperazine open UNC-49 (a hyperpolarising tonic drive), emodepside and
    ethanol open SLO-1 (the evoked excitation silenced), ivermectin and moxidectin silence
    the motor output through GluCls (both drives), at saturating doses; each rule vanishes
    with its receptor, and ivermectin needs glc-1, avr-14 and avr-15 all lost (Dent et al.
    2000)."""
    from digiworm.body import Muscles, neuromuscular_perturbation

    z = jnp.zeros((2, 1))
    m = Muscles(excitatory=z, inhibitory=z, side=jnp.zeros(2), row=jnp.zeros(2, int),
                names=("a", "b"), neurons=("n",))  # fmt: skip

    def knobs(knockout, drug, dose):
        out, effects = neuromuscular_perturbation(m, knockout, ((drug, dose),))
        gains = (out.excitatory_gain, out.inhibitory_gain, out.tonic)
        return tuple(float(x) for x in gains), effects[-1]["at the junction"]

    for drug, dose in (("muscimol", 1e5), ("piperazine", 1e6)):
        (_, _, tonic), said = knobs((), drug, dose)
        assert tonic < -0.98 and "UNC-49" in said, drug
        assert knobs(("unc-49",), drug, dose)[0][2] == 0.0
    for drug, dose in (("emodepside", 100.0), ("ethanol", 1e6)):
        (exc, inh, _), said = knobs((), drug, dose)
        assert exc < 0.3 and inh == 1.0 and "SLO-1" in said, drug
        assert knobs(("slo-1",), drug, dose)[0][0] == 1.0
    for drug in ("ivermectin", "moxidectin"):
        (exc, inh, _), said = knobs((), drug, 1.0)
        assert exc < 0.02 and inh < 0.02 and "GluCl" in said, drug
        assert knobs(("glc-1", "avr-14"), drug, 1.0)[0][0] < 0.02  # one GluCl gene left
        (exc, inh, _), said = knobs(("glc-1", "avr-14", "avr-15"), drug, 1.0)
        assert exc == inh == 1.0 and "no effect" in said


def test_a_receptor_mutant_takes_its_agonists_action_from_the_brain_and_the_body(atlas):
    """A knocked-out target carries no drug action in the brain (Drug's ``absent``), and a
    behaviour run of the mutant under the drug moves like the mutant's wild type, while the
    wild type under emodepside is paralysed (Guest et al. 2007: slo-1 mutants resist it)."""
    from digiworm.app import BehaviourRequest, run_behaviour
    from digiworm.experiments import Drug

    assert Drug("emodepside", 1.0, atlas).targets == ("slo-1",)
    assert Drug("emodepside", 1.0, atlas, absent=("slo-1",)).targets == ()

    def speed(**kw):
        req = BehaviourRequest(duration_s=6.0, seed=1, **kw).check(atlas)
        return run_behaviour(req, atlas)[1]

    wt, emo = speed(), speed(drugs=(("emodepside", 10.0),))
    resistant = speed(knockout=("slo-1",), drugs=(("emodepside", 10.0),))
    assert emo["speed_mm_per_s"] < 0.1 * wt["speed_mm_per_s"]
    assert resistant["speed_mm_per_s"] == pytest.approx(wt["speed_mm_per_s"], rel=1e-3)
    notes = resistant["evidence"]["perturbations in the brain"]
    assert any("slo-1" in n and "leaves its neurons" in n for n in notes)
