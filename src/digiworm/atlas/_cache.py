"""One user cache of parsed datasets, keyed by the hash of their source files.

Layout of the cache folder (``$DIGIWORM_CACHE_DIR``, else the platform's user cache):

* ``sources.json`` — memo of source-file digests, ``{path: [size, mtime_ns, sha256]}``, so an
  unchanged source is not re-hashed on every load;
* ``<name>.<key>.npz`` — the parsed dataset: one uncompressed array per variable and
  coordinate plus a JSON header of dims and attributes (no pickles; loads in milliseconds);
* ``<name>.<key>.sha256`` — digest of that payload, written after it; an entry counts only
  when both exist and agree.

A source file is re-hashed only when its size or modification time changes (as make and ccache
do); a rewrite that keeps both is not noticed until the memo in ``sources.json`` is removed.

``key`` hashes the cache schema, the builder's version and every source file's content, so a
changed source or builder makes a new key; the old entry is then *stale* and is replaced.
Every write is atomic. A corrupt entry (digest mismatch, unreadable, payload without digest) is
detected on load, rebuilt, and reported through the ``digiworm.atlas`` logger and the returned
:class:`CacheEvent`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import xarray as xr

from .._io import atomic_write_bytes, atomic_write_text

__all__ = ["CACHE_ENV", "Cache", "CacheEvent", "default_cache_dir"]

CACHE_ENV = "DIGIWORM_CACHE_DIR"
SCHEMA = "1"
_log = logging.getLogger("digiworm.atlas")


def default_cache_dir() -> Path:
    """Return ``$DIGIWORM_CACHE_DIR`` if set, else the platform user cache for digiworm."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir("digiworm")) / "atlas"


@dataclass(frozen=True)
class CacheEvent:
    """What happened when a dataset was requested from the cache.

    Attributes
    ----------
    name : str
        Dataset name.
    status : {"hit", "built", "rebuilt"}
        Loaded from cache, built for the first time, or rebuilt over a bad entry.
    reason : str
        Why it was (re)built; empty for a hit.
    seconds : float
        Wall time of the load or build, s.
    """

    name: str
    status: str
    reason: str
    seconds: float


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _plain(values: np.ndarray) -> np.ndarray:
    """Object arrays of strings become fixed-width unicode so ``np.load`` needs no pickle."""
    values = np.asarray(values)
    if values.dtype == object:
        return values.astype(str)
    return values


