"""The explorer's moving worm (POST /api/behave): two worms side by side, bounded, checked."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from digiworm.serve import Limits, create_app


@pytest.fixture(scope="module")
def client(atlas):
    with TestClient(create_app(atlas, Limits(behave_durations_s=(10.0,)))) as c:
        yield c


@pytest.fixture(scope="module")
def shrinker(client):
    """unc-25 beside the wild type on agar, both touched on the head at 3 s."""
    body = {"duration_s": 10, "knockout": ["unc-25"],
            "touch": [{"where": "anterior", "at_s": 3.0}]}  # fmt: skip
    r = client.post("/api/behave", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_two_worms_come_back_as_frames_on_one_scale(shrinker, atlas):
    """Frames at 12.5 per second hold each body's 48 segment centres, every neuron's change
    from the wild type's rest as an integer on one shared scale, and the backward gate."""
    d = shrinker
    assert set(d["runs"]) == {"wild_type", "perturbed"} and d["medium"] == "agar"
    n = len(d["time_s"])
    assert n == 125 and d["frame_s"] == pytest.approx(0.08)
    assert np.allclose(np.diff(d["time_s"]), 0.08)
    assert [x["name"] for x in d["neurons"]] == list(atlas.names)
    along = np.array([x["along"] for x in d["neurons"]])
    across = np.array([x["across"] for x in d["neurons"]])
    assert along.min() == 0 and along.max() == 1 and np.abs(across).max() == pytest.approx(1)
    q = d["activity_scale"]["levels"]
    for run in d["runs"].values():
        xy = np.asarray(run["xy_mm"])
        assert xy.shape == (n, 48, 2)
        # neighbouring segment centres stay one segment length apart (1 mm / 48)
        gaps = np.linalg.norm(np.diff(xy, axis=1), axis=2)
        assert np.allclose(gaps, 1 / 48, atol=2e-3)
        act = np.asarray(run["activity"], float)
        assert act.shape == (n, 302) and np.abs(act).max() <= q
        assert len(run["backward_gate"]) == n
    # the wild type starts at its own rest; unc-25's brain rests elsewhere (no GABA)
    assert np.abs(np.asarray(d["runs"]["wild_type"]["activity"][0])).max() == 0
    assert np.abs(np.asarray(d["runs"]["perturbed"]["activity"][0], float)).max() > 0
    # the head touch (3-4 s) moves the touched neurons of the wild type
    t = np.asarray(d["time_s"])
    alm = [x["name"] for x in d["neurons"]].index("ALML")
    act = np.asarray(d["runs"]["wild_type"]["activity"], float)[:, alm]
    assert act[(t > 3.1) & (t < 4)].min() > 0 and act[t < 3].max() == 0


def test_the_perturbed_worm_differs_and_each_run_can_be_reproduced(shrinker):
    """GABA loss co-contracts (McIntire et al. 1993: the shrinker), each run carries its
    read-outs, the agar targets for the wild type and the behave line that reproduces it, and
    the evidence names the assumed parts."""
    wt, ko = shrinker["runs"]["wild_type"], shrinker["runs"]["perturbed"]
    assert ko["readouts"]["co_contraction"] > 2 * wt["readouts"]["co_contraction"]
    assert len(wt["readouts"]["touch_reversals"]) == 1
    assert any("crawl" in s["quantity"] for s in wt["scores"])
    assert "--knockout unc-25" in ko["command"] and "--knockout" not in wt["command"]
    assert "--touch anterior@3" in wt["command"] and "--medium agar" in wt["command"]
    assert "assumed" in str(shrinker["evidence"])


def test_a_wild_type_alone_runs_one_worm_in_any_medium(client):
    """No perturbation: one worm; the slider's blends and a viscosity are media."""
    r = client.post("/api/behave", json={"duration_s": 10, "medium": "blend:0.3"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert list(d["runs"]) == ["wild_type"] and "blend 0.3" in d["medium"]
    assert d["runs"]["wild_type"]["scores"] == []  # no targets between water and agar


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"duration_s": 12}, 400, "run lengths (10 s"),
        ({"medium": "honey"}, 400, "honey"),
        ({"medium": "blend:2"}, 400, "from 0 (water) to 1 (agar)"),
        ({"ablate": ["AVAX"]}, 400, "AVAX"),
        ({"knockout": ["unc-999"]}, 400, "unc-999"),
        ({"drugs": [{"name": "aspirin", "dose_uM": 1}]}, 400, "aspirin"),
        ({"touch": [{"where": "anterior", "at_s": 50}]}, 400, "outside the run"),
        ({"touch": [{"where": "sideways", "at_s": 1}]}, 422, "touch"),
        ({"touch": [{"where": "anterior", "at_s": 1}] * 5}, 422, "touch"),
        ({"model": "conductance"}, 422, "model"),
        ({"seed": -1}, 422, "seed"),
        ({"ablate": [f"N{i}" for i in range(303)]}, 422, "ablate"),
    ],
)
def test_bad_requests_are_refused_naming_the_value(client, body, status, needle):
    r = client.post("/api/behave", json={"duration_s": 10, **body})
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]
