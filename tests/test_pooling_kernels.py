"""The ``max_pool`` / ``max_pool_scatter`` kernels against a window-by-window reference:
tiled, gapped, overlapping and dilated windows in 1-d, 2-d and 3-d, ties, NaN, infinities,
integer, bool and bfloat16 inputs, non-contiguous operands and empty batches."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import fnarray as fa
from fnarray.ops import pooling

RNG = np.random.default_rng(7)

# (spatial, kernel, strides, dilation): what the kernels branch on
GEOMETRIES = {
    "tiled-2d": ((6, 8), (2, 2), (2, 2), (1, 1)),
    "tiled-uneven-2d": ((6, 9), (3, 3), (3, 3), (1, 1)),
    "gaps-2d": ((8, 7), (2, 2), (3, 3), (1, 1)),
    "overlap-2d": ((7, 6), (3, 3), (2, 1), (1, 1)),
    "dilated-2d": ((9, 8), (2, 3), (1, 2), (2, 2)),
    "dilated-tiled-rows": ((8, 6), (2, 1), (2, 2), (1, 3)),
    "1d": ((10,), (3,), (3,), (1,)),
    "1d-overlap": ((9,), (4,), (1,), (2,)),
    "3d": ((4, 4, 6), (2, 2, 2), (2, 2, 2), (1, 1, 1)),
    "3d-mixed": ((5, 3, 6), (3, 1, 2), (1, 2, 2), (1, 1, 2)),
}


def _out(spatial, kernel, strides, dilation):
    return tuple((n - d * (k - 1) - 1) // s + 1
                 for n, k, s, d in zip(spatial, kernel, strides, dilation))


def _cells(o, kernel, strides, dilation):
    """Row-major ``(tap, grid index)`` of window ``o``'s cells."""
    for t, r in enumerate(itertools.product(*map(range, kernel))):
        yield t, tuple(i * s + a * d for i, s, a, d in zip(o, strides, r, dilation))


def _pool_ref(x, kernel, strides, dilation):
    """Value and tap per window: the first maximum in row-major order; a window holding NaN
    has value NaN and tap at its last NaN."""
    nd = len(kernel)
    out = _out(x.shape[-nd:], kernel, strides, dilation)
    vals = np.zeros(x.shape[:-nd] + out, x.dtype)
    taps = np.zeros(x.shape[:-nd] + out, np.int64)
    for lead in np.ndindex(*x.shape[:-nd]):
        for o in np.ndindex(*out):
            best = tap = None
            for t, cell in _cells(o, kernel, strides, dilation):
                v = x[lead + cell]
                nan = np.isnan(v) if x.dtype.kind in "fV" else False
                if best is None or nan or (not np.isnan(best) if x.dtype.kind in "fV"
                                           else True) and v > best:
                    best, tap = v, t
            vals[lead + o], taps[lead + o] = best, tap
    return vals, taps


def _scatter_ref(ct, taps, spatial, kernel, strides, dilation):
    nd = len(kernel)
    gx = np.zeros(ct.shape[:-nd] + tuple(spatial), np.result_type(ct.dtype, np.float64))
    for lead in np.ndindex(*ct.shape[:-nd]):
        for o in np.ndindex(*ct.shape[-nd:]):
            cell = dict(_cells(o, kernel, strides, dilation))[taps[lead + o]]
            gx[lead + cell] += ct[lead + o]
    return gx


def _values(shape, dtype, specials):
    """Small integers (many ties) with some NaN / +-inf cells."""
    x = RNG.integers(-2, 3, shape).astype(np.float64)
    if specials:
        x[RNG.random(shape) < 0.08] = np.nan
        x[RNG.random(shape) < 0.08] = -np.inf
        x[RNG.random(shape) < 0.03] = np.inf
    return x.astype(dtype)


def _check_pool(x, kernel, strides, dilation):
    vals, taps = pooling._max_pool_impl(np, x, kernel=kernel, strides=strides,
                                        dilation=dilation)
    ref_vals, ref_taps = _pool_ref(x, kernel, strides, dilation)
    np.testing.assert_array_equal(vals.astype(np.float64), ref_vals.astype(np.float64))
    np.testing.assert_array_equal(taps, ref_taps)
    assert vals.dtype == x.dtype and taps.dtype == pooling.tap_dtype(kernel)
    assert vals.flags.c_contiguous and taps.flags.c_contiguous
    assert not np.shares_memory(vals, x)


