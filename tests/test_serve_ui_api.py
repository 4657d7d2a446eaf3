"""The explorer's API behind the page's fixes (issue 14, section 2b).

Compare with an ablation, non-representable results refused, a reproduce command that runs from
any folder, notes for settings that do nothing, why no measured response is shown, in-sample
atlas scores labelled with the held-out score from the model's provenance, and the favicon.
"""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
import xarray as xr
from conftest import FITTED_HELDOUT_R
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from digiworm.serve import Limits, create_app


@pytest.fixture(scope="module")
def client(atlas, models_dir):
    with TestClient(create_app(atlas, Limits(max_duration_s=60.0), models_dir=models_dir)) as c:
        yield c


def _sim(client, **body):
    body.setdefault("duration_s", 10.0)
    return client.post("/api/simulate", json=body)


def test_compare_with_an_ablation_leaves_the_ablated_neurons_out(client):
    wt = {"stimulate": ["AVAL"], "duration_s": 10.0}
    r = client.post("/api/compare", json={"a": wt, "b": {**wt, "ablate": ["RIML", "AVBL"]}})
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["ablated"] == ["AVBL", "RIML"]
    assert res["a"]["ablated"] == [] and res["b"]["ablated"] == ["RIML", "AVBL"]
    i = res["b"]["neurons"].index("RIML")
    assert all(row[i] is None for row in res["b"]["dff"])  # no trace: null, listed as ablated
    assert all(row[i] is not None for row in res["a"]["dff"])
    changed = res["most_changed"]
    assert changed and not {"RIML", "AVBL"} & {c["neuron"] for c in changed}
    a, b = np.array(res["a"]["dff"], float), np.array(res["b"]["dff"], float)
    top = res["b"]["neurons"].index(changed[0]["neuron"])
    assert changed[0]["max_abs_change"] == pytest.approx(np.abs(b - a)[:, top].max(), rel=1e-3)


def test_non_representable_results_are_refused_naming_the_amplitude(client):
    for amplitude in (1e300, -1e300, 3e38):  # the last overflows inside the graded network
        r = _sim(client, stimulate=["AVAL"], amplitude=amplitude)
        assert r.status_code == 400, (amplitude, r.text)
        assert r.json()["detail"].startswith(f"amplitude {amplitude:g}")
    wt = {"stimulate": ["AVAL"], "duration_s": 10.0}
    r = client.post("/api/compare", json={"a": wt, "b": {**wt, "amplitude": 1e300}})
    assert r.status_code == 400 and "amplitude" in r.json()["detail"]
    ok = _sim(client, stimulate=["AVAL"], amplitude=40.0)
    assert ok.status_code == 200 and all(v is not None for row in ok.json()["dff"] for v in row)


