"""Prediction intervals, nested cross-validation, spontaneous correlations, trial splits."""

from __future__ import annotations

import numpy as np
import pytest

from digiworm._errors import DigiwormError
from digiworm.fit._linear_cv import LinearCVSettings, nested_linear_cv
from digiworm.fit._uncertainty import coverage, interval_scale, noise_variance, predictive_sd
from digiworm.models import linear_from_couplings
from digiworm.reproduce import unwired_removed
from digiworm.simulate import spontaneous_correlation as _spontaneous
from digiworm.validate import split_trials


def test_noise_variance_is_responder_trial_variance_over_trial_count():
    rng = np.random.default_rng(0)
    n, t = 4, 200
    sd = np.array([0.1, 0.2, 0.4, 0.8])[:, None, None]
    trials = sd * rng.standard_normal((n, n, t))
    trials[:, 1, 50:] = np.nan  # column 1 has 50 trials
    var = noise_variance(trials, np.ones((n, n), dtype=bool))
    np.testing.assert_allclose(var[:, 0] * t, sd.ravel() ** 2, rtol=0.15)
    np.testing.assert_allclose(var[:, 1] * 50, sd.ravel() ** 2, rtol=0.15)


def test_noise_variance_uses_training_pairs_only():
    rng = np.random.default_rng(1)
    trials = 0.1 * rng.standard_normal((3, 3, 20))
    corrupted = trials.copy()
    corrupted[:, 2] *= 1000  # a held-out column with absurd noise
    train = np.ones((3, 3), dtype=bool)
    train[:, 2] = False
    np.testing.assert_allclose(noise_variance(trials, train), noise_variance(corrupted, train))


def test_interval_scale_is_the_gaussian_quantile_for_gaussian_residuals():
    z = np.random.default_rng(2).standard_normal(200_000)
    assert interval_scale(z, np.ones_like(z), 0.9) == pytest.approx(1.645, abs=0.02)
    assert interval_scale(2 * z, np.full_like(z, 2.0), 0.5) == pytest.approx(0.674, abs=0.02)


def test_calibrated_intervals_cover_new_gaussian_data_at_the_nominal_rate():
    rng = np.random.default_rng(3)
    sd = rng.uniform(0.5, 2.0, 20_000)
    calib = sd * rng.standard_t(4, sd.size)  # heavy tails: 1.645 would under-cover
    c = interval_scale(calib, sd, 0.9)
    assert c > 1.645
    new_sd = rng.uniform(0.5, 2.0, 20_000)
    new = new_sd * rng.standard_t(4, new_sd.size)
    assert coverage(new, -c * new_sd, c * new_sd) == pytest.approx(0.9, abs=0.01)


def test_predictive_sd_adds_variances():
    assert predictive_sd(np.array(0.09), np.array(0.16), 0.0) == pytest.approx(0.5)


def spontaneous_correlation(w):
    names = [f"N{i}" for i in range(len(w))]
    return _spontaneous(linear_from_couplings(names, w), np.zeros(len(w)))


def test_spontaneous_correlation_matches_the_two_neuron_solution():
    # tau x' = (W - I) x + noise with symmetric W: C = (I - W)^-1 / 2, so corr = w
    for w in (0.3, -0.6):
        corr = spontaneous_correlation(np.array([[0.0, w], [w, 0.0]]))
        assert corr[0, 1] == pytest.approx(w, rel=1e-5)
        np.testing.assert_allclose(np.diag(corr), 1.0)


