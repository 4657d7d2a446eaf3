"""The synthetic design study: closed-form derivatives, the Woodbury greedy, the MAP refit."""

from __future__ import annotations

import numpy as np
import pytest

from digiworm._errors import DigiwormError
from digiworm.design import greedy_design
from digiworm.design._study import (
    StudySettings,
    design_study,
    fisher_factors,
    gain_response,
    greedy_a_order,
    refit_gains,
)


def _network(n=10, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.3, (n, n)) * (rng.random((n, n)) < 0.5)
    np.fill_diagonal(w, 0.0)
    w *= 0.6 / np.max(np.abs(np.linalg.eigvals(w)))
    tau = rng.uniform(0.5, 2.0, n)
    return (w - np.eye(n)) / tau[:, None], 1.0 / tau


def test_gain_derivatives_match_finite_differences():
    a, b = _network()
    n = len(b)
    theta = np.random.default_rng(1).normal(0, 0.3, n)
    r, p, _ = gain_response(a, b, theta)
    np.testing.assert_allclose(r, -np.linalg.solve(_a_theta(a, theta), np.diag(b)))
    for k in (0, 4, 9):
        step = np.zeros(n)
        step[k] = 1e-6
        numeric = gain_response(a, b, theta + step)[0] - gain_response(a, b, theta - step)[0]
        numeric /= 2e-6
        np.testing.assert_allclose(-np.outer(p[:, k], r[k, :]), numeric, atol=1e-7)


def _a_theta(a, theta):
    off = ~np.eye(len(theta), dtype=bool)
    return np.where(off, a * np.exp(theta)[None, :], a)


def test_fisher_factors_reproduce_the_fisher_information():
    a, b = _network()
    n = len(b)
    sigma = np.linspace(0.05, 0.2, n)
    observed = np.arange(n) % 3 != 0
    u = fisher_factors(a, b, sigma, observed, energy=1.0)
    r, p, _ = gain_response(a, b, np.zeros(n))
    for j in range(n):
        w = np.where(observed, 1 / sigma**2, 0.0)
        w[j] = 0.0
        jac = -p * r[:, j][None, :]  # dR_ij/dtheta_k
        fisher = jac.T @ (w[:, None] * jac)
        np.testing.assert_allclose(u[j] @ u[j].T, fisher, rtol=1e-8, atol=1e-10 * fisher.max())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lazy_woodbury_greedy_matches_plain_greedy(seed):
    a, b = _network(n=8, seed=seed)
    n = len(b)
    sigma = np.full(n, 0.1)
    u = fisher_factors(a, b, sigma, np.ones(n, bool), energy=1.0)
    prior = np.eye(n) / 0.5**2
    lazy = greedy_a_order(u, prior, 25)
    plain = greedy_design([f @ f.T for f in u], prior, 25, criterion="A").chosen
    assert list(lazy) == list(plain)


def test_greedy_spends_trials_where_information_is_cheapest():
    # toy: two independent gains, prior variance 1 each; a trial of neuron 0 carries
    # information 100 about gain 0, one of neuron 1 information 1 about gain 1. A-optimal:
    # neuron 0 first (removes 1 - 1/101), then neuron 1 twice (0.5, then 1/2 - 1/3 = 0.17,
    # both more than another trial of neuron 0 removes, 1/101 - 1/201).
    f1 = np.array([[10.0], [0.0]])
    f2 = np.array([[0.0], [1.0]])
    order = greedy_a_order(np.stack([f1, f2]), np.eye(2), 3)
    assert list(order) == [0, 1, 1]


def test_map_refit_recovers_gains_from_noise_free_responses():
    a, b = _network(n=12, seed=3)
    n = len(b)
    theta = np.random.default_rng(4).normal(0, 0.4, n)
    r_true = gain_response(a, b, theta)[0]
    est = refit_gains(a, b, r_true, np.full(n, 1e6), np.full(n, 0.1), np.ones(n, bool), 1.0)
    np.testing.assert_allclose(est, theta, atol=1e-3)


