"""Array API 2023.12 details: 0-d boolean masks, asarray/astype copy and device keywords,
the DLPack signature, expand_dims axes, accumulation dtypes, finfo, the complex special
cases of expm1 and tanh, and refused item assignment."""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import pytest

import fnarray as fa

INF, NAN = math.inf, math.nan


# --- 0-d boolean masks -----------------------------------------------------------------------

@pytest.mark.parametrize("key", [True, False, (0, True), (True, 1), (Ellipsis, False),
                                 (slice(None), True, 0), (None, True), ([0, 1], True)])
def test_zero_d_boolean_mask_matches_numpy(key):
    x = np.arange(6.0).reshape(2, 3)
    as_fa = tuple(fa.asarray(k) if isinstance(k, (bool, list)) else k for k in key) \
        if isinstance(key, tuple) else fa.asarray(key)
    np_key = tuple(np.asarray(k) if isinstance(k, bool) else k for k in key) \
        if isinstance(key, tuple) else np.asarray(key)
    got = fa.asarray(x)[as_fa]
    np.testing.assert_array_equal(got, x[np_key])
    assert got.shape == x[np_key].shape


def test_zero_d_boolean_mask_on_a_scalar_and_under_grad():
    s = fa.asarray(5.0)
    assert s[fa.asarray(True)].shape == (1,) and s[fa.asarray(False)].shape == (0,)
    g = fa.grad(lambda v: v[fa.asarray(True)].sum())(fa.ones((2, 2)))
    np.testing.assert_array_equal(g, np.ones((2, 2)))


# --- asarray / astype ------------------------------------------------------------------------

def test_asarray_copy_false_shares_or_raises():
    host = np.arange(4.0)
    assert np.shares_memory(np.asarray(fa.asarray(host, copy=False)), host)
    x = fa.ones(3)
    assert fa.asarray(x, copy=False) is x
    assert fa.asarray(x, copy=False, dtype=fa.float32, device="cpu") is x
    for obj, kw, msg in [([1.0, 2.0], {}, "type list"), (3.0, {}, "type float"),
                         (host, {"dtype": fa.float32}, "float64 to float32"),
                         (x, {"dtype": fa.int32}, "float32 to int32")]:
        with pytest.raises(ValueError, match=rf"asarray\(copy=False\).*{msg}.*copy=None"):
            fa.asarray(obj, copy=False, **kw)


def test_asarray_copy_true_and_none():
    host = np.arange(4.0)
    assert not np.shares_memory(np.asarray(fa.asarray(host)), host)  # copy=None copies NumPy
    x = fa.ones(3)
    y = fa.asarray(x, copy=True)
    assert y is not x and not np.shares_memory(np.asarray(y), np.asarray(x))
    np.testing.assert_array_equal(y, x)
    assert fa.asarray(x) is x


def test_astype_device_keyword():
    x = fa.arange(3)
    for y in (fa.astype(x, fa.float64, device="cpu"), x.astype(fa.float64, device=fa.devices()[0])):
        assert y.dtype == fa.float64 and str(y.device) == "cpu"
    assert fa.astype(x, x.dtype, copy=False) is x
    with pytest.raises(RuntimeError, match="not available"):
        fa.astype(x, fa.float32, device="cuda:99")


# --- DLPack ---------------------------------------------------------------------------------

def test_dlpack_signature_and_keywords():
    params = inspect.signature(fa.Array.__dlpack__).parameters
    assert [p for p in params if p != "self"] == ["stream", "max_version", "dl_device", "copy"]
    assert all(p.kind is p.KEYWORD_ONLY for n, p in params.items() if n != "self")
    x = fa.asarray(np.arange(4.0))
    assert x.__dlpack__(stream=None) is not None
    np.testing.assert_array_equal(np.from_dlpack(x), np.arange(4.0))
    versioned = x.__dlpack__(max_version=(1, 0), dl_device=x.__dlpack_device__(), copy=None)
    assert "dltensor" in repr(versioned)
    copied = np.from_dlpack(x, copy=True)
    assert not np.shares_memory(copied, np.asarray(x))
    with pytest.raises(TypeError):
        x.__dlpack__(None)  # stream is keyword-only


# --- expand_dims --------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [-3, -2, -1, 0, 1, 2])
def test_expand_dims_axes(axis):
    x = np.ones((2, 3))
    assert fa.expand_dims(fa.asarray(x), axis=axis).shape == np.expand_dims(x, axis).shape


