"""Behaviour of the transformations (API.md section 2): exact values, composition, pytrees,
custom rules, define-by-run control flow, and vmap's axis handling."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pytest

import fnarray as fa
from fnarray.testing import check_grads


def f64(x):
    return fa.asarray(np.asarray(x, dtype=np.float64))


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# --- exact values --------------------------------------------------------------------------

def test_derivative_of_polynomial():
    assert float(fa.grad(lambda x: x ** 2 + 3 * x + 1)(2.0)) == 7.0


def test_partial_derivatives_of_product():
    e = lambda a, b: (a + b) * (a * b)
    da, db = fa.grad(e, argnums=(0, 1))(3.0, 2.0)
    assert (float(da), float(db)) == (16.0, 21.0)


def test_vjp_of_square():
    out, vjp_fn = fa.vjp(lambda x: x ** 2, f64([1.0, 2.0, 3.0]))
    (g,) = vjp_fn(f64([2.0, 4.0, 6.0]))
    close(out, [1.0, 4.0, 9.0])
    close(g, [4.0, 16.0, 36.0])


def test_third_derivative_of_sin():
    xs = np.linspace(-3, 3, 7)
    d3 = fa.grad(fa.grad(fa.grad(fa.sin)))
    for x in xs:
        close(d3(f64(x)), -np.cos(x))


def test_value_and_grad():
    v, g = fa.value_and_grad(lambda x: fa.sum(x ** 3))(f64([1.0, 2.0]))
    close(v, 9.0)
    close(g, [3.0, 12.0])


# --- composition ---------------------------------------------------------------------------

def _rosen(x):
    return fa.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def test_hessian_vector_product_matches_hessian():
    x = f64([0.3, -1.2, 0.7, 2.0])
    v = f64([1.0, 0.5, -0.25, 2.0])
    _, hvp = fa.jvp(fa.grad(_rosen), (x,), (v,))
    h = fa.hessian(_rosen)(x)
    assert h.shape == (4, 4)
    close(hvp, np.asarray(h) @ np.asarray(v), 1e-9)
    # reverse-over-reverse gives the same product
    close(fa.grad(lambda y: fa.vdot(fa.grad(_rosen)(y), v))(x), hvp, 1e-9)


def test_jacfwd_of_jacrev_equals_jacrev_of_jacfwd():
    f = lambda x: fa.sin(x) * fa.sum(x ** 2)
    x = f64([0.1, 0.4, -0.7])
    close(fa.jacfwd(fa.jacrev(f))(x), fa.jacrev(fa.jacfwd(f))(x), 1e-9)


def test_jacobian_shapes_are_out_shape_plus_in_shape():
    x = f64(np.arange(6.0).reshape(2, 3) / 10)
    f = lambda x: fa.reshape(fa.sin(x), (3, 2)) @ fa.ones((2, 4), dtype=fa.float64)
    for jac in (fa.jacfwd, fa.jacrev):
        j = jac(f)(x)
        assert j.shape == (3, 4, 2, 3)
        fd = np.zeros((3, 4, 2, 3))
        h = 1e-6
        for idx in np.ndindex(2, 3):
            e = np.zeros((2, 3))
            e[idx] = h
            fd[(..., *idx)] = (np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h)
        close(j, fd, 1e-6)
    assert fa.hessian(lambda x: fa.sum(x ** 3))(x).shape == (2, 3, 2, 3)


def test_argnums_tuple_and_has_aux():
    def f(x, y, z):
        return fa.sum(x * y) + z, {"xy": x * y}

    (gx, gz), aux = fa.grad(f, argnums=(0, 2), has_aux=True)(f64([1.0, 2.0]), f64([3.0, 4.0]),
                                                             f64(5.0))
    close(gx, [3.0, 4.0])
    close(gz, 1.0)
    close(aux["xy"], [3.0, 8.0])
    (val, aux2), g = fa.value_and_grad(f, argnums=1, has_aux=True)(
        f64([1.0, 2.0]), f64([3.0, 4.0]), f64(5.0))
    close(val, 16.0)
    close(g, [1.0, 2.0])
    jac, aux3 = fa.jacrev(lambda x: (x * 2, x.sum()), has_aux=True)(f64([1.0, 2.0]))
    close(jac, 2 * np.eye(2))
    close(aux3, 3.0)
    jac, aux4 = fa.jacfwd(lambda x: (x * 2, x.sum()), has_aux=True)(f64([1.0, 2.0]))
    close(jac, 2 * np.eye(2))
    close(aux4, 3.0)
    out, vjp_fn, aux5 = fa.vjp(lambda x: (x * 3, "label"), f64([1.0]), has_aux=True)
    assert aux5 == "label"
    close(vjp_fn(f64([1.0]))[0], [3.0])


# --- pytrees -------------------------------------------------------------------------------

class Point(NamedTuple):
    x: object
    y: object


@fa.tree.register_dataclass
@dataclasses.dataclass
class Params:
    w: object
    b: object


def _loss(p: Params, pt: Point, cfg: dict):
    return fa.sum((p.w * pt.x + p.b - pt.y) ** 2) * cfg["scale"]


def _tree_inputs():
    p = Params(w=f64([0.5, -1.0]), b=f64(0.25))
    pt = Point(x=f64([1.0, 2.0]), y=f64([0.0, 1.0]))
    return p, pt, {"scale": f64(2.0)}


def test_grad_of_pytrees():
    p, pt, cfg = _tree_inputs()
    g = fa.grad(_loss)(p, pt, cfg)
    assert isinstance(g, Params)
    r = np.asarray(p.w) * np.asarray(pt.x) + np.asarray(p.b) - np.asarray(pt.y)
    close(g.w, 4 * r * np.asarray(pt.x))
    close(g.b, 4 * r.sum())
    gp, gpt, gcfg = fa.grad(_loss, argnums=(0, 1, 2))(p, pt, cfg)
    assert isinstance(gpt, Point) and isinstance(gcfg, dict)
    close(gcfg["scale"], np.sum(r ** 2))


def test_jvp_vjp_and_jacobians_of_pytrees():
    p, pt, cfg = _tree_inputs()
    f = lambda p: {"out": p.w * 2 + p.b, "pair": Point(p.w, p.b * 3)}
    tp = Params(w=f64([1.0, 0.0]), b=f64(1.0))
    out, t = fa.jvp(f, (p,), (tp,))
    assert isinstance(t["pair"], Point)
    close(t["out"], [3.0, 1.0])
    close(t["pair"].y, 3.0)
    out, vjp_fn = fa.vjp(f, p)
    (ct,) = vjp_fn({"out": f64([1.0, 1.0]), "pair": Point(f64([0.0, 1.0]), f64(1.0))})
    assert isinstance(ct, Params)
    close(ct.w, [2.0, 3.0])
    close(ct.b, 5.0)
    for jac in (fa.jacfwd, fa.jacrev):
        j = jac(f)(p)
        assert isinstance(j["pair"], Point) and isinstance(j["out"], Params)
        assert j["out"].w.shape == (2, 2) and j["out"].b.shape == (2,)
        close(j["out"].w, 2 * np.eye(2))
        close(j["pair"].y.b, 3.0)
    h = fa.hessian(lambda p: fa.sum(p.w ** 2 * p.b))(p)
    assert isinstance(h, Params) and isinstance(h.w, Params)
    close(h.w.w, 2 * np.asarray(p.b) * np.eye(2))
    close(h.w.b, 2 * np.asarray(p.w))


def test_linearize_matches_jvp():
    f = lambda x, y: fa.sin(x) * y ** 2
    x, y = f64([0.1, 0.2]), f64([1.5, -0.5])
    out, f_jvp = fa.linearize(f, x, y)
    close(out, f(x, y))
    for tx, ty in [([1.0, 0.0], [0.0, 0.0]), ([0.3, -2.0], [1.0, 4.0])]:
        _, expected = fa.jvp(f, (x, y), (f64(tx), f64(ty)))
        close(f_jvp(f64(tx), f64(ty)), expected)


def test_stop_gradient():
    f = lambda x: x * fa.stop_gradient(x) + fa.stop_gradient(x ** 3)
    close(fa.grad(f)(f64(2.0)), 2.0)
    _, t = fa.jvp(f, (f64(2.0),), (f64(1.0),))
    close(t, 2.0)
    close(fa.grad(fa.grad(lambda x: fa.stop_gradient(x) * x ** 2))(f64(3.0)), 6.0)
    tree = fa.stop_gradient({"a": f64(1.0), "b": [f64(2.0)]})
    close(tree["b"][0], 2.0)


# --- custom rules --------------------------------------------------------------------------

@fa.custom_jvp
def softplus(x):
    return fa.log1p(fa.exp(x))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return softplus(x), t * fa.sigmoid(x)


@fa.custom_vjp
def clip_gradient(x, lo, hi):
    return x * 1.0


def _clip_fwd(x, lo, hi):
    return x * 1.0, (lo, hi)


def _clip_bwd(res, g):
    lo, hi = res
    return fa.clip(g, lo, hi), None, None


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


@fa.custom_vjp
def cube(x):
    return x ** 3


cube.defvjp(lambda x: (x ** 3, x), lambda x, g: (3 * x ** 2 * g,))


def test_custom_jvp_under_every_transform():
    x = f64([-1.0, 0.0, 2.0])
    sig = 1 / (1 + np.exp(-np.asarray(x)))
    close(softplus(x), np.log1p(np.exp(np.asarray(x))))
    close(fa.grad(lambda x: fa.sum(softplus(x)))(x), sig)
    close(fa.jvp(softplus, (x,), (fa.ones_like(x),))[1], sig)
    close(fa.vmap(fa.grad(softplus))(x), sig)
    close(fa.vmap(softplus)(x), softplus(x))
    close(fa.grad(fa.grad(softplus))(f64(0.5)), (lambda s: s * (1 - s))(1 / (1 + np.exp(-0.5))))
    check_grads(softplus, (x,), order=2)


def test_custom_vjp_under_every_transform():
    x = f64([-3.0, 0.5, 4.0])
    g = fa.grad(lambda x: fa.sum(clip_gradient(x, -1.0, 1.0) * x))(x)
    close(g, np.clip(np.asarray(x), -1, 1) + np.asarray(x))
    close(fa.vmap(fa.grad(cube))(x), 3 * np.asarray(x) ** 2)
    close(fa.jvp(cube, (x,), (fa.ones_like(x),))[1], 3 * np.asarray(x) ** 2)
    close(fa.grad(fa.grad(cube))(f64(2.0)), 12.0)
    check_grads(cube, (x,), order=2)


def test_custom_jvp_with_pytree_and_nondiff_args():
    from functools import partial

    @partial(fa.custom_jvp, nondiff_argnums=(0,))
    def scale(k, d):
        return {"y": d["x"] * k}

    @scale.defjvp
    def _scale_jvp(k, primals, tangents):
        (d,), (t,) = primals, tangents
        return scale(k, d), {"y": t["x"] * k}

    g = fa.grad(lambda x: fa.sum(scale(3.0, {"x": x})["y"]))(f64([1.0, 2.0]))
    close(g, [3.0, 3.0])


# --- define-by-run -------------------------------------------------------------------------

def _piecewise(x):
    y = x
    while fa.sum(fa.abs(y)) < 10:
        y = y * 2 if y[0] > 0 else y * 3
    for i in range(2):
        y = y + i * x
    return fa.sum(y ** 2)


def test_python_control_flow_under_grad_and_jvp():
    x = f64([1.0, 0.5])
    # y doubles 3 times (|y| sums 1.5 -> 12), then y = 8x + x: f = sum(81 x^2).
    # From [s, s] with s < 0, y triples twice (sum 2 -> 18): y = 10 [s, s], f / 2 = 100 s^2.
    close(_piecewise(x), 81 * np.sum(np.asarray(x) ** 2))
    close(fa.grad(_piecewise)(x), 162 * np.asarray(x))
    close(fa.jvp(_piecewise, (x,), (f64([1.0, 0.0]),))[1], 162.0)
    close(fa.grad(fa.grad(lambda s: _piecewise(fa.stack([s, s])) / 2))(f64(-1.0)),
          200.0, 1e-9)


# --- vmap ----------------------------------------------------------------------------------

def test_vmap_in_axes_pytrees_none_and_negative():
    a = f64(np.arange(12.0).reshape(3, 4))
    b = f64(np.arange(4.0))
    tree = {"m": a, "v": b}
    out = fa.vmap(lambda t: t["m"] * t["v"], in_axes=({"m": 0, "v": None},))(tree)
    close(out, np.asarray(a) * np.asarray(b))
    out = fa.vmap(lambda m, v: m @ v, in_axes=(-1, None))(fa.transpose(a), b)
    close(out, np.asarray(a) @ np.asarray(b))
    out = fa.vmap(lambda m, v: m * v, in_axes=[1, 0])(a, b)
    close(out, (np.asarray(a) * np.asarray(b)).T)
    out = fa.vmap(lambda p: p.x + p.y, in_axes=(Point(0, None),))(Point(a, b))
    close(out, np.asarray(a) + np.asarray(b))


def test_vmap_out_axes():
    a = f64(np.arange(6.0).reshape(2, 3))
    out = fa.vmap(lambda r: r * 2, out_axes=1)(a)
    close(out, (2 * np.asarray(a)).T)
    out = fa.vmap(lambda r: r * 2, out_axes=-1)(a)
    close(out, (2 * np.asarray(a)).T)
    s, c = fa.vmap(lambda r: (fa.sum(r), f64(7.0)), out_axes=(0, None))(a)
    close(s, np.asarray(a).sum(1))
    close(c, 7.0)
    d = fa.vmap(lambda r: {"a": r, "b": fa.sum(r)}, out_axes={"a": 1, "b": 0})(a)
    close(d["a"], np.asarray(a).T)
    out = fa.vmap(lambda r: f64(1.0), axis_size=None)(a)
    close(out, [1.0, 1.0])


def test_nested_vmap_is_an_outer_product():
    x, y = f64([1.0, 2.0, 3.0]), f64([10.0, 20.0])
    out = fa.vmap(fa.vmap(lambda a, b: a * b, in_axes=(None, 0)), in_axes=(0, None))(x, y)
    close(out, np.outer(np.asarray(x), np.asarray(y)))
    out = fa.vmap(fa.vmap(lambda a, b: a * b, in_axes=(None, 0)), in_axes=(0, None),
                  out_axes=1)(x, y)
    close(out, np.outer(np.asarray(x), np.asarray(y)).T)


def test_per_example_gradients():
    rng = np.random.default_rng(0)
    w = f64(rng.standard_normal(3))
    xs = f64(rng.standard_normal((5, 3)))
    ys = f64(rng.standard_normal(5))
    loss = lambda w, x, y: (fa.vdot(w, x) - y) ** 2
    per_example = fa.vmap(fa.grad(loss), in_axes=(None, 0, 0))(w, xs, ys)
    assert per_example.shape == (5, 3)
    for i in range(5):
        close(per_example[i], fa.grad(loss)(w, xs[i], ys[i]))
    close(fa.grad(lambda w: fa.sum(fa.vmap(loss, in_axes=(None, 0, 0))(w, xs, ys)))(w),
          fa.sum(per_example, axis=0))


def test_vmap_of_jacobian_and_jvp_of_vmap():
    xs = f64(np.linspace(0.1, 1.0, 6).reshape(2, 3))
    j = fa.vmap(fa.jacrev(fa.sin))(xs)
    for i in range(2):
        close(j[i], np.diag(np.cos(np.asarray(xs)[i])))
    _, t = fa.jvp(fa.vmap(lambda r: fa.sum(r ** 2)), (xs,), (fa.ones_like(xs),))
    close(t, 2 * np.asarray(xs).sum(1))


@pytest.mark.parametrize("order", [1, 2])
def test_check_grads_on_a_composite(order):
    f = lambda x, y: {"a": fa.tanh(x @ y), "b": fa.logsumexp(x, axis=1)}
    rng = np.random.default_rng(1)
    check_grads(f, (f64(rng.standard_normal((2, 3))), f64(rng.standard_normal((3, 2)))),
                order=order)


def test_check_grads_reports_a_wrong_rule():
    @fa.custom_jvp
    def bad(x):
        return fa.sin(x)

    bad.defjvp(lambda p, t: (fa.sin(p[0]), 1.5 * fa.cos(p[0]) * t[0]))
    with pytest.raises(AssertionError, match="JVP of f vs central finite differences"):
        check_grads(bad, (f64([0.1, 0.2]),), order=1, modes=("fwd",))

    @fa.custom_vjp
    def bad_rev(x):
        return fa.sin(x)

    bad_rev.defvjp(lambda x: (fa.sin(x), x), lambda x, g: (2 * g * fa.cos(x),))
    with pytest.raises(AssertionError, match="VJP of f vs finite differences"):
        check_grads(bad_rev, (f64([0.3]),), order=1, modes=("rev",))
    with pytest.raises(AssertionError, match="JVP of f vs central finite differences"):
        check_grads(bad_rev, (f64([0.3]),), order=1)