def test_designed_counts_leave_less_posterior_variance_than_uniform():
    a, b = _network(n=15, seed=5)
    n = len(b)
    sigma = np.linspace(0.1, 1.0, n)
    u = fisher_factors(a, b, sigma, np.arange(n) < 10, energy=1.0)
    fishers = np.einsum("jpr,jqr->jpq", u, u)
    prior = np.eye(n) / 0.5**2
    counts = np.bincount(greedy_a_order(u, prior, 300), minlength=n)
    designed = np.trace(np.linalg.inv(prior + np.einsum("j,jpq->pq", counts, fishers)))
    uniform = np.trace(np.linalg.inv(prior + 300 / n * fishers.sum(0)))
    assert designed < 0.9 * uniform


def test_study_runs_on_a_toy_worm():
    a, b = _network(n=15, seed=5)
    n = len(b)
    sigma = np.full(n, 0.3)
    observed = np.arange(n) < 10
    settings = StudySettings(seeds=2, max_trials=400, checkpoints=5, first_trials=20)
    result = design_study(a, b, sigma, observed, settings)
    assert set(result.curves["order"]) == {"random", "designed", "adaptive"}
    assert len(result.curves) == 3 * 2 * len(settings.trial_grid())
    assert result.adaptive_counts.sum() == 400
    # error falls with trials for both orders
    for (_, _), g in result.curves.groupby(["seed", "order"]):
        assert g["gain_rmse"].iloc[-1] < g["gain_rmse"].iloc[0]
    assert result.designed_counts.sum() == 400
    assert (result.needed["random"] <= 400).all()
    assert result.summary()["seeds"] == 2
    by_budget = result.ratio_by_budget()
    assert list(by_budget["random_trials"]) == list(settings.trial_grid()[1:])
    assert (by_budget["seeds"] <= 2).all()
    summary = result.summary()
    assert {"adaptive", "adaptivity_gain"} <= set(summary)
    assert len(summary["adaptivity_gain"]["ratio_by_budget"]) == len(settings.trial_grid()) - 1
    with pytest.raises(DigiwormError, match="no order"):
        result.ratio_by_budget("greedy")
    fixed = design_study(a, b, sigma, observed,
                         StudySettings(seeds=1, max_trials=400, checkpoints=5, first_trials=20,
                                       adaptive=False))  # fmt: skip
    assert (
        set(fixed.curves["order"]) == {"random", "designed"} and "adaptive" not in fixed.summary()
    )


def test_the_adaptive_design_refits_and_redesigns_block_by_block():
    """Recomputed step by step, independently: the adaptive order opens with the fixed design's
    first block, then chooses each block greedily from the Fisher information at the gains
    refitted to the trials so far (prior plus those trials' information), and its blocks grow
    as max(batch, growth x trials so far)."""
    from digiworm.design._study import StudyProblem, _data, adaptive_run, output_gains

    a, b = _network(n=12, seed=2)
    n = len(b)
    sigma, observed = np.full(n, 0.2), np.arange(n) < 9
    settings = StudySettings(seeds=1, max_trials=90, checkpoints=2, first_trials=30, batch=10,
                             growth=0.5)  # fmt: skip
    grid = settings.trial_grid()
    assert list(grid) == [30, 90]
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 0.8, n)
    r_true = gain_response(a, b, truth)[0]
    noise = rng.normal(size=(90, n)) * sigma[None, :]
    prior = np.eye(n) / settings.prior_sd**2
    designed = greedy_a_order(fisher_factors(a, b, sigma, observed, settings.energy), prior, 90)
    scored = []
    problem = StudyProblem(a, b, sigma, observed, output_gains(a))
    order = adaptive_run(problem, settings, grid, noise, r_true, designed,
                         lambda t, theta: scored.append((t, theta)))  # fmt: skip
    assert [t for t, _ in scored] == [30, 90] and len(order) == 90
    assert list(order[:10]) == list(designed[:10])
    # blocks: 10 (the opening), 10, 10 (to the checkpoint at 30), 15, 23, 22 (to 90)
    start, theta = 10, np.zeros(n)
    for block in (10, 10, 15, 23, 22):
        mean, counts = _data(order[:start], noise, r_true)
        theta = refit_gains(a, b, mean, counts, sigma, observed, settings.prior_sd, theta)
        u = fisher_factors(a, b, sigma, observed, settings.energy, theta=theta)
        info = prior + sum(c * f @ f.T for c, f in zip(counts, u))
        expected = greedy_a_order(u, info, block)
        assert list(order[start : start + block]) == list(expected), start
        start += block
    assert start == 90
    assert np.sqrt(np.mean((scored[-1][1] - truth) ** 2)) < np.sqrt(np.mean(truth**2))


