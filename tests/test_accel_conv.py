"""The compiled data movement of convolutions (``fnarray/backends/kernels/conv.py``):
im2col, col2im, the output swap with the fused bias and the output cotangent's
channel-major copy with its sums (the bias's cotangent), on the NumPy path and on the
compiled path (the ``kernel_path`` fixture), against each other and against references
built from NumPy slices; plus derivative checks of the convolution primitives on the
compiled path."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import fnarray as fa
from fnarray.backends import accel
from fnarray.ops import conv as C
from fnarray.ops import conv_winograd
from fnarray.testing import check_grads

# (input shape, weight shape, strides, padding, dilation, groups)
GEOMETRIES = [
    ((2, 3, 9), (4, 3, 3), (1,), ((0, 0),), (1,), 1),
    ((2, 2, 11), (2, 1, 2), (3,), ((2, 1),), (2,), 2),
    ((3, 2, 7, 6), (4, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 4, 8, 9), (6, 2, 2, 3), (2, 1), ((0, 2), (3, 0)), (1, 2), 2),
    ((1, 1, 5, 1), (2, 1, 3, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # size-1 axes
    ((0, 2, 6, 6), (3, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # no samples
    ((2, 1, 4, 4), (1, 1, 2, 2), (1, 1), ((4, 4), (1, 3)), (1, 1), 1),  # padding > kernel
    ((2, 2, 4, 5, 6), (2, 2, 2, 3, 2), (1, 2, 1), ((1, 0), (0, 1), (1, 1)), (2, 1, 1), 1),
]
IDS = ["1d", "1d-groups-stride-dil", "2d-same", "2d-mixed", "2d-size1", "2d-N0",
       "2d-wide-pad", "3d"]


def _geometry(g):
    x_shape, w_shape, strides, padding, dilation, groups = g
    return x_shape, w_shape, dict(strides=strides, padding=padding, dilation=dilation), groups


def _data(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _numpy_path(fn):
    with accel.forced(False):
        return np.asarray(fn())


def _reference_patches(x, kernel, strides, padding, dilation):
    """im2col from NumPy slices of the explicitly padded input, offset by offset."""
    xp = np.pad(x, ((0, 0), (0, 0), *padding))
    out = C.out_spatial(x.shape[2:], kernel, strides, padding, dilation)
    cols = np.empty((x.shape[1], *kernel, x.shape[0], *out), x.dtype)
    for offs in itertools.product(*(range(k) for k in kernel)):
        sl = tuple(slice(o * d, o * d + (m - 1) * s + 1, s)
                   for o, d, m, s in zip(offs, dilation, out, strides))
        cols[(slice(None), *offs)] = np.swapaxes(xp[(slice(None), slice(None), *sl)], 0, 1)
    return cols


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", GEOMETRIES, ids=IDS)
def test_patches_equal_reference(kernel_path, geom, dtype):
    x_shape, w_shape, p, _ = _geometry(geom)
    x = _data(x_shape, dtype)
    kernel = w_shape[2:]
    cols = np.asarray(C.conv_patches.bind(fa.asarray(x), kernel=kernel, **p))
    np.testing.assert_array_equal(cols, _reference_patches(x, kernel, **p))
    assert cols.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", GEOMETRIES, ids=IDS)
def test_patches_transpose_equal_numpy_path(kernel_path, geom, dtype):
    """col2im equals the NumPy path's strided adds exactly (same order of additions), and
    is the adjoint of im2col."""
    x_shape, w_shape, p, _ = _geometry(geom)
    kernel = w_shape[2:]
    out = C.out_spatial(x_shape[2:], kernel, p["strides"], p["padding"], p["dilation"])
    cols = _data((x_shape[1], *kernel, x_shape[0], *out), dtype, seed=1)

    def run():
        return C.conv_patches_transpose.bind(fa.asarray(cols), in_spatial=x_shape[2:],
                                             kernel=kernel, **p)
    got = np.asarray(run())
    np.testing.assert_array_equal(got, _numpy_path(run))
    assert got.shape == x_shape and got.dtype == dtype
    x = _data(x_shape, np.float64, seed=2)
    lhs = np.vdot(_reference_patches(x, kernel, **p), cols.astype(np.float64))
    np.testing.assert_allclose(lhs, np.vdot(x, got.astype(np.float64)), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", GEOMETRIES, ids=IDS)
def test_conv_bias_fused_exactly(kernel_path, geom, dtype):
    """The bias added in the output's layout pass equals adding it afterwards, bit for
    bit, and both paths agree."""
    x_shape, w_shape, p, groups = _geometry(geom)
    x, w = fa.asarray(_data(x_shape, dtype)), fa.asarray(_data(w_shape, dtype, seed=1))
    b = fa.asarray(_data(w_shape[:1], dtype, seed=2))

    def run():
        return C.conv.bind(x, w, b, groups=groups, **p)
    y = np.asarray(run())
    apart = C.conv.bind(x, w, groups=groups, **p) + fa.reshape(b, (-1,) + (1,) * (x.ndim - 2))
    np.testing.assert_array_equal(y, np.asarray(apart))
    np.testing.assert_array_equal(y, _numpy_path(run))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,groups", [((5, 6, 7, 3), 2), ((3, 4, 9), 1), ((0, 4, 3), 4),
                                          ((2, 1, 1, 1, 1), 1), ((64, 8, 12, 12), 1)])
def test_channel_major_equal_numpy_path(kernel_path, shape, groups, dtype):
    """The output cotangent's channel-major copy and its sums over samples: the copy is
    exact, and the sums add the samples in order, as ``ct.sum(axis=0)`` does."""
    ct = _data(shape, dtype)

    def run(array=ct):
        return C.conv_channel_major.bind(fa.asarray(array), groups=groups, sums=True)
    ctm, sums = (np.asarray(a) for a in run())
    n, o, rest = shape[0], shape[1], int(np.prod(shape[2:]))
    np.testing.assert_array_equal(ctm, np.swapaxes(ct.reshape(n, o, rest), 0, 1).reshape(
        groups, o // groups, n * rest))
    np.testing.assert_array_equal(sums, ct.sum(axis=0))
    with accel.forced(False):
        ref = [np.asarray(a) for a in run()]
    np.testing.assert_array_equal(sums, ref[1])
    wide = np.repeat(ct, 2, axis=-1)[..., ::2]  # a non-contiguous view of the same values
    np.testing.assert_array_equal(np.asarray(run(wide)[1]), ref[1])
    only = C.conv_channel_major.bind(fa.asarray(ct), groups=groups, sums=False)
    assert len(only) == 1
    np.testing.assert_array_equal(np.asarray(only[0]), ctm)


def test_bias_and_weight_gradients_equal_numpy_path(kernel_path):
    """Reverse mode through a convolution with bias: the weight's and the bias's
    cotangents on the compiled path equal the NumPy path's exactly."""
    x = fa.asarray(_data((6, 3, 11, 10), np.float32))
    w = fa.asarray(_data((8, 3, 3, 3), np.float32, seed=1))
    b = fa.asarray(_data((8,), np.float32, seed=2))

    def run():
        loss = lambda w, b: fa.sum(fa.conv(x, w, b, padding=1) ** 2)  # noqa: E731
        return fa.grad(loss, argnums=(0, 1))(w, b)
    with accel.forced(False):
        ref = [np.asarray(g) for g in run()]
    for got, want in zip(run(), ref):
        np.testing.assert_array_equal(np.asarray(got), want)