@pytest.mark.parametrize("geom", GEOMETRIES)
@pytest.mark.parametrize("dtype, specials", [(np.float32, True), (np.float64, True),
                                             (np.int32, False), (np.uint8, False)])
def test_max_pool_kernel_matches_reference(geom, dtype, specials):
    spatial, kernel, strides, dilation = GEOMETRIES[geom]
    _check_pool(_values((2, 3, *spatial), dtype, specials), kernel, strides, dilation)


@pytest.mark.parametrize("geom", ["tiled-2d", "overlap-2d", "3d-mixed"])
def test_max_pool_kernel_bool_bfloat16_and_non_contiguous(geom):
    spatial, kernel, strides, dilation = GEOMETRIES[geom]
    _check_pool(RNG.random((2, *spatial)) < 0.3, kernel, strides, dilation)
    # a strided, transposed view: the kernels copy each window offset, whatever the layout
    big = _values((2 * spatial[-1], 3, *spatial[:-1], 2), np.float32, True)
    view = np.moveaxis(big[::2], 0, -1)[..., 0, :]
    assert not view.flags.c_contiguous
    _check_pool(view, kernel, strides, dilation)
    ml_dtypes = pytest.importorskip("ml_dtypes")
    _check_pool(_values((2, *spatial), ml_dtypes.bfloat16, True), kernel, strides, dilation)


def test_max_pool_kernel_nan_tap_is_last_nan_and_ties_first():
    x = np.array([[[1.0, 3.0, 3.0, 0.0], [3.0, np.nan, 2.0, 3.0],
                   [-np.inf, -np.inf, np.nan, 1.0], [-np.inf, -np.inf, 1.0, np.nan]]])
    vals, taps = pooling._max_pool_impl(np, x, kernel=(2, 2), strides=(2, 2),
                                        dilation=(1, 1))
    np.testing.assert_array_equal(vals, [[[np.nan, 3.0], [-np.inf, np.nan]]])
    np.testing.assert_array_equal(taps, [[[3, 0], [0, 3]]])
    x = np.array([[2.0, 7.0, 7.0, 1.0, 7.0]])  # stride 1: ties keep the first maximum
    np.testing.assert_array_equal(pooling._max_pool_impl(
        np, x, kernel=(3,), strides=(1,), dilation=(1,))[1], [[1, 0, 0]])


def test_max_pool_kernel_large_kernel_uses_int32_taps():
    x = _values((1, 18, 18), np.float32, False)
    _check_pool(x, (17, 17), (1, 1), (1, 1))


def _cotangent(shape, dtype):
    """Normal values with some infinities and NaN: each must reach its window's tap only
    (never ``inf * 0 = NaN`` over the rest of the window)."""
    ct = RNG.normal(size=shape)
    ct[RNG.random(shape) < 0.05] = np.inf
    ct[RNG.random(shape) < 0.05] = -np.inf
    ct[RNG.random(shape) < 0.05] = np.nan
    if np.dtype(dtype).kind == "c":
        ct = ct + 1j * RNG.normal(size=shape)
    return ct.astype(dtype)


@pytest.mark.parametrize("geom", GEOMETRIES)
def test_max_pool_scatter_kernel_matches_reference(geom):
    spatial, kernel, strides, dilation = GEOMETRIES[geom]
    out = _out(spatial, kernel, strides, dilation)
    ct = _cotangent((3, 2, *out), np.float32)
    taps = RNG.integers(0, math.prod(kernel), ct.shape).astype(np.uint8)
    params = dict(spatial=spatial, kernel=kernel, strides=strides, dilation=dilation)
    ref = _scatter_ref(ct, taps, **params)
    for c, t in [(ct, taps), (np.asfortranarray(ct), np.asfortranarray(taps))]:
        gx = pooling._scatter_impl(np, c, t, **params)
        assert gx.dtype == ct.dtype and gx.shape == ref.shape and gx.flags.c_contiguous
        np.testing.assert_allclose(gx, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.complex64, np.complex128,
                                   "bfloat16"])