def test_bad_settings_and_unstable_networks_are_refused():
    with pytest.raises(DigiwormError, match="first_trials"):
        StudySettings(first_trials=500, max_trials=100)
    a, b = _network()
    with pytest.raises(DigiwormError, match="unstable"):
        design_study(-a, b, np.ones(len(b)), np.ones(len(b), bool))
    with pytest.raises(DigiwormError, match="sigma"):
        design_study(a, b, -np.ones(len(b)), np.ones(len(b), bool))


def test_design_report_writes_every_file(tmp_path):
    from digiworm.design._report import run_design_report, write_design_report
    from digiworm.models import linear_from_couplings

    a, b = _network(n=12, seed=6)
    w = a + np.eye(12)  # the couplings of a network with tau = 1 s
    model = linear_from_couplings([f"N{i}" for i in range(12)], w)
    sigma = np.full(12, 0.2)
    report = run_design_report(model, sigma, np.zeros(12), np.ones(12, bool), quick=True)
    assert len(report.next_trials) == 10
    written = write_design_report(report, tmp_path / "out", wall_s=1.0)
    assert {p.name for p in written} == {"study.json", "curves.csv", "formula_check.csv",
                                         "report.html"}  # fmt: skip
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<img") == 2
    import json

    study = json.loads((tmp_path / "out" / "study.json").read_text())
    assert study["random_vs_designed"]["seeds"] == 3


def test_set_fisher_matches_finite_differences_of_the_summed_response():
    a, b = _network(n=8, seed=7)
    n = len(b)
    sigma = np.full(n, 0.2)
    members = np.array([2, 5])
    u = fisher_factors(a, b, sigma, np.ones(n, bool), energy=1.0, sets=[members])[0]
    keep = np.setdiff1d(np.arange(n), members)

    def summed(theta):
        return gain_response(a, b, theta)[0][:, members].sum(1)[keep]

    eps = 1e-6
    jac = np.stack([(summed(eps * e) - summed(-eps * e)) / (2 * eps) for e in np.eye(n)], -1)
    np.testing.assert_allclose(u @ u.T, jac.T @ jac / 0.2**2, rtol=1e-5, atol=1e-8)


def test_v_criterion_targets_the_predictions_asked_for():
    from digiworm.design import next_stimulations
    from digiworm.models import linear_from_couplings

    # a chain 0 -> 1 -> 2 -> 3 plus 0 -> 3: predictions of column 2 (responses to stimulating
    # 2) hinge on gain 2 alone, so V aimed at them stimulates 2 first
    w = np.zeros((4, 4))
    w[1, 0], w[2, 1], w[3, 2], w[3, 0] = 0.5, 0.5, 0.5, 0.3
    model = linear_from_couplings([f"N{i}" for i in range(4)], w)
    target = np.zeros((4, 4), bool)
    target[[0, 1, 3], 2] = True
    table = next_stimulations(model, np.full(4, 0.1), np.zeros(4), k=1, criterion="V",
                              target_pairs=target)  # fmt: skip
    assert table["neuron"].iloc[0] == "N2"
    sets = {"N1+N2": np.array([1, 2])}
    both = next_stimulations(model, np.full(4, 0.1), np.zeros(4), k=3, sets=sets)
    assert set(both["size"]) <= {1, 2}
    with pytest.raises(DigiwormError, match="criterion must be one of"):
        next_stimulations(model, np.full(4, 0.1), np.zeros(4), criterion="E")


