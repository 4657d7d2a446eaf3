"""The shipped fitted expression maps, their jackknife ensemble, channel knockouts of the
published and predicted cells, and the 302-neuron population read from expression."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import equinox as eqx
import numpy as np
import pytest

from digiworm._errors import DataPackageError, DigiwormError
from digiworm.models import (
    REFERENCE_CELLS,
    ExpressionMap,
    calibrate_expression_map,
    cell_from_conductances,
    cells_from_expression,
    fit_expression_map,
    fit_neuron_effects,
    fit_settings,
    fitted_expression_map,
    fitted_expression_maps,
    jackknife_maps,
    read_expression_maps,
    write_expression_maps,
)
from digiworm.models._expression_maps import _maps_path
from digiworm.validate import (
    channel_knockouts,
    expression_population,
    knockout_agreement,
    steady_readout,
)


@pytest.fixture(scope="module")
def ratio_maps(atlas):
    """Ratio-calibrated maps: ``all`` and one without each published model (seconds to make)."""
    maps = {r: calibrate_expression_map(atlas, tuple(o for o in REFERENCE_CELLS if o != r))
            for r in REFERENCE_CELLS}  # fmt: skip
    return maps | {"all": calibrate_expression_map(atlas)}


def test_a_map_round_trips_through_its_dict_and_a_file(ratio_maps, tmp_path):
    m = ratio_maps["RMD"]
    assert ExpressionMap.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    path = tmp_path / "maps.json"
    write_expression_maps(path, ratio_maps)
    back, made_with = read_expression_maps(path)
    assert back == ratio_maps
    assert made_with["settings"] == fit_settings() and made_with["threshold"] == 2
    assert "cengen" in made_with["expression"]
    with pytest.raises(DigiwormError, match="lack"):
        write_expression_maps(path, {"all": m})
    bad = m.to_dict() | {"scale_nS": {"shk2": 1.0}}
    with pytest.raises(ValueError, match="shk1"):
        ExpressionMap.from_dict(bad)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DataPackageError, match="--refit --maps-out"):
        read_expression_maps(tmp_path / "broken.json")


def test_neuron_effects_apply_to_their_neuron_and_its_class_only(atlas, ratio_maps):
    """A map's neuron effects scale that neuron's conductances and shift its leak reversal; a
    class-mate without its own effect takes the class's; other neurons and
    ``neuron_effects=False`` get the shared map; the effects round-trip through the dict."""
    m = ratio_maps["all"]
    neuron = REFERENCE_CELLS["RMD"].neuron
    cls = atlas.neurons["cengen_class"]
    mate = next(n for n in atlas.neurons.index if cls[n] == cls[neuron] and n != neuron)
    effect = {"egl19": math.log(2.0), "leak": math.log(0.5), "e_leak_mV": 12.0}
    with_effect = replace(m, neuron_effects={neuron: effect})
    assert ExpressionMap.from_dict(json.loads(json.dumps(with_effect.to_dict()))) == with_effect
    for who in (neuron, mate):
        shared = cells_from_expression(atlas, who, m)
        got = cells_from_expression(atlas, who, with_effect)
        assert float(got.g_nS["egl19"][0]) == pytest.approx(2 * float(shared.g_nS["egl19"][0]))
        assert float(got.g_nS["leak"][0]) == pytest.approx(0.5 * float(shared.g_nS["leak"][0]))
        assert float(got.e_leak_mV[0]) == pytest.approx(m.e_leak_mV + 12.0)
        for c in set(got.channels) - {"egl19", "leak"}:
            assert float(got.g_nS[c][0]) == float(shared.g_nS[c][0]), c
        off = cells_from_expression(atlas, who, with_effect, neuron_effects=False)
        assert float(off.g_nS["egl19"][0]) == float(shared.g_nS["egl19"][0])
        assert float(off.e_leak_mV[0]) == m.e_leak_mV
    other = cells_from_expression(atlas, "AIYL", with_effect)
    assert float(other.e_leak_mV[0]) == m.e_leak_mV


def test_the_shipped_maps_are_complete_and_fitted_with_todays_settings():
    maps, made_with = read_expression_maps(_maps_path())
    assert set(maps) == {"all", *REFERENCE_CELLS}
    assert made_with["settings"] == fit_settings()
    for name, m in maps.items():
        assert m.method == "fitted" and m.threshold == 2
        want = set(REFERENCE_CELLS) - ({name} if name != "all" else set())
        assert set(m.calibrated_on) == want
        # only the in-sample map carries neuron effects: the others predict held out
        assert bool(m.neuron_effects) == (name == "all")
    assert fitted_expression_map() == maps["all"]
    with pytest.raises(DigiwormError, match="threshold 2, not 3"):
        fitted_expression_map(3)


def test_the_shipped_all_map_matches_a_refit_with_todays_code(atlas):
    """The shipped map cannot drift from the fit: refit it (about 1.5 min) and compare."""
    shipped = fitted_expression_maps()["all"]
    refit = fit_neuron_effects(atlas, fit_expression_map(atlas))
    assert set(refit.scale_nS) == set(shipped.scale_nS)
    for c, k in refit.scale_nS.items():
        assert k == pytest.approx(shipped.scale_nS[c], rel=1e-3), c
    assert refit.leak_nS_per_pF == pytest.approx(shipped.leak_nS_per_pF, rel=1e-3)
    assert refit.e_leak_mV == pytest.approx(shipped.e_leak_mV, abs=0.01)
    assert set(refit.neuron_effects) == {r.neuron for r in REFERENCE_CELLS.values()}
    for n, effect in refit.neuron_effects.items():
        assert set(effect) == set(shipped.neuron_effects[n]), n
        for k, v in effect.items():
            assert v == pytest.approx(shipped.neuron_effects[n][k], abs=1e-3), (n, k)


def test_cells_from_expression_default_to_the_shipped_fitted_map(atlas):
    a = cells_from_expression(atlas, "AIYL")
    b = cells_from_expression(atlas, "AIYL", fitted_expression_map())
    assert a.source == b.source and "fitted to" in a.source
    for c in a.channels:
        assert float(a.g_nS[c][0]) == float(b.g_nS[c][0])


def test_the_jackknife_ensemble_has_the_jackknife_covariance(ratio_maps):
    ens = jackknife_maps(ratio_maps)
    assert set(ens) == set(REFERENCE_CELLS)
    channels = sorted(ratio_maps["all"].scale_nS)

    def vec(m):
        return np.array([math.log(m.scale_nS[c]) for c in channels]
                        + [math.log(m.leak_nS_per_pF), m.e_leak_mV])  # fmt: skip

    loo = np.stack([vec(ratio_maps[r]) for r in REFERENCE_CELLS])
    n = len(loo)
    jack = (n - 1) / n * (loo - loo.mean(0)).T @ (loo - loo.mean(0))
    members = np.stack([vec(m) for m in ens.values()])
    np.testing.assert_allclose(np.cov(members.T, bias=True), jack, atol=1e-10)
    # centred on the map asked for
    np.testing.assert_allclose(members.mean(0), vec(ratio_maps["all"]), atol=1e-10)
    around = np.stack([vec(m) for m in jackknife_maps(ratio_maps, "RMD").values()])
    np.testing.assert_allclose(around.mean(0), vec(ratio_maps["RMD"]), atol=1e-10)
    with pytest.raises(ValueError, match="RMD"):
        jackknife_maps(ratio_maps, "RMDD")
    with pytest.raises(DigiwormError, match="at least 3"):
        jackknife_maps({"all": ratio_maps["all"], "RMD": ratio_maps["RMD"]})


def test_steady_readout_of_a_passive_cell_is_analytical():
    g, e, step = 0.5, -65.0, 10.0  # nS, mV, pA
    cell = cell_from_conductances("p", {"leak": g}, c_pF=10.0, vol_um3=1.0, e_leak_mV=e)
    r = steady_readout(cell, step)
    assert r["rest_mV"] == pytest.approx(e, abs=1e-4)
    assert r["rests"] == 1
    assert r["input_resistance_GOhm"] == pytest.approx(1 / g, rel=1e-3)  # float32 slope
    assert r["step_mV"] == pytest.approx(e + step / g, abs=0.05)  # the 0.05 mV grid


def test_a_published_knockout_removes_the_genes_conductance(atlas, ratio_maps):
    table = channel_knockouts(atlas, ["cca-1", "egl-36"], ["RMD", "AVAL"], maps=ratio_maps)
    assert len(table) == 4
    rmd = table.set_index(["reference", "gene"]).loc[("RMD", "cca-1")]
    ref = REFERENCE_CELLS["RMD"]
    cell = ref.cell()  # the published RMD without its CCA-1 conductance
    mutant = eqx.tree_at(lambda c: c.g_nS, cell, dict(cell.g_nS) | {"cca1": 0 * cell.g_nS["cca1"]})
    step = float(np.max(ref.steps_pA))
    want = steady_readout(mutant, step)["rest_mV"] - steady_readout(ref.cell(), step)["rest_mV"]
    assert rmd.published_d_rest_mV == pytest.approx(want, abs=1e-9)
    # the published RMD needs CCA-1 for its up state: the knockout loses one stable rest
    assert rmd.published_rests_wt == 2 and rmd.published_rests_ko == 1
    ava = table.set_index(["reference", "gene"]).loc[("AVAL", "egl-36")]
    # neither the published AVA nor its expression has EGL-36: nothing changes
    assert not ava.in_published and not ava.expressed
    assert ava.published_d_rest_mV == 0 and ava.predicted_d_rest_mV == 0
    with pytest.raises(DigiwormError, match="not an ion-channel gene|no curated role"):
        channel_knockouts(atlas, ["unc-31"], ["RMD"], maps=ratio_maps)
    with pytest.raises(DigiwormError, match="no held-out expression map"):
        channel_knockouts(atlas, ["cca-1"], ["RMD"], maps={"all": ratio_maps["all"]})


def test_knockout_agreement_counts_signs_and_rest_changes():
    import pandas as pd

    t = pd.DataFrame({
        "published_d_rest_mV": [-5.0, 3.0, 0.2, 2.0],
        "predicted_d_rest_mV": [-1.0, -2.0, 5.0, 4.0],
        "published_d_step_mV": [0.0, 0.0, 0.0, 0.0],
        "predicted_d_step_mV": [0.0, 0.0, 0.0, 0.0],
        "published_rests_wt": [2, 1, 1, 1],
        "published_rests_ko": [1, 1, 1, 1],
        "predicted_rests_wt": [2, 1, 1, 1],
        "predicted_rests_ko": [1, 2, 1, 1],
    })  # fmt: skip
    a = knockout_agreement(t)
    assert a["rest_mV"]["n"] == 3 and a["rest_mV"]["same_sign"] == 2
    assert a["step_mV"]["n"] == 0
    assert a["rest_count_changes"] == {"n": 1, "reproduced": 1}


def test_the_population_reads_every_profiled_neuron(atlas, ratio_maps):
    m = ratio_maps["all"]
    pop = expression_population(atlas, m, ensemble={})
    profiled = [n for n in atlas.names if atlas.neurons.loc[n, "cengen_class"]]
    assert list(pop.index) == profiled
    assert pop.prior_share.between(0, 1).all() and pop.rest_mV.notna().all()  # all have a rest
    # a neuron is read as its own cell: the same readout as steady_readout on it
    one = steady_readout(cells_from_expression(atlas, "AIYL", m), 10.0)
    assert pop.loc["AIYL", "rest_mV"] == pytest.approx(one["rest_mV"])
    assert pop.loc["AIYL", "step_mV"] == pytest.approx(one["step_mV"])
    # prior-only channels carry the share they are given: scale them to zero and it is zero
    zero = replace(m, scale_nS=m.scale_nS | {c: 1e-12 for c in m.prior})
    assert expression_population(atlas, zero, ensemble={}).prior_share.max() < 1e-6
    # identical ensemble members: no spread
    same = expression_population(atlas, m, ensemble={"a": m, "b": m})
    assert (same.rest_sd_mV == 0).all()
    # pore-forming channel genes without kinetics are named (the TRPV osm-9 has none)
    assert pop.unmodelled.str.contains("osm-9").any()
    assert not pop.unmodelled.str.contains("unc-80").any()  # an auxiliary subunit


@pytest.mark.parametrize("name", ["VA5", "VB6", "VD5"])
def test_the_fitted_cells_follow_the_published_traces_closer_than_the_ratio_cells(atlas, name):
    """In sample, against tests/data/nicoletti2024_neuron.npz (NEURON 9.0.2 running the
    authors' files): the cell the shipped map builds from the neuron's expression is closer to
    the published traces than the ratio map's cell, though still far from them (docs/cells.md
    records the in-sample RMS; the issue's goal of 2 mV is not met)."""
    from pathlib import Path

    from digiworm.simulate import current_clamp

    data = np.load(Path(__file__).parent / "data" / "nicoletti2024_neuron.npz")
    t_ref, amps, v_ref = (data[f"{name}_{k}"] for k in ("t_ms", "amps_pA", "v_mV"))
    neuron = REFERENCE_CELLS[name].neuron
    rms = {}
    for label, m in (
        ("fitted", fitted_expression_map()),
        ("ratio", calibrate_expression_map(atlas)),
    ):
        cell = cells_from_expression(atlas, neuron, m)
        ds = current_clamp(cell, amps, onset_ms=100.0, duration_ms=1000.0,
                           total_ms=float(t_ref[-1]), dt_ms=0.05, save_dt_ms=1.0)  # fmt: skip
        v = ds.v_mV.sel(time_ms=t_ref.astype(float), method="nearest").values[:, :, 0]
        rms[label] = float(np.sqrt(np.mean((v - v_ref) ** 2)))
    assert rms["fitted"] < rms["ratio"], rms
    assert rms["fitted"] < 40.0, rms
