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
    # httpx would normalise "/static/../_app.py" before sending; encoded dots reach the app
    escape = client.get("/static/%2e%2e/_app.py")
    assert escape.status_code == 404 and "import" not in escape.text  # no way out of static/
    assert client.get("/static/%2e%2e/__init__.py").status_code == 404


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
    r = np.corrcoef(np.asarray(m["measured"], float), np.asarray(m["predicted"], float))[0, 1]
    assert m["pearson"] == pytest.approx(r, abs=1e-3)  # the score is of the pairs it shows


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


def test_atlas_job_runs_with_progress_and_a_score(client, atlas):
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
    assert res["score"]["strain"] == "wt"
    # the score is the clipped Pearson of this matrix against the measured atlas, off-diagonal
    pred = np.array([[np.nan if v is None else v for v in row] for row in res["dff"]], float)
    measured = atlas.functional("wt", kernel_time_s=None)["dff"].to_numpy()
    keep = np.isfinite(pred) & np.isfinite(measured) & ~np.eye(302, dtype=bool)
    clip = [np.clip(x, *np.percentile(x, (0.5, 99.5))) for x in (pred[keep], measured[keep])]
    assert res["score"]["pearson_clipped"] == pytest.approx(np.corrcoef(*clip)[0, 1], abs=2e-3)
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
        # the reproduce command names the file by its absolute path (it runs from any folder);
        # no other field carries a path (tests/test_serve_ui_api.py runs the command)
        res = r.json()
        assert f"--model {(tmp_path / 'mylinear.dwm').resolve()}" in res.pop("command")
        assert str(tmp_path) not in json.dumps(res)
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


# --- bounded against hostile or huge requests (issue 14, section 2) ---------------------------


def _wait_job(c, job_id, states=("done", "failed", "cancelled")):
    import time

    for _ in range(600):
        view = c.get(f"/api/jobs/{job_id}").json()
        if view["state"] in states:
            return view
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never ended: {view}")


def test_tiny_steps_are_refused_fast_before_any_model_is_built(atlas):
    import time

    app = create_app(atlas)  # a fresh app: no model built yet
    with TestClient(app) as c:
        limits = c.get("/api/options").json()["limits"]
        assert limits["max_steps"] == 80_000 and limits["max_total_steps"] == 600_000
        hostile = {"model": "conductance", "stimulate": ["AVAL"], "dt_s": 1e-9, "duration_s": 40}
        for body in (hostile, {**hostile, "model": "graded"}, {**hostile, "model": "linear"}):
            t0 = time.perf_counter()
            r = c.post("/api/simulate", json=body)
            wall = time.perf_counter() - t0
            assert r.status_code == 422, r.text
            assert wall < 1.0, wall
            detail = r.json()["detail"]
            assert "4e+10" in detail and "limit of 80000" in detail and "\n" not in detail
        fine = {"stimulate": ["AVAL"], "duration_s": 10.0}
        t0 = time.perf_counter()
        r = c.post("/api/compare", json={"a": fine, "b": hostile})  # b refused before a runs
        assert r.status_code == 422 and time.perf_counter() - t0 < 1.0
        r = c.post("/api/export.nc", json=hostile)
        assert r.status_code == 422
        assert app.state.explorer._models == {}  # nothing was built for any of them
    with TestClient(create_app(atlas, Limits(max_total_steps=100_000))) as c:
        t0 = time.perf_counter()
        r = c.post("/api/jobs", json={"model": "linear"})  # 302 x 1750 steps
        assert r.status_code == 422 and time.perf_counter() - t0 < 1.0
        assert "302 stimulations" in r.json()["detail"] and "100000" in r.json()["detail"]


