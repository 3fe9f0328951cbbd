"""The compiled ``conv_transpose`` (``fnarray/backends/kernels/conv_transpose.py``): on the
NumPy path and on the compiled path (the ``kernel_path`` fixture) the primitive's kernel
equals the general NumPy kernel (products + col2im) on random geometries, stride 1 (the
geometries of ``tests/test_conv_transpose.py``) and strided, float32 and float64, groups,
dilation, padding, N=0, size-1 axes, non-contiguous cotangents, several chunks of samples;
derivative checks on the compiled path.

The compiled path sums each input cell's contributions in another order than the NumPy
kernels (in the order of the window positions), so results agree to float rounding, not
bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import fnarray as fa
from fnarray.backends import accel
from fnarray.ops import conv_transpose as ct_ops
from fnarray.testing import check_grads
from tests.test_conv_transpose import _geometry



def _examples(n: int):
    """``n`` hypothesis examples; the fixture only switches the path, so the examples may
    share it."""
    return settings(max_examples=n, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                           HealthCheck.too_slow])


def _reference(ct, w, params):
    """The general NumPy kernel in float64: products + col2im."""
    return ct_ops._columns_kernel(np, ct.astype(np.float64), w.astype(np.float64), **params)


def _check(ct, w, params, rtol=1e-12, atol=1e-12):
    got = ct_ops._transpose_impl(np, ct, w, **params)
    want = _reference(ct, w, params)
    assert got.shape == want.shape and got.dtype == ct.dtype
    assert got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    return got


@_examples(60)
@given(_geometry(max_stride=1))
def test_stride_one_equals_products_and_col2im(kernel_path, case):
    ct, w, params = case
    _check(ct, w, params)


@_examples(40)
@given(_geometry(max_stride=3))
def test_any_stride_equals_products_and_col2im(kernel_path, case):
    ct, w, params = case
    _check(ct, w, params)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk_bytes", [1, 40_000, 1 << 30])
def test_chunks_of_samples(kernel_path, monkeypatch, dtype, chunk_bytes):
    """One sample per chunk, several with a shorter last one, all in one: the same
    result; a held result is not touched by later calls, which reuse the scratch."""
    monkeypatch.setattr(ct_ops, "_CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(3)
    w = rng.normal(size=(12, 5, 3, 3)).astype(dtype)
    params = dict(in_spatial=(11, 10), strides=(1, 1), padding=((1, 1), (0, 2)),
                  dilation=(1, 2), groups=2)
    cts = [rng.normal(size=(7, 12, 11, 6)).astype(dtype) for _ in range(2)]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    first = _check(cts[0], w, params, rtol=tol, atol=tol)
    kept = first.copy()
    _check(cts[1], w, params, rtol=tol, atol=tol)
    np.testing.assert_array_equal(first, kept)


def test_convnet_sized_float32(kernel_path):
    """conv2 of the tutorial ConvNet (N=64 in the benchmark; 6 here), float32."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 32, 3, 3)).astype(np.float32)
    ct = rng.normal(size=(6, 64, 24, 24)).astype(np.float32)
    params = dict(in_spatial=(26, 26), strides=(1, 1), padding=((0, 0), (0, 0)),
                  dilation=(1, 1), groups=1)
    _check(ct, w, params, rtol=1e-4, atol=1e-4)


def test_non_contiguous_cotangent_and_mixed_layouts(kernel_path):
    rng = np.random.default_rng(4)
    w = rng.normal(size=(6, 3, 2, 3))
    params = dict(in_spatial=(7, 8), strides=(2, 1), padding=((1, 0), (1, 1)),
                  dilation=(1, 1), groups=2)
    big = rng.normal(size=(6, 4, 8, 3))  # (C_out, out1, N * 2, out0)
    ct = np.moveaxis(big, (0, 1, 2), (1, 3, 0))[::2]  # (4, 6, 3, 4), strided + transposed
    assert not ct.flags.c_contiguous
    _check(ct, w, params)
    _check(ct, np.asfortranarray(w), params)