def test_the_reproduce_command_of_a_fitted_model_runs_from_any_folder(
    client, models_dir, tmp_path, monkeypatch
):
    from digiworm.cli import app

    r = _sim(client, model="fitted:model_linear", stimulate=["AVAL"])
    assert r.status_code == 200, r.text
    res = r.json()
    argv = shlex.split(res["command"])
    assert argv[:2] == ["digiworm", "simulate"]
    assert argv[argv.index("--model") + 1] == str((models_dir / "model_linear.dwm").resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(app, argv[1:])
    assert result.exit_code == 0, result.output
    ds = xr.load_dataset(elsewhere / "run.nc", engine="h5netcdf")
    dff = ds["dff"].isel(condition=0).transpose("time", "neuron").to_numpy()
    assert list(ds["neuron"].to_numpy()) == res["neurons"]
    np.testing.assert_allclose(dff, np.array(res["dff"], float), rtol=1e-3, atol=1e-6)  # same run
    body = {k: v for k, v in res.items() if k != "command"}
    assert str(models_dir) not in json.dumps(body)  # the path only in the command shown


def test_settings_that_do_nothing_are_said(client):
    r = _sim(client, stimulate=["AVAL"], drugs=[{"name": "aldicarb", "dose_uM": 0.0}])
    assert r.status_code == 200
    assert any("aldicarb at 0 µM has no effect" in n for n in r.json()["notes"])
    r = _sim(client, stimulate=["RIML"], ablate=["RIML"])
    notes = r.json()["notes"]
    assert any("RIML is ablated" in n and "every trace stays at rest" in n for n in notes)
    r = _sim(client, stimulate=["RIML", "AVAL"], ablate=["RIML"])
    notes = r.json()["notes"]
    assert any("RIML is ablated" in n for n in notes) and "at rest" not in " ".join(notes)
    assert _sim(client, stimulate=["AVAL"]).json()["notes"] == []


def test_why_no_measured_response_is_shown(client):
    r = _sim(client, stimulate=["AVAL"], knockout=["unc-31"]).json()  # measured in wt only
    assert r["measured"] is None
    assert r["measured_note"].startswith("AVAL was not stimulated in the measured unc-31 atlas")
    assert "wild-type atlas" in r["measured_note"]
    r = _sim(client, stimulate=["AVDR"], knockout=["unc-31"]).json()  # measured in both
    assert r["measured"]["strain"] == "unc31" and r["measured_note"] is None
    r = _sim(client, stimulate=["AVAL", "AVAR"]).json()
    assert "one neuron at a time" in r["measured_note"]


def _job(client, body):
    import time

    job_id = client.post("/api/jobs", json=body).json()["job"]
    for _ in range(900):
        view = client.get(f"/api/jobs/{job_id}").json()
        if view["state"] in ("done", "failed", "cancelled"):
            return view
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_the_atlas_score_of_a_fitted_model_is_labelled_in_sample(client):
    view = _job(client, {"model": "fitted:model_linear"})
    assert view["state"] == "done", view
    score = view["result"]["score"]
    assert score["strain"] == "wt" and score["in_sample"] is True
    assert "fitted on the measured wild-type atlas" in score["basis"]
    assert score["heldout"]["pearson_clipped"] == FITTED_HELDOUT_R
    assert score["heldout"]["split"] == "5-fold class split"
    assert view["result"]["responding"] == view["result"]["neurons"]


def test_score_basis_for_each_kind_of_model(tmp_path):
    from digiworm.models import fitted_provenance
    from digiworm.serve._app import _score_basis

    none = {"in_sample": False, "basis": None, "heldout": None}
    assert _score_basis("graded-uncalibrated", "wt") == none
    kernel = _score_basis("kernel-atlas", "wt")  # replays the measured wild-type kernels
    assert kernel["in_sample"] and "kernels" in kernel["basis"]
    shipped = fitted_provenance()["heldout"]
    for kind, scored in (("graded", "graded"), ("linear", "linear"), ("kernel", "linear")):
        basis = _score_basis(kind, "wt")  # the shipped fitted worm: in-sample on wild type
        assert basis["in_sample"] and "shipped fitted worm" in basis["basis"]
        assert basis["heldout"]["pearson_clipped"] == round(shipped[scored]["pearson_clipped"], 3)
    assert _score_basis("graded", "unc31")["in_sample"] is False  # never fitted on unc-31
    unc = _score_basis("fitted:x", "unc31", tmp_path / "x.dwm")  # fitted on wt, scored on unc-31
    assert unc["in_sample"] is False and unc["heldout"] is None  # no scores.json beside it
    (tmp_path / "scores.json").write_text("{not json")
    assert _score_basis("fitted:x", "wt", tmp_path / "model_linear.dwm")["heldout"] is None
    scores = {
        "split": "class",
        "folds": 5,
        "models": {"linear": {"heldout": {"pearson_clipped": 0.4}}},
    }
    (tmp_path / "scores.json").write_text(json.dumps(scores))
    kern = _score_basis("fitted:model_kernel", "wt", tmp_path / "model_kernel.dwm")
    assert kern["heldout"]["pearson_clipped"] == 0.4  # the kernel model's couplings are linear's


def test_the_favicon_is_served(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/static/favicon.svg").status_code == 200


def test_each_run_says_where_its_models_numbers_come_from(client):
    res = _sim(client, stimulate=["AVAL"]).json()
    assert (
        res["evidence"].startswith("Model parameters: fitted:") and "held-out r" in res["evidence"]
    )
    res = _sim(client, stimulate=["AVAL"], model="graded-uncalibrated").json()
    assert "uncalibrated: assumed conductance scales" in res["evidence"]
    options = client.get("/api/options").json()
    assert set(options["model_evidence"]) >= {"graded", "linear", "kernel", "kernel-atlas"}


def test_a_run_without_baseline_says_why_nothing_measured_is_beside_it(client):
    res = _sim(client, stimulate=["AVAL"], onset_s=0.0).json()
    assert res["measured"] is None and "baseline" in res["measured_note"]
