"""``digiworm reproduce`` end to end on the real atlas with shrunken settings: files and schema.

The scores themselves are not asserted here (they are measurements, reported in the issue
notes); what is asserted is that every output exists, follows its schema, and loads back.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from conftest import tiny_reproduce_settings

from digiworm.models import GradedNetwork, LinearModel, load_model
from digiworm.reproduce import run_reproduce, write_outputs
from digiworm.validate import load_perturbation

METRICS = ("pearson_clipped", "spearman", "sign_accuracy", "auroc")


@pytest.fixture(scope="module")
def reproduced(atlas, tmp_path_factory):
    settings = tiny_reproduce_settings(quick=True)
    messages = []
    result = run_reproduce(atlas, settings, lambda m, f: messages.append((m, f)))
    out = tmp_path_factory.mktemp("reproduce")
    write_outputs(result, out, atlas, wall_s=12.4)
    return result, out, messages


def test_scores_json_has_the_documented_keys(reproduced):
    _, out, messages = reproduced
    scores = json.loads((out / "scores.json").read_text())
    assert scores["split"] == "class"
    assert 0 < scores["noise_ceiling"]["ceiling"] < 1
    for name in ("anatomy", "anatomy_steady_state", "responder_mean", "nearest_neighbour"):
        assert set(METRICS) <= set(scores["baselines"][name])
    linear = scores["models"]["linear"]
    assert set(METRICS) <= set(linear["heldout"])
    # intervals calibrated inside the training folds cover about 90 % of held-out pairs
    assert linear["coverage90"] == pytest.approx(0.9, abs=0.05)
    assert set(METRICS) <= set(scores["models"]["graded"]["heldout"])
    assert scores["models"]["graded"]["coverage90"] == pytest.approx(0.9, abs=0.05)
    predictors = ("linear_knockout", "no_change_linear_wt_prediction", "measured_wt_atlas",
                  "graded_knockout", "no_change_graded_wt_prediction")  # fmt: skip
    for predictor in predictors:
        assert set(METRICS) <= set(scores["unc31"][predictor])
    assert scores["unc31"]["change"]["linear_knockout"]["n_pairs"] > 1000
    kernels = scores["models"]["kernel"]["heldout_kernels"]
    assert set(kernels) == {"model", "per_neuron", "tau_1s", "responder_mean"}
    for name, values in kernels.items():
        assert np.isfinite(values["pearson_clipped"]), name
        assert values["n_pairs"] > 20_000  # every measured off-diagonal pair is held out once
    # a responder's mean kernel predicts held-out kernel shapes (full run: median r 0.29)
    assert kernels["responder_mean"]["shape_r_median"] > 0.15
    fractions = [f for _, f in messages]
    assert fractions == sorted(fractions)  # progress only moves forward


def test_predictions_file_is_scorable_per_model(reproduced, atlas):
    result, out, _ = reproduced
    ds = xr.load_dataset(out / "predictions.nc")
    assert ds["dff"].dims == ("model", "responding", "stimulated")
    assert ds["spontaneous_corr"].dims == ("model", "neuron", "neuron_")
    pred = load_perturbation(out / "predictions.nc", atlas.names, "prediction", model="linear")
    np.testing.assert_allclose(pred["dff"].to_numpy(), result.oof["linear"], equal_nan=True)
    lower, upper = ds["dff_lower"].sel(model="linear"), ds["dff_upper"].sel(model="linear")
    finite = np.isfinite(lower.to_numpy())
    assert finite.sum() > 20_000
    assert np.all(lower.to_numpy()[finite] <= upper.to_numpy()[finite])
    corr = ds["spontaneous_corr"].sel(model="linear").to_numpy()
    np.testing.assert_allclose(np.diag(corr), 1.0, atol=1e-6)
    np.testing.assert_allclose(corr, corr.T, atol=1e-6)


def test_fitted_model_loads_and_matches_its_steady_state(reproduced):
    result, out, _ = reproduced
    model = load_model(out / "model_linear.dwm")
    assert isinstance(model, LinearModel)
    np.testing.assert_array_equal(np.asarray(model.a_per_s), result.models["linear"].a_per_s)
    a = np.asarray(model.a_per_s, dtype=float)
    b = np.asarray(model.b_per_s, dtype=float)
    steady = -np.linalg.solve(a, np.diag(b))  # x* = -A^-1 B u
    off = ~np.eye(len(a), dtype=bool)
    # the mean coupling's steady state vs the ensemble's mean steady state
    r = np.corrcoef(steady[off], result.unc31_reference["linear"][off])[0, 1]
    assert r > 0.99
    kernel = load_model(out / "model_kernel.dwm")  # same couplings, fitted time constants
    a_k = np.asarray(kernel.a_per_s, dtype=float)
    steady_k = -np.linalg.solve(a_k, np.diag(np.asarray(kernel.b_per_s, dtype=float)))
    np.testing.assert_allclose(steady_k, steady, rtol=1e-3, atol=1e-5)
    # no self-couplings, so A_ii = -1/tau_i
    np.testing.assert_allclose(-1.0 / np.diag(a_k), result.kernel.tau_s, rtol=1e-5)
    graded = load_model(out / "model_graded.dwm")
    assert isinstance(graded, GradedNetwork)
    np.testing.assert_array_equal(
        np.asarray(graded.w_pep_mV), np.asarray(result.models["graded"].w_pep_mV)
    )


def test_graded_unc31_prediction_removes_the_peptide_layer(reproduced):
    result, _, _ = reproduced
    assert np.any(np.asarray(result.models["graded"].w_pep_mV) != 0)
    change = result.unc31["graded"] - result.unc31_reference["graded"]
    assert np.nanmax(np.abs(change)) > 0


def test_report_has_every_figure(reproduced):
    _, out, _ = reproduced
    page = (out / "report.html").read_text()
    figures = ("bars", "scatter", "matrices", "calibration", "unc31", "spontaneous", "traces",
               "kernels")  # fmt: skip
    for fig in figures:
        assert f'id="{fig}"' in page
    assert "Wall time 12 s" in page and "nan" not in page.split("<h2>", 1)[0]


def test_cli_prints_the_scoreboard_of_every_model(reproduced, capsys):
    from digiworm.cli._fit import _print_scoreboard

    result, _, _ = reproduced
    _print_scoreboard(result.scores)
    printed = capsys.readouterr().out
    assert "linear" in printed and "graded" in printed and "kernel model" in printed


def test_provenance_names_the_models_and_their_checksums(reproduced):
    import hashlib

    _, out, _ = reproduced
    prov = json.loads((out / "provenance.json").read_text())
    scores = json.loads((out / "scores.json").read_text())
    assert set(prov["files"]) == {"model_linear.dwm", "model_graded.dwm", "model_kernel.dwm"}
    for name, digest in prov["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert prov["settings"] == scores["settings"]
    assert prov["final"]["linear"] == scores["models"]["linear"]["final"]
    assert prov["heldout"]["graded"]["pearson_clipped"] == pytest.approx(
        scores["models"]["graded"]["heldout"]["pearson_clipped"]
    )
    assert prov["data"]["wormneuroatlas"]
