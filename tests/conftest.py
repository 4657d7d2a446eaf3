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
