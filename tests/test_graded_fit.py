"""Graded-network identification: small-signal response vs an ODE solver; synthetic recovery."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy.integrate import solve_ivp

from digiworm._errors import DigiwormError
from digiworm.fit import (
    GradedFitSettings,
    fit_graded,
    graded_from_linear,
    rest_of,
    small_signal_response,
)
from digiworm.models import GradedNetwork


def _network(n, seed, pep_scale=3.0, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    off = ~np.eye(n, dtype=bool)
    chem = np.where((rng.random((n, n)) < 0.3) & off, rng.uniform(0.05, 0.3, (n, n)), 0.0)
    gap = np.where((rng.random((n, n)) < 0.15) & off, rng.uniform(0.01, 0.05, (n, n)), 0.0)
    gap = np.triu(gap, 1) + np.triu(gap, 1).T
    e_chem = np.where(rng.random((n, n)) < 0.7, 0.0, -48.0)
    pep = np.where(off, rng.normal(0.0, pep_scale, (n, n)), 0.0)

    def arr(x):
        return jnp.asarray(x, dtype=dtype)

    return GradedNetwork(
        names=tuple(f"N{i}" for i in range(n)), g_gap=arr(gap), g_chem=arr(chem),
        e_chem_mV=arr(e_chem), w_pep_mV=arr(pep), tau_m_s=arr(np.full(n, 0.1)),
        v_rest_mV=arr(np.full(n, -35.0)), v_th_mV=arr(np.full(n, -15.0)), tau_pep_s=arr(2.0),
        a_r_per_s=arr(1.0), a_d_per_s=arr(5.0), beta_per_mV=arr(0.125),
        g_tonic=arr(np.zeros(n)), e_tonic_mV=arr(np.zeros(n)), alive=jnp.ones(n, dtype=bool),
    )  # fmt: skip


@pytest.mark.usefixtures("x64")
def test_small_signal_response_matches_an_ode_solver():
    model = _network(5, seed=0, dtype=jnp.float64)
    r, v, residual = small_signal_response(model)
    assert float(residual) < 1e-9
    flat, unravel = ravel_pytree(rest_of(model, v))
    eps = 1e-3  # mV: small enough to be linear, large enough to read

    def settled(u):
        field = jax.jit(lambda t, y: ravel_pytree(model.vector_field(t, unravel(y), u))[0])
        sol = solve_ivp(lambda t, y: np.asarray(field(t, y)), (0.0, 200.0), np.asarray(flat),
                        method="LSODA", rtol=1e-10, atol=1e-13)  # fmt: skip
        return np.asarray(model.activation(unravel(jnp.asarray(sol.y[:, -1])).v_mV))

    for j in range(5):  # central difference: the second-order terms cancel
        u = jnp.zeros(5).at[j].set(eps)
        change = (settled(u) - settled(-u)) / (2 * eps)
        np.testing.assert_allclose(change, np.asarray(r[:, j]), rtol=1e-4, atol=1e-10)


def test_fit_graded_learns_held_out_stimulations_and_keeps_rests_physiological():
    n = 24
    truth = _network(n, seed=1, pep_scale=8.0)  # off-diagonal ~ 0.1 x self-response, as in data
    r, _, _ = small_signal_response(truth)
    gain = 40.0
    rng = np.random.default_rng(2)
    response = gain * np.asarray(r, dtype=float)
    trials = response[..., None] + 0.02 * rng.standard_normal((n, n, 4))
    held = np.arange(0, n, 4)
    train = np.setdiff1d(np.arange(n), held)
    start = _network(n, seed=1)  # same wiring and signs; peptide drives to identify
    off = ~np.eye(n, dtype=bool)
    settings = GradedFitSettings(steps=300, learning_rate=0.01, scales=(1.0,))
    fit = fit_graded(start, trials, train_cols=train, peptide_pairs=off, settings=settings)
    assert fit.loss[-1] < 0.5 * fit.loss[0]
    pred = fit.response()
    keep = off[:, held]
    r_held = np.corrcoef(pred[:, held][keep], response[:, held][keep])[0, 1]
    r_train = np.corrcoef(pred[:, train][off[:, train]], response[:, train][off[:, train]])[0, 1]
    print(f"train r {r_train:.3f}, held-out r {r_held:.3f}")
    assert r_train > 0.8
    assert r_held > 0.3  # only through other stimulations' paths: never seen
    band = settings.rest_band_mV + 5.0
    assert np.all(np.abs(fit.v_rest_mV - np.asarray(start.v_rest_mV)) < band)


def test_a_held_out_column_cannot_change_the_fit():
    n = 10
    truth = _network(n, seed=3)
    r, _, _ = small_signal_response(truth)
    trials = 30.0 * np.asarray(r)[..., None] + 0.01 * np.random.default_rng(4).standard_normal(
        (n, n, 3)
    )
    corrupted = trials.copy()
    corrupted[:, :2] = 50.0
    settings = GradedFitSettings(steps=30, scales=(1.0,))
    a = fit_graded(truth, trials, train_cols=np.arange(2, n), settings=settings)
    b = fit_graded(truth, corrupted, train_cols=np.arange(2, n), settings=settings)
    np.testing.assert_allclose(a.response(), b.response(), rtol=1e-5, atol=1e-7)


@pytest.mark.usefixtures("x64")
def test_graded_from_linear_has_the_linear_networks_small_signal_response(tmp_path):
    n = 12
    base = _network(n, seed=3, dtype=jnp.float64)
    rng = np.random.default_rng(4)
    w = np.where(~np.eye(n, dtype=bool), rng.normal(0.0, 0.08, (n, n)), 0.0)
    fit = graded_from_linear(base, w, unit=0.5)
    model = fit.model
    assert fit.residual_mV < 1e-9
    np.testing.assert_allclose(fit.v_rest_mV, np.asarray(base.v_rest_mV), atol=1e-9)
    g_gap, g_chem = np.asarray(model.g_gap), np.asarray(model.g_chem)
    assert np.all(g_gap >= 0) and np.all(g_chem >= 0)
    np.testing.assert_array_equal(g_gap, g_gap.T)
    assert np.all(g_chem[np.asarray(base.g_chem) == 0] == 0)  # only wired pairs get synapses
    assert np.all(g_gap[np.asarray(base.g_gap) == 0] == 0)
    # analytic: gain * phi'(V*) (I - W)^-1 D^-1, D the input conductance at rest
    v = np.asarray(base.v_rest_mV)
    phi = np.asarray(model.activation(jnp.asarray(v)))
    dphi = 0.125 * phi * (1 - phi)
    s = phi / (phi + 5.0)
    d = 1.0 + g_gap.sum(1) + g_chem @ s
    expected = fit.gain * dphi[:, None] * np.linalg.inv(np.eye(n) - w) / d[None, :]
    np.testing.assert_allclose(fit.response(), expected, rtol=1e-7, atol=1e-12)
    # columns of median input conductance match the linear model's unit
    assert fit.gain * np.median(dphi) / np.median(d) == pytest.approx(0.5)
    # the network carries its identified readout, through saving and loading
    assert model.dff_per_activity == pytest.approx(fit.gain)
    from digiworm.models import load_model, save_model

    loaded = load_model(save_model(tmp_path / "g.dwm", model))
    assert loaded.dff_per_activity == model.dff_per_activity


def test_graded_from_linear_names_bad_couplings():
    base = _network(4, seed=0)
    with pytest.raises(DigiwormError, match=r"finite \(4, 4\)"):
        graded_from_linear(base, np.full((4, 4), np.nan))
    with pytest.raises(DigiwormError, match="unit must be > 0"):
        graded_from_linear(base, np.zeros((4, 4)), unit=0.0)
    import dataclasses

    from digiworm.models import LinearIndicator

    with pytest.raises(DigiwormError, match="dff_per_activity must be finite and > 0; got -1"):
        dataclasses.replace(base, dff_per_activity=-1.0)
    with pytest.raises(DigiwormError, match="indicator gain must be a finite number > 0; got nan"):
        LinearIndicator(float("nan"))
