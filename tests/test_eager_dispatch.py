"""The eager fast path keeps every semantic of the general one.

``bind`` takes one and two ``Array`` operands straight to the kernel, and ``promote`` serves
Python scalars next to a float array from a cache of weak 0-d constants; these tests pin
what must not change: signed zeros and NaNs, per-dtype and per-value constants, weak
typing, errors naming the op for any number of operands (kernel failures and operands on
different devices), and subclasses of ``Array``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fnarray as fa
from fnarray.api import _convert
from fnarray.backends import numpy as numpy_backend
from fnarray.core.array import Array
from fnarray.core.device import Device

X = np.array([0.0, -0.0, 1.5, -2.0], dtype=np.float32)


@pytest.mark.parametrize("scalar", [1, 1.0, 2.5, -3, 0.0, -0.0, 1e30])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_scalar_operands_match_numpy_bit_for_bit(scalar, dtype):
    x_np = X.astype(dtype)
    x = fa.asarray(x_np)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        for got, want in ((x * scalar, x_np * dtype(scalar)), (scalar * x, dtype(scalar) * x_np),
                          (x + scalar, x_np + dtype(scalar)), (scalar - x, dtype(scalar) - x_np)):
            assert got.dtype == dtype and not got.weak_type
            np.testing.assert_array_equal(np.asarray(got), want)
            np.testing.assert_array_equal(np.signbit(np.asarray(got)), np.signbit(want))


def test_signed_zero_constants_are_kept_apart():
    ones = fa.asarray(np.ones(2, np.float32))
    for _ in range(2):  # the second round would hit a cache that conflated 0.0 and -0.0
        assert not np.signbit(np.asarray(ones * 0.0)).any()
        assert np.signbit(np.asarray(ones * -0.0)).all()


def test_nan_constants_do_not_fill_the_cache():
    x = fa.asarray(X)
    before = len(_convert._WEAK_CONSTANTS)
    for _ in range(5):
        assert np.isnan(np.asarray(x + float("nan"))).all()
    assert len(_convert._WEAK_CONSTANTS) == before


def test_weak_constants_are_weak_and_bounded():
    c = _convert.weak_constant(3, np.dtype(np.float32), fa.asarray(X).device)
    assert c.weak_type and c.dtype == np.float32 and c.shape == ()
    x = fa.asarray(X)
    for i in range(_convert._WEAK_CONSTANTS_MAX + 50):
        x + (i + 0.5)
    assert len(_convert._WEAK_CONSTANTS) <= _convert._WEAK_CONSTANTS_MAX
    np.testing.assert_array_equal(np.asarray(x + 12345.5), X + np.float32(12345.5))


def test_python_ints_next_to_integer_arrays_still_promote_generally():
    x = fa.asarray(np.array([1, 2], np.int8))
    assert (x + 1).dtype == np.int8 and (x * 2.0).dtype == fa.float32


@pytest.mark.parametrize("fn, op", [
    (lambda a, b, c: a + c, "add"),
    (lambda a, b, c: fa.where(fa.asarray(np.ones(3, bool)), a, c), "select"),
])
def test_kernel_errors_name_the_op_for_any_operand_count(fn, op):
    a = fa.asarray(np.ones((2, 3), np.float32))
    b = fa.asarray(np.ones((2, 3), np.float32))
    c = fa.asarray(np.ones(4, np.float32))
    with pytest.raises(ValueError, match=rf"{op}: cannot apply to operands .*float32"):
        fn(a, b, c)


def test_array_subclasses_take_the_general_path():
    class Tagged(Array):
        __slots__ = ()

    t = Tagged(np.array([1.0, 2.0], np.float32))
    out = fa.sin(t) * t + 1
    assert type(out) is Array
    np.testing.assert_allclose(np.asarray(out), np.sin([1.0, 2.0]) * [1.0, 2.0] + 1, rtol=1e-6)


def test_operands_on_different_devices_raise_naming_the_op():
    # A second device object over the NumPy backend stands in for a GPU.
    other = Device("cuda", 7, numpy_backend)
    a = fa.asarray(X)
    b = Array(X.copy(), other)
    for fn, op in ((lambda: a * b, "mul"), (lambda: fa.sin(a) + fa.sin(b), "add"),
                   (lambda: fa.where(a > 0, a, b), "select")):
        with pytest.raises(ValueError, match=rf"{op}: operands are on different devices"):
            fn()
