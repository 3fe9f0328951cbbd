"""The activation primitives (``clamp``, ``leaky_relu``, ``gate``) on both kernel paths: the
NumPy kernels and the compiled ``gate`` of ``fnarray.backends.kernels.activation`` (the
``kernel_path`` fixture), against exact NumPy references, in float32 and float64, on odd
shapes, non-contiguous and broadcast operands, NaN, infinities and signed zeros; the compiled
results equal the NumPy path's bit for bit where the module docstring says so; and the
derivatives of these primitives (``clamp``'s backward is ``gate``) check out on the compiled
path."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
from fnarray.backends import accel
from fnarray.ops import activation
from fnarray.testing import check_grads

RNG = np.random.default_rng(11)
DTYPES = [np.float32, np.float64]
SHAPES = [(), (0,), (3, 0, 2), (1,), (1, 5, 1), (7, 13), (4, 3, 5)]
# (lo, hi, inclusive): relu, relu6, hardtanh, torch.clamp's one- and two-sided forms
BOUNDS = [(0.0, None, False), (0.0, 6.0, False), (-1.0, 1.0, False), (None, 1.0, True),
          (-1.0, 1.0, True), (0.5, None, True)]
SPECIAL = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 6.0, 0.5,
                    7.5, -3.25, 2.0, -1e-30, 1e-30])


def _values(shape, dtype):
    """Normal draws with special values (NaN, ±inf, ±0, the bounds themselves) mixed in."""
    x = RNG.standard_normal(shape) * 3
    pick = RNG.random(shape) < 0.4
    x = np.where(pick, RNG.choice(SPECIAL, shape), x)
    return np.asarray(x, dtype)


def _finite(shape, dtype):
    return np.asarray(RNG.standard_normal(shape), dtype)


def _inside(x, lo, hi, inclusive):
    """The reference mask, compared in ``x``'s precision (as NumPy compares a Python float
    bound)."""
    t = x.dtype.type
    ok = np.ones(x.shape, bool)
    if lo is not None:
        ok &= (x >= t(lo)) if inclusive else (x > t(lo))
    if hi is not None:
        ok &= (x <= t(hi)) if inclusive else (x < t(hi))
    return ok


def _gate_ref(ct, x, lo, hi, inclusive, slope):
    """The exact select: ``ct`` inside, ``ct * slope`` outside (0 for slope 0, even where
    ``ct`` is infinite or NaN)."""
    ct, x = np.broadcast_arrays(ct, x)
    with np.errstate(all="ignore"):
        outside = ct * ct.dtype.type(slope) if slope else np.zeros_like(ct)
    return np.where(_inside(x, lo, hi, inclusive), ct, outside)


def _gate(ct, x, lo, hi, inclusive, slope):
    return np.asarray(activation.gate.bind(fa.asarray(ct), fa.asarray(x), lo=lo, hi=hi,
                                           inclusive=inclusive, slope=slope))


def _clamp(x, lo, hi, inclusive):
    return np.asarray(activation.clamp.bind(fa.asarray(x), lo=lo, hi=hi, inclusive=inclusive))


def _same_bits(a, b):
    """Equal values, NaN where NaN, and the same sign bits (signed zeros, NaN signs)."""
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


def _clip_ref(x, lo, hi):
    t = x.dtype.type
    return np.clip(x, t(-np.inf if lo is None else lo), t(np.inf if hi is None else hi))


# --- values on either path ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bounds", BOUNDS)
def test_clamp_matches_clip(dtype, shape, bounds):
    lo, hi, inclusive = bounds
    x = _values(shape, dtype)
    got = _clamp(x, lo, hi, inclusive)
    assert got.shape == x.shape and got.dtype == x.dtype
    _same_bits(got, _clip_ref(x, lo, hi))  # NaN keeps its sign, -0.0 stays -0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bounds", BOUNDS)
@pytest.mark.parametrize("slope", [0.0, 0.01, -0.5])
def test_gate_is_the_exact_select(kernel_path, dtype, shape, bounds, slope):
    lo, hi, inclusive = bounds
    x, ct = _values(shape, dtype), _values(shape, dtype)
    got = _gate(ct, x, lo, hi, inclusive, slope)
    assert got.shape == x.shape and got.dtype == x.dtype
    np.testing.assert_array_equal(got, _gate_ref(ct, x, lo, hi, inclusive, slope))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_values(kernel_path, dtype, slope):
    x = _values((9, 11), dtype)
    got = np.asarray(fa.leaky_relu(fa.asarray(x), slope))
    with np.errstate(all="ignore"):
        expected = np.where(x > 0, x, x * dtype(slope))
    np.testing.assert_array_equal(got, expected)
    assert np.asarray(fa.leaky_relu(fa.asarray(np.full(3, np.inf, dtype)), slope)).tolist() \
        == [np.inf] * 3


def test_inf_cotangent_gives_zero_outside(kernel_path):
    """``inf * 0`` is NaN; the gate's result outside the interval is 0 all the same."""
    x = np.array([-1.0, 2.0, -3.0, 4.0] * 4, np.float32)
    ct = np.array([np.inf, -np.inf, np.nan, 1.0] * 4, np.float32)
    got = _gate(ct, x, 0.0, None, False, 0.0)
    np.testing.assert_array_equal(got, [0.0, -np.inf, 0.0, 1.0] * 4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["transposed", "strided", "fortran"])