def test_steps_come_from_a_few_compiled_shapes(client):
    from jax import monitoring

    compiles = []

    def listen(name, secs, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            compiles.append(secs)

    first = _sim(client, stimulate=["AVAL"], duration_s=20.0)  # the 20 s program, compiled once
    assert first.status_code == 200, first.text
    monitoring.register_event_duration_secs_listener(listen)
    try:
        cut = {d: _sim(client, stimulate=["AVAL"], duration_s=d) for d in (11.0, 12.5, 17.0)}
    finally:
        monitoring.unregister_event_duration_listener(listen)
    assert compiles == []  # every duration up to 20 s ran on the 20 s program
    full = np.array(first.json()["dff"], dtype=float)
    for d, r in cut.items():
        res = r.json()
        assert res["time_s"][-1] == d and len(res["time_s"]) == int(d / 0.5) + 1  # cut back
        np.testing.assert_array_equal(np.array(res["dff"], dtype=float), full[: len(res["time_s"])])
    bad_dt = _sim(client, stimulate=["AVAL"], dt_s=0.03)
    assert bad_dt.status_code == 400 and "0.01, 0.02, 0.025" in bad_dt.json()["detail"]
    bad_duration = _sim(client, stimulate=["AVAL"], duration_s=7.3)
    assert bad_duration.status_code == 400 and "0.5 s samples" in bad_duration.json()["detail"]


def test_chunked_oversized_body_is_refused(client):
    def chunks(body: bytes, size: int = 1024):
        for k in range(0, len(body), size):
            yield body[k : k + size]

    valid = json.dumps({"stimulate": ["AVAL"], "duration_s": 10.0}).encode()
    big = valid + b" " * 40_000  # valid JSON, over the 32 768-byte limit only by its padding
    r = client.post(
        "/api/simulate", content=chunks(big), headers={"Content-Type": "application/json"}
    )
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, r.text
    assert "limit of 32768 bytes" in r.json()["detail"]
    small = json.dumps({"stimulate": ["AVLA"]}).encode()  # chunked and small: read and checked
    r = client.post(
        "/api/simulate", content=chunks(small, 7), headers={"Content-Type": "application/json"}
    )
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.status_code == 400 and "AVAL" in r.json()["suggestions"]


def test_streamed_body_is_read_only_up_to_the_limit(atlas):
    import asyncio

    app = create_app(atlas, Limits(max_body_bytes=4096))
    pulled, sent = [], []

    async def receive():  # an endless chunked body, 1 KiB at a time
        pulled.append(1)
        if len(pulled) > 10_000:
            raise AssertionError("the server read the whole stream")
        return {"type": "http.request", "body": b" " * 1024, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/simulate", "raw_path": b"/api/simulate",
        "root_path": "", "query_string": b"", "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "headers": [
            (b"host", b"testserver"), (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
        ],
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert len(pulled) == 5  # 4 KiB allowed: the 5th chunk passes the limit and stops reading


def test_long_lists_are_refused_by_length(client):
    r = _sim(client, stimulate=["AVAL"] * 400)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("stimulate:") and "at most 302" in r.json()["detail"]
    r = client.post("/api/jobs", json={"ablate": ["AVAL"] * 303})
    assert r.status_code == 422 and "at most 302" in r.json()["detail"]
    assert _sim(client, stimulate=["AVAL"] * 41).status_code == 400  # the working limit: 40


def test_kernel_requests_leave_graded_results_bit_identical(atlas, tmp_path):
    import jax
    import xarray as xr

    flag = jax.config.jax_enable_x64
    graded = {"stimulate": ["AVAL"], "duration_s": 10.0}

    def export(c, name):
        r = c.post("/api/export.nc", json=graded)
        assert r.status_code == 200, r.text
        (tmp_path / name).write_bytes(r.content)
        with xr.open_dataset(tmp_path / name, engine="h5netcdf") as ds:
            return ds["dff"].load().to_numpy()

    with TestClient(create_app(atlas)) as c:
        before = export(c, "before.nc")
        kernel = _sim(c, model="kernel", stimulate=["AVAL"], duration_s=10.0)
        assert kernel.status_code == 200, kernel.text
        assert jax.config.jax_enable_x64 == flag  # no process-wide switch
        after = export(c, "after.nc")
    assert before.dtype == after.dtype == np.float32
    np.testing.assert_array_equal(before, after)  # bit-identical, NaNs included
    k = np.array(kernel.json()["dff"], dtype=float)
    i = kernel.json()["neurons"].index("AVAL")
    assert np.nanmax(k[:, i]) > 0.5  # the kernel model still runs (driven AVAL shows its input)


def test_the_job_store_stays_bounded(atlas):
    import time

    limits = Limits(max_kept_jobs=2, job_ttl_s=3.0)
    with TestClient(create_app(atlas, limits)) as c:
        state = c.app.state.explorer
        ids = []
        for _ in range(5):
            job_id = c.post("/api/jobs", json={"model": "linear"}).json()["job"]
            c.delete(f"/api/jobs/{job_id}")
            assert _wait_job(c, job_id)["state"] == "cancelled"
            ids.append(job_id)
            assert state.n_jobs <= 2
        gone = c.get(f"/api/jobs/{ids[0]}")
        assert gone.status_code == 404 and "forgotten" in gone.json()["detail"]
        assert "at most 2" in gone.json()["detail"]
        assert c.get(f"/api/jobs/{ids[-1]}").json()["state"] == "cancelled"  # the newest kept
        time.sleep(3.2)
        assert state.n_jobs == 0  # past job_ttl_s
        assert c.get(f"/api/jobs/{ids[-1]}").status_code == 404
        assert c.get("/api/jobs/never-made").json()["detail"] == "no job 'never-made'"


def test_untrusted_host_header_is_refused(atlas):
    with TestClient(create_app(atlas)) as c:  # bound to 127.0.0.1, the default
        assert c.get("/api/health", headers={"Host": "evil.example"}).status_code == 400
        assert c.get("/api/health", headers={"Host": "evil.example:8000"}).status_code == 400
        for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "testserver"):
            assert c.get("/api/health", headers={"Host": host}).status_code == 200, host
    with TestClient(create_app(atlas, host="0.0.0.0")) as c:  # the network: any name
        assert c.get("/api/health", headers={"Host": "worm.lab.example"}).status_code == 200