def test_spontaneous_correlation_matches_a_simulation():
    rng = np.random.default_rng(4)
    w = np.array([[0.0, 0.5, 0.0], [0.0, 0.0, -0.4], [0.3, 0.0, 0.0]])
    dt, steps = 0.01, 400_000
    x = np.zeros(3)
    a = w - np.eye(3)
    kick = rng.standard_normal((steps, 3)) * np.sqrt(dt)
    samples = np.empty((steps // 10, 3))
    for k in range(steps):  # Euler–Maruyama, tau = 1 s
        x = x + dt * (a @ x) + kick[k]
        if k % 10 == 0:
            samples[k // 10] = x
    empirical = np.corrcoef(samples[1000:].T)
    np.testing.assert_allclose(spontaneous_correlation(w), empirical, atol=0.05)


def test_unstable_network_has_no_spontaneous_correlation():
    from digiworm._errors import DigiwormError

    with pytest.raises(DigiwormError, match="unstable"):
        spontaneous_correlation(np.array([[0.0, 1.5], [1.5, 0.0]]))


def test_unwired_removed_keeps_wired_couplings_only():
    w = np.arange(9.0).reshape(3, 3)
    wired = np.eye(3, dtype=bool) | np.array([[0, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(unwired_removed(w, wired), np.where(wired, w, 0.0))


def test_split_trials_partitions_each_pairs_trials():
    rng = np.random.default_rng(5)
    trials = rng.standard_normal((5, 5, 7))
    trials[rng.random(trials.shape) < 0.4] = np.nan
    a, b = split_trials(trials, seed=1)
    fa, fb, ft = np.isfinite(a), np.isfinite(b), np.isfinite(trials)
    assert not np.any(fa & fb)
    np.testing.assert_array_equal(fa | fb, ft)
    np.testing.assert_array_equal(np.where(fa, a, 0) + np.where(fb, b, 0), np.nan_to_num(trials))
    count = ft.sum(-1)
    np.testing.assert_array_equal(fa.sum(-1), np.where(count == 1, 1, count // 2))


def _synthetic(n=24, seed=0):
    rng = np.random.default_rng(seed)
    edges = ~np.eye(n, dtype=bool)
    w = np.where(rng.random((n, n)) < 0.4, rng.normal(0, 1, (n, n)), 0.0) * edges
    w *= 0.8 / np.max(np.abs(np.linalg.eigvals(w)))
    truth = np.linalg.inv(np.eye(n) - w)
    trials = truth[..., None] + 0.05 * rng.standard_normal((n, n, 6))
    names = [f"N{i}" for i in range(n)]
    classes = [f"C{i // 2}" for i in range(n)]  # pairs of neurons share a class
    return trials, truth, edges, names, classes


def test_nested_cv_never_sees_held_out_columns_and_covers_at_the_nominal_rate():
    trials, truth, edges, names, classes = _synthetic()
    dff = np.nanmean(trials, axis=-1)
    folds = [np.arange(k, 24, 4) for k in range(4)]
    settings = LinearCVSettings(ridges=(0.1, 1.0), inner_folds=2, members=3, steps=600,
                                learning_rate=1e-2, target="connectome")  # fmt: skip
    # target "connectome": the ridge target is the prior given (zero here)
    prior = np.zeros_like(truth)
    cv = nested_linear_cv(trials, dff, folds, names, classes, edges, prior, settings)
    assert np.isfinite(cv.mean).all() and len(cv.ridge) == 4
    # columns never seen are predicted only through the other stimulations' paths (r ~ 0.53)
    assert np.corrcoef(cv.mean[edges], truth[edges])[0, 1] > 0.4
    off = np.where(edges, dff, np.nan)
    assert 0.75 < coverage(off, cv.lower, cv.upper) <= 1.0
    # a held-out fold's columns, however corrupted, cannot change that fold's predictions
    corrupted = trials.copy()
    corrupted[:, folds[0]] = 50.0
    dff_c = np.nanmean(corrupted, axis=-1)
    cv_c = nested_linear_cv(corrupted, dff_c, folds[:1], names, classes, edges, prior, settings)
    np.testing.assert_allclose(cv_c.mean[:, folds[0]], cv.mean[:, folds[0]], atol=1e-5)
    np.testing.assert_allclose(cv_c.upper[:, folds[0]], cv.upper[:, folds[0]], atol=1e-5)


def test_feature_targets_are_fitted_without_the_held_out_columns():
    """With ``target="features"`` the shared gains are fitted inside each fold too: corrupting
    a held-out fold's columns changes neither its predictions nor its gains."""
    from digiworm.fit import feature_basis

    trials, truth, edges, names, classes = _synthetic()
    n = truth.shape[0]
    rng = np.random.default_rng(1)
    chem = np.where(rng.random((n, n)) < 0.3, rng.integers(1, 5, (n, n)), 0) * edges
    sign = np.where(rng.random((n, n)) < 0.7, 1.0, -1.0)
    basis = feature_basis(chem, np.zeros((n, n)), sign, [("acetylcholine",)] * n, radius=0.3)
    settings = LinearCVSettings(ridges=(1.0,), inner_folds=2, members=2, steps=100,
                                feature_steps=50)  # fmt: skip
    folds = [np.arange(0, 24, 4)]
    prior = np.zeros_like(truth)

    def run(t):
        dff = np.nanmean(t, axis=-1)
        return nested_linear_cv(t, dff, folds, names, classes, edges, prior, settings, basis=basis)

    cv = run(trials)
    corrupted = trials.copy()
    corrupted[:, folds[0]] = 50.0
    cv_c = run(corrupted)
    np.testing.assert_allclose(cv_c.feature_gains, cv.feature_gains, atol=1e-6)
    np.testing.assert_allclose(cv_c.mean[:, folds[0]], cv.mean[:, folds[0]], atol=1e-5)
    with pytest.raises(DigiwormError, match="needs the feature basis"):
        nested_linear_cv(trials, np.nanmean(trials, -1), folds, names, classes, edges, prior,
                         settings)  # fmt: skip
