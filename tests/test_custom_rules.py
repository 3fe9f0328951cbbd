"""``custom_vjp`` / ``custom_jvp``: ``None`` cotangents and validation of every rule's output.

Expected numbers are JAX's answers for the same programs (JAX 0.4/0.10 ``custom_vjp`` docs).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

import fnarray as fa


@fa.custom_vjp
def clip_gradient(lo, hi, x):
    return x  # identity in the forward pass


def _clip_fwd(lo, hi, x):
    return x, (lo, hi)


def _clip_bwd(res, g):
    lo, hi = res
    return (None, None, fa.clip(g, lo, hi))


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def test_clip_gradient_from_the_jax_docs():
    f = lambda x: 3 * clip_gradient(-0.5, 0.5, x)  # noqa: E731
    assert float(fa.grad(f)(1.0)) == 0.5  # JAX: 0.5
    assert float(fa.jit(fa.grad(f))(1.0)) == 0.5
    scaled = fa.grad(lambda x, c: c * clip_gradient(-0.5, 0.5, x))
    np.testing.assert_allclose(fa.vmap(scaled)(fa.ones(3), fa.asarray([1.0, 0.2, -2.0])),
                               [0.5, 0.2, -0.5], rtol=1e-6)


def _three(a, b, c):
    return a * 1.0 + b * 2.0 + c * 3.0


def test_none_in_the_middle_is_a_zero_and_does_not_shift():
    f = fa.custom_vjp(_three)
    f.defvjp(lambda a, b, c: (_three(a, b, c), None), lambda r, g: (g * 2, None, g * 4))
    got = fa.grad(f, argnums=(0, 1, 2))(1.0, 1.0, 1.0)
    assert [float(v) for v in got] == [2.0, 0.0, 4.0]  # JAX: (2, 0, 4)
    got = fa.jit(fa.grad(f, argnums=(0, 1, 2)))(1.0, 1.0, 1.0)
    assert [float(v) for v in got] == [2.0, 0.0, 4.0]


def test_none_for_a_subtree_of_a_pytree_argument():
    @fa.custom_vjp
    def f(p, x):
        return p["w"] * x + p["b"]

    f.defvjp(lambda p, x: (f(p, x), (p, x)),
             lambda r, g: ({"w": g * r[1], "b": None}, g * r[0]["w"]))
    p = {"w": fa.asarray(3.0), "b": fa.asarray(1.0)}
    gp, gx = fa.grad(f, argnums=(0, 1))(p, fa.asarray(2.0))
    assert (float(gp["w"]), float(gp["b"]), float(gx)) == (2.0, 0.0, 3.0)

    f.defvjp(lambda p, x: (f(p, x), (p, x)), lambda r, g: (None, g))
    gp, gx = fa.grad(f, argnums=(0, 1))(p, fa.asarray(2.0))
    assert (float(gp["w"]), float(gp["b"]), float(gx)) == (0.0, 0.0, 1.0)


def test_nondiff_argnums_take_no_cotangent():
    @partial(fa.custom_vjp, nondiff_argnums=(0,))
    def scale(k, x, y):
        return k * x + y

    scale.defvjp(lambda k, x, y: (scale(k, x, y), None), lambda k, r, g: (None, g * 10))
    assert [float(v) for v in fa.grad(scale, argnums=(1, 2))(2.0, 1.0, 1.0)] == [0.0, 10.0]


def _sum3(a, b, c):
    return fa.sum(a + b + c)


@pytest.mark.parametrize("bwd, exc, message", [
    (lambda r, g: (g,), TypeError, r"returned 1 cotangent\(s\) for 3 argument\(s\)"),
    (lambda r, g: (g, g, g, g), TypeError, r"returned 4 cotangent\(s\) for 3"),
    (lambda r, g: fa.ones(2), TypeError, r"a float32\[2\] instead of a tuple of length 3"),
    (lambda r, g: (fa.ones(3), None, None), ValueError,
     r"output\[0\] it returned shape float32\[3\] for an argument of shape float32\[2\]"),
    (lambda r, g: (None, fa.ones(2, dtype=fa.float16), None), TypeError,
     r"output\[1\] it returned dtype float16\[2\] for an argument of dtype float32\[2\]"),
    (lambda r, g: (None, None, (fa.ones(()), fa.ones(()))), TypeError,
     r"output\[2\] it returned a \(\*, \*\)-structured value"),
    (lambda r, g: ("zero", None, None), TypeError, "not an array"),
])
def test_bad_bwd_outputs_are_refused_naming_the_rule(bwd, exc, message):
    def my_bwd(r, g):
        return bwd(r, g)

    f = fa.custom_vjp(_sum3)
    f.defvjp(lambda a, b, c: (_sum3(a, b, c), None), my_bwd)
    x = fa.ones(2)
    with pytest.raises(exc, match=message) as info:
        fa.grad(f)(x, x, x)
    assert "custom_vjp _sum3: the bwd rule my_bwd" in str(info.value)
    with pytest.raises(exc, match=message):
        fa.jit(fa.grad(f))(x, x, x)


def test_python_scalar_cotangents_take_the_argument_dtype():
    f = fa.custom_vjp(lambda x: x * 2.0)
    f.defvjp(lambda x: (x * 2.0, None), lambda r, g: (1.5,))
    g = fa.grad(f)(fa.asarray(1.0, dtype=fa.float64))
    assert g.dtype == fa.float64 and float(g) == 1.5


def _ident(x):
    return x


@pytest.mark.parametrize("rule, exc, message", [
    (lambda p, t: (p[0], fa.ones(3)), ValueError,
     r"tangent output 0 is float32\[3\] for a primal output float32\[2\]"),
    (lambda p, t: (p[0], t[0].astype(fa.float16)), TypeError,
     r"tangent output 0 has dtype float16\[2\] for a primal output float32\[2\]"),
    (lambda p, t: (p[0], (t[0],)), TypeError, r"tangent structure is \(\*\)"),
    (lambda p, t: p[0], TypeError, r"must return a pair \(primal_out, tangent_out\)"),
])
def test_bad_jvp_outputs_are_refused_naming_the_rule(rule, exc, message):
    def my_jvp(p, t):
        return rule(p, t)

    f = fa.custom_jvp(_ident)
    f.defjvp(my_jvp)
    x = fa.ones(2)
    with pytest.raises(exc, match=message) as info:
        fa.grad(lambda x: fa.sum(f(x)))(x)
    assert "custom_jvp _ident" in str(info.value) and "my_jvp" in str(info.value)
    with pytest.raises(exc, match=message):
        fa.jvp(f, (x,), (x,))


def test_fwd_must_return_a_pair():
    def my_fwd(a, b, c):
        return _sum3(a, b, c)  # forgot the residuals

    f = fa.custom_vjp(_sum3)
    f.defvjp(my_fwd, lambda r, g: (g, g, g))
    x = fa.ones(2)
    with pytest.raises(TypeError, match=r"custom_vjp _sum3: the fwd rule my_fwd must return "
                                        r"a pair \(output, residuals\), got Array"):
        fa.grad(f)(x, x, x)
