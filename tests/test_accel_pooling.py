"""The compiled max pooling (``fnarray/backends/kernels/pooling.py``): ``max_pool`` and
``max_pool_scatter`` on the NumPy path and on the compiled path (the ``kernel_path``
fixture), bit for bit against each other and against the window-by-window references of
``tests/test_pooling_kernels.py``; ties (signed zeros included), NaN and infinities,
non-contiguous operands, 1-d and 3-d windows; derivative checks on the compiled path.

Each window geometry compiles its own kernels (about a second each), so the compiled path
runs a subset of the reference tests' geometries that reaches every branch: tiled, gapped,
overlapping and dilated windows, in 1-d, 2-d and 3-d."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fnarray as fa
from fnarray.backends import accel
from fnarray.ops import pooling
from fnarray.testing import check_grads
from tests.test_pooling_kernels import (GEOMETRIES, _cotangent, _out, _pool_ref,
                                        _scatter_ref, _values)

COMPILED_GEOMETRIES = ["tiled-2d", "gaps-2d", "overlap-2d", "dilated-2d", "1d-overlap",
                       "3d-mixed"]
RNG = np.random.default_rng(11)


def _params(geom):
    _, kernel, strides, dilation = GEOMETRIES[geom]
    return dict(kernel=kernel, strides=strides, dilation=dilation)


def _bits(a):
    """``a``'s bit patterns (signed zeros differ), with every NaN made the same."""
    a = np.where(np.isnan(a), np.nan, a).astype(a.dtype)
    return a.view(f"u{a.itemsize}")


def _pool(x, on: bool, **params):
    with accel.forced(on):
        return pooling._max_pool_impl(np, x, **params)


def _scatter(ct, taps, on: bool, **params):
    with accel.forced(on):
        return pooling._scatter_impl(np, ct, taps, **params)


def _tie_values(shape, dtype):
    """``_values`` with NaN and infinities, and half of its zeros negative: windows tie
    between -0.0 and +0.0, where the value is NumPy's running maximum's (the later)."""
    x = _values(shape, dtype, True)
    x[(x == 0) & (RNG.random(shape) < 0.5)] = -0.0
    return x


def _check_paths(x, **params):
    """The pooled values and taps of ``x`` on the current path equal the NumPy path's bit
    for bit and the window-by-window reference."""
    vals, taps = pooling._max_pool_impl(np, x, **params)
    ref_vals, ref_taps = _pool(x, False, **params)
    np.testing.assert_array_equal(_bits(vals), _bits(ref_vals))
    np.testing.assert_array_equal(taps, ref_taps)
    slow_vals, slow_taps = _pool_ref(x, **params)
    np.testing.assert_array_equal(vals, slow_vals)
    np.testing.assert_array_equal(taps, slow_taps)
    assert vals.dtype == x.dtype and taps.dtype == pooling.tap_dtype(params["kernel"])
    assert vals.flags.c_contiguous and taps.flags.c_contiguous


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", COMPILED_GEOMETRIES)
def test_max_pool_paths_agree(kernel_path, geom, dtype):
    spatial = GEOMETRIES[geom][0]
    _check_paths(_tie_values((2, 3, *spatial), dtype), **_params(geom))
    # without NaN: the one-pass kernel's results stand (no rerun with the NaN rule)
    _check_paths(_values((3, *spatial), dtype, False), **_params(geom))


@pytest.mark.parametrize("geom", ["tiled-2d", "overlap-2d", "3d-mixed"])
def test_max_pool_paths_agree_on_layouts_and_batch_axes(kernel_path, geom):
    spatial = GEOMETRIES[geom][0]
    params = _params(geom)
    big = _tie_values((2 * spatial[-1], 3, *spatial[:-1], 2), np.float32)
    view = np.moveaxis(big[::2], 0, -1)[..., 0, :]  # strided and transposed
    assert not view.flags.c_contiguous
    _check_paths(view, **params)
    _check_paths(_tie_values(spatial, np.float32), **params)  # no batch axes
    _check_paths(_tie_values((1, 2, 1, *spatial), np.float32), **params)  # size-1 axes


def test_max_pool_nan_rule_and_ties(kernel_path):
    x = np.array([[[1.0, 3.0, 3.0, 0.0], [3.0, np.nan, 2.0, 3.0],
                   [-np.inf, -np.inf, np.nan, 1.0], [-np.inf, -np.inf, 1.0, np.nan]],
                  [[-0.0, 0.0, 0.0, -0.0], [0.0, -0.0, -0.0, 0.0],
                   [np.nan, 5.0, 5.0, 5.0], [np.nan, 5.0, np.inf, 5.0]]])
    params = dict(kernel=(2, 2), strides=(2, 2), dilation=(1, 1))
    vals, taps = pooling._max_pool_impl(np, x, **params)
    np.testing.assert_array_equal(vals, [[[np.nan, 3.0], [-np.inf, np.nan]],
                                         [[0.0, 0.0], [np.nan, np.inf]]])
    np.testing.assert_array_equal(taps, [[[3, 0], [0, 3]], [[0, 0], [2, 2]]])
    # ties: the first zero's tap, the last zero's sign (NumPy's running maximum)
    np.testing.assert_array_equal(np.signbit(vals[1, 0]), [True, False])
    _check_paths(x, **params)


