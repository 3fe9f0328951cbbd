"""``has_aux=True``: the auxiliary output comes back as concrete arrays, as in JAX (never a
tracer of the finished transformation), eagerly and under ``jit``."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
from fnarray.core.trace import Tracer


def loss_with_aux(x):
    y = x * 3.0
    return fa.sum(x ** 2), {"scaled": y, "count": 2, "mean": fa.mean(y)}


def _check_aux(aux):
    assert not isinstance(aux["scaled"], Tracer) and not isinstance(aux["mean"], Tracer)
    np.testing.assert_allclose(aux["scaled"] + 1.0, [4.0, 7.0])  # arithmetic works
    np.testing.assert_allclose(float(aux["mean"]), 4.5)
    assert aux["count"] == 2


X = fa.asarray([1.0, 2.0])


@pytest.mark.parametrize("wrap", [lambda f: f, fa.jit], ids=["eager", "jit"])
def test_grad_and_value_and_grad(wrap):
    g, aux = wrap(fa.grad(loss_with_aux, has_aux=True))(X)
    np.testing.assert_allclose(g, [2.0, 4.0])
    _check_aux(aux)
    (v, aux), g = wrap(fa.value_and_grad(loss_with_aux, has_aux=True))(X)
    assert float(v) == 5.0
    _check_aux(aux)


@pytest.mark.parametrize("wrap", [lambda f: f, fa.jit], ids=["eager", "jit"])
@pytest.mark.parametrize("jac", [fa.jacrev, fa.jacfwd])
def test_jacobians(wrap, jac):
    j, aux = wrap(jac(lambda x: (x ** 2, {"scaled": x * 3.0, "count": 2,
                                          "mean": fa.mean(x * 3.0)}), has_aux=True))(X)
    np.testing.assert_allclose(j, np.diag([2.0, 4.0]))
    _check_aux(aux)


def test_vjp():
    out, pullback, aux = fa.vjp(loss_with_aux, X, has_aux=True)
    assert float(out) == 5.0
    np.testing.assert_allclose(pullback(fa.asarray(1.0))[0], [2.0, 4.0])
    _check_aux(aux)


def test_vjp_under_jit():
    def f(x):
        out, pullback, aux = fa.vjp(loss_with_aux, x, has_aux=True)
        return pullback(fa.ones_like(out))[0], aux

    g, aux = fa.jit(f)(X)
    np.testing.assert_allclose(g, [2.0, 4.0])
    _check_aux(aux)


def test_aux_under_nested_grad_stays_differentiable_by_the_outer_transform():
    # The aux of the inner grad is a value of the outer level: the outer grad sees it.
    def outer(x):
        g, aux = fa.grad(lambda y: (fa.sum(y * x), fa.sum(x ** 3)), has_aux=True)(x)
        return fa.sum(g) + aux

    np.testing.assert_allclose(fa.grad(outer)(fa.asarray([1.0, 2.0])), [1.0 + 3.0, 1.0 + 12.0])


def test_has_aux_requires_a_pair():
    with pytest.raises(TypeError, match=r"has_aux=True requires the function to return a pair"):
        fa.grad(lambda x: fa.sum(x), has_aux=True)(X)


@pytest.mark.parametrize("wrap", [lambda f: f, fa.jit], ids=["eager", "jit"])
def test_jvp(wrap):
    def f(x):
        return fa.jvp(lambda y: (y ** 2, {"scaled": y * 3.0, "count": 2,
                                          "mean": fa.mean(y * 3.0)}),
                      (x,), (fa.ones_like(x),), has_aux=True)

    out, t, aux = wrap(f)(X)
    np.testing.assert_allclose(out, [1.0, 4.0])
    np.testing.assert_allclose(t, [2.0, 4.0])
    _check_aux(aux)


def test_jvp_aux_may_hold_any_python_value():
    _, _, aux = fa.jvp(lambda y: (y, {"name": "loss", "y": y}), (X,), (X,), has_aux=True)
    assert aux["name"] == "loss" and not isinstance(aux["y"], Tracer)


def test_jacfwd_runs_the_function_once():
    calls = []

    def f(x):
        calls.append(1)
        return x ** 2, fa.sum(x)

    j, aux = fa.jacfwd(f, has_aux=True)(X)
    np.testing.assert_allclose(j, np.diag([2.0, 4.0]))
    assert float(aux) == 3.0 and len(calls) == 1


def test_linearize():
    out, f_jvp, aux = fa.linearize(loss_with_aux, X, has_aux=True)
    assert float(out) == 5.0
    np.testing.assert_allclose(f_jvp(fa.asarray([1.0, 0.0])), 2.0)
    _check_aux(aux)