@pytest.mark.parametrize("axis", [3, -4])
def test_expand_dims_out_of_range_is_an_index_error(axis):
    with pytest.raises(IndexError, match=r"expand_dims: axis .* \[-3, 2\]"):
        fa.expand_dims(fa.ones((2, 3)), axis=axis)
    with pytest.raises(ValueError):  # and NumPy's AxisError, a ValueError too
        fa.expand_dims(fa.ones((2, 3)), axis=axis)


# --- accumulation dtypes ----------------------------------------------------------------------

# (input dtype, sum/prod/cumulative_sum default result) per the standard: the default
# integer of the same signedness when narrower, the input dtype otherwise.
ACCUMULATE = [("bool", "int64"), ("int8", "int64"), ("int16", "int64"), ("int32", "int64"),
              ("uint8", "uint64"), ("uint16", "uint64"), ("uint32", "uint64"),
              ("int64", "int64"), ("uint64", "uint64"), ("float16", "float16"),
              ("float32", "float32"), ("complex64", "complex64")]


@pytest.mark.parametrize("dt, want", ACCUMULATE)
def test_sum_prod_cumulative_sum_default_dtypes(dt, want):
    x = fa.asarray(np.array([[200, 100, 3], [1, 2, 1]]).astype(dt))
    for f in (fa.sum, fa.prod, lambda v: fa.cumulative_sum(v, axis=1),
              lambda v: fa.sum(v, axis=0)):
        assert f(x).dtype == want
        assert fa.jit(f)(x).dtype == want
    if dt == "uint8":  # no wrap-around: accumulated in uint64
        assert int(fa.sum(x)) == 307 and int(fa.prod(x[0])) == 60000


@pytest.mark.parametrize("dt", ["uint8", "int8", "int32", "bool", "float16"])
def test_explicit_dtype_and_vecdot_keep_the_dtype(dt):
    v = np.array([200, 100, 3]).astype(dt)
    x = fa.asarray(v)
    # an explicit dtype is honoured eagerly and under jit (NumPy's values, wrapping included)
    for f, ref in ((lambda a: fa.sum(a, dtype=dt), np.sum(v, dtype=dt)),
                   (lambda a: fa.cumulative_sum(a, dtype=dt), np.cumsum(v, dtype=dt))):
        for g in (f, fa.jit(f)):
            out = g(x)
            assert out.dtype == dt
            np.testing.assert_array_equal(out, ref)
    # vecdot: the promoted dtype of its inputs (not an accumulation dtype), like np.vecdot
    want = np.vecdot(v, v)
    got = fa.vecdot(x, x)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


# --- finfo -------------------------------------------------------------------------------------

def test_finfo_for_every_floating_dtype_of_the_namespace():
    kinds = fa.__array_namespace_info__().dtypes(kind=("real floating", "complex floating"))
    assert set(kinds) == {"float16", "float32", "float64", "complex64", "complex128"}
    for name, dt in kinds.items():
        info = fa.finfo(dt)
        ref = np.finfo(dt)
        assert type(info.bits) is int and info.bits == ref.bits
        for field in ("eps", "max", "min", "smallest_normal"):
            value = getattr(info, field)
            assert type(value) is float and value == float(getattr(ref, field)), (name, field)
        assert info.dtype == np.dtype(dt).type(0).real.dtype
        assert fa.finfo(fa.ones(1, dtype=dt)).bits == info.bits
    with pytest.raises(TypeError, match="finfo: int32 is not a floating .* fa.iinfo"):
        fa.finfo(fa.int32)


# --- complex special cases of expm1 and tanh --------------------------------------------------

SPECIAL = [0.0, -0.0, 1.5, -1.5, 0.5, -2.0, INF, -INF, NAN]


def _expm1_rule(a, b):
    """Array API 2023.12 expm1 special cases, for b with a clear sign bit (or NaN);
    ``("±", v)`` marks a component whose sign is unspecified."""
    fin = math.isfinite
    if a == 0 and b == 0:
        return 0.0, 0.0
    if fin(a) and (b == INF or math.isnan(b)):
        return NAN, NAN
    if a == INF and b == 0:
        return INF, 0.0
    if a == -INF and fin(b):
        return -1.0, 0.0
    if a == INF and fin(b):
        return INF * math.cos(b), INF * math.sin(b)
    if a == -INF:  # b is +inf or NaN
        return -1.0, ("±", 0.0)
    if a == INF:
        return ("±", INF), NAN
    if math.isnan(a):
        return NAN, (0.0 if b == 0 else NAN)
    return None