def test_map_refit_matches_a_generic_least_squares_solver():
    from scipy.optimize import least_squares

    a, b = _network(n=9, seed=8)
    n = len(b)
    rng = np.random.default_rng(9)
    sigma = rng.uniform(0.05, 0.2, n)
    observed = np.arange(n) != 4
    counts = rng.integers(0, 5, n).astype(float)
    truth = gain_response(a, b, rng.normal(0, 0.4, n))[0]
    mean = truth + rng.normal(0, 0.1, (n, n))
    est = refit_gains(a, b, mean, counts, sigma, observed, prior_sd=0.5)
    wt = np.sqrt(observed[:, None] / sigma[:, None] ** 2 * counts[None, :])
    np.fill_diagonal(wt, 0.0)

    def resid(theta):
        r = gain_response(a, b, theta)[0]
        return np.concatenate([(wt * (r - mean)).ravel(), theta / 0.5])

    ref = least_squares(resid, np.zeros(n), xtol=1e-14, ftol=1e-14, gtol=1e-14).x
    cost = [0.5 * np.sum(resid(t) ** 2) for t in (est, ref)]
    assert cost[0] <= cost[1] * (1 + 1e-10)  # at least as good a minimum
    np.testing.assert_allclose(est, ref, atol=1e-5)


def test_cli_design_study_refuses_bad_models(tmp_path, atlas):
    from typer.testing import CliRunner

    from digiworm.cli import app
    from digiworm.models import linear_from_couplings, save_model

    runner = CliRunner()
    bad = runner.invoke(app, ["design", "study", "--model", str(tmp_path / "none.dwm")])
    assert bad.exit_code == 2 and "does not exist" in bad.output
    small = save_model(tmp_path / "small.dwm", linear_from_couplings(["A", "B"], np.zeros((2, 2))))
    bad = runner.invoke(app, ["design", "study", "--model", str(small), "--quick"])
    assert bad.exit_code == 2 and "302" in bad.output


def test_cli_design_plan_writes_the_plan_and_refuses_bad_input(tmp_path, atlas, models_dir):
    """`design plan` on the bundled atlas with a given model: the plan in order with what each
    trial improves, and the report; bad budgets, criteria, files and data without trials are
    refused by name."""
    import pandas as pd
    import xarray as xr
    from typer.testing import CliRunner

    from digiworm.cli import app

    runner = CliRunner()
    model = str(models_dir / "model_linear.dwm")
    out = tmp_path / "plan.csv"
    r = runner.invoke(app, ["design", "plan", "--model", model, "--budget", "4", "--out",
                            str(out), "--report", str(tmp_path / "rep")])  # fmt: skip
    assert r.exit_code == 0, r.output
    plan = pd.read_csv(out)
    assert list(plan.columns) == ["rank", "neuron", "size", "trials_done", "criterion",
                                  "reduction", "improves_most"]  # fmt: skip
    assert len(plan) == 4 and set(plan["neuron"]) <= set(atlas.names)
    assert (np.diff(plan["reduction"]) > 0).all()  # every trial removes some variance
    for cell in plan["improves_most"]:
        assert 1 <= len(cell.split(";")) <= 3 and set(cell.split(";")) <= set(atlas.names)
    assert (tmp_path / "rep" / "plan.png").is_file() and (tmp_path / "rep" / "index.html").is_file()
    means = xr.Dataset({"dff": atlas.functional("wt", kernel_time_s=None)["dff"]})
    means.to_netcdf(tmp_path / "means.nc", engine="h5netcdf")
    for args, needle in ((["--budget", "0"], "--budget must be >= 1"),
                         (["--criterion", "E"], "--criterion must be A, D or V"),
                         (["--sets", "pairs"], "--sets must be"),
                         (["--data", str(tmp_path / "none.nc")], "does not exist"),
                         (["--data", str(tmp_path / "means.nc")], "no per-trial values"),
                         (["--out", str(tmp_path / "plan.txt")], ".csv")):  # fmt: skip
        argv = ["design", "plan", "--model", model, "--out", str(out), *args]
        r = runner.invoke(app, argv)
        assert r.exit_code == 2 and needle in r.output, (args, r.output)