def test_noncontiguous_operands(kernel_path):
    """Strided and transposed inputs give what their contiguous copies give."""
    base = _data((3, 2, 10, 16), np.float32)
    w = fa.asarray(_data((4, 2, 3, 3), np.float32, seed=1))
    b = fa.asarray(_data((4,), np.float32, seed=2))
    for x in (base[..., ::2], np.swapaxes(_data((3, 2, 8, 10), np.float32), 2, 3)):
        y = fa.conv(fa.asarray(x), w, b, padding=1, stride=(1, 2))
        ref = fa.conv(fa.asarray(np.ascontiguousarray(x)), w, b, padding=1, stride=(1, 2))
        np.testing.assert_array_equal(np.asarray(y), np.asarray(ref))


def test_other_bias_dtype_is_promoted(kernel_path):
    """``fa.conv`` adds a bias of another dtype after the primitive, with promotion."""
    x = fa.asarray(_data((2, 3, 6, 6), np.float32))
    w = fa.asarray(_data((4, 3, 3, 3), np.float32, seed=1))
    b = _data((4,), np.float64, seed=2)
    y = fa.conv(x, w, fa.asarray(b))
    assert y.dtype == np.float64
    ref = np.asarray(fa.conv(x, w)).astype(np.float64) + b[:, None, None]
    np.testing.assert_array_equal(np.asarray(y), ref)


