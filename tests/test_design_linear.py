"""The linear inverse problem: error formula vs closed forms, vs Monte-Carlo, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from digiworm._errors import DigiwormError
from digiworm.cli import app
from digiworm.design import (
    decaying_covariance,
    expected_error,
    monte_carlo_error,
    samples_needed,
)


def test_isotropic_inputs_give_the_closed_form():
    e = expected_error(p=300, n=5000, sigma=0.1)
    assert e.approx == pytest.approx(0.1 * np.sqrt(300 / 5000))
    assert e.exact_gaussian == pytest.approx(0.1 * np.sqrt(300 / (5000 - 301)))
    assert e.trace_inv_per_p == pytest.approx(1.0)
    assert e.condition_number == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("p", "n", "decay"), [(10, 100, 1.0), (20, 400, 0.9), (20, 60, 0.8), (40, 200, 0.95)]
)
def test_exact_gaussian_value_matches_monte_carlo(p, n, decay):
    cov = decaying_covariance(p, decay, seed=1)
    e = expected_error(p, n, 0.2, cov)
    mc, se = monte_carlo_error(p, n, 0.2, cov, outputs=20, reps=40, seed=2)
    assert abs(mc - e.exact_gaussian) < 4 * se + 0.01 * e.exact_gaussian


def test_approximation_holds_at_large_n_and_breaks_near_p():
    cov = decaying_covariance(20, 0.9, seed=3)
    far = expected_error(20, 2000, 0.1, cov)
    assert far.approx == pytest.approx(far.exact_gaussian, rel=0.01)
    near = expected_error(20, 25, 0.1, cov)
    assert near.exact_gaussian > 2 * near.approx  # sqrt(25 / 4) = 2.5


def test_ill_conditioned_inputs_need_more_data():
    iso = expected_error(50, 1000, 0.1)
    corr = expected_error(50, 1000, 0.1, decaying_covariance(50, 0.9))
    assert corr.trace_inv_per_p > 5 * iso.trace_inv_per_p  # 6.9 at condition number 175
    assert corr.approx == pytest.approx(iso.approx * np.sqrt(corr.trace_inv_per_p))


def test_samples_needed_inverts_the_error():
    cov = decaying_covariance(30, 0.95, seed=4)
    for exact in (True, False):
        n = samples_needed(0.02, 30, 0.1, cov, exact=exact)
        e = expected_error(30, n, 0.1, cov)
        assert (e.exact_gaussian if exact else e.approx) == pytest.approx(0.02)


def test_decaying_covariance_has_the_stated_spectrum():
    cov = decaying_covariance(12, 0.7, seed=5)
    np.testing.assert_allclose(cov, cov.T, atol=1e-12)
    eig = np.linalg.eigvalsh(cov)
    assert np.trace(cov) == pytest.approx(12)
    assert eig[-1] / eig[0] == pytest.approx(0.7**-11, rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"p": 0, "n": 10, "sigma": 0.1}, "positive integer"),
        ({"p": 10, "n": 5, "sigma": 0.1}, "underdetermined"),
        ({"p": 3, "n": 10, "sigma": -1.0}, "sigma"),
        ({"p": 2, "n": 10, "sigma": 0.1, "cov": np.array([[1.0, 1.0], [1.0, 1.0]])}, "singular"),
        ({"p": 2, "n": 10, "sigma": 0.1, "cov": np.array([[1.0, 0.5], [0.0, 1.0]])}, "symmetric"),
        ({"p": 2, "n": 10, "sigma": 0.1, "cov": np.eye(3)}, "(2, 2)"),
    ],
)
def test_bad_input_is_named(kwargs, needle):
    with pytest.raises(DigiwormError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        expected_error(**kwargs)


runner = CliRunner()


def test_cli_design_error(tmp_path):
    result = runner.invoke(
        app, ["design", "error", "--p", "300", "--n", "5000", "--sigma", "0.1", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["approx"] == pytest.approx(0.1 * np.sqrt(300 / 5000))
    cov = tmp_path / "cov.npy"
    np.save(cov, decaying_covariance(20, 0.8))
    result = runner.invoke(
        app, ["design", "error", "--p", "20", "--n", "200", "--sigma", "0.1", "--cond", str(cov),
              "--target", "0.05"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "samples for error 0.05" in result.output
    bad = runner.invoke(app, ["design", "error", "--p", "20", "--n", "10", "--sigma", "0.1"])
    assert bad.exit_code == 2 and "underdetermined" in bad.output
    both = runner.invoke(
        app, ["design", "error", "--p", "20", "--n", "100", "--sigma", "0.1", "--decay", "0.9",
              "--cond", str(cov)],
    )  # fmt: skip
    assert both.exit_code == 2 and "either" in both.output


def test_formula_table_and_figure(tmp_path):
    from digiworm.design import formula_vs_monte_carlo, plot_formula_check

    cases = [(10, n, "isotropic", None) for n in (13, 40, 400)]
    cases += [(10, n, "decay 0.7", 0.7) for n in (13, 40, 400)]
    table = formula_vs_monte_carlo(cases, reps=30, seed=1)
    assert list(table["n"]) == [13, 40, 400] * 2
    far = table[table["n"] == 400]
    np.testing.assert_allclose(far["formula_over_mc"], 1.0, atol=0.08)
    near = table[table["n"] == 13]
    assert np.all(near["formula_over_mc"] < 0.7)  # n close to p: the 1/n law under-predicts
    np.testing.assert_allclose(table["exact_over_mc"], 1.0, atol=0.2)
    png = plot_formula_check(table, tmp_path / "check.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