def test_non_contiguous_operands(kernel_path, dtype, layout):
    base_x, base_ct = _values((6, 8, 10), dtype), _values((6, 8, 10), dtype)
    view = {"transposed": lambda a: a.transpose(2, 0, 1),
            "strided": lambda a: a[::2, :, 1::3],
            "fortran": np.asfortranarray}[layout]
    x, ct = view(base_x), view(base_ct)
    _same_bits(_clamp(x, 0.0, 6.0, False), _clip_ref(x, 0.0, 6.0))
    np.testing.assert_array_equal(_gate(ct, x, 0.0, None, False, 0.0),
                                  _gate_ref(ct, x, 0.0, None, False, 0.0))
    # one contiguous operand and one view
    np.testing.assert_array_equal(_gate(np.ascontiguousarray(ct), x, -1.0, 1.0, True, 0.1),
                                  _gate_ref(ct, x, -1.0, 1.0, True, 0.1))


@pytest.mark.parametrize("shapes", [((3, 1, 5), (4, 5)), ((4, 5), (2, 1, 5)), ((), (3, 2)),
                                    ((3, 2), ()), ((1,), (0, 1))])
def test_gate_broadcasts(kernel_path, shapes):
    ct, x = _values(shapes[0], np.float64), _values(shapes[1], np.float64)
    got = _gate(ct, x, 0.0, 6.0, False, 0.0)
    assert got.shape == np.broadcast_shapes(*shapes)
    np.testing.assert_array_equal(got, _gate_ref(ct, x, 0.0, 6.0, False, 0.0))


@pytest.mark.parametrize("dtype", [np.float16, fa.bfloat16])
def test_low_precision_dtypes(kernel_path, dtype):
    x = fa.asarray(_values((5, 7), np.float32)).astype(dtype)
    host = np.asarray(x).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(fa.relu(x)).astype(np.float32),
                                  _clip_ref(host, 0.0, None))
    g = fa.grad(lambda v: fa.sum(fa.relu(v) * 3))(x)
    assert g.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(g).astype(np.float32),
                                  np.where(host > 0, 3.0, 0.0))


def test_mixed_dtypes_gate(kernel_path):
    """A float64 cotangent gated by a float32 input: the result takes the cotangent's dtype."""
    ct, x = _values((4, 6), np.float64), _values((4, 6), np.float32)
    got = _gate(ct, x, 0.0, None, False, 0.0)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, _gate_ref(ct, x, 0.0, None, False, 0.0))


# --- the compiled path against the NumPy path ----------------------------------------------

def _both(fn, *args):
    with accel.forced(False):
        ref = fn(*args)
    with accel.forced(True):
        got = fn(*args)
    return got, ref


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bounds", BOUNDS)
@pytest.mark.parametrize("slope", [0.0, 0.01])
def test_compiled_equals_numpy_bitwise(dtype, bounds, slope):
    """With a finite cotangent and a non-negative slope every bit agrees (signed zeros of
    ``ct * 0`` included); otherwise the values agree."""
    if not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    lo, hi, inclusive = bounds
    x = _values((33, 65), dtype)
    _same_bits(*_both(_gate, _finite(x.shape, dtype), x, lo, hi, inclusive, slope))
    np.testing.assert_array_equal(*_both(_gate, _values(x.shape, dtype), x, lo, hi,
                                         inclusive, slope))
    np.testing.assert_array_equal(*_both(_gate, x, x, lo, hi, inclusive, -0.5))


