"""``reshape``/``ravel`` implement ``order=`` ('C', 'F') like NumPy, and no API function
accepts an argument it then ignores: unknown ones raise ``TypeError``, unsupported values
``ValueError`` naming the function."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa

A = np.arange(24).reshape(2, 3, 4)


@pytest.mark.parametrize("shape", [(4, 6), (24,), (6, -1), (2, 2, 2, 3), 24, (1, 24, 1)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_reshape_order_matches_numpy(shape, order):
    x = fa.asarray(A)
    expected = A.reshape(shape, order=order)
    np.testing.assert_array_equal(fa.reshape(x, shape, order=order), expected)
    np.testing.assert_array_equal(x.reshape(shape, order=order), expected)
    if isinstance(shape, tuple):
        np.testing.assert_array_equal(x.reshape(*shape, order=order), expected)


@pytest.mark.parametrize("order", ["C", "F"])
def test_ravel_and_flatten_order(order):
    x = fa.asarray(A)
    np.testing.assert_array_equal(fa.ravel(x, order), A.ravel(order))
    np.testing.assert_array_equal(x.ravel(order), A.ravel(order))
    np.testing.assert_array_equal(x.flatten(order=order), A.flatten(order))


def test_fortran_reshape_under_transformations():
    w = fa.arange(6.0).reshape(3, 2)
    g = fa.grad(lambda v: fa.sum(fa.reshape(v, (3, 2), order="F") * w))(fa.ones(6))
    np.testing.assert_array_equal(g, np.arange(6.0).reshape(3, 2).ravel("F"))
    f = fa.jit(lambda v: fa.reshape(v, (3, 2), order="F"))
    np.testing.assert_array_equal(f(fa.arange(6)), np.arange(6).reshape(3, 2, order="F"))
    rows = A.reshape(4, 6)
    b = fa.vmap(lambda v: fa.reshape(v, (2, 3), order="F"))(fa.asarray(rows))
    np.testing.assert_array_equal(b, np.stack([r.reshape(2, 3, order="F") for r in rows]))


@pytest.mark.parametrize("order, message", [
    ("A", "'A' depends on memory layout"), ("K", "order must be 'C' or 'F', got 'K'")])
def test_unsupported_orders_are_refused(order, message):
    with pytest.raises(ValueError, match=message):
        fa.reshape(fa.asarray(A), (4, 6), order=order)


def test_unknown_keywords_are_refused():
    x = fa.asarray(A)
    with pytest.raises(TypeError, match="reshape"):
        fa.reshape(x, (4, 6), foo=1)
    with pytest.raises(TypeError, match="reshape"):
        x.reshape((4, 6), foo=1)
    with pytest.raises(TypeError, match="ravel"):
        x.ravel(foo=1)
    with pytest.raises(ValueError, match="ravel: order must be 'C' or 'F', got 'K'"):
        x.ravel("K")


def test_from_dlpack_honours_copy_and_device():
    a = np.arange(3.0)
    shared, copied = fa.from_dlpack(a), fa.from_dlpack(a, copy=True)
    same_device = fa.from_dlpack(a, device="cpu", copy=False)
    a[0] = 9.0  # a mutable producer: only the copy is unaffected
    np.testing.assert_array_equal(copied, [0.0, 1.0, 2.0])
    assert float(shared[0]) == 9.0 and float(same_device[0]) == 9.0


def test_array_namespace_checks_the_version():
    x = fa.ones(2)
    assert x.__array_namespace__() is fa and x.__array_namespace__("2023.12") is fa
    with pytest.raises(ValueError, match="not '2099.12'"):
        x.__array_namespace__("2099.12")