def dataset_to_bytes(ds: xr.Dataset) -> bytes:
    """Serialise a Dataset to ``.npz`` bytes: arrays plus a JSON header of dims and attrs."""
    header = {"attrs": {k: _jsonable(v) for k, v in ds.attrs.items()}, "vars": {}, "coords": {}}
    arrays: dict[str, np.ndarray] = {}
    for group, items in (("coords", ds.coords.items()), ("vars", ds.data_vars.items())):
        for k, (name, var) in enumerate(items):
            key = f"{group}{k}"
            arrays[key] = _plain(var.values)
            header[group][key] = {
                "name": str(name),
                "dims": list(var.dims),
                "attrs": {a: _jsonable(v) for a, v in var.attrs.items()},
            }
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def dataset_from_bytes(data: bytes) -> xr.Dataset:
    """Inverse of :func:`dataset_to_bytes`."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        header = json.loads(npz["__header__"].tobytes().decode())
        coords = {
            meta["name"]: xr.Variable(meta["dims"], npz[key], meta["attrs"])
            for key, meta in header["coords"].items()
        }
        data_vars = {
            meta["name"]: xr.Variable(meta["dims"], npz[key], meta["attrs"])
            for key, meta in header["vars"].items()
        }
    return xr.Dataset(data_vars, coords=coords, attrs=header["attrs"])


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Cache:
    """The parsed-dataset cache in one folder.

    Parameters
    ----------
    root : path, optional
        Cache folder; default :func:`default_cache_dir`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self._memo: dict[str, list] | None = None

    # -- source digests -------------------------------------------------------------------
    def _memo_path(self) -> Path:
        return self.root / "sources.json"

    def _load_memo(self) -> dict[str, list]:
        if self._memo is None:
            try:
                self._memo = json.loads(self._memo_path().read_text())
                if not isinstance(self._memo, dict):
                    raise ValueError("not a mapping")
            except (OSError, ValueError):
                self._memo = {}
        return self._memo

    def source_digest(self, path: Path) -> str:
        """Return the SHA-256 of a source file, re-hashing only if its size or mtime changed."""
        stat = path.stat()
        memo = self._load_memo()
        key = str(path.resolve())
        entry = memo.get(key)
        if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
            return entry[2]
        digest = _sha256_file(path)
        memo[key] = [stat.st_size, stat.st_mtime_ns, digest]
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._memo_path(), json.dumps(memo, indent=0, sort_keys=True))
        return digest

    def key(self, name: str, sources: Sequence[Path], builder_version: str) -> str:
        """Return the content key of ``name`` built by ``builder_version`` from ``sources``."""
        payload = {
            "schema": SCHEMA,
            "name": name,
            "builder": builder_version,
            "sources": sorted(self.source_digest(Path(p)) for p in sources),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]

    # -- entries ----------------------------------------------------------------------------
    def _paths(self, name: str, key: str) -> tuple[Path, Path]:
        return self.root / f"{name}.{key}.npz", self.root / f"{name}.{key}.sha256"

    def _read(self, payload: Path, sidecar: Path) -> xr.Dataset:
        """Read and verify one entry; raise ``ValueError`` describing any corruption."""
        if not sidecar.exists():
            raise ValueError("payload without digest (interrupted write)")
        data = payload.read_bytes()
        expected = sidecar.read_text().strip()
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ValueError(f"digest mismatch (expected {expected[:12]}…, found {actual[:12]}…)")
        try:
            return dataset_from_bytes(data)
        except Exception as exc:  # noqa: BLE001 - any reader failure means a corrupt entry
            raise ValueError(f"unreadable payload ({type(exc).__name__}: {exc})") from exc

    def _write(self, payload: Path, sidecar: Path, ds: xr.Dataset) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data = dataset_to_bytes(ds)
        atomic_write_bytes(payload, data)
        atomic_write_text(sidecar, hashlib.sha256(data).hexdigest() + "\n")

    def load(
        self,
        name: str,
        sources: Sequence[Path],
        build: Callable[[], xr.Dataset],
        builder_version: str,
    ) -> tuple[xr.Dataset, CacheEvent]:
        """Return dataset ``name`` from the cache, building (or rebuilding) it when needed.

        Parameters
        ----------
        name : str
            Dataset name (a file-name-safe token).
        sources : sequence of path
            Every file the builder reads; their content is part of the key.
        build : callable
            ``build() -> xarray.Dataset``; called on a miss.
        builder_version : str
            Bumped when the builder's output changes, invalidating old entries.

        Returns
        -------
        dataset : xarray.Dataset
            Fully loaded into memory (no open file handles).
        event : CacheEvent
            Hit, built or rebuilt, and why.
        """
        start = time.perf_counter()
        key = self.key(name, sources, builder_version)
        payload, sidecar = self._paths(name, key)
        reason = "first build"
        if payload.exists():
            try:
                ds = self._read(payload, sidecar)
                return ds, CacheEvent(name, "hit", "", time.perf_counter() - start)
            except (OSError, ValueError) as exc:
                reason = f"corrupt cache entry {payload.name}: {exc}"
        else:
            old = [p for p in self.root.glob(f"{name}.*.npz") if p != payload]
            if old:
                reason = "stale cache entry (its source files or digiworm's parser changed)"
        ds = build()
        self._write(payload, sidecar, ds)
        for stale in self.root.glob(f"{name}.*"):
            if stale not in (payload, sidecar):
                stale.unlink(missing_ok=True)
        status = "built" if reason == "first build" else "rebuilt"
        if status == "rebuilt":
            _log.warning("%s: %s; rebuilt from source", name, reason)
        return ds, CacheEvent(name, status, reason, time.perf_counter() - start)