def test_bias_operand_errors():
    x = fa.asarray(_data((2, 3, 6, 6), np.float32))
    w = fa.asarray(_data((4, 3, 3, 3), np.float32, seed=1))
    params = dict(strides=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)
    with pytest.raises(ValueError, match=r"conv: the bias operand must have shape \(4,\) and "
                                         r"dtype float32.*got \(5,\) float32"):
        C.conv.bind(x, w, fa.zeros((5,), fa.float32), **params)
    with pytest.raises(ValueError, match=r"conv: the bias operand .* got \(4,\) float64"):
        C.conv.bind(x, w, fa.zeros((4,), fa.float64), **params)
    with pytest.raises(ValueError, match=r"conv: bias must have shape \(4,\)"):
        fa.conv(x, w, fa.zeros((3,), fa.float32))


@pytest.mark.parametrize("geom", [GEOMETRIES[i] for i in (1, 3, 7)], ids=["1d", "2d", "3d"])
def test_derivatives_on_compiled_path(geom):
    """Second-order forward and reverse derivatives of ``conv`` with its bias and of the
    im2col/col2im pair, every kernel compiled (float64)."""
    pytest.importorskip("numba")
    x_shape, w_shape, p, groups = _geometry(geom)
    x, w = _data(x_shape, np.float64), _data(w_shape, np.float64, seed=1)
    b = _data(w_shape[:1], np.float64, seed=2)
    kernel = w_shape[2:]
    cols = np.asarray(C.conv_patches.bind(fa.asarray(x), kernel=kernel, **p))
    with accel.forced(True):
        check_grads(lambda *a: C.conv.bind(*a, groups=groups, **p),
                    [fa.asarray(a) for a in (x, w, b)], order=2)
        check_grads(lambda *a: C.conv_columns.bind(*a, groups=groups),
                    [fa.asarray(a) for a in (cols, w, b)], order=2)
        check_grads(lambda a: C.conv_patches.bind(a, kernel=kernel, **p), [fa.asarray(x)],
                    order=1)
        check_grads(lambda a: C.conv_patches_transpose.bind(
            a, in_spatial=x_shape[2:], kernel=kernel, **p), [fa.asarray(cols)], order=1)
        ct = np.asarray(C.conv.bind(fa.asarray(x), fa.asarray(w), groups=groups, **p))
        for sums in (False, True):
            check_grads(lambda a: C.conv_channel_major.bind(a, groups=groups, sums=sums),
                        [fa.asarray(ct)], order=1)


def test_vmap_with_bias(kernel_path):
    """vmap over input, weight and bias together equals one convolution per example."""
    xs = _data((3, 2, 2, 7, 7), np.float64)
    ws = _data((3, 4, 2, 3, 3), np.float64, seed=1)
    bs = _data((3, 4), np.float64, seed=2)
    for axes in ((0, 0, 0), (0, None, None), (None, 0, 0), (0, None, 0), (None, None, 0),
                 (None, 0, None)):
        args = [a if ax is not None else a[0] for a, ax in zip((xs, ws, bs), axes)]
        y = fa.vmap(lambda x, w, b: fa.conv(x, w, b, padding=1), in_axes=axes)(
            *map(fa.asarray, args))
        for i in range(3):
            one = [a[i] if ax is not None else a for a, ax in zip(args, axes)]
            np.testing.assert_allclose(np.asarray(y[i]),
                                       np.asarray(fa.conv(*map(fa.asarray, one), padding=1)),
                                       rtol=1e-12, atol=1e-12)


def test_compiled_kernels_run_for_large_float_operands(monkeypatch):
    """Above the size threshold, ConvNet-sized operands take the compiled kernels (the
    NumPy path stays for other dtypes), with the NumPy path's results."""
    pytest.importorskip("numba")
    monkeypatch.setattr(accel, "_mode", "auto")  # whatever FNARRAY_ACCEL says
    # the im2col kernels (Winograd, which would take these channels, is tested on its own
    # in tests/test_conv_winograd.py and agrees only to float rounding)
    monkeypatch.setattr(conv_winograd, "_MIN_CHANNELS", 1 << 30)
    x = fa.asarray(_data((8, 8, 20, 20), np.float32))
    w = fa.asarray(_data((16, 8, 3, 3), np.float32, seed=1))
    b = fa.asarray(_data((16,), np.float32, seed=2))
    assert C._compiled(np, np.asarray(x), 1 << 20, 2) is not None
    assert C._compiled(np, np.asarray(x).astype(np.float16), 1 << 20, 2) is None
    assert C._compiled(np, np.asarray(x)[..., ::2], 1 << 20, 2) is None

    def run():
        return fa.conv(x, w, b, padding=1)
    with accel.forced(True):
        np.testing.assert_array_equal(np.asarray(run()), _numpy_path(run))
