"""Sum-of-exponential response kernels: analytic values, accuracy under cancellation, real data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from digiworm.atlas import evaluate_kernels


def test_hand_computed_kernel():
    # h(t) = 2 e^{-t} - 2 e^{-3t}
    t = np.array([0.0, 1.0, 2.0])
    out = evaluate_kernels(
        np.array([1.0, 3.0]), np.array([2.0, -2.0]), np.array([0]), np.array([2]), t
    )
    expected = [2 * math.exp(-x) - 2 * math.exp(-3 * x) for x in (0.0, 1.0, 2.0)]
    assert out.shape == (1, 3)
    assert out.dtype == np.float64
    assert out[0, 0] == 0.0
    np.testing.assert_allclose(out[0], expected, rtol=1e-14, atol=0)


def test_docstring_example():
    out = evaluate_kernels(
        np.array([1.0, 2.0]), np.array([3.0, -3.0]), np.array([0]), np.array([2]),
        np.array([0.0, np.log(2)]),
    )  # fmt: skip
    np.testing.assert_allclose(out, [[0.0, 0.75]], atol=1e-15)


def test_several_kernels_any_segment_order_and_shape():
    # terms laid end to end: kernel B (1 term) first in memory, kernel A (2 terms) after it
    g = np.array([0.5, 1.0, 3.0])
    c = np.array([4.0, 2.0, -2.0])
    start = np.array([[1, 0], [0, 0]])
    nterms = np.array([[2, 1], [0, 0]])
    t = np.array([0.0, 0.5, 2.0])
    out = evaluate_kernels(g, c, start, nterms, t)
    assert out.shape == (2, 2, 3)
    a = [2 * math.exp(-x) - 2 * math.exp(-3 * x) for x in t]
    b = [4 * math.exp(-0.5 * x) for x in t]
    np.testing.assert_allclose(out[0, 0], a, rtol=1e-14)
    np.testing.assert_allclose(out[0, 1], b, rtol=1e-14)
    assert np.isnan(out[1]).all()


def test_power_t():
    # h(t) = 3 t^2 e^{-t} + e^{-2t}
    t = np.array([0.0, 1.0, 2.5])
    out = evaluate_kernels(
        np.array([1.0, 2.0]), np.array([3.0, 1.0]), np.array([0]), np.array([2]), t,
        power_t=np.array([2.0, 0.0]),
    )  # fmt: skip
    expected = [3 * x**2 * math.exp(-x) + math.exp(-2 * x) for x in t]
    np.testing.assert_allclose(out[0], expected, rtol=1e-14)


def test_lone_zero_row_is_zero_kernel():
    # funatlas convention: a lone [g=1, factor=0] row means h == 0 (measured, no response)
    out = evaluate_kernels(np.array([1.0]), np.array([0.0]), np.array([0]), np.array([1]),
                           np.array([0.0, 1.0]))  # fmt: skip
    np.testing.assert_array_equal(out, [[0.0, 0.0]])


def test_nterms_zero_is_nan():
    out = evaluate_kernels(
        np.array([1.0]), np.array([1.0]), np.array([0, 0]), np.array([1, 0]), np.array([0.0, 1.0])
    )
    assert np.isfinite(out[0]).all()
    assert np.isnan(out[1]).all()
    empty = evaluate_kernels(np.zeros(0), np.zeros(0), np.array([0]), np.array([0]),
                             np.array([0.0]))  # fmt: skip
    assert empty.shape == (1, 1) and np.isnan(empty).all()


@pytest.mark.parametrize(
    "t",
    [np.array([-0.5, 1.0]), np.array([0.0, np.nan]), np.array([np.inf]), np.zeros((2, 2))],
    ids=["negative", "nan", "inf", "2-D"],
)
def test_bad_times_raise(t):
    with pytest.raises(ValueError):
        evaluate_kernels(np.array([1.0]), np.array([1.0]), np.array([0]), np.array([1]), t)


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError):
        evaluate_kernels(np.array([1.0, 2.0]), np.array([1.0]), np.array([0]), np.array([1]),
                         np.array([0.0]))  # fmt: skip
    with pytest.raises(ValueError):
        evaluate_kernels(np.array([1.0]), np.array([1.0]), np.array([0, 0]), np.array([1]),
                         np.array([0.0]))  # fmt: skip


def test_segments_must_tile_terms():
    g = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError):  # term 2 belongs to no kernel
        evaluate_kernels(g, g, np.array([0]), np.array([2]), np.array([0.0]))
    with pytest.raises(ValueError):  # overlapping segments
        evaluate_kernels(g, g, np.array([0, 1]), np.array([2, 2]), np.array([0.0]))


def test_empty_time_grid():
    out = evaluate_kernels(np.array([1.0]), np.array([1.0]), np.array([0, 0]), np.array([1, 0]),
                           np.zeros(0))  # fmt: skip
    assert out.shape == (2, 0)


# -- accuracy with huge cancelling factors ----------------------------------------------------

A = 0.5
B = 0.5 + 1e-6  # b - a is exact in float64 (Sterbenz), about 1e-6
C = 1e8
T = np.array([0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0])


def _cancelling():
    return evaluate_kernels(np.array([A, B]), np.array([C, -C]), np.array([0]), np.array([2]), T)[0]


def test_cancelling_factors_expm1_reference():
    # h(t) = C (e^{-a t} - e^{-b t}) = -C e^{-a t} expm1(-(b - a) t): no cancellation
    ref = np.array([-C * math.exp(-A * t) * math.expm1(-(B - A) * t) for t in T])
    out = _cancelling()
    assert out[0] == 0.0
    # values ~ 100 t e^{-t/2}; naive float32 would be wrong in the first digit
    np.testing.assert_allclose(out[1:], ref[1:], rtol=1e-7)
    assert out[3] == pytest.approx(100 * 2 * math.exp(-1.0), rel=1e-5)


def test_cancelling_factors_mpmath_reference():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    a, b, c = mpmath.mpf(A), mpmath.mpf(B), mpmath.mpf(C)  # exact float64 inputs
    ref = np.array([float(c * (mpmath.exp(-a * t) - mpmath.exp(-b * t))) for t in T])
    np.testing.assert_allclose(_cancelling()[1:], ref[1:], rtol=1e-7)


def test_cancellation_does_not_leak_between_kernels():
    # kernel 0: +-1e15 terms cancelling exactly; kernel 1: e^{-t}. Summing segments separately
    # keeps kernel 1 exact to the last bit.
    g = np.array([0.3, 0.3, 1.0])
    c = np.array([1e15, -1e15, 1.0])
    t = np.array([0.0, 0.7, 3.0])
    out = evaluate_kernels(g, c, np.array([0, 2]), np.array([2, 1]), t)
    np.testing.assert_array_equal(out[0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(out[1], np.exp(-t))


# -- the real functional atlas -----------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_funatlas():
    import h5py

    from digiworm.atlas._sources import package_file

    path = package_file("wormneuroatlas", "data/funatlas.h5")
    with h5py.File(path, "r") as h5:
        ids = [x.decode() for x in h5["neuron_ids"][:]]
        kernels = h5["wt/kernels"][:]
    canon = [{"AWCOF": "AWCL", "AWCON": "AWCR"}.get(i, i) for i in ids]
    return {name: k for k, name in enumerate(canon)}, kernels


@pytest.mark.parametrize(
    ("responding", "stimulated"), [("AVAR", "AVAL"), ("ADLL", "AWCL"), ("AWCL", "AIMR")]
)
def test_atlas_kernel_equals_raw_sum(atlas, raw_funatlas, responding, stimulated):
    index, kernels = raw_funatlas
    terms = np.asarray(kernels[index[responding], index[stimulated]], dtype=np.float64)
    terms = terms.reshape(-1, 4)
    assert len(terms) > 3  # a real multi-term kernel, not the lone zero row
    assert (terms[:, 2] == 0).all() and (terms[:, 3] == 0).all()
    ds = atlas.functional("wt")
    t = ds["time"].values
    parts = terms[:, 1][:, None] * np.exp(-terms[:, 0][:, None] * t[None, :])
    expected = np.array([math.fsum(col) for col in parts.T])  # correctly rounded sum
    scale = np.abs(parts).sum(axis=0)  # size of the cancelling terms
    got = ds["kernel"].sel(responding=responding, stimulated=stimulated).values
    assert got.shape == t.shape
    assert np.isfinite(got).all()
    assert np.all(np.abs(got - expected) <= 1e-13 * scale + 1e-15)
    assert np.isfinite(ds["dff"].sel(responding=responding, stimulated=stimulated).item())


def test_kernels_only_where_measured(atlas):
    ds = atlas.functional("wt", kernel_time_s=[0.0, 1.0])
    have = np.isfinite(ds["kernel"].values[..., 0])
    assert (have == (ds["kernel_nterms"].values > 0)).all()
    assert np.isnan(ds["kernel"].sel(responding="CANL")).all()
    measured = np.isfinite(ds["dff"].values)
    # every measured pair has a kernel; the shipped data has kernels on at most a few more
    assert have[measured].all()
    assert (have & ~measured).sum() <= 5


def test_functional_rejects_negative_kernel_times(atlas):
    with pytest.raises(ValueError):
        atlas.functional("wt", kernel_time_s=[-1.0, 0.0])
