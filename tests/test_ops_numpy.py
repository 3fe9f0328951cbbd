"""The NumPy / Array-API namespace against NumPy: values, shapes, dtypes and promotion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fnarray as fa

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
NONEMPTY = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def arrays(shape=SHAPES, dtype=np.float64, lo=-3, hi=3):
    return hnp.arrays(dtype, shape, elements=st.integers(lo, hi).map(lambda v: dtype(v) / 2
                                                                     if np.dtype(dtype).kind == "f"
                                                                     else dtype(v)))


def same(got, expected, exact_dtype=True, tol=1e-12):
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if exact_dtype:
        assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol, equal_nan=True)


# --- promotion -------------------------------------------------------------------------------

def test_weak_python_scalars_do_not_widen():
    x32 = fa.ones(3, dtype=fa.float32)
    assert (x32 * 2.0).dtype == fa.float32
    assert (2.0 * x32).dtype == fa.float32
    assert (x32 + 1).dtype == fa.float32
    assert (fa.ones(3, dtype=fa.int32) + 1.5).dtype == fa.float32
    assert (fa.ones(3, dtype=fa.int64) + 1.5).dtype == fa.float32
    assert (fa.ones(3, dtype=fa.int8) + 1).dtype == fa.int8
    assert (fa.ones(3, dtype=fa.float16) * 3.0).dtype == fa.float16
    assert (fa.ones(3, dtype=fa.float64) * 2.0).dtype == fa.float64
    assert (x32 * 1j).dtype == fa.complex64
    assert fa.asarray(2.0).dtype == fa.float32
    assert fa.asarray(2).dtype == fa.int64
    # NumPy scalars are weak next to an array, like Python scalars (API.md promotion)
    assert (x32 * np.float64(2.0)).dtype == fa.float32
    assert (fa.ones(2, dtype=fa.float64) / np.float64(2.0)).dtype == fa.float64
    assert (fa.ones(2, dtype=fa.float64) + np.float32(1.0)).dtype == fa.float64


_DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
           np.float16, np.float32, np.float64, np.complex64, np.complex128]


@pytest.mark.parametrize("a", _DTYPES)
@pytest.mark.parametrize("b", _DTYPES)
def test_array_promotion_table(a, b):
    if {np.dtype(a).kind, np.dtype(b).kind} == {"i", "u"} and max(
            np.dtype(a).itemsize, np.dtype(b).itemsize) == 8:
        pytest.skip("int64/uint64 mixes are implementation-defined in the Array API")
    got = (fa.ones(2, dtype=a) + fa.ones(2, dtype=b)).dtype
    ka, kb = np.dtype(a).kind in "fc", np.dtype(b).kind in "fc"
    if ka != kb:  # JAX's lattice across kinds: the inexact operand's dtype wins
        assert got == (a if ka else b)
    else:
        assert got == np.promote_types(a, b)


@given(arrays(), st.sampled_from([np.float32, np.float64, np.int32, np.int64]))
def test_astype(x, dt):
    same(fa.asarray(x).astype(dt), x.astype(dt))


# --- creation --------------------------------------------------------------------------------

def test_creation_functions():
    same(fa.zeros((2, 3)), np.zeros((2, 3), np.float32))
    same(fa.ones(4, dtype=fa.int32), np.ones(4, np.int32))
    same(fa.full((2,), 7), np.full((2,), 7, np.int64))
    same(fa.full((2,), 1.5, dtype=fa.float64), np.full((2,), 1.5))
    same(fa.arange(5), np.arange(5))
    same(fa.arange(1, 2, 0.25), np.arange(1, 2, 0.25, dtype=np.float32))
    same(fa.linspace(0, 1, 5), np.linspace(0, 1, 5, dtype=np.float32))
    same(fa.eye(3, 4, k=1), np.eye(3, 4, 1, dtype=np.float32))
    same(fa.zeros_like(fa.ones((2, 2), dtype=fa.int8)), np.zeros((2, 2), np.int8))
    same(fa.ones_like(fa.zeros(3)), np.ones(3, np.float32))
    same(fa.full_like(fa.zeros(3), 2.0), np.full(3, 2.0, np.float32))
    x = np.arange(12.0).reshape(3, 4)
    same(fa.tril(fa.asarray(x), -1), np.tril(x, -1))
    same(fa.triu(fa.asarray(x), 1), np.triu(x, 1))
    same(fa.diag(fa.asarray(np.arange(3.0)), 1), np.diag(np.arange(3.0), 1))
    same(fa.diag(fa.asarray(x)), np.diag(x))
    for got, exp in zip(fa.meshgrid(fa.arange(3), fa.arange(2)), np.meshgrid(np.arange(3), np.arange(2))):
        same(got, exp)
    for got, exp in zip(fa.meshgrid(fa.arange(3), fa.arange(2), indexing="ij"),
                        np.meshgrid(np.arange(3), np.arange(2), indexing="ij")):
        same(got, exp)


# --- elementwise and reductions --------------------------------------------------------------

_UNARY = ["sin", "cos", "tanh", "exp", "abs", "negative", "square", "sign", "floor", "ceil",
          "expm1", "arctan", "sinh"]


@pytest.mark.parametrize("name", _UNARY)
@given(x=arrays())
def test_unary_elementwise(name, x):
    same(getattr(fa, name)(fa.asarray(x)), getattr(np, name)(x))


_BINARY = ["add", "subtract", "multiply", "maximum", "minimum", "arctan2", "hypot", "equal",
           "less", "greater_equal", "logaddexp"]


@pytest.mark.parametrize("name", _BINARY)
@given(data=st.data())
def test_binary_elementwise_broadcasts(name, data):
    s1, s2 = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3,
                                                         max_side=3)).input_shapes
    x, y = data.draw(arrays(s1)), data.draw(arrays(s2))
    same(getattr(fa, name)(fa.asarray(x), fa.asarray(y)), getattr(np, name)(x, y))


@given(arrays(), arrays(st.just(())))
def test_division_and_powers(x, y):
    fx, fy = fa.asarray(x), fa.asarray(y)
    same(fx / (np.abs(y) + 1), x / (np.abs(y) + 1))
    same(fx / (fa.abs(fy) + 1), x / (np.abs(y) + 1))
    same(fa.abs(fx) ** 1.5, np.abs(x) ** 1.5)
    same(fa.floor_divide(fx, 0.75), np.floor_divide(x, 0.75))
    same(fa.remainder(fx, -0.75), np.remainder(x, -0.75))


@given(arrays(), st.floats(-1, 0), st.floats(0, 1))
def test_clip_and_where(x, lo, hi):
    fx = fa.asarray(x)
    same(fa.clip(fx, lo, hi), np.clip(x, lo, hi))
    same(fa.clip(fx, max=hi), np.minimum(x, hi))
    same(fa.where(fx > 0, fx, -1.0), np.where(x > 0, x, -1.0))


def _axis_and_keepdims(ndim):
    single = st.integers(-ndim, ndim - 1) if ndim else st.none()
    multi = st.lists(st.integers(0, ndim - 1), unique=True).map(tuple) if ndim else st.none()
    return st.tuples(st.none() | single | multi, st.booleans())


_REDUCTIONS = ["sum", "prod", "mean", "max", "min", "all", "any"]


@pytest.mark.parametrize("name", _REDUCTIONS)
@given(data=st.data())
def test_reductions_with_axis_and_keepdims(name, data):
    shape = data.draw(NONEMPTY if name in ("max", "min") else SHAPES)
    x = data.draw(arrays(shape))
    axis, keepdims = data.draw(_axis_and_keepdims(x.ndim))
    got = getattr(fa, name)(fa.asarray(x), axis=axis, keepdims=keepdims)
    same(got, getattr(np, name)(x, axis=axis, keepdims=keepdims))


@given(data=st.data())
def test_integer_sums_accumulate_in_int64(data):
    x = data.draw(arrays(SHAPES, np.int32))
    same(fa.sum(fa.asarray(x)), np.sum(x, dtype=np.int64))
    same(fa.mean(fa.asarray(x)).astype(fa.float64), np.mean(x) if x.size else np.nan, tol=1e-6)


@pytest.mark.parametrize("name", ["var", "std"])
@given(data=st.data())
def test_var_std_with_correction(name, data):
    x = data.draw(arrays(NONEMPTY))
    axis, keepdims = data.draw(_axis_and_keepdims(x.ndim))
    correction = data.draw(st.sampled_from([0, 1]))
    n = x.size if axis is None else int(np.prod([x.shape[a] for a in np.atleast_1d(axis)]))
    if n - correction <= 0:
        return
    got = getattr(fa, name)(fa.asarray(x), axis=axis, keepdims=keepdims, correction=correction)
    same(got, getattr(np, name)(x, axis=axis, keepdims=keepdims, ddof=correction))


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(data=st.data())
def test_argmax_argmin(name, data):
    x = data.draw(arrays(NONEMPTY))
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    keepdims = data.draw(st.booleans())
    same(getattr(fa, name)(fa.asarray(x), axis=axis, keepdims=keepdims),
         getattr(np, name)(x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@given(data=st.data())
def test_cumulative(name, data):
    x = data.draw(arrays(NONEMPTY))
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    same(getattr(fa, name)(fa.asarray(x), axis=axis), getattr(np, name)(x, axis=axis))


@given(data=st.data())
def test_logsumexp(data):
    x = data.draw(arrays(NONEMPTY, lo=-1000, hi=1000))
    axis, keepdims = data.draw(_axis_and_keepdims(x.ndim))
    m = np.max(x, axis=axis, keepdims=True)
    expected = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        expected = np.squeeze(expected, axis=axis) if axis is not None else expected.reshape(())
    same(fa.logsumexp(fa.asarray(x), axis=axis, keepdims=keepdims), expected, tol=1e-10)


# --- manipulation ----------------------------------------------------------------------------

@given(data=st.data())
def test_reshape_transpose_moveaxis_squeeze_expand(data):
    x = data.draw(arrays())
    fx = fa.asarray(x)
    same(fa.reshape(fx, (-1,)), x.reshape(-1))
    if x.ndim and x.size:
        same(fa.reshape(fx, (x.shape[0], -1)), x.reshape(x.shape[0], -1))
    perm = tuple(data.draw(st.permutations(range(x.ndim))))
    same(fa.transpose(fx, perm), np.transpose(x, perm))
    same(fx.T, x.T)
    if x.ndim:
        src = data.draw(st.integers(-x.ndim, x.ndim - 1))
        dst = data.draw(st.integers(-x.ndim, x.ndim - 1))
        same(fa.moveaxis(fx, src, dst), np.moveaxis(x, src, dst))
    same(fa.squeeze(fx), np.squeeze(x))
    ax = data.draw(st.integers(-x.ndim - 1, x.ndim))
    same(fa.expand_dims(fx, ax), np.expand_dims(x, ax))


@given(data=st.data())
def test_joins_and_splits(data):
    shape = data.draw(NONEMPTY)
    xs = [data.draw(arrays(shape)) for _ in range(data.draw(st.integers(1, 3)))]
    fxs = [fa.asarray(x) for x in xs]
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    same(fa.concatenate(fxs, axis=axis), np.concatenate(xs, axis=axis))
    same(fa.stack(fxs, axis=axis), np.stack(xs, axis=axis))
    for fn in ("hstack", "vstack", "dstack"):
        same(getattr(fa, fn)(fxs), getattr(np, fn)(xs))
    n = shape[axis]
    sections = data.draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
    for got, exp in zip(fa.split(fxs[0], sections, axis=axis), np.split(xs[0], sections, axis=axis)):
        same(got, exp)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3)))
    got = fa.split(fxs[0], cuts, axis=axis)
    exp = np.split(xs[0], cuts, axis=axis)
    assert len(got) == len(exp)
    for g, e in zip(got, exp):
        same(g, e)


@given(data=st.data())
def test_flip_roll_tile_repeat(data):
    x = data.draw(arrays(NONEMPTY))
    fx = fa.asarray(x)
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    same(fa.flip(fx, axis=axis), np.flip(x, axis=axis))
    shift = data.draw(st.integers(-5, 5))
    same(fa.roll(fx, shift, axis=axis), np.roll(x, shift, axis=axis))
    reps = tuple(data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=4)))
    same(fa.tile(fx, reps), np.tile(x, reps))
    r = data.draw(st.integers(0, 3))
    same(fa.repeat(fx, r, axis=axis), np.repeat(x, r, axis=axis))
    if axis is not None:
        counts = data.draw(st.lists(st.integers(0, 2), min_size=x.shape[axis],
                                    max_size=x.shape[axis]))
        same(fa.repeat(fx, counts, axis=axis), np.repeat(x, counts, axis=axis))


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
@given(data=st.data())
def test_pad_modes(mode, data):
    x = data.draw(arrays(NONEMPTY))
    width = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in x.shape)
    if mode == "reflect" and any(n == 1 and (lo or hi) for n, (lo, hi) in zip(x.shape, width)):
        width = tuple((0, 0) if n == 1 else w for n, w in zip(x.shape, width))
    kw = {"constant_values": 1.5} if mode == "constant" else {}
    same(fa.pad(fa.asarray(x), width, mode=mode, **kw), np.pad(x, width, mode=mode, **kw))


# --- indexing --------------------------------------------------------------------------------

def _basic_index(shape):
    def one(n):
        return (st.integers(-n, n - 1) if n else st.nothing()) | st.builds(
            slice, st.none() | st.integers(-n - 1, n + 1), st.none() | st.integers(-n - 1, n + 1),
            st.none() | st.sampled_from([-3, -2, -1, 1, 2, 3]))
    parts = [one(n) for n in shape]
    return st.tuples(*parts).flatmap(lambda t: st.sampled_from([
        t, (None,) + t, t[:1] + (Ellipsis,), (Ellipsis,) + t[1:], t + (None,)]))


@given(data=st.data())
def test_basic_indexing(data):
    x = data.draw(arrays(NONEMPTY))
    key = data.draw(_basic_index(x.shape))
    same(fa.asarray(x)[key], x[key])


@given(data=st.data())
def test_integer_array_indexing_follows_numpy_placement(data):
    x = data.draw(arrays(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=3)))
    nd = x.ndim
    positions = sorted(data.draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd,
                                          unique=True)))
    ishape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    key = []
    for d in range(nd):
        if d in positions:
            n = x.shape[d]
            key.append(data.draw(hnp.arrays(np.int64, ishape, elements=st.integers(-n, n - 1))))
        else:
            key.append(data.draw(st.sampled_from([slice(None), slice(None, None, -1), slice(1, None)])))
    key = tuple(key)
    fkey = tuple(fa.asarray(k) if isinstance(k, np.ndarray) else k for k in key)
    same(fa.asarray(x)[fkey], x[key])


@given(data=st.data())
def test_boolean_mask_indexing(data):
    x = data.draw(arrays(NONEMPTY))
    mask = data.draw(hnp.arrays(np.bool_, x.shape))
    same(fa.asarray(x)[fa.asarray(mask)], x[mask])
    row_mask = data.draw(hnp.arrays(np.bool_, x.shape[:1]))
    same(fa.asarray(x)[fa.asarray(row_mask)], x[row_mask])


@given(data=st.data())
def test_at_updates(data):
    x = data.draw(arrays(NONEMPTY))
    n = x.shape[0]
    idx = data.draw(hnp.arrays(np.int64, st.integers(0, 5), elements=st.integers(-n, n - 1)))
    v = data.draw(arrays(idx.shape + x.shape[1:]))
    fx, fidx, fv = fa.asarray(x), fa.asarray(idx), fa.asarray(v)
    expected = x.copy()
    np.add.at(expected, idx, v)
    same(fx.at[fidx].add(fv), expected)  # repeated indices accumulate
    expected = x.copy()
    np.multiply.at(expected, np.unique(idx % n), 2.0)
    same(fx.at[fa.asarray(np.unique(idx % n))].multiply(2.0), expected)
    expected = x.copy()
    expected[idx] = v
    same(fx.at[fidx].set(fv), expected)
    expected = x.copy()
    expected[1:] = np.minimum(expected[1:], 0.0)
    same(fx.at[1:].min(0.0), expected)
    expected = x.copy()
    expected[..., 0] = np.maximum(expected[..., 0], 0.5)
    same(fx.at[..., 0].max(0.5), expected)
    same(fx.at[fidx].get(), x[idx])
    same(fx, x)  # the original is untouched


@given(data=st.data())
def test_take_and_take_along_axis(data):
    x = data.draw(arrays(NONEMPTY))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[axis]
    idx = data.draw(hnp.arrays(np.int64, st.integers(0, 4), elements=st.integers(0, n - 1)))
    same(fa.take(fa.asarray(x), fa.asarray(idx), axis=axis), np.take(x, idx, axis=axis))
    same(fa.take(fa.asarray(x), fa.asarray(idx % x.size)), np.take(x, idx % x.size))
    order = np.argsort(x, axis=axis, kind="stable")
    same(fa.take_along_axis(fa.asarray(x), fa.asarray(order), axis=axis),
         np.take_along_axis(x, order, axis=axis))


@given(data=st.data())
def test_sort_and_argsort_are_stable(data):
    x = data.draw(arrays(NONEMPTY, lo=-2, hi=2))  # many ties
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    same(fa.sort(fa.asarray(x), axis=axis), np.sort(x, axis=axis))
    same(fa.argsort(fa.asarray(x), axis=axis), np.argsort(x, axis=axis, kind="stable"))
    same(fa.argsort(fa.asarray(x), axis=axis, descending=True),
         np.argsort(-x, axis=axis, kind="stable"))


# --- contractions ----------------------------------------------------------------------------

@given(data=st.data())
def test_matmul_broadcasting_and_vectors(data):
    m, k, n = (data.draw(st.integers(0, 3)) for _ in range(3))
    batch = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    ba, bb = batch.input_shapes
    a_shape = data.draw(st.sampled_from([(k,), ba + (m, k)]))
    b_shape = data.draw(st.sampled_from([(k,), bb + (k, n)]))
    a, b = data.draw(arrays(a_shape)), data.draw(arrays(b_shape))
    same(fa.matmul(fa.asarray(a), fa.asarray(b)), np.matmul(a, b))
    same(fa.asarray(a) @ fa.asarray(b), a @ b)


def test_dot_tensordot_outer_vdot_diagonal_trace():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    fa_, fb = fa.asarray(a), fa.asarray(b)
    same(fa.dot(fa_, fb), np.dot(a, b))
    same(fa.dot(fa.asarray(b[0]), fa.asarray(b[1])), np.dot(b[0], b[1]))
    same(fa.dot(fa.asarray(2.0), fb), 2.0 * b, exact_dtype=False)
    same(fa.tensordot(fa_, fb, axes=1), np.tensordot(a, b, axes=1))
    same(fa.tensordot(fa_, fa_, axes=([1, 2], [1, 2])), np.tensordot(a, a, axes=([1, 2], [1, 2])))
    same(fa.tensordot(fa_, fa_, axes=0), np.tensordot(a, a, axes=0))
    same(fa.outer(fa.asarray(a[0, 0]), fb[0]), np.outer(a[0, 0], b[0]))
    same(fa.vdot(fa_, fa_), np.vdot(a, a))
    for off in (-2, 0, 1, 5):
        same(fa.diagonal(fa_, off, 1, 2), np.diagonal(a, off, 1, 2))
        same(fa.trace(fb, off), np.trace(b, off))
    same(fa.trace(fa_, 0, 0, 2), np.trace(a, 0, 0, 2))
