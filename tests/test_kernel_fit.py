"""Time constants of the linear network from response kernels: the clamped kernels against
the matrix exponential, and recovery of known time constants from simulated kernels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.linalg import expm

from digiworm._errors import DigiwormError
from digiworm.fit import KernelFitSettings, clamped_kernels, fit_kernel_taus, kernel_scores
from digiworm.models import linear_from_couplings

TIMES = np.arange(0.0, 10.0 + 1e-9, 0.5)


def _network(n=12, seed=0, density=0.4):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.35, (n, n)) * (rng.random((n, n)) < density)
    np.fill_diagonal(w, 0.0)
    w *= 0.7 / np.max(np.abs(np.linalg.eigvals(w)))
    tau = np.exp(rng.uniform(np.log(0.4), np.log(4.0), n))
    return w, tau


def test_clamped_kernels_match_the_matrix_exponential_of_the_unclamped_rest():
    w, tau = _network()
    n = len(tau)
    a = (w - np.eye(n)) / tau[:, None]
    cols = np.array([0, 5, 11])
    got = np.asarray(clamped_kernels(w, tau, cols, TIMES, dt_s=0.05))
    for b, j in enumerate(cols):
        rest = np.setdiff1d(np.arange(n), [j])
        a_rr, a_rj = a[np.ix_(rest, rest)], a[rest, j]
        want = np.stack([expm(a_rr * t) @ a_rj for t in TIMES])  # h_rj(t) = e^{A_rr t} A_rj
        np.testing.assert_allclose(got[:, rest, b], want, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(got[:, j, b], 0.0)  # the clamped neuron itself


def test_kernel_integral_is_the_clamped_steady_state():
    # ∫ h_rj dt = (I - W_rr)^-1 W_rj whatever the time constants
    w, tau = _network(seed=3)
    n = len(tau)
    times = np.arange(0.0, 60.0 + 1e-9, 0.02)
    h = np.asarray(clamped_kernels(w, tau, np.array([2]), times, dt_s=0.02))[:, :, 0]
    rest = np.setdiff1d(np.arange(n), [2])
    want = np.linalg.solve(np.eye(n - 1) - w[np.ix_(rest, rest)], w[rest, 2])
    np.testing.assert_allclose(np.trapezoid(h[:, rest], times, axis=0), want, atol=2e-3)


def test_time_constants_are_recovered_from_simulated_kernels():
    w, tau = _network(n=16, seed=1, density=0.6)
    n = len(tau)
    kernels = np.moveaxis(np.asarray(clamped_kernels(w, tau, np.arange(n), TIMES)), 0, -1)
    settings = KernelFitSettings(
        steps=250, batch=8, learning_rate=0.05, ridge_log_tau=0.0, readout=False, per_neuron=True
    )
    fit = fit_kernel_taus(w, kernels, TIMES, np.arange(n), settings=settings)
    assert fit.readout_tau_s is None
    assert fit.loss[-1] < 0.1 * fit.loss[0]
    # every neuron with an input is identified; log tau correlates with truth
    r = np.corrcoef(np.log(fit.tau_s), np.log(tau))[0, 1]
    assert r > 0.9, r
    np.testing.assert_allclose(fit.tau_s, tau, rtol=0.25)
    shared = fit_kernel_taus(w, kernels, TIMES, np.arange(n), settings=settings, shared=True)
    assert np.ptp(shared.tau_s) == 0
    assert np.mean(shared.loss[-20:]) > np.mean(fit.loss[-20:])


def test_clamped_kernels_with_readout_filters_match_the_augmented_matrix_exponential():
    # state [x_rest, y]: x' = A_rr x, y' = (x - y)/tau_o; x(0+) = A_rj, y(0) = 0; kernel = y
    w, tau = _network(seed=5)
    n = len(tau)
    readout = np.exp(np.random.default_rng(5).uniform(np.log(0.3), np.log(3.0), n))
    a = (w - np.eye(n)) / tau[:, None]
    got = np.asarray(clamped_kernels(w, tau, np.array([3]), TIMES, 0.05, readout))[:, :, 0]
    rest = np.setdiff1d(np.arange(n), [3])
    m = len(rest)
    big = np.zeros((2 * m, 2 * m))
    big[:m, :m] = a[np.ix_(rest, rest)]
    big[m:, :m] = np.diag(1.0 / readout[rest])
    big[m:, m:] = -np.diag(1.0 / readout[rest])
    start = np.concatenate([a[rest, 3], np.zeros(m)])
    want = np.stack([(expm(big * t) @ start)[m:] for t in TIMES])
    np.testing.assert_allclose(got[:, rest], want, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(got[0], 0.0)  # the readout starts at rest
    # unit-gain filter: the same integral (the clamped steady state) as without it
    long = np.arange(0.0, 60.0 + 1e-9, 0.05)
    h = np.asarray(clamped_kernels(w, tau, np.array([3]), long, 0.05, readout))[:, rest, 0]
    plain = np.asarray(clamped_kernels(w, tau, np.array([3]), long, 0.05))[:, rest, 0]
    np.testing.assert_allclose(
        np.trapezoid(h, long, axis=0), np.trapezoid(plain, long, axis=0), atol=3e-3
    )


def test_time_constants_and_readout_filters_are_recovered_from_filtered_kernels():
    w, tau = _network(n=16, seed=6, density=0.6)
    n = len(tau)
    readout = np.exp(np.random.default_rng(6).uniform(np.log(0.4), np.log(2.5), n))
    cols = np.arange(n)
    kernels = np.moveaxis(np.asarray(clamped_kernels(w, tau, cols, TIMES, 0.125, readout)), 0, -1)
    settings = KernelFitSettings(
        steps=400, batch=8, learning_rate=0.05, ridge_log_tau=0.0, per_neuron=True
    )
    fit = fit_kernel_taus(w, kernels, TIMES, cols, settings=settings)
    assert fit.loss[-1] < 0.05 * fit.loss[0]
    # tau and the readout filter enter each direct kernel symmetrically (a difference of two
    # exponentials), so compare each neuron's pair of time constants as a set
    got = np.sort(np.stack([fit.tau_s, fit.readout_tau_s]), axis=0)
    want = np.sort(np.stack([tau, readout]), axis=0)
    np.testing.assert_allclose(got, want, rtol=0.3)
    # the first-order model cannot make these shapes
    first = fit_kernel_taus(w, kernels, TIMES, cols, settings=replace(settings, readout=False))
    assert np.mean(first.loss[-20:]) > 3 * np.mean(fit.loss[-20:])
    # the default: one tau and one readout filter for every neuron, recovered when shared
    same = np.moveaxis(
        np.asarray(clamped_kernels(w, np.full(n, 1.7), cols, TIMES, 0.125, np.full(n, 0.6))),
        0, -1,
    )  # fmt: skip
    shared = fit_kernel_taus(w, same, TIMES, cols, settings=replace(settings, per_neuron=False))
    assert np.ptp(shared.tau_s) == 0 and np.ptp(shared.readout_tau_s) == 0
    np.testing.assert_allclose(
        sorted([shared.tau_s[0], shared.readout_tau_s[0]]), [0.6, 1.7], rtol=0.05
    )


def test_kernel_model_keeps_the_steady_state_of_its_couplings():
    w, tau = _network(seed=4)
    names = [f"N{i}" for i in range(len(tau))]
    for t in (1.0, tau):
        m = linear_from_couplings(names, w, tau_s=t, unit=2.0)
        a, b = np.asarray(m.a_per_s), np.asarray(m.b_per_s)
        steady = -np.linalg.solve(a, np.diag(b))
        np.testing.assert_allclose(
            steady, 2.0 * np.linalg.inv(np.eye(len(tau)) - w), rtol=1e-4, atol=1e-6
        )
    with pytest.raises(ValueError, match="tau_s must be"):
        linear_from_couplings(names, w, tau_s=np.ones(3))


def test_kernel_scores_perfect_and_shuffled():
    w, tau = _network(n=10, seed=2, density=0.8)
    n = len(tau)
    k = np.moveaxis(np.asarray(clamped_kernels(w, tau, np.arange(n), TIMES)), 0, -1)
    mask = ~np.eye(n, dtype=bool)
    perfect = kernel_scores(3.0 * k, k, mask, TIMES)  # amplitude-free shape scores
    assert perfect["shape_r_median"] == pytest.approx(1.0)
    assert perfect["peak_within_1s"] == 1.0
    assert perfect["pearson_clipped"] > 0.99
    flipped = kernel_scores(-k, k, mask, TIMES)
    assert flipped["shape_r_median"] == pytest.approx(-1.0)


def test_bad_inputs_are_named():
    w, tau = _network(n=5)
    with pytest.raises(DigiwormError, match="evenly spaced"):
        clamped_kernels(w, tau, np.array([0]), np.array([0.0, 0.5, 2.0]))
    with pytest.raises(DigiwormError, match="must divide"):
        clamped_kernels(w, tau, np.array([0]), TIMES, dt_s=0.3)
    with pytest.raises(DigiwormError, match="> 0 s"):
        clamped_kernels(w, -tau, np.array([0]), TIMES)
    with pytest.raises(DigiwormError, match="dt_s must lie"):
        KernelFitSettings(dt_s=0.5, tau_min_s=0.25)
    empty = np.full((5, 5, TIMES.size), np.nan)
    with pytest.raises(DigiwormError, match="no training column"):
        fit_kernel_taus(w, empty, TIMES, np.arange(5))
