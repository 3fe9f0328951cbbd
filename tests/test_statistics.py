"""Order statistics, NaN reductions, where=/initial=, differences, covariance, cumulative
scans, histograms and interpolation, compared with NumPy (and differentiable where JAX's
are)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fnarray as fa
from fnarray.testing import check_grads

RNG = np.random.default_rng(0)
A = RNG.normal(size=(4, 5, 6))
B = A[0].copy()
B[0, 1] = np.nan
B[2, :] = np.nan


def np_quiet(f, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kw)


@pytest.mark.parametrize("method", ["linear", "lower", "higher", "nearest", "midpoint"])
@pytest.mark.parametrize("axis", [None, 0, (1, 2), -1])
def test_quantile_matches_numpy(method, axis):
    for q in (0.3, [0.0, 0.25, 0.5, 1.0]):
        for keepdims in (False, True):
            out = fa.quantile(A, q, axis=axis, method=method, keepdims=keepdims)
            expect = np.quantile(A, q, axis=axis, method=method, keepdims=keepdims)
            assert out.shape == expect.shape
            np.testing.assert_allclose(out, expect, rtol=1e-12)


def test_median_percentile_and_nan_forms():
    np.testing.assert_allclose(fa.median(A, axis=1), np.median(A, axis=1))
    np.testing.assert_allclose(fa.percentile(A, [10, 90], axis=2), np.percentile(A, [10, 90], axis=2))
    for axis in (None, 0, 1):
        np.testing.assert_allclose(fa.quantile(B, 0.4, axis=axis), np.quantile(B, 0.4, axis=axis))
        np.testing.assert_allclose(fa.nanquantile(B, [0.1, 0.7], axis=axis),
                                   np_quiet(np.nanquantile, B, [0.1, 0.7], axis=axis))
        np.testing.assert_allclose(fa.nanmedian(B, axis=axis), np_quiet(np.nanmedian, B, axis=axis))
        np.testing.assert_allclose(fa.nanpercentile(B, 35, axis=axis),
                                   np_quiet(np.nanpercentile, B, 35, axis=axis))
    assert fa.median(fa.ones(3, dtype=fa.float32)).dtype == np.float32
    with pytest.raises(ValueError, match=r"q must be in \[0, 100\]"):
        fa.percentile(A, 101)
    with pytest.raises(ValueError, match="unknown method 'cubic'"):
        fa.quantile(A, 0.5, method="cubic")


def test_quantile_under_jit_and_grads():
    x = fa.asarray(A[0, 0])
    np.testing.assert_allclose(fa.jit(lambda v: fa.quantile(v, 0.3))(x), np.quantile(A[0, 0], 0.3))
    check_grads(lambda v: fa.quantile(v, fa.asarray([0.3, 0.8])), (x,), order=2)
    check_grads(lambda v: fa.median(v), (x,), order=1)
    check_grads(lambda v: fa.nanmedian(v.at[0].set(np.nan)), (x,), order=1)


@pytest.mark.parametrize("name", ["nansum", "nanprod", "nanmax", "nanmin", "nanmean", "nanvar",
                                  "nanstd"])
def test_nan_reductions(name):
    for axis in (None, 0, 1):
        np.testing.assert_allclose(getattr(fa, name)(B, axis=axis),
                                   np_quiet(getattr(np, name), B, axis=axis), err_msg=name)
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_allclose(getattr(fa, name)(ints, axis=1), getattr(np, name)(ints, axis=1))


def test_nanarg_and_ddof():
    expect = np.argmax(np.where(np.isnan(B), -np.inf, B), axis=1)
    expect[np.isnan(B).all(axis=1)] = -1  # an all-NaN slice gives -1 (JAX's choice)
    np.testing.assert_array_equal(fa.nanargmax(B, axis=1), expect)
    assert int(fa.nanargmin(B)) == int(np.nanargmin(B))
    np.testing.assert_allclose(fa.nanvar(B, axis=1, ddof=1), np_quiet(np.nanvar, B, axis=1, ddof=1))
    check_grads(lambda v: fa.nanmean(v) + fa.nanstd(v), (fa.asarray(np.where(np.isnan(B), 1.0, B)),),
                order=1)


def test_where_and_initial_on_reductions():
    a = RNG.normal(size=(3, 4))
    m = RNG.uniform(size=(3, 4)) > 0.4
    for name in ("sum", "prod", "mean", "var", "std"):
        np.testing.assert_allclose(getattr(fa, name)(a, axis=1, where=m),
                                   getattr(np, name)(a, axis=1, where=m), err_msg=name)
    np.testing.assert_allclose(fa.max(a, axis=1, where=m, initial=-5),
                               np.max(a, axis=1, where=m, initial=-5))
    np.testing.assert_allclose(fa.min(a, initial=-5), np.min(a, initial=-5))
    np.testing.assert_allclose(fa.sum(a, initial=3), np.sum(a, initial=3))
    np.testing.assert_allclose(fa.asarray(a).sum(axis=0, where=m), np.sum(a, axis=0, where=m))
    np.testing.assert_array_equal(fa.max(np.zeros((0, 3)), axis=0, initial=1.0), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(fa.all(a > 0, axis=1, where=m), np.all(a > 0, axis=1, where=m))
    np.testing.assert_array_equal(fa.any(a > 0, axis=1, where=m), np.any(a > 0, axis=1, where=m))
    with pytest.raises(ValueError, match="needs initial="):
        fa.max(a, where=m)
    check_grads(lambda v: fa.sum(v * v, where=m) + fa.max(v, where=m, initial=0.0), (fa.asarray(a),),
                order=1)


def test_diff_cov_corrcoef():
    y = np.array([1, 4, 9, 16, 25])
    for n in range(4):
        np.testing.assert_array_equal(fa.diff(y, n), np.diff(y, n))
    x = RNG.normal(size=(3, 6))
    np.testing.assert_allclose(fa.diff(x, 2, axis=0, prepend=0, append=x[:1]),
                               np.diff(x, 2, axis=0, prepend=0, append=x[:1]))
    np.testing.assert_array_equal(fa.diff(np.array([True, False, False])), [True, False])
    np.testing.assert_array_equal(fa.ediff1d(y, to_begin=-9, to_end=[1, 2]),
                                  np.ediff1d(y, to_begin=-9, to_end=[1, 2]))
    fw, aw = np.array([1, 2, 1, 3, 1, 1]), RNG.uniform(size=6)
    np.testing.assert_allclose(fa.cov(x), np.cov(x))
    np.testing.assert_allclose(fa.cov(x, rowvar=False, bias=True), np.cov(x, rowvar=False, bias=True))
    np.testing.assert_allclose(fa.cov(x, fweights=fw, aweights=aw), np.cov(x, fweights=fw, aweights=aw))
    np.testing.assert_allclose(fa.cov(x[0], x[1]), np.cov(x[0], x[1]))
    np.testing.assert_allclose(fa.cov(x[0]), np.cov(x[0]))
    z = x + 1j * RNG.normal(size=x.shape)
    np.testing.assert_allclose(fa.cov(z), np.cov(z))
    np.testing.assert_allclose(fa.corrcoef(x), np.corrcoef(x))
    np.testing.assert_allclose(fa.corrcoef(z), np.corrcoef(z))
    np.testing.assert_allclose(fa.corrcoef(x[0], x[2]), np.corrcoef(x[0], x[2]))
    check_grads(lambda v: fa.corrcoef(v), (fa.asarray(x),), order=1)
    check_grads(lambda v: fa.diff(v, 2, axis=1), (fa.asarray(x),), order=1)


def test_cumulative_scans():
    a = RNG.normal(size=(7, 5))
    np.testing.assert_allclose(fa.cummax(a), np.maximum.accumulate(a, 0))
    np.testing.assert_allclose(fa.cummin(a, axis=1), np.minimum.accumulate(a, 1))
    np.testing.assert_allclose(fa.cummax(a, reverse=True), np.maximum.accumulate(a[::-1], 0)[::-1])
    np.testing.assert_allclose(fa.cumlogsumexp(a), np.logaddexp.accumulate(a, 0))
    np.testing.assert_allclose(fa.cumlogsumexp(a, axis=1, reverse=True),
                               np.logaddexp.accumulate(a[:, ::-1], 1)[:, ::-1])
    np.testing.assert_array_equal(fa.cummax(np.array([3, 1, 4, 1, 5, 9, 2])), [3, 3, 4, 4, 5, 9, 9])
    np.testing.assert_array_equal(fa.cumulative_prod(np.array([1, 2, 3]), include_initial=True),
                                  [1, 1, 2, 6])
    b = np.array([1.0, np.nan, 3.0])
    np.testing.assert_array_equal(fa.nancumsum(b), np.nancumsum(b))
    np.testing.assert_array_equal(fa.nancumprod(b), np.nancumprod(b))
    check_grads(lambda v: fa.cumlogsumexp(v, axis=1), (fa.asarray(a),), order=2)
    check_grads(lambda v: fa.cummax(v, axis=0), (fa.asarray(a),), order=1)


def test_histogram_bincount_digitize_interp():
    a = RNG.normal(size=500)
    for bins, rng in ((10, None), (7, (-1, 2)), (np.array([-3, -1, 0, 0.5, 3.0]), None)):
        h, e = fa.histogram(a, bins, range=rng)
        expect_h, expect_e = np.histogram(a, bins, range=rng)
        np.testing.assert_array_equal(h, expect_h)
        np.testing.assert_allclose(e, expect_e)
    w = RNG.uniform(size=500)
    np.testing.assert_allclose(fa.histogram(a, 5, weights=w, density=True)[0],
                               np.histogram(a, 5, weights=w, density=True)[0])
    jit_hist = fa.jit(lambda v: fa.histogram(v, 4, range=(-2.0, 2.0))[0])
    np.testing.assert_array_equal(jit_hist(fa.asarray(a)), np.histogram(a, 4, range=(-2, 2))[0])
    check_grads(lambda ww: fa.histogram(a, 5, weights=ww)[0], (fa.asarray(w),), order=1)
    x = np.array([0, 1, 1, 3, 2, 1, 7])
    np.testing.assert_array_equal(fa.bincount(x), np.bincount(x))
    np.testing.assert_array_equal(fa.bincount(x, minlength=10), np.bincount(x, minlength=10))
    np.testing.assert_allclose(fa.bincount(x, weights=np.arange(7.0)), np.bincount(x, weights=np.arange(7.0)))
    np.testing.assert_array_equal(fa.jit(lambda v: fa.bincount(v, length=5))(fa.asarray(x)),
                                  [1, 3, 1, 1, 0])
    with pytest.raises(fa.ConcretizationError, match="length="):
        fa.jit(fa.bincount)(fa.asarray(x))
    with pytest.raises(ValueError, match="non-negative"):
        fa.bincount(np.array([1, -1]), length=3)
    dropped = fa.jit(lambda v: fa.bincount(v, length=3))(fa.asarray([1, -1, 2, 5]))
    np.testing.assert_array_equal(dropped, [0, 1, 1])
    with pytest.raises(ValueError, match="not finite"):
        fa.histogram(np.array([1.0, np.nan]))
    xp, fp = np.array([0.0, 1, 2.5, 4]), np.array([1.0, 3, -1, 2])
    xs = np.linspace(-1, 5, 23)
    np.testing.assert_allclose(fa.interp(xs, xp, fp), np.interp(xs, xp, fp))
    np.testing.assert_allclose(fa.interp(xs, xp, fp, left=-9, right=9),
                               np.interp(xs, xp, fp, left=-9, right=9))
    np.testing.assert_allclose(fa.interp(xs, xp, fp, period=3), np.interp(xs, xp, fp, period=3))
    np.testing.assert_array_equal(fa.digitize(xs, xp), np.digitize(xs, xp))
    np.testing.assert_array_equal(fa.digitize(xs, xp[::-1], right=True),
                                  np.digitize(xs, xp[::-1], right=True))
    pts = fa.asarray([0.3, 1.7, 3.1])
    check_grads(lambda v, f: fa.interp(v, xp, f), (pts, fa.asarray(fp)), order=1)


def test_average_and_ptp():
    a, w, w1 = RNG.normal(size=(3, 4)), RNG.uniform(size=(3, 4)), RNG.uniform(size=4)
    np.testing.assert_allclose(fa.average(a), np.average(a))
    np.testing.assert_allclose(fa.average(a, axis=0, weights=w), np.average(a, axis=0, weights=w))
    for got, expect in zip(fa.average(a, axis=1, weights=w1, returned=True),
                           np.average(a, axis=1, weights=w1, returned=True)):
        np.testing.assert_allclose(got, expect)
    got = fa.average(a, axis=0, returned=True, keepdims=True)
    assert got[1].shape == (1, 4) and float(got[1][0, 0]) == 3.0
    np.testing.assert_allclose(fa.ptp(a, axis=1), np.ptp(a, axis=1))
    with pytest.raises(ValueError, match="do not match axis"):
        fa.average(a, axis=0, weights=w1)
    check_grads(lambda v, ww: fa.average(v, axis=1, weights=ww), (fa.asarray(a), fa.asarray(w1)),
                order=1)
