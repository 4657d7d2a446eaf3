"""Spontaneous activity vs stimulation as inputs: Lyapunov covariance and conditioning ratio."""

from __future__ import annotations

import numpy as np
import pytest

from digiworm._errors import DigiwormError
from digiworm.design import (
    monte_carlo_error,
    shared_drive_covariance,
    spontaneous_vs_stimulation,
    stationary_covariance,
)


def _stable(n=30, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, (n, n)) * (rng.random((n, n)) < 0.2)
    np.fill_diagonal(w, 0)
    w *= 0.7 / np.max(np.abs(np.linalg.eigvals(w)))
    return w - np.eye(n)


def test_stationary_covariance_of_independent_leaky_units():
    # dx = -k x dt + sqrt(q) dW  ->  var = q / (2k)
    k = np.array([0.5, 1.0, 4.0])
    q = np.array([1.0, 2.0, 3.0])
    cov = stationary_covariance(-np.diag(k), np.diag(q))
    np.testing.assert_allclose(cov, np.diag(q / (2 * k)), atol=1e-12)
    with pytest.raises(DigiwormError, match="unstable"):
        stationary_covariance(np.eye(3), np.eye(3))


def test_isotropic_spontaneous_activity_needs_as_many_samples_as_stimulation():
    table = spontaneous_vs_stimulation(-np.eye(20), fractions=(None,))
    assert table["trace_inv_per_p"].iloc[0] == pytest.approx(1.0)
    assert table["condition_number"].iloc[0] == pytest.approx(1.0)


def test_shared_drive_hits_its_fraction_and_costs_samples():
    a = _stable()
    cov, c = shared_drive_covariance(a, 0.8, modes=3)
    eig = np.linalg.eigvalsh(cov)
    assert eig[-3:].sum() / eig.sum() == pytest.approx(0.8, abs=1e-6)
    assert c > 0
    table = spontaneous_vs_stimulation(a, fractions=(None, 0.6, 0.8, 0.95))
    ratio = table["trace_inv_per_p"].to_numpy()
    assert np.all(ratio >= 1.0)  # tr(S^-1) tr(S) / p^2 >= 1 (AM-HM)
    assert np.all(np.diff(ratio) > 0)  # more shared drive, worse conditioning
    with pytest.raises(DigiwormError, match="fraction must lie"):
        shared_drive_covariance(a, 0.01, modes=3)


def test_ratio_is_what_least_squares_measures():
    # the samples ratio predicted from tr(S^-1) matches the squared error ratio of
    # least-squares fits at equal n (Monte-Carlo, Gaussian inputs, n >> p)
    a = _stable(n=20, seed=1)
    cov, _ = shared_drive_covariance(a, 0.8)
    cov *= 20 / np.trace(cov)
    ratio = spontaneous_vs_stimulation(a, fractions=(0.8,))["trace_inv_per_p"].iloc[0]
    spont, _ = monte_carlo_error(20, 2000, 0.1, cov, reps=30, seed=2)
    stim, _ = monte_carlo_error(20, 2000, 0.1, None, reps=30, seed=3)
    assert (spont / stim) ** 2 == pytest.approx(ratio, rel=0.1)