@pytest.mark.parametrize("geom", ["tiled-2d", "overlap-2d"])
def test_max_pool_scatter_kernel_dtypes(dtype, geom):
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    spatial, kernel, strides, dilation = GEOMETRIES[geom]
    ct = _cotangent((2, *_out(spatial, kernel, strides, dilation)), dtype)
    taps = RNG.integers(0, math.prod(kernel), ct.shape).astype(np.uint8)
    params = dict(spatial=spatial, kernel=kernel, strides=strides, dilation=dilation)
    gx = pooling._scatter_impl(np, ct, taps, **params)
    assert gx.dtype == ct.dtype
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    ref = _scatter_ref(ct.astype(wide), taps, **params)
    if geom == "tiled-2d":  # one write per cell: exact
        np.testing.assert_array_equal(gx.astype(wide), ref)
    else:  # overlapping windows add up in the kernel's precision
        real_bytes = np.dtype(dtype).itemsize // (2 if np.dtype(dtype).kind == "c" else 1)
        rtol = {2: 1e-2, 4: 1e-6, 8: 1e-12}[real_bytes]
        np.testing.assert_allclose(gx.astype(wide), ref, rtol=rtol, atol=rtol)


def test_max_pool_primitives_empty_and_through_bind():
    params = dict(kernel=(2, 2), strides=(2, 2), dilation=(1, 1))
    vals, taps = pooling.max_pool.bind(fa.zeros((0, 3, 4, 4)), **params)
    assert vals.shape == taps.shape == (0, 3, 2, 2)
    gx = pooling.max_pool_scatter.bind(vals, taps, spatial=(4, 4), **params)
    assert gx.shape == (0, 3, 4, 4)
    x = _values((2, 2, 4, 6), np.float32, True)
    vals, taps = pooling.max_pool.bind(fa.asarray(x), **params)
    ref_vals, ref_taps = _pool_ref(x, **params)
    np.testing.assert_array_equal(np.asarray(vals), ref_vals)
    np.testing.assert_array_equal(np.asarray(taps), ref_taps)
    ct = np.ones(ref_vals.shape, np.float32)
    gx = pooling.max_pool_scatter.bind(fa.asarray(ct), taps, spatial=(4, 6), **params)
    np.testing.assert_array_equal(np.asarray(gx), _scatter_ref(ct, ref_taps, (4, 6), **params))


@pytest.mark.parametrize("geom", ["tiled-2d", "overlap-2d", "dilated-2d", "3d-mixed"])
@pytest.mark.parametrize("fraction", [2.5, 1.5, 0.5])
def test_max_pool_kernels_in_cache_blocks(geom, fraction, monkeypatch):
    """Operands larger than a block run block by block over the leading axes: slices of
    the first axis, slices of the second under each index of the first, single grids."""
    spatial, kernel, strides, dilation = GEOMETRIES[geom]
    x = _values((3, 2, *spatial), np.float32, True)
    grid = math.prod(spatial) * x.itemsize
    monkeypatch.setattr(pooling, "BLOCK_BYTES", int(fraction * grid))
    _check_pool(x, kernel, strides, dilation)
    _check_pool(x[0, 0], kernel, strides, dilation)  # no leading axes: one block
    _check_pool(_values(x.shape, np.uint8, False), kernel, strides, dilation)
    _check_pool(RNG.random(x.shape) < 0.3, kernel, strides, dilation)
    vals, taps = _pool_ref(x, kernel, strides, dilation)
    ct = _cotangent(vals.shape, np.float32)
    params = dict(spatial=spatial, kernel=kernel, strides=strides, dilation=dilation)
    gx = pooling._scatter_impl(np, ct, taps.astype(np.uint8), **params)
    np.testing.assert_allclose(gx, _scatter_ref(ct, taps, **params), rtol=1e-6, atol=1e-6)


def test_blocks_cover_the_leading_axes(monkeypatch):
    monkeypatch.setattr(pooling, "BLOCK_BYTES", 600)
    assert list(pooling._blocks((3, 2), 100)) == [()]
    monkeypatch.setattr(pooling, "BLOCK_BYTES", 450)
    assert list(pooling._blocks((3, 2), 100)) == [(slice(0, 2),), (slice(2, 4),)]
    monkeypatch.setattr(pooling, "BLOCK_BYTES", 150)
    assert list(pooling._blocks((3, 2), 100)) == [(i, slice(j, j + 1))
                                                  for i in range(3) for j in range(2)]
    monkeypatch.setattr(pooling, "BLOCK_BYTES", 50)
    assert list(pooling._blocks((3, 2), 100)) == list(np.ndindex(3, 2))
