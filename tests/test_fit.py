"""Fitting: transforms invert, losses are what they say, parameters are recovered."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from digiworm.fit import (
    Interval,
    Positive,
    fit_linear_response,
    huber,
    response_matrix,
    trial_loss,
)


@pytest.mark.parametrize("transform", [Positive(), Positive(lo=0.5), Interval(-48.0, 0.0)])
def test_transforms_round_trip(transform):
    z = jnp.linspace(-8, 8, 33)
    x = transform.forward(z)
    np.testing.assert_allclose(transform.inverse(x), z, atol=1e-4)  # float32 near saturation
    lo = getattr(transform, "lo", None)
    assert bool(jnp.all(x > lo))


def test_huber_matches_its_definition():
    r = jnp.array([-3.0, -0.05, 0.0, 0.05, 0.1, 2.0])
    want = np.where(np.abs(r) <= 0.1, 0.5 * r**2, 0.1 * (np.abs(r) - 0.05))
    np.testing.assert_allclose(huber(r, 0.1), want, rtol=1e-6)


def test_trial_loss_counts_each_trial_once():
    pred = jnp.zeros((1, 2))
    trials = jnp.array([[[0.02, 0.02, jnp.nan], [0.04, jnp.nan, jnp.nan]]])
    # three trials: two residuals of 0.02 and one of 0.04, all inside the quadratic zone
    want = (2 * 0.5 * 0.02**2 + 0.5 * 0.04**2) / 3
    assert float(trial_loss(pred, trials, delta=1.0)) == pytest.approx(want)
    masked = trial_loss(pred, trials, delta=1.0, mask=jnp.array([[True, False]]))
    assert float(masked) == pytest.approx(0.5 * 0.02**2)


def _synthetic(n=30, seed=0):
    rng = np.random.default_rng(seed)
    edges = (rng.random((n, n)) < 0.15) & ~np.eye(n, dtype=bool)
    w = np.where(edges, rng.normal(0, 1, (n, n)), 0.0)
    w *= 0.5 / np.max(np.abs(np.linalg.eigvals(w)))
    return rng, edges, w


def test_response_matrix_is_the_inverse():
    _, _, w = _synthetic()
    np.testing.assert_allclose(
        response_matrix(jnp.asarray(w)), np.linalg.inv(np.eye(len(w)) - w), atol=1e-5
    )


def test_parameter_recovery_improves_with_trials():
    """Recovered couplings correlate > 0.9 with the truth, and the error falls ~1/sqrt(trials)."""
    rng, edges, w = _synthetic()
    truth = np.linalg.inv(np.eye(len(w)) - w)
    errors = {}
    for n_trials in (3, 48):
        trials = truth[..., None] + 0.05 * rng.standard_normal((*truth.shape, n_trials))
        fit = fit_linear_response(trials, edges, steps=3000, learning_rate=1e-2)
        assert fit.loss[-1] < fit.loss[0]
        corr = np.corrcoef(fit.w[edges], w[edges])[0, 1]
        errors[n_trials] = np.sqrt(np.mean((fit.w[edges] - w[edges]) ** 2))
        print(f"{n_trials} trials: r = {corr:.3f}, rmse = {errors[n_trials]:.4f}")
        assert corr > 0.9
        assert not fit.w[~edges].any()
    assert errors[48] < errors[3] / 2.5  # sqrt(16) = 4 expected; allow optimiser noise


def test_fit_ignores_pairs_outside_the_training_mask():
    rng, edges, w = _synthetic(n=12, seed=1)
    truth = np.linalg.inv(np.eye(len(w)) - w)
    trials = truth[..., None] + 0.05 * rng.standard_normal((*truth.shape, 4))
    train = np.ones_like(edges)
    train[:, :3] = False  # three held-out stimulations
    corrupted = trials.copy()
    corrupted[:, :3] = 100.0
    a = fit_linear_response(trials, edges, train=train, steps=300)
    b = fit_linear_response(corrupted, edges, train=train, steps=300)
    np.testing.assert_allclose(a.w, b.w, atol=1e-6)