def test_max_pool_large_kernel_int32_taps(kernel_path):
    _check_paths(_tie_values((2, 18, 18), np.float32), kernel=(17, 17), strides=(1, 1),
                 dilation=(1, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", COMPILED_GEOMETRIES)
def test_max_pool_scatter_paths_agree(kernel_path, geom, dtype):
    """The compiled scatter adds overlapping windows' cotangents in the NumPy kernel's
    order (ascending kernel offset per cell): equal bit for bit.  Infinite and NaN
    cotangents reach their taps only; taps outside the kernel reach no cell."""
    spatial = GEOMETRIES[geom][0]
    params = dict(_params(geom), spatial=spatial)
    out = _out(spatial, params["kernel"], params["strides"], params["dilation"])
    ct = _cotangent((3, 2, *out), dtype)
    size = math.prod(params["kernel"])
    taps = RNG.integers(0, size, ct.shape).astype(np.uint8)
    taps[0, 0].flat[0] = size  # no such offset
    ref = _scatter(ct, taps, False, **params)
    for c, t in [(ct, taps), (np.asfortranarray(ct), np.asfortranarray(taps))]:
        gx = pooling._scatter_impl(np, c, t, **params)
        assert gx.dtype == ct.dtype and gx.shape == ref.shape and gx.flags.c_contiguous
        np.testing.assert_array_equal(_bits(gx), _bits(ref))
    valid_ct, valid_taps = ct.copy(), taps.copy()  # the reference: the lost cotangent as 0
    valid_ct[0, 0].flat[0] = valid_taps[0, 0].flat[0] = 0
    np.testing.assert_allclose(ref, _scatter_ref(valid_ct, valid_taps, **params), rtol=1e-6,
                               atol=1e-6)


def test_max_pool_scatter_int32_taps_and_signed_zeros(kernel_path):
    params = dict(kernel=(17, 17), strides=(1, 1), dilation=(1, 1), spatial=(18, 18))
    ct = _cotangent((2, 2, 2), np.float64)
    ct[0, 0, 0] = -0.0  # overlapping windows: added to +0, so +0 as on the NumPy path
    taps = RNG.integers(0, 17 * 17, ct.shape).astype(np.int32)
    np.testing.assert_array_equal(_bits(pooling._scatter_impl(np, ct, taps, **params)),
                                  _bits(_scatter(ct, taps, False, **params)))
    params = dict(kernel=(2, 2), strides=(2, 2), dilation=(1, 1), spatial=(4, 4))
    ct = np.array([[[-0.0, 1.0], [np.inf, -0.0]]])  # tiled: written, so -0.0 stays
    taps = np.array([[[3, 0], [1, 2]]], np.uint8)
    gx = pooling._scatter_impl(np, ct, taps, **params)
    np.testing.assert_array_equal(_bits(gx), _bits(_scatter(ct, taps, False, **params)))
    assert np.signbit(gx[0, 1, 1]) and np.signbit(gx[0, 3, 2])


def test_max_pool_through_functional_with_padding(kernel_path):
    """``fa.max_pool`` pads with -inf before the primitive; with its backward pass."""
    x = fa.asarray(_values((2, 3, 9, 8), np.float32, False))

    def loss(a):
        return fa.sum(fa.max_pool(a, 3, stride=2, padding=1) * 1.5)
    value, grad = fa.value_and_grad(loss)(x)
    with accel.forced(False):
        ref_value, ref_grad = fa.value_and_grad(loss)(x)
    np.testing.assert_array_equal(np.asarray(value), np.asarray(ref_value))
    np.testing.assert_array_equal(np.asarray(grad), np.asarray(ref_grad))


@pytest.mark.parametrize("geom", ["overlap-2d", "1d-overlap", "3d-mixed"])
def test_max_pool_derivatives_on_compiled_path(geom):
    pytest.importorskip("numba")
    spatial = GEOMETRIES[geom][0]
    params = _params(geom)
    x = RNG.permutation(2 * math.prod(spatial)).reshape(2, *spatial) * 0.1  # no ties
    out = _out(spatial, params["kernel"], params["strides"], params["dilation"])
    ct = RNG.normal(size=(2, *out))
    _, taps = pooling.max_pool.bind(fa.asarray(x), **params)
    with accel.forced(True):
        check_grads(lambda a: pooling.max_pool.bind(a, **params)[0], [fa.asarray(x)],
                    order=2)
        check_grads(lambda c: pooling.max_pool_scatter.bind(c, taps, spatial=spatial,
                                                            **params),
                    [fa.asarray(ct)], order=2)


def test_compiled_kernels_take_large_float_operands_only(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(accel, "_mode", "auto")  # whatever FNARRAY_ACCEL says
    k = (2, 2)
    assert pooling._compiled(np, np.dtype(np.float32), k, 1 << 20) is not None
    assert pooling._compiled(np, np.dtype(np.float64), (2, 2, 2), 1 << 20) is not None
    assert pooling._compiled(np, np.dtype(np.float16), k, 1 << 20) is None
    assert pooling._compiled(np, np.dtype(np.int32), k, 1 << 20) is None
    assert pooling._compiled(np, np.dtype(np.float32), (2, 2, 2, 2), 1 << 20) is None
    assert pooling._compiled(np, np.dtype(np.float32), k, 10) is None
    with accel.forced(False):
        assert pooling._compiled(np, np.dtype(np.float32), k, 1 << 20) is None
