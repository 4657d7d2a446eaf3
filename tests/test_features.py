"""Shared feature gains: the basis is the connectome prior at gains 1; gains are recovered."""

from __future__ import annotations

import numpy as np
import pytest

from digiworm._errors import DigiwormError
from digiworm.fit import (
    LinearCVSettings,
    feature_basis,
    feature_basis_from_atlas,
    fit_feature_gains,
)
from digiworm.fit._linear_cv import PRIOR_RADIUS, connectome_prior
from digiworm.fit._linear_response import trial_table
from digiworm.validate import baseline_context


def _synthetic(n=40, seed=0):
    rng = np.random.default_rng(seed)
    off = ~np.eye(n, dtype=bool)
    chem = np.where((rng.random((n, n)) < 0.15) & off, rng.integers(1, 8, (n, n)), 0)
    gap = np.triu(np.where(rng.random((n, n)) < 0.08, rng.integers(1, 4, (n, n)), 0), 1)
    gap = gap + gap.T
    sign = np.where(rng.random((n, n)) < 0.7, 1.0, -1.0)
    tx = [("acetylcholine",), ("glutamate",), ("GABA",), ()][:4]
    transmitters = [tx[i % 4] for i in range(n)]
    return chem, gap, sign, transmitters


def test_basis_at_unit_gains_is_the_connectome_prior(atlas):
    basis = feature_basis_from_atlas(atlas, PRIOR_RADIUS)
    prior = connectome_prior(baseline_context(atlas).signed)
    off = ~np.eye(len(atlas.names), dtype=bool)
    w = basis.couplings(np.ones(len(basis.labels) + 1))
    np.testing.assert_allclose(w[off], prior[off], atol=1e-12)
    assert np.all(np.diag(w) == 0)
    assert {"acetylcholine+", "acetylcholine-", "glutamate-", "GABA-"} <= set(basis.labels)


def test_fit_recovers_the_gains_of_a_synthetic_worm():
    chem, gap, sign, tx = _synthetic()
    basis = feature_basis(chem, gap, sign, tx, radius=0.3)
    n = chem.shape[0]
    truth = np.linspace(0.5, 2.5, len(basis.labels) + 1)
    w = basis.couplings(truth)
    assert np.max(np.abs(np.linalg.eigvals(w))) < 0.9
    r = np.linalg.inv(np.eye(n) - w)
    rng = np.random.default_rng(1)
    trials = r[:, :, None] + rng.normal(0, 0.002, (n, n, 3))
    table = trial_table(trials)
    fit = fit_feature_gains(
        table, basis, np.ones((1, n, n), bool), delta=0.2, steps=400, learning_rate=3e-2
    )
    np.testing.assert_allclose(fit.gains[0], truth, atol=0.1)
    assert fit.loss[0, -1] < 0.1 * fit.loss[0, 0]
    assert fit.radius[0] == pytest.approx(np.max(np.abs(np.linalg.eigvals(w))), abs=0.05)
    assert fit.shrink[0] == 1.0
    # the stability guard: gains shrunk towards 1 until the radius is at the cap
    capped = fit_feature_gains(
        table, basis, np.ones((1, n, n), bool), delta=0.2, steps=400, learning_rate=3e-2,
        max_radius=0.5,
    )  # fmt: skip
    assert capped.radius[0] == pytest.approx(0.5, abs=1e-6)
    assert 0 < capped.shrink[0] < 1
    np.testing.assert_allclose(
        capped.gains[0], 1 + capped.shrink[0] * (fit.gains[0] - 1), rtol=1e-3, atol=1e-3
    )


def test_bad_inputs_are_named():
    chem, gap, sign, tx = _synthetic()
    with pytest.raises(DigiwormError, match="one transmitter tuple per neuron"):
        feature_basis(chem, gap, sign, tx[:-1], radius=0.3)
    with pytest.raises(DigiwormError, match="target must be one of"):
        LinearCVSettings(target="dense")
    basis = feature_basis(chem, gap, sign, tx, radius=0.3)
    table = trial_table(np.zeros((40, 40, 1)))
    with pytest.raises(DigiwormError, match="train must be"):
        fit_feature_gains(table, basis, np.ones((40, 40), bool), delta=0.2)


def test_feature_target_predicts_held_out_classes_of_a_synthetic_worm():
    """A worm whose couplings are transmitter-group gains x counts (gains far from 1) plus a
    small dense residual: the fitted-gain ridge target predicts never-stimulated classes
    better than the fixed-scale connectome target, with everything else the same."""
    from digiworm.fit import nested_linear_cv
    from digiworm.validate import class_folds

    chem, gap, sign, tx = _synthetic(n=60, seed=3)
    n = chem.shape[0]
    basis = feature_basis(chem, gap, sign, tx, radius=0.22)
    truth = np.array([2.5, -1.0, 3.0, -2.0, 0.5, 1.5, 2.0, -0.5, 2.0])[: len(basis.labels) + 1]
    rng = np.random.default_rng(5)
    residual = np.where(~np.eye(n, dtype=bool), rng.normal(0, 0.01, (n, n)), 0.0)
    w = basis.couplings(truth) + residual
    assert np.max(np.abs(np.linalg.eigvals(w))) < 0.9
    r = np.linalg.inv(np.eye(n) - w)
    trials = r[:, :, None] + rng.normal(0, 0.02, (n, n, 4))
    dff = trials.mean(-1)
    names = [f"N{i}" for i in range(n)]
    classes = [f"C{i // 2}" for i in range(n)]  # left/right pairs held out together
    folds = [np.asarray(f) for f in class_folds(names, classes, 4, 0)]
    prior = basis.couplings(np.ones(len(basis.labels) + 1))
    off = ~np.eye(n, dtype=bool)
    scores = {}
    for target in ("connectome", "features"):
        settings = LinearCVSettings(
            ridges=(1.0,), inner_folds=2, members=1, steps=200, learning_rate=3e-3,
            target=target, feature_steps=200, feature_learning_rate=3e-2,
        )  # fmt: skip
        cv = nested_linear_cv(trials, dff, folds, names, classes, off, prior, settings, basis=basis)
        keep = off & np.isfinite(cv.mean)
        scores[target] = np.corrcoef(cv.mean[keep], dff[keep])[0, 1]
        if target == "features":
            np.testing.assert_allclose(np.mean(cv.feature_gains, 0), truth, atol=0.3)
    # measured: 0.94 vs 0.52
    assert scores["features"] > scores["connectome"] + 0.1, scores
    assert scores["features"] > 0.8, scores
