"""The explorer's web API (digiworm serve): every endpoint with good and bad input."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from digiworm.serve import Limits, create_app


@pytest.fixture(scope="module")
def client(atlas):
    with TestClient(create_app(atlas, Limits(max_duration_s=60.0))) as c:
        yield c


def _sim(client, **body):
    body.setdefault("duration_s", 20.0)
    return client.post("/api/simulate", json=body)


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "digiworm explorer" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../_app.py").status_code == 404  # no way out of static/


def test_neuron_table_has_every_neuron_with_a_position(client):
    table = client.get("/api/neurons").json()["neurons"]
    assert len(table) == 302
    names = {n["name"] for n in table}
    assert {"AVAL", "AWCR", "VA5"} <= names
    for n in table:
        assert all(isinstance(n[k], float) for k in "xyz"), n
    aval = next(n for n in table if n["name"] == "AVAL")
    assert aval["measured"] and aval["type"]


def test_neuron_card_and_did_you_mean(client):
    card = client.get("/api/neurons/AVAL").json()
    assert card["name"] == "AVAL" and card["identity"]["class"] == "AVA"
    bad = client.get("/api/neurons/AVLA")
    assert bad.status_code == 404
    assert "AVAL" in bad.json()["suggestions"] and "AVLA" in bad.json()["detail"]


def test_simulate_a_stimulation_with_the_measured_response_beside_it(client):
    r = _sim(client, stimulate=["AVAL"])
    assert r.status_code == 200, r.text
    res = r.json()
    dff = np.array(res["dff"], dtype=float)
    assert dff.shape == (len(res["time_s"]), 302)
    i = res["neurons"].index("AVAL")
    t = np.array(res["time_s"])
    before, after = dff[t < 5.0, i].mean(), dff[(t > 5.0) & (t < 8.0), i].max()
    assert after > before  # the stimulated neuron's indicator rises
    assert "--stimulate AVAL" in res["command"] and "--model graded" in res["command"]
    m = res["measured"]
    assert m["strain"] == "wt" and m["n"] >= 10 and "AVAL" not in m["neurons"]
    assert len(m["measured"]) == len(m["predicted"]) == m["n"]
    assert -1.0 <= m["pearson"] <= 1.0


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"stimulate": ["AVAL"], "knockout": ["unc-13x"]}, 400, "unknown gene"),
        ({"stimulate": ["AVLA"]}, 400, "did you mean AVAL"),
        ({"stimulate": ["AVAL"], "duration_s": 500.0}, 400, "limit of 60"),
        ({"stimulate": ["AVAL"], "drugs": [{"name": "aldicarb", "dose_uM": -1}]}, 422, "dose"),
        ({"stimulate": ["AVAL"], "drugs": [{"name": "aspirin", "dose_uM": 1}]}, 400, "drug"),
        ({"stimulate": ["AVAL"], "model": "/etc/passwd"}, 422, "model"),
        ({"stimulate": ["AVAL"], "colour": "red"}, 422, "colour"),
        ({"stimulate": ["AVAL"] * 41}, 400, "at most 40"),
        ({"stimulate": ["AVAL"], "onset_s": 25.0}, 400, "onset"),
        ({}, 400, "nothing to do"),
    ],
)
def test_bad_experiments_get_a_clear_4xx(client, body, status, words):
    r = _sim(client, **body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert words in detail and "Traceback" not in detail


def test_non_finite_numbers_and_oversized_bodies_are_refused(client):
    r = client.post(
        "/api/simulate",
        content='{"stimulate": ["AVAL"], "amplitude": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    big = json.dumps({"stimulate": ["AVAL"], "ablate": ["x" * 19] * 3000})
    r = client.post("/api/simulate", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_compare_wild_type_with_unc31(client):
    wt = {"stimulate": ["AVDR"], "duration_s": 20.0}  # measured in both strains
    r = client.post("/api/compare", json={"a": wt, "b": {**wt, "knockout": ["unc-31"]}})
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["b"]["measured"]["strain"] == "unc31"
    change = res["most_changed"]
    assert change and change[0]["max_abs_change"] > 0
    a, b = np.array(res["a"]["dff"], float), np.array(res["b"]["dff"], float)
    assert not np.allclose(a, b)


def test_connectome_edges_by_kind_and_neuron(client):
    gap = client.get("/api/connectome", params={"kind": "gap", "neuron": "AVAL"}).json()
    assert gap["edges"] and all("AVAL" in e[:2] for e in gap["edges"])
    chem = client.get("/api/connectome", params={"kind": "chemical", "min_weight": 20}).json()
    assert all(e[2] >= 20 for e in chem["edges"])
    pep = client.get("/api/connectome", params={"kind": "peptide", "neuron": "AVAL"}).json()
    assert pep["edges"]
    assert client.get("/api/connectome", params={"kind": "electric"}).status_code == 422
    assert client.get("/api/connectome", params={"neuron": "AVXX"}).status_code == 404
    ava = client.get("/api/connectome", params={"kind": "gap", "class": "AVA"}).json()["edges"]
    assert ava and all({"AVAL", "AVAR"} & set(e[:2]) for e in ava)
    bad = client.get("/api/connectome", params={"class": "AVAA"})
    assert bad.status_code == 404 and "AVA" in bad.json()["suggestions"]


def test_export_netcdf(client):
    r = client.post("/api/export.nc", json={"stimulate": ["ASHL"], "duration_s": 10.0})
    assert r.status_code == 200
    assert r.content[:4] == b"\x89HDF"  # NetCDF4 is HDF5


def test_concurrent_requests_keep_their_own_results(client):
    targets = ["AVAL", "ASHL", "RIML", "AIYL", "AWCR", "PVCL"]

    def run(name):
        return name, _sim(client, stimulate=[name], duration_s=10.0).json()

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(run, targets))
    for name, res in results:
        assert res["stimulated"] == [name]
        dff = np.array(res["dff"], dtype=float)
        t = np.array(res["time_s"])
        rise = dff[(t > 5.0) & (t < 7.0)].max(axis=0) - dff[t < 5.0].mean(axis=0)
        assert res["neurons"][int(np.nanargmax(rise))] == name  # its own stimulation


def test_atlas_job_runs_with_progress_and_a_score(client):
    import time

    job = client.post("/api/jobs", json={"model": "linear"})
    assert job.status_code == 202, job.text
    job_id = job.json()["job"]
    for _ in range(600):
        view = client.get(f"/api/jobs/{job_id}").json()
        if view["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.2)
    assert view["state"] == "done", view
    assert view["done"] == view["total"] == 302
    res = view["result"]
    assert len(res["neurons"]) == 302 and len(res["dff"]) == 302
    assert res["score"]["strain"] == "wt" and -1 <= res["score"]["pearson_clipped"] <= 1
    assert "--atlas" in res["command"]


def test_atlas_jobs_can_be_cancelled_and_bad_ones_refused(client):
    import time

    assert client.post("/api/jobs", json={"knockout": ["unc-13x"]}).status_code == 400
    assert client.get("/api/jobs/nope").status_code == 404
    job_id = client.post("/api/jobs", json={"model": "graded"}).json()["job"]
    client.delete(f"/api/jobs/{job_id}")
    for _ in range(600):
        view = client.get(f"/api/jobs/{job_id}").json()
        if view["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.2)
    assert view["state"] == "cancelled" and view["result"] is None


def test_fitted_models_are_offered_by_name_only(atlas, tmp_path):
    from digiworm.models import linear_from_atlas, save_model

    save_model(tmp_path / "mylinear.dwm", linear_from_atlas(atlas))
    with TestClient(create_app(atlas, models_dir=tmp_path)) as c:
        assert "fitted:mylinear" in c.get("/api/options").json()["models"]
        r = _sim(c, model="fitted:mylinear", stimulate=["AVAL"], duration_s=10.0)
        assert r.status_code == 200, r.text
        assert "--model mylinear.dwm" in r.json()["command"]
        assert str(tmp_path) not in r.text  # no folder paths reach the page
        bad = _sim(c, model="fitted:mylinaer", stimulate=["AVAL"])
        assert bad.status_code == 400 and "mylinear" in bad.json()["suggestions"]
        assert _sim(c, model="fitted:../../etc", stimulate=["AVAL"]).status_code == 422


def test_compare_and_export_refuse_bad_input(client):
    a = {"stimulate": ["AVAL"], "duration_s": 20.0}
    r = client.post("/api/compare", json={"a": a, "b": {**a, "duration_s": 10.0}})
    assert r.status_code == 400 and "duration" in r.json()["detail"]
    r = client.post("/api/compare", json={"a": a})
    assert r.status_code == 422 and "b" in r.json()["detail"]
    r = client.post("/api/export.nc", json={"stimulate": ["AVAL"], "ablate": ["RIMX"]})
    assert r.status_code == 400 and "RIM" in r.json()["detail"]


def test_the_conductance_level_runs_with_its_own_step_and_limits(client):
    r = _sim(client, model="conductance", stimulate=["AVAL"], duration_s=8.0, onset_s=2.0)
    assert r.status_code == 200, r.text
    res = r.json()
    assert "--model conductance" in res["command"] and "--dt 0.0005" in res["command"]
    dff = np.array(res["dff"], dtype=float)
    t = np.array(res["time_s"])
    i = res["neurons"].index("AVAL")
    assert dff[(t > 2.0) & (t < 4.0), i].max() > dff[t < 2.0, i].mean()  # AVAL responds
    long = _sim(client, model="conductance", stimulate=["AVAL"], duration_s=55.0)
    assert long.status_code == 400 and "conductance" in long.json()["detail"]
    coarse = _sim(client, model="conductance", stimulate=["AVAL"], dt_s=0.02)
    assert coarse.status_code == 400 and "dt" in coarse.json()["detail"]
    job = client.post("/api/jobs", json={"model": "conductance"})
    assert job.status_code == 400 and "30 min" in job.json()["detail"]