def test_ground_truths_that_do_not_settle_are_drawn_again():
    """A truth whose slowest mode is slower than max_time_constant_s (or grows) is refused and
    counted; the one returned settles in time; an impossible bound fails by name."""
    from digiworm.design._study import _settling_truth

    a, _ = _network(n=20, seed=1)
    n = a.shape[0]
    off = ~np.eye(n, dtype=bool)
    settings = StudySettings(truth_sd=1.5, max_time_constant_s=2.3)  # the fit's: 2.8 s
    theta, redraws = _settling_truth(a, settings, np.random.default_rng(0))
    lead = np.linalg.eigvals(np.where(off, a * np.exp(theta)[None, :], a)).real.max()
    assert lead < -1.0 / 2.3 and redraws > 0
    with pytest.raises(DigiwormError, match="settles faster"):
        _settling_truth(a, StudySettings(max_time_constant_s=1e-3), np.random.default_rng(0),
                        tries=5)  # fmt: skip


def test_coupling_derivatives_and_fisher_match_finite_differences():
    """Single wired couplings as unknowns: R(theta) scales just those entries of A, the closed-
    form derivatives -P_ik R_{source_k, l} and a set's Fisher factor match central differences,
    and output gains are the special case where every coupling of a neuron shares a parameter."""
    from digiworm.design._study import Unknowns, output_gains, wired_couplings

    a, b = _network(n=9, seed=3)
    n = len(b)
    support = np.abs(a) > 0.05
    u = wired_couplings(a, support, 7)
    assert u.size == 7 and u.kind == "couplings"
    chosen = np.abs(a[u.post, u.pre])
    others = np.abs(a[support & ~np.eye(n, dtype=bool)])
    assert np.isclose(chosen.min(), np.sort(others)[-7])  # the 7 strongest wired couplings
    theta = np.random.default_rng(4).normal(0, 0.3, u.size)
    r, p, _ = gain_response(a, b, theta, u)
    moved = a.copy()
    moved[u.post, u.pre] *= np.exp(theta)
    np.testing.assert_allclose(r, -np.linalg.solve(moved, np.diag(b)))
    for k in range(u.size):
        step = np.zeros(u.size)
        step[k] = 1e-6
        numeric = (gain_response(a, b, theta + step, u)[0]
                   - gain_response(a, b, theta - step, u)[0]) / 2e-6  # fmt: skip
        np.testing.assert_allclose(-np.outer(p[:, k], r[u.source[k], :]), numeric, atol=1e-7)
    members, sigma = np.array([1, 6]), np.full(n, 0.2)
    f = fisher_factors(a, b, sigma, np.ones(n, bool), 1.0, sets=[members], theta=theta,
                       unknowns=u)[0]  # fmt: skip
    keep = np.setdiff1d(np.arange(n), members)

    def summed(t):
        return gain_response(a, b, t, u)[0][:, members].sum(1)[keep]

    jac = np.stack([(summed(theta + 1e-6 * e) - summed(theta - 1e-6 * e)) / 2e-6
                    for e in np.eye(u.size)], -1)  # fmt: skip
    np.testing.assert_allclose(f @ f.T, jac.T @ jac / 0.2**2, rtol=1e-5, atol=1e-8)
    # the gains through the general edge path (every out-coupling of j shares parameter j)
    g = output_gains(a)
    general = Unknowns(g.post, g.pre, g.group, g.source, "couplings")
    gains = np.random.default_rng(5).normal(0, 0.3, n)
    for got, want in zip(gain_response(a, b, gains, general), gain_response(a, b, gains)):
        np.testing.assert_allclose(got, want, atol=1e-12)
    with pytest.raises(DigiwormError, match="wired pairs"):
        wired_couplings(a, np.zeros((n, n), bool), 5)
    with pytest.raises(DigiwormError, match="support must be"):
        wired_couplings(a, support[:3], 5)