def test_compiled_kernels_run(monkeypatch):
    """Under ``accel.forced(True)`` C-ordered float32/float64 operands reach the compiled
    ``gate``; views, broadcasts and other dtypes take the NumPy code."""
    if not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    from fnarray.backends.kernels import activation as compiled
    calls = []
    real = compiled.gate
    monkeypatch.setattr(compiled, "gate", lambda *a: calls.append(a[0].dtype) or real(*a))
    x = _values((5, 6), np.float32)
    with accel.forced(True):
        _gate(x, x, 0.0, None, False, 0.0)
        np.asarray(fa.leaky_relu(fa.asarray(x.astype(np.float64)), 0.1))
        c = _finite(x.shape, np.float32)
        g = fa.grad(lambda v: fa.sum(fa.relu(v) * c))(fa.asarray(x))  # clamp's backward
        np.testing.assert_array_equal(np.asarray(g), np.where(x > 0, c, 0))
        assert calls == [np.float32, np.float64, np.float32]
        # results are arrays NumPy owns, as the NumPy kernel's are (the jit may donate them)
        assert activation.gate.impl(np, x, x, lo=0.0, hi=None, inclusive=False,
                                    slope=0.0).flags.owndata
        del calls[3:]
        _gate(x.T, x.T, 0.0, None, False, 0.0)
        _gate(x[:1], x, 0.0, None, False, 0.0)
        _gate(x.astype(np.float64), x, 0.0, None, False, 0.0)
        _gate(x.astype(np.float16), x.astype(np.float16), 0.0, None, False, 0.0)
        assert len(calls) == 3
    with accel.forced(False):
        _gate(x, x, 0.0, None, False, 0.0)
        assert len(calls) == 3


def test_gate_threshold_counts_the_numpy_passes(monkeypatch):
    """By default the gate runs compiled from a quarter of ``accel.MIN_SIZE`` elements
    (the NumPy work it replaces is about four passes), not below."""
    if not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    from fnarray.backends.kernels import activation as compiled
    monkeypatch.setattr(accel, "_mode", "auto")
    monkeypatch.setattr(accel, "_min_size", accel.MIN_SIZE)
    calls = []
    real = compiled.gate
    monkeypatch.setattr(compiled, "gate", lambda *a: calls.append(a[0].size) or real(*a))
    quarter = accel.MIN_SIZE // activation._GATE_PASSES
    for n in (quarter - 1, quarter):
        x = _values((n,), np.float32)
        _gate(x, x, 0.0, None, False, 0.0)
    assert calls == [quarter]


# --- derivatives on both paths ------------------------------------------------------------

def _off_kink(shape):
    """float64 values on a grid 0.125 + 0.25 k: never on a bound (0, ±1, 6)."""
    return fa.asarray(0.125 + 0.25 * RNG.integers(-40, 40, shape).astype(np.float64))


@pytest.mark.parametrize("fn", [fa.relu, fa.relu6, fa.hardtanh,
                                lambda v: fa.leaky_relu(v, 0.1),
                                lambda v: activation.clamp.bind(v, lo=-1.0, hi=None,
                                                                inclusive=True)],
                         ids=["relu", "relu6", "hardtanh", "leaky_relu", "clamp"])
def test_derivatives(kernel_path, fn):
    x = _off_kink((4, 9))
    check_grads(lambda v: fn(v) * v, [x], order=2)
    g = fa.grad(lambda v: fa.sum(fn(v) ** 2))(x)
    np.testing.assert_allclose(np.asarray(g), np.asarray(2 * fn(x) * fa.grad(
        lambda v: fa.sum(fn(v)))(x)), rtol=0, atol=0)


def test_gate_derivatives(kernel_path):
    ct, x = _off_kink((3, 8)), _off_kink((3, 8))
    check_grads(lambda c: activation.gate.bind(c, x, lo=0.0, hi=6.0, inclusive=False,
                                               slope=0.1), [ct], order=2)