def _tanh_rule(a, b):
    """Array API tanh special cases, for a and b with clear sign bits (or NaN)."""
    fin = math.isfinite
    if a == 0 and b == 0:
        return 0.0, 0.0
    if a == 0 and (b == INF or math.isnan(b)):
        return 0.0, NAN
    if fin(a) and a != 0 and (b == INF or math.isnan(b)):
        return NAN, NAN
    if a == INF and fin(b) and b > 0:
        return 1.0, 0.0
    if a == INF:  # b is +inf or NaN
        return 1.0, ("±", 0.0)
    if math.isnan(a):
        return NAN, (0.0 if b == 0 else NAN)
    return None


def _negative(v):
    return v != v or math.copysign(1.0, v) < 0  # NaN counts as "no sign" below


def _flip(c):
    return ("±", -c[1]) if isinstance(c, tuple) else -c


def _expected(name, a, b):
    """Apply the conjugate symmetry (both) and oddness (tanh) the standard states."""
    neg_b = not math.isnan(b) and math.copysign(1.0, b) < 0
    if name == "expm1":
        e = _expm1_rule(a, -b if neg_b else b)
        return None if e is None else (e[0], _flip(e[1]) if neg_b else e[1])
    neg_a = not math.isnan(a) and math.copysign(1.0, a) < 0
    if neg_a:  # tanh(-z) = -tanh(z)
        a, b = -a, -b
        neg_b = not math.isnan(b) and math.copysign(1.0, b) < 0
    e = _tanh_rule(a, -b if neg_b else b)
    if e is None:
        return None
    re, im = e[0], (_flip(e[1]) if neg_b else e[1])
    return (_flip(re), _flip(im)) if neg_a else (re, im)


def _same(got, want) -> bool:
    if isinstance(want, tuple):
        return abs(got) == abs(want[1]) or (math.isnan(got) and math.isnan(want[1]))
    if math.isnan(want):
        return math.isnan(got)
    return got == want and math.copysign(1.0, got) == math.copysign(1.0, want)


@pytest.mark.parametrize("name", ["expm1", "tanh"])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_special_cases(name, dtype):
    cases = [(a, b) for a in SPECIAL for b in SPECIAL if _expected(name, a, b) is not None]
    z = np.array([complex(a, b) for a, b in cases], dtype=dtype)
    f = getattr(fa, name)
    for out in (f(fa.asarray(z)), fa.jit(f)(fa.asarray(z))):
        assert out.dtype == dtype
        for (a, b), got in zip(cases, np.asarray(out)):
            want = _expected(name, a, b)
            assert _same(got.real, want[0]) and _same(got.imag, want[1]), (name, a, b, got, want)


def test_real_expm1_tanh_unchanged_and_differentiable():
    x = fa.asarray([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(fa.expm1(x), np.expm1([-1.0, 0.0, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(fa.grad(lambda v: fa.tanh(v).sum())(x),
                               1 - np.tanh([-1.0, 0.0, 2.0]) ** 2, rtol=1e-6)
    z = fa.asarray([0.3 + 0.2j], dtype=fa.complex128)
    np.testing.assert_allclose(fa.tanh(z), np.tanh([0.3 + 0.2j]))
    np.testing.assert_allclose(fa.expm1(z), np.expm1([0.3 + 0.2j]))


# --- immutability --------------------------------------------------------------------------

@pytest.mark.parametrize("key, shown", [(0, "0"), ((slice(1, None), 0), "1:, 0"),
                                        (Ellipsis, "...")])
def test_item_assignment_is_refused_with_the_at_hint(key, shown):
    x = fa.zeros((3, 2))
    with pytest.raises(TypeError, match=rf"immutable.*x = x\.at\[{re.escape(shown)}\]\.set\(value\)"):
        x[key] = 1.0
    np.testing.assert_array_equal(x, np.zeros((3, 2)))
    np.testing.assert_array_equal(x.at[key].set(1.0), _ref_set(key))


def _ref_set(key):
    ref = np.zeros((3, 2))
    ref[key] = 1.0
    return ref