def test_map_refit_of_couplings_from_sets_matches_a_generic_solver():
    """The refit with experiments stimulating sets (their members' own responses left out) and
    couplings as unknowns reaches scipy's least-squares minimum of the same objective."""
    from scipy.optimize import least_squares

    from digiworm.design._study import wired_couplings

    a, b = _network(n=8, seed=5)
    n = len(b)
    u = wired_couplings(a, np.ones((n, n), bool), 10)
    rng = np.random.default_rng(6)
    sets = [np.array([j]) for j in range(n)] + [np.array([0, 3]), np.array([2, 5, 7])]
    stim = np.zeros((n, len(sets)))
    for e, members in enumerate(sets):
        stim[members, e] = 1.0
    sigma, observed = rng.uniform(0.05, 0.2, n), np.arange(n) != 2
    counts = rng.integers(0, 4, len(sets)).astype(float)
    counts[-2:] = 3.0
    truth = gain_response(a, b, rng.normal(0, 0.4, u.size), u)[0] @ stim
    mean = truth + rng.normal(0, 0.1, truth.shape)
    est = refit_gains(a, b, mean, counts, sigma, observed, 0.5, sets=sets, unknowns=u)
    wt = np.sqrt(observed[:, None] / sigma[:, None] ** 2 * counts[None, :]) * (stim == 0)

    def resid(theta):
        r = gain_response(a, b, theta, u)[0] @ stim
        return np.concatenate([(wt * (r - mean)).ravel(), theta / 0.5])

    ref = least_squares(resid, np.zeros(u.size), xtol=1e-14, ftol=1e-14, gtol=1e-14).x
    assert 0.5 * np.sum(resid(est) ** 2) <= 0.5 * np.sum(resid(ref) ** 2) * (1 + 1e-10)
    np.testing.assert_allclose(est, ref, atol=1e-5)
    with pytest.raises(DigiwormError, match="experiments"):
        refit_gains(a, b, mean[:, :n], counts, sigma, observed, 0.5, sets=sets, unknowns=u)


def test_study_with_sets_couplings_and_each_criterion_reports_its_choices():
    """The study runs with class-like sets among the candidates, couplings as unknowns and each
    criterion; random stays single neurons, the designs' counts cover every candidate and the
    summary names what they ran most."""
    from digiworm.design._study import wired_couplings

    a, b = _network(n=10, seed=1)
    n = len(b)
    sets = {"N0+N1": np.array([0, 1]), "N4+N5+N6": np.array([4, 5, 6])}
    u = wired_couplings(a, np.ones((n, n), bool), 12)
    for criterion in ("A", "D", "V"):
        settings = StudySettings(seeds=2, max_trials=120, checkpoints=3, first_trials=30,
                                 criterion=criterion, batch=10)  # fmt: skip
        result = design_study(a, b, np.full(n, 0.1), np.arange(n) < 8, settings, sets=sets,
                              unknowns=u, names=[f"N{i}" for i in range(n)])  # fmt: skip
        assert result.designed_counts.sum() == 120 and result.designed_counts.size == n + 2
        assert np.isclose(result.adaptive_counts.sum(), 120)
        summary = result.summary()
        assert summary["unknowns"] == "12 couplings"
        chose = summary["designed_chose"]
        on_sets = result.designed_counts[n:].sum() / 120
        assert np.isclose(chose["trials_on_sets"], on_sets)
        assert chose["top"][0]["trials"] == result.designed_counts.max()
        assert set(result.curves["order"]) == {"random", "designed", "adaptive"}
        assert np.all(result.curves["gain_rmse"] < 1.5)
    with pytest.raises(DigiwormError, match="criterion must be one of"):
        StudySettings(criterion="E")
    with pytest.raises(DigiwormError, match="names must"):
        design_study(a, b, np.full(n, 0.1), np.ones(n, bool), settings, names=["x"])
