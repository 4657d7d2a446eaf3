"""The on-disk cache: hits, first builds, corruption, staleness; atomic writes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import digiworm
from digiworm._io import atomic_path, atomic_write_text
from digiworm.atlas import Cache
from digiworm.atlas._cache import dataset_from_bytes, dataset_to_bytes

LOGGER = "digiworm.atlas"


def _entry(root: Path, name: str) -> tuple[Path, Path]:
    payloads = sorted(root.glob(f"{name}.*.npz"))
    sidecars = sorted(root.glob(f"{name}.*.sha256"))
    assert len(payloads) == 1 and len(sidecars) == 1, (payloads, sidecars)
    return payloads[0], sidecars[0]


def _load(root: Path, name: str = "neurons"):
    atlas = digiworm.atlas.load(root)
    ds = atlas.dataset(name)
    return ds, atlas.events[-1]


# -- the atlas through its cache ------------------------------------------------------------


@pytest.fixture
def built(tmp_path):
    """A cache folder holding a freshly built ``neurons`` entry, and that dataset."""
    ds, event = _load(tmp_path)
    assert event.status == "built"
    assert event.reason == "first build"
    return tmp_path, ds


def test_first_build_then_hit(built):
    root, first = built
    payload, sidecar = _entry(root, "neurons")
    assert (root / "sources.json").exists()
    mtime = payload.stat().st_mtime_ns
    ds, event = _load(root)
    assert event.status == "hit"
    assert event.reason == ""
    assert event.name == "neurons"
    assert event.seconds >= 0
    xr.testing.assert_identical(ds, first)
    assert payload.stat().st_mtime_ns == mtime  # a hit does not rewrite the entry
    assert ds.sizes["neuron"] == 302


def test_atlas_uses_env_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(digiworm.atlas.CACHE_ENV, str(tmp_path / "env"))
    assert digiworm.atlas.default_cache_dir() == tmp_path / "env"
    assert digiworm.atlas.load().cache.root == tmp_path / "env"


def test_session_cache_is_hermetic(atlas):
    assert Path(atlas.cache.root) == Path(os.environ["DIGIWORM_CACHE_DIR"])
    assert "digiworm-test-cache-" in str(atlas.cache.root)


def _flip_bytes(payload: Path) -> None:
    data = bytearray(payload.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 8] = bytes(b ^ 0xFF for b in data[mid : mid + 8])
    payload.write_bytes(bytes(data))


def _truncate(payload: Path) -> None:
    data = payload.read_bytes()
    payload.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("damage", [_flip_bytes, _truncate], ids=["flipped", "truncated"])
def test_corrupt_payload_is_rebuilt(built, caplog, damage):
    root, original = built
    payload, _ = _entry(root, "neurons")
    damage(payload)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds, event = _load(root)
    assert event.status == "rebuilt"
    assert "corrupt" in event.reason
    assert "digest mismatch" in event.reason
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert warnings, caplog.text
    assert "neurons" in warnings[0].getMessage()
    assert "corrupt" in warnings[0].getMessage()
    xr.testing.assert_identical(ds, original)
    # the rebuilt entry is sound: next load is a hit
    _entry(root, "neurons")
    assert _load(root)[1].status == "hit"


def test_missing_sidecar_is_rebuilt(built, caplog):
    root, original = built
    _, sidecar = _entry(root, "neurons")
    sidecar.unlink()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds, event = _load(root)
    assert event.status == "rebuilt"
    assert "corrupt" in event.reason
    assert "digest" in event.reason
    assert any(r.name == LOGGER for r in caplog.records)
    xr.testing.assert_identical(ds, original)
    assert _entry(root, "neurons")[1].exists()


def test_unreadable_payload_with_matching_digest_is_rebuilt(built):
    import hashlib

    root, original = built
    payload, sidecar = _entry(root, "neurons")
    junk = b"not an npz file at all"
    payload.write_bytes(junk)
    sidecar.write_text(hashlib.sha256(junk).hexdigest() + "\n")
    ds, event = _load(root)
    assert event.status == "rebuilt"
    assert "unreadable" in event.reason
    xr.testing.assert_identical(ds, original)


# -- Cache directly: staleness and keys --------------------------------------------------------


class CountingBuilder:
    """Builds a tiny Dataset from a text source, counting its calls."""

    def __init__(self, source: Path):
        self.source = source
        self.calls = 0

    def __call__(self) -> xr.Dataset:
        self.calls += 1
        values = np.array([float(x) for x in self.source.read_text().split()])
        return xr.Dataset(
            {"v": ("i", values, {"units": "au"})},
            coords={"i": [f"n{k}" for k in range(len(values))]},
            attrs={"origin": self.source.name},
        )


@pytest.fixture
def small(tmp_path):
    source = tmp_path / "src" / "numbers.txt"
    source.parent.mkdir()
    source.write_text("1 2 3")
    return Cache(tmp_path / "cache"), source, CountingBuilder(source)


def test_cache_build_hit(small):
    cache, source, build = small
    ds, event = cache.load("toy", [source], build, "1")
    assert event.status == "built" and build.calls == 1
    ds2, event2 = cache.load("toy", [source], build, "1")
    assert event2.status == "hit" and build.calls == 1
    xr.testing.assert_identical(ds, ds2)
    assert ds2["v"].values.tolist() == [1.0, 2.0, 3.0]
    # a new Cache object on the same folder (fresh digest memo) also hits
    _, event3 = Cache(cache.root).load("toy", [source], build, "1")
    assert event3.status == "hit" and build.calls == 1


def test_changed_source_is_stale(small, caplog):
    cache, source, build = small
    cache.load("toy", [source], build, "1")
    old_payload, old_sidecar = _entry(cache.root, "toy")
    source.write_text("4 5 6 7")  # new content (and size)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds, event = cache.load("toy", [source], build, "1")
    assert event.status == "rebuilt"
    assert "stale" in event.reason
    assert build.calls == 2
    assert ds["v"].values.tolist() == [4.0, 5.0, 6.0, 7.0]
    assert not old_payload.exists() and not old_sidecar.exists()
    new_payload, _ = _entry(cache.root, "toy")  # exactly one entry left
    assert new_payload != old_payload
    assert any("stale" in r.getMessage() for r in caplog.records if r.name == LOGGER)
    assert cache.load("toy", [source], build, "1")[1].status == "hit"


def test_builder_version_changes_key(small):
    cache, source, build = small
    k1 = cache.key("toy", [source], "1")
    k2 = cache.key("toy", [source], "2")
    assert k1 != k2
    assert cache.key("toy", [source], "1") == k1  # deterministic
    assert cache.key("other", [source], "1") != k1
    cache.load("toy", [source], build, "1")
    _, event = cache.load("toy", [source], build, "2")
    assert event.status == "rebuilt" and "stale" in event.reason
    assert build.calls == 2
    payload, _ = _entry(cache.root, "toy")
    assert k2 in payload.name


def test_rebuild_leaves_other_datasets_alone(small):
    cache, source, build = small
    cache.load("toy", [source], build, "1")
    cache.load("toy_b", [source], build, "1")
    source.write_text("9 9 9 9 9")
    cache.load("toy", [source], build, "1")
    _entry(cache.root, "toy")
    _entry(cache.root, "toy_b")  # not swept up by the "toy" clean-up


def test_no_temp_files_left(small):
    cache, source, build = small
    cache.load("toy", [source], build, "1")
    leftovers = [p.name for p in cache.root.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_dataset_bytes_round_trip():
    ds = xr.Dataset(
        {
            "w": (("post", "pre"), np.array([[0.0, np.nan], [2.5, 1.0]]), {"units": "count"}),
            "n": (("post", "pre"), np.array([[1, 2], [3, 4]], dtype=np.int64)),
            "label": ("post", np.array(["a", "bb"], dtype=object)),
        },
        coords={"post": ["AVAL", "AVAR"], "pre": ["AVAL", "AVAR"], "extra": ("post", [1.5, 2.5])},
        attrs={"citation": "x", "n_mapped": np.int64(2), "flag": True},
    )
    back = dataset_from_bytes(dataset_to_bytes(ds))
    assert back["n"].dtype == np.int64
    assert back.attrs == {"citation": "x", "n_mapped": 2, "flag": True}
    assert back["w"].attrs == {"units": "count"}
    np.testing.assert_array_equal(back["w"].values, ds["w"].values)
    assert back["label"].values.tolist() == ["a", "bb"]
    assert back["extra"].dims == ("post",)
    xr.testing.assert_equal(back, ds)


# -- atomic writes ---------------------------------------------------------------------------


def test_atomic_path_success(tmp_path):
    out = tmp_path / "sub" / "a.txt"
    with atomic_path(out) as tmp:
        assert tmp.parent == out.parent
        assert tmp != out
        tmp.write_text("done")
        assert not out.exists()  # nothing visible until the body succeeds
    assert out.read_text() == "done"
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.txt"]


def test_atomic_path_failure_keeps_previous(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("previous")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(out) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("boom")
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_path_failure_without_previous(tmp_path):
    out = tmp_path / "new.txt"
    with pytest.raises(KeyError), atomic_path(out):
        raise KeyError("x")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_text(tmp_path):
    out = tmp_path / "b.txt"
    atomic_write_text(out, "héllo")
    atomic_write_text(out, "again")
    assert out.read_text(encoding="utf-8") == "again"
    assert [p.name for p in tmp_path.iterdir()] == ["b.txt"]


def test_atomic_write_gives_the_permissions_of_a_plain_write(tmp_path):
    import os

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "atomic.txt"
    atomic_write_text(atomic, "x")
    assert os.stat(atomic).st_mode == os.stat(plain).st_mode
