"""Shared fixtures: a hermetic, session-wide atlas cache.

``DIGIWORM_CACHE_DIR`` is set when this module is imported, before any test module (or any
:class:`digiworm.atlas.Atlas`) exists, so the suite never reads or writes the user's cache and
every dataset is parsed at most once per session.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_SESSION_CACHE = tempfile.mkdtemp(prefix="digiworm-test-cache-")
os.environ["DIGIWORM_CACHE_DIR"] = _SESSION_CACHE


@pytest.fixture(scope="session", autouse=True)
def _session_cache_dir():
    """Keep the session cache in place for the whole run, then remove it."""
    os.environ["DIGIWORM_CACHE_DIR"] = _SESSION_CACHE
    yield _SESSION_CACHE
    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def atlas():
    """One :class:`digiworm.atlas.Atlas` per session: datasets build once, then stay in memory."""
    import digiworm

    return digiworm.atlas.load()


@pytest.fixture(scope="session")
def canonical_names(atlas) -> list[str]:
    """The 302 canonical neuron ids."""
    return atlas.names


@pytest.fixture(scope="module")
def x64():
    """Run a module in float64 (``pytestmark = pytest.mark.usefixtures("x64")``), then restore."""
    import jax

    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)
