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


def _memory_maps() -> int | None:
    try:
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux
        return None


def _max_memory_maps() -> int | None:
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_code():
    """Free every module's compiled JAX programs when it ends.

    Each XLA program JIT-compiled on a CPU holds about 19 memory maps, and Linux allows a
    process 65,530 (``vm.max_map_count``). The whole suite compiles thousands of programs in
    one process; kept alive they reached the limit, and the next allocation crashed the
    process (SIGSEGV while unwinding, SIGABRT in an XLA compile: the core dump held 65,531
    maps). Clearing JAX's caches between modules unmaps them; a module that alone nears the
    limit fails here by name instead.
    """
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()
    used, limit = _memory_maps(), _max_memory_maps()
    if used is not None and limit is not None and used > 0.8 * limit:
        pytest.fail(
            f"this module left {used} memory maps after clearing JAX's caches "
            f"(vm.max_map_count {limit}): something keeps compiled programs alive"
        )


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


def require_program(program: str, variable: str, install: str) -> str:
    """Return the path of ``program``; skip with the reason where it is missing.

    A skip names the program and how to install it (pytest's ``-ra`` summary shows it). Where
    the environment sets ``variable=1`` (``.ci/run`` does), a missing program fails the test
    instead, so CI can never pass by skipping it.
    """
    path = shutil.which(program)
    if path is not None:
        return path
    message = f"{program} is not installed ({install})"
    if os.environ.get(variable) == "1":
        pytest.fail(f"{message}; {variable}=1 requires it", pytrace=False)
    pytest.skip(f"{message}; set {variable}=1 to make its absence a failure")


@pytest.fixture
def java() -> str:
    """The ``java`` executable (jNeuroML), or a visible skip (a failure in CI)."""
    return require_program("java", "DIGIWORM_REQUIRE_JAVA", "apt-get install default-jre-headless")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium for the explorer's browser tests, or a visible skip (a failure in CI)."""
    return require_program("chromium", "DIGIWORM_REQUIRE_BROWSER", "apt-get install chromium")


#: The held-out score the fitted-models folder's scores.json reports (explorer tests).
FITTED_HELDOUT_R = 0.312


@pytest.fixture(scope="module")
def models_dir(atlas, tmp_path_factory):
    """A folder as ``digiworm reproduce`` leaves it: ``model_linear.dwm`` beside ``scores.json``.

    The model is the cheap connectome-built linear network, saved the way reproduce saves its fit;
    scores.json carries the cross-validated score under the keys reproduce writes.
    """
    import json

    from digiworm.models import linear_from_atlas, save_model

    folder = tmp_path_factory.mktemp("models")
    save_model(folder / "model_linear.dwm", linear_from_atlas(atlas))
    scores = {
        "split": "class",
        "folds": 5,
        "models": {"linear": {"heldout": {"pearson_clipped": FITTED_HELDOUT_R, "spearman": 0.25}}},
    }
    (folder / "scores.json").write_text(json.dumps(scores))
    return folder


def tiny_reproduce_settings(quick: bool = True):
    """``digiworm reproduce`` settings small enough for the tests: every stage, few steps.

    3 folds, ridge fixed, 20 feature-gain steps, 2 ensemble members of 40 steps, 10 graded-fit
    steps, 3 kernel steps, no neuron split. The scores are not asserted to be good (they are
    measured by full runs).
    """
    from digiworm.fit import GradedFitSettings, KernelFitSettings, LinearCVSettings

    # the defining module: tests stand a stub in for digiworm.reproduce.ReproduceSettings
    from digiworm.reproduce._pipeline import ReproduceSettings

    return ReproduceSettings(
        folds=3,
        linear=LinearCVSettings(
            ridges=(1.0,), inner_folds=2, members=2, steps=40, feature_steps=20
        ),
        graded=GradedFitSettings(steps=10, scales=(1.0,)),
        kernel=KernelFitSettings(steps=3, batch=8),
        neuron_split=False,
        quick=quick,
    )
