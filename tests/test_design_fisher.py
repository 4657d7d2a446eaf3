"""Fisher information against analytical values; greedy design on toys with known answers."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from digiworm._errors import DigiwormError
from digiworm.design import experiment_fisher, greedy_design, response_column_jacobian


def test_fisher_of_a_linear_gaussian_model_is_xtx_over_sigma2():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 5))
    sigma = rng.uniform(0.5, 2.0, 30)
    f = experiment_fisher(lambda th: jnp.asarray(x) @ th, np.zeros(5), sigma, repeats=3.0)
    np.testing.assert_allclose(f, 3.0 * (x / sigma[:, None] ** 2).T @ x, rtol=1e-5)


def test_response_jacobian_matches_dR_equals_R_dW_R():
    rng = np.random.default_rng(1)
    n = 6
    w = 0.2 * rng.standard_normal((n, n))
    np.fill_diagonal(w, 0.0)
    mask = np.abs(w) > 0.1
    rows, cols = np.nonzero(mask)
    r = np.linalg.inv(np.eye(n) - w)
    for j in range(n):
        import jax

        predict = response_column_jacobian(w, mask, j)
        jac = np.asarray(jax.jacfwd(predict)(jnp.asarray(w[mask])))
        want = r[:, rows] * r[cols, j][None, :]  # d R[:, j] / d W[a, b] = R[:, a] R[b, j]
        np.testing.assert_allclose(jac, np.delete(want, j, axis=0), rtol=1e-4, atol=1e-6)


def test_greedy_picks_the_only_informative_experiment():
    # two parameters; experiment 0 informs only the first, experiment 1 only the second,
    # experiment 2 weakly both: with the first already known, A- and D-optimal pick 1
    fishers = [np.diag([10.0, 0.0]), np.diag([0.0, 10.0]), np.diag([1.0, 1.0])]
    prior = np.diag([100.0, 1.0])
    for criterion in ("A", "D"):
        design = greedy_design(fishers, prior, k=1, criterion=criterion)
        assert design.chosen == [1]


def test_greedy_batch_spreads_when_returns_diminish():
    fishers = [np.diag([10.0, 0.0]), np.diag([0.0, 10.0])]
    design = greedy_design(fishers, np.eye(2), k=4, criterion="A")
    assert sorted(design.chosen) == [0, 0, 1, 1]
    assert all(a >= b for a, b in zip(design.criterion, design.criterion[1:]))
    no_repeat = greedy_design(fishers, np.eye(2), k=2, criterion="D", repeats=False)
    assert sorted(no_repeat.chosen) == [0, 1]


def test_greedy_matches_exhaustive_search_on_a_small_problem():
    import itertools

    rng = np.random.default_rng(2)
    fishers = []
    for _ in range(6):
        j = rng.standard_normal((3, 4))
        fishers.append(j.T @ j)
    prior = 0.1 * np.eye(4)
    design = greedy_design(fishers, prior, k=1, criterion="D")
    best = max(range(6), key=lambda e: np.linalg.slogdet(prior + fishers[e])[1])
    assert design.chosen == [best]

    def gain(chosen):
        total = prior + sum(fishers[e] for e in chosen)
        return np.linalg.slogdet(total)[1] - np.linalg.slogdet(prior)[1]

    for k in (2, 3):
        greedy = greedy_design(fishers, prior, k=k, criterion="D", repeats=False)
        optimum = max(gain(c) for c in itertools.combinations(range(6), k))
        # log det gain is monotone submodular: greedy reaches >= (1 - 1/e) of the optimum
        assert optimum >= gain(greedy.chosen) >= (1 - 1 / np.e) * optimum


def test_bad_design_input():
    with pytest.raises(DigiwormError, match="criterion"):
        greedy_design([np.eye(2)], np.eye(2), 1, criterion="E")
    with pytest.raises(DigiwormError, match="positive definite"):
        greedy_design([np.eye(2)], np.zeros((2, 2)), 1)
    with pytest.raises(DigiwormError, match="noise"):
        experiment_fisher(lambda th: th, np.zeros(2), 0.0)


def _linear(w, unit=1.0, names=None):
    from digiworm.models import linear_from_couplings

    names = [f"N{i}" for i in range(len(w))] if names is None else names
    return linear_from_couplings(names, w, unit=unit)


def test_gain_fishers_match_finite_differences():
    from digiworm.design import gain_fishers

    rng = np.random.default_rng(3)
    n = 5
    w = np.where(rng.random((n, n)) < 0.6, 0.3 * rng.standard_normal((n, n)), 0.0)
    np.fill_diagonal(w, 0.0)
    sigma = rng.uniform(0.5, 1.5, n)
    fishers = gain_fishers(_linear(w), sigma)

    def response(theta):
        scaled = w * np.exp(theta)[None, :]
        return np.linalg.inv(np.eye(n) - scaled)

    eps = 1e-4
    jac = np.stack(
        [(response(eps * e) - response(-eps * e)) / (2 * eps) for e in np.eye(n)], axis=-1
    )  # (responder, stimulated, parameter)
    for j in range(n):
        keep = np.arange(n) != j
        jj = jac[keep, j, :]
        want = (jj / sigma[keep, None] ** 2).T @ jj
        np.testing.assert_allclose(fishers[j], want, rtol=2e-3, atol=1e-6)


def test_next_stimulation_targets_the_unmeasured_driver():
    from digiworm.design import next_stimulations

    # neuron 0 drives 1 and 2; neurons 1 and 2 have been stimulated many times, 0 never:
    # its output gain is known only through the prior, so the design stimulates it first
    w = np.zeros((4, 4))
    w[1, 0], w[2, 0], w[3, 1], w[3, 2] = 0.5, -0.4, 0.3, 0.3
    table = next_stimulations(_linear(w), np.full(4, 0.1), np.array([0, 20, 20, 20]), k=2)
    assert table["neuron"].iloc[0] == "N0"
    assert table["reduction"].is_monotonic_increasing
    unobserved = next_stimulations(
        _linear(w), np.full(4, 0.1), np.array([0, 20, 20, 20]), k=1,
        observed=np.array([True, False, False, True]),
    )  # fmt: skip
    # with 1 and 2 unrecorded, stimulating 0 shows only its weak indirect effect on 3
    assert unobserved["reduction"].iloc[0] < table["reduction"].iloc[0]


def test_cli_design_next(tmp_path, atlas):
    import json

    from typer.testing import CliRunner

    from digiworm.cli import app
    from digiworm.models import save_model

    rng = np.random.default_rng(4)
    n = len(atlas.names)
    w = np.where(rng.random((n, n)) < 0.02, 0.05 * rng.standard_normal((n, n)), 0.0)
    np.fill_diagonal(w, 0.0)
    path = save_model(tmp_path / "m.dwm", _linear(w, names=atlas.names))
    runner = CliRunner()
    result = runner.invoke(app, ["design", "next", "--model", str(path), "--k", "2", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["neuron"] in atlas.names
    bad = runner.invoke(app, ["design", "next", "--model", str(tmp_path / "none.dwm")])
    assert bad.exit_code == 2 and "does not exist" in bad.output
    other = save_model(tmp_path / "small.dwm", _linear(np.zeros((3, 3))))
    bad = runner.invoke(app, ["design", "next", "--model", str(other)])
    assert bad.exit_code == 2 and "302" in bad.output


def test_fisher_covariance_matches_the_spread_of_refits():
    """Cramér–Rao: refits of the output gains on simulated data scatter as (sum m F)^-1."""
    import jax
    from scipy.optimize import least_squares

    from digiworm.design import gain_fishers

    rng = np.random.default_rng(5)
    n = 6
    w = np.where(rng.random((n, n)) < 0.5, 0.3 * rng.standard_normal((n, n)), 0.0)
    np.fill_diagonal(w, 0.0)
    model = _linear(w)
    sigma = np.full(n, 0.05)
    trials = np.array([4, 4, 8, 2, 6, 4])
    fishers = gain_fishers(model, sigma)
    cov = np.linalg.inv(np.einsum("j,jpq->pq", trials, fishers))

    a = jnp.asarray(model.a_per_s, dtype=jnp.float32)
    b = jnp.asarray(model.b_per_s, dtype=jnp.float32)
    off = ~np.eye(n, dtype=bool)

    def predict(theta):
        scaled = jnp.where(jnp.asarray(off), a * jnp.exp(theta)[None, :], a)
        return -jnp.linalg.solve(scaled, jnp.diag(b))

    truth = np.asarray(predict(jnp.zeros(n)), dtype=float)
    jac_fn = jax.jit(jax.jacfwd(predict))
    rows = [(i, j, t) for j in range(n) for t in range(trials[j]) for i in range(n) if i != j]
    ri = np.array([r[0] for r in rows])
    cj = np.array([r[1] for r in rows])
    estimates = []
    for _ in range(300):
        y = truth[ri, cj] + 0.05 * rng.standard_normal(len(rows))
        fit = least_squares(
            lambda th, y=y: (np.asarray(predict(jnp.asarray(th)), float)[ri, cj] - y) / 0.05,
            np.zeros(n),
            jac=lambda th: np.asarray(jac_fn(jnp.asarray(th)), float)[ri, cj, :] / 0.05,
        )
        estimates.append(fit.x)
    empirical = np.cov(np.array(estimates).T)
    sd_ratio = np.sqrt(np.diag(empirical) / np.diag(cov))
    print("refit s.d. / Fisher s.d.:", np.round(sd_ratio, 3))
    np.testing.assert_allclose(sd_ratio, 1.0, atol=0.15)  # 300 refits: s.d. of s.d. ~ 4 %