def test_nan_and_infinity_in_the_cotangent(kernel_path):
    """A NaN or infinite cotangent reaches exactly the input cells its window covers."""
    rng = np.random.default_rng(5)
    w = rng.uniform(0.5, 1.0, size=(2, 2, 3))  # positive: no inf - inf
    ct = rng.normal(size=(2, 2, 6))
    ct[0, 0, 1], ct[1, 1, 4] = np.nan, np.inf
    params = dict(in_spatial=(8,), strides=(1,), padding=((0, 0),), dilation=(1,),
                  groups=1)
    got = _check(ct, w, params)
    assert np.isnan(got[0, :, 1:4]).all() and not np.isnan(np.delete(got[0], [1, 2, 3], 1)).any()
    assert np.isposinf(got[1, :, 4:7]).all() and np.isfinite(np.delete(got[1], [4, 5, 6], 1)).all()


def test_other_dtypes_stay_on_numpy(kernel_path):
    """complex (and mixed-precision) operands take the NumPy kernels on either path."""
    rng = np.random.default_rng(6)
    ct = rng.normal(size=(2, 4, 5)) + 1j * rng.normal(size=(2, 4, 5))
    w = rng.normal(size=(4, 3, 2)) - 1j * rng.normal(size=(4, 3, 2))
    params = dict(in_spatial=(6,), strides=(1,), padding=((0, 0),), dilation=(1,), groups=1)
    np.testing.assert_allclose(ct_ops._transpose_impl(np, ct, w, **params),
                               ct_ops._columns_kernel(np, ct, w, **params), rtol=1e-12)


def test_compiled_kernel_takes_float_operands_of_up_to_three_axes():
    pytest.importorskip("numba")
    f32, f64 = np.zeros((2, 3, 4, 4), np.float32), np.zeros((2, 3, 4, 4))
    w32, w64 = np.zeros((3, 1, 2, 2), np.float32), np.zeros((3, 1, 2, 2))
    pads = ((0, 0), (0, 0))
    with accel.forced(True):
        assert ct_ops._compiled(np, f32, w32, (5, 5), pads, 1)
        assert ct_ops._compiled(np, f64, w64, (5, 5), pads, 3)
        assert not ct_ops._compiled(np, f32, w64, (5, 5), pads, 1)
        assert not ct_ops._compiled(np, f32.astype(np.complex64), w32.astype(np.complex64),
                                    (5, 5), pads, 1)
        four = np.zeros((1, 3, 2, 2, 2, 2))
        assert not ct_ops._compiled(np, four, np.zeros((3, 1, 1, 1, 1, 1)), (2,) * 4,
                                    ((0, 0),) * 4, 1)
    with accel.forced(False):
        assert not ct_ops._compiled(np, f32, w32, (5, 5), pads, 1)


@pytest.mark.parametrize("strides", [(1, 1), (2, 1)])
def test_derivatives_on_the_compiled_path(strides):
    """float64 JVP/VJP checks (to second order) of ``conv_transpose`` and of ``conv``'s
    input gradient, which runs it, with every kernel compiled."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(7)
    w = fa.asarray(rng.normal(size=(4, 3, 2, 3)))
    x = fa.asarray(rng.normal(size=(2, 6, 5, 6)))
    kw = dict(stride=strides, padding=((1, 0), (1, 1)), dilation=(1, 2), groups=2)
    ct = fa.asarray(rng.normal(size=fa.conv(x, w, **kw).shape))
    params = dict(in_spatial=(5, 6), strides=strides, padding=((1, 0), (1, 1)),
                  dilation=(1, 2), groups=2)
    with accel.forced(True):
        check_grads(lambda c, v: ct_ops.conv_transpose.bind(c, v, **params), [ct, w], order=2)
        check_grads(lambda a, v: fa.grad(lambda b: fa.sum(fa.conv(b, v, **kw) * ct))(a),
                    [x, w], order=1)
