"""Structured control flow (``fa.scan``, ``cond``, ``switch``, ``while_loop``, ``fori_loop``,
``map``) eagerly, under ``jit`` and under every transformation; checkpointed scan bodies;
IR size independent of the trip count; the errors users meet."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
from fnarray import nn
from fnarray.testing import check_grads


def f64(x):
    return fa.asarray(np.asarray(x, dtype=np.float64))


RNG = np.random.default_rng(0)
W = f64(RNG.normal(size=(3, 3)) * 0.5)
XS = f64(RNG.normal(size=(5, 3)))


def rnn_like(w, h0, xs, reverse=False):
    """A pytree carry (a tensor and a scalar in a dict) and a pytree of outputs."""
    def step(carry, x):
        h = fa.tanh(w @ carry["h"] + x)
        s = carry["s"] * 0.9 + fa.sum(h * x)
        return {"h": h, "s": s}, (h, s)
    return fa.scan(step, {"h": h0, "s": f64(0.0)}, xs, reverse=reverse)


def rnn_loop(w, h0, xs, reverse=False):
    h, s, hs, ss = h0, f64(0.0), [], []
    order = range(xs.shape[0] - 1, -1, -1) if reverse else range(xs.shape[0])
    for t in order:
        h = fa.tanh(w @ h + xs[t])
        s = s * 0.9 + fa.sum(h * xs[t])
        hs.append(h)
        ss.append(s)
    if reverse:
        hs, ss = hs[::-1], ss[::-1]
    return {"h": h, "s": s}, (fa.stack(hs), fa.stack(ss))


def assert_trees_close(a, b, rtol=1e-10):
    la, ta = fa.tree.flatten(a)
    lb, tb = fa.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=1e-12)


# --- values -----------------------------------------------------------------------------------

@pytest.mark.parametrize("reverse", [False, True])
def test_scan_pytree_carry_matches_loop_eager_and_jit(reverse):
    h0 = f64(np.ones(3))
    expected = rnn_loop(W, h0, XS, reverse)
    assert_trees_close(rnn_like(W, h0, XS, reverse), expected)
    assert_trees_close(fa.jit(rnn_like, static_argnums=3)(W, h0, XS, reverse), expected)


def test_zero_length_scan_and_xs_none():
    carry, ys = fa.scan(lambda c, x: (c + x, c * 2), f64(1.0), f64(np.zeros((0,))))
    assert float(carry) == 1.0 and ys.shape == (0,) and ys.dtype == np.float64
    carry, ys = fa.scan(lambda c, _: (c * 2, c), f64(1.0), None, length=4)
    assert float(carry) == 16.0 and np.asarray(ys).tolist() == [1, 2, 4, 8]
    assert fa.grad(lambda c: fa.scan(lambda c, x: (c * x, c), c, f64(np.zeros(0)))[0])(
        f64(2.0)) == 1.0


@pytest.mark.parametrize("reverse", [False, True])
def test_unrolled_scan_same_values_and_step_order(reverse, capsys):
    def f(c0, unroll):
        def step(c, x):
            fa.debug.print("{}", x)
            return c * 0.5 + x, c * x
        return fa.scan(step, c0, f64(np.arange(7.0)), reverse=reverse, unroll=unroll)

    expected = f(f64(1.0), 1)
    order = capsys.readouterr().out
    for unroll in (3, True):
        assert_trees_close(f(f64(1.0), unroll), expected)
        assert capsys.readouterr().out == order
        assert_trees_close(fa.grad(lambda c: fa.sum(f(c, unroll)[1]))(f64(1.0)),
                           fa.grad(lambda c: fa.sum(f(c, 1)[1]))(f64(1.0)))
        capsys.readouterr()
    with pytest.raises(ValueError, match="unroll must be a positive int"):
        fa.scan(lambda c, x: (c, x), 0.0, XS, unroll=0)


def test_map_fori_loop_cond_switch_while():
    np.testing.assert_allclose(np.asarray(fa.map(lambda r: fa.sum(r ** 2), XS)),
                               np.sum(np.asarray(XS) ** 2, axis=1))
    assert float(fa.fori_loop(0, 5, lambda i, v: v + i, f64(0.0))) == 10.0
    assert float(fa.cond(f64(2.0) > 1, lambda x: x + 1, lambda x: x - 1, f64(3.0))) == 4.0
    branches = [lambda x: x, lambda x: 2 * x, lambda x: 3 * x]
    assert [float(fa.switch(i, branches, f64(1.0))) for i in (-3, 0, 1, 2, 7)] == [1, 1, 2, 3, 3]
    assert float(fa.while_loop(lambda c: c < 10, lambda c: c * 2, f64(1.0))) == 16.0


def test_jit_with_traced_bounds_and_predicates():
    f = fa.jit(lambda n, x: fa.fori_loop(0, n, lambda i, v: v * x, fa.ones_like(x)))
    assert float(f(fa.asarray(3), f64(2.0))) == 8.0
    assert float(f(fa.asarray(5), f64(2.0))) == 32.0 and f.trace_count == 1
    g = fa.jit(lambda p, x: fa.cond(p, lambda v: v * 2, lambda v: -v, x))
    assert float(g(True, f64(3.0))) == 6.0 and float(g(False, f64(3.0))) == -3.0
    assert g.trace_count == 1


def nested(w, x):
    """A scan inside a cond inside a while_loop."""
    def body(c):
        i, v = c
        smooth = lambda u: fa.scan(lambda a, _: (0.5 * a + 0.2 * fa.sin(a * w), None), u,  # noqa: E731
                                   None, length=3)[0]
        return i + 1, fa.cond(i % 2 == 0, smooth, lambda u: u * 0.8 + w, v)
    return fa.while_loop(lambda c: c[0] < 4, body, (fa.asarray(0), x))[1]


def nested_loop(w, x):
    for i in range(4):
        if i % 2 == 0:
            for _ in range(3):
                x = 0.5 * x + 0.2 * fa.sin(x * w)
        else:
            x = x * 0.8 + w
    return x


def test_nested_control_flow_eager_jit_jvp_vmap():
    w, x = f64([0.3, -0.7]), f64([1.2, 0.4])
    expected = nested_loop(w, x)
    assert_trees_close(nested(w, x), expected)
    assert_trees_close(fa.jit(nested)(w, x), expected)
    check_grads(nested, (w, x), order=2, modes=("fwd",))
    ws = f64(RNG.normal(size=(3, 2)))
    assert_trees_close(fa.vmap(nested, in_axes=(0, None))(ws, x),
                       fa.stack([nested_loop(ws[b], x) for b in range(3)]))


# --- derivatives ------------------------------------------------------------------------------

@pytest.mark.parametrize("reverse", [False, True])
def test_scan_derivatives_match_finite_differences(reverse):
    check_grads(lambda w, h, xs: rnn_like(w, h, xs, reverse), (W, f64(np.ones(3)), XS), order=2)


def test_scan_grad_and_jacobians_match_unrolled_loop():
    loss = lambda w, xs: rnn_like(w, f64(np.ones(3)), xs)[0]["s"]  # noqa: E731
    loop = lambda w, xs: rnn_loop(w, f64(np.ones(3)), xs)[0]["s"]  # noqa: E731
    for transform in (fa.grad, fa.jacfwd, fa.jacrev, fa.hessian):
        assert_trees_close(transform(loss)(W, XS), transform(loop)(W, XS), rtol=1e-8)
    assert_trees_close(fa.jit(fa.grad(loss, argnums=(0, 1)))(W, XS),
                       fa.grad(loop, argnums=(0, 1))(W, XS), rtol=1e-8)


def test_checkpointed_scan_body_same_gradient_fewer_residuals():
    def body(c, x):
        for _ in range(4):
            c = fa.sin(c * x) + c
        return c, None

    plain = lambda c, xs: fa.scan(body, c, xs)[0]  # noqa: E731
    remat = lambda c, xs: fa.scan(fa.checkpoint(body), c, xs)[0]  # noqa: E731
    c, xs = f64(0.4), f64(np.linspace(0.1, 1.0, 7))
    assert_trees_close(fa.grad(remat)(c, xs), fa.grad(plain)(c, xs))

    def stored(f):  # per-iteration values stored by the forward scan of grad(f)
        prog = fa.make_ir(fa.grad(f))(c, xs)
        return sum(len(e.outvars) for e in prog.eqns if e.prim.name == "scan" and
                   not e.params["reverse"])

    assert stored(remat) < stored(plain)


def test_fori_loop_reverse_mode_and_cond_derivative_of_taken_branch():
    f = lambda x: fa.fori_loop(0, 4, lambda i, v: fa.sin(v) * (i + 1.0), x)  # noqa: E731
    check_grads(f, (f64(0.7),), order=2)
    g = lambda x: fa.cond(x > 0, fa.sin, fa.cos, x)  # noqa: E731
    assert float(fa.grad(g)(f64(0.5))) == pytest.approx(np.cos(0.5))
    assert float(fa.grad(g)(f64(-0.5))) == pytest.approx(np.sin(0.5))
    check_grads(lambda x, y: fa.switch(1, [lambda a, b: a * b, lambda a, b: fa.exp(a) * b], x, y),
                (f64(0.3), f64([1.0, 2.0])), order=2)


def test_while_loop_forward_mode_and_reverse_mode_error():
    f = lambda x: fa.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, fa.sin(c[1]) * 2),  # noqa: E731
                                (0, x))[1]
    check_grads(f, (f64(0.4),), order=2, modes=("fwd",))
    with pytest.raises(TypeError, match=r"while_loop: reverse-mode.*fa\.fori_loop.*fa\.scan"):
        fa.grad(f)(f64(0.4))


def test_jvp_carries_tangents_only_for_perturbed_carries():
    # carry b never meets the perturbed input: its tangent stays a symbolic zero, so the
    # differentiated scan carries one tangent (for a), not two.
    def f(x):
        return fa.scan(lambda c, t: ((c[0] * x + t, c[1] * 2.0), c[1]), (x, f64(1.0)),
                       f64(np.ones(3)))

    prog = fa.make_ir(lambda x, t: fa.jvp(f, (x,), (t,)))(f64(0.5), f64(1.0))
    (loop,) = [e for e in prog.eqns if e.prim.name == "scan"]
    assert loop.params["n_carry"] == 3
    out, tan = fa.jvp(f, (f64(0.5),), (f64(1.0),))
    assert float(tan[0][1]) == 0.0 and np.asarray(tan[1]).tolist() == [0.0, 0.0, 0.0]


# --- batching ---------------------------------------------------------------------------------

def test_vmap_scan_matches_python_loop():
    ws = f64(RNG.normal(size=(4, 3, 3)) * 0.5)
    got = fa.vmap(lambda w: rnn_like(w, f64(np.ones(3)), XS))(ws)
    rows = [rnn_loop(ws[b], f64(np.ones(3)), XS) for b in range(4)]
    assert_trees_close(got, fa.tree.map(lambda *r: fa.stack(r), *rows))


def test_vmap_batched_predicates():
    # cond with a batched predicate: both branches run, results selected per example.
    xs = f64([-2.0, 1.0, 3.0])
    got = fa.vmap(lambda x: fa.cond(x > 0, lambda v: v * 10, lambda v: v - 1, x))(xs)
    assert np.asarray(got).tolist() == [-3.0, 10.0, 30.0]
    got = fa.vmap(lambda i, x: fa.switch(i, [lambda v: v, lambda v: v * 2], x))(
        fa.asarray([5, 0, -1]), xs)
    assert np.asarray(got).tolist() == [-4.0, 1.0, 3.0]
    # while_loop with a batched predicate: every lane stops at its own trip count.
    count = lambda x: fa.while_loop(lambda c: c[1] < 10, lambda c: (c[0] + 1, c[1] * 2),  # noqa: E731
                                    (0, x))
    n, v = fa.vmap(count)(f64([1.0, 3.0, 7.0, 20.0]))
    assert np.asarray(n).tolist() == [4, 2, 1, 0]
    assert np.asarray(v).tolist() == [16.0, 12.0, 14.0, 20.0]
    # ... and its forward-mode derivative per lane
    jac = fa.vmap(fa.jacfwd(lambda x: count(x)[1]))(f64([1.0, 3.0, 20.0]))
    assert np.asarray(jac).tolist() == [16.0, 4.0, 1.0]


def test_vmap_keeps_carries_that_do_not_vary_unbatched():
    x = f64([1.0, 2.0])
    # The counter does not depend on the batch: one plain loop, no per-example select.
    f = lambda x: fa.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 2), (0, x))  # noqa: E731
    prog = fa.make_ir(fa.vmap(f))(x)
    assert "select" not in str(prog)
    assert np.asarray(fa.vmap(f)(x)[1]).tolist() == [8.0, 16.0]
    g = lambda x: fa.fori_loop(0, 3, lambda i, v: v * x, x)  # noqa: E731
    (loop,) = [e for e in fa.make_ir(fa.vmap(g))(x).eqns if e.prim.name == "scan"]
    assert loop.outvars[0].aval.shape == ()  # the counter carry
    assert np.asarray(fa.vmap(g)(x)).tolist() == [1.0, 16.0]


# --- IR size ----------------------------------------------------------------------------------

def test_jitted_scan_and_lstm_ir_do_not_grow_with_sequence_length():
    def sizes(f, make):
        progs = [fa.make_ir(f)(*make(t)) for t in (4, 40)]
        return [len(p) for p in progs], [len(str(p).splitlines()) for p in progs]

    n, lines = sizes(lambda w, xs: rnn_like(w, f64(np.ones(3)), xs),
                     lambda t: (W, f64(np.ones((t, 3)))))
    assert n[0] == n[1] and lines[0] == lines[1]
    lstm = nn.LSTM(3, 4, num_layers=2)
    params = {k: v._value for k, v in lstm.named_parameters()}
    f = lambda p, x: nn.functional_call(lstm, p, (x,))[0]  # noqa: E731
    n, lines = sizes(f, lambda t: (params, fa.ones((t, 2, 3))))
    assert n[0] == n[1] and lines[0] == lines[1]
    g = lambda p, x: fa.sum(f(p, x))  # noqa: E731
    n, lines = sizes(fa.grad(g), lambda t: (params, fa.ones((t, 2, 3))))
    assert n[0] == n[1] and lines[0] == lines[1]


def test_ir_prints_sub_programs_nested():
    text = str(fa.make_ir(lambda x: fa.cond(x[0] > 0, fa.sin, fa.cos, x))(f64([1.0])))
    assert "    branches[0] = {" in text and "      " in text and "sin" in text


# --- errors -----------------------------------------------------------------------------------

def test_errors_name_the_function_types_and_fix():
    with pytest.raises(TypeError, match=r"scan: f must return a carry of the same shapes and "
                                        r"dtypes.*float64\[2\].*float64\[\]"):
        fa.scan(lambda c, x: (fa.stack([c, c]), x), f64(1.0), XS)
    with pytest.raises(TypeError, match=r"scan: f must return a pair"):
        fa.scan(lambda c, x: c, f64(1.0), XS)
    with pytest.raises(ValueError, match=r"scan: the leading axes of xs and length disagree"):
        fa.scan(lambda c, x: (c, x), f64(1.0), XS, length=3)
    with pytest.raises(TypeError, match=r"cond: every branch must return the same .*branch 1"):
        fa.cond(True, lambda x: x, lambda x: fa.stack([x, x]), f64(1.0))
    with pytest.raises(TypeError, match=r"while_loop: cond_fun must return a boolean scalar"):
        fa.while_loop(lambda c: c, lambda c: c, f64(1.0))
    with pytest.raises(TypeError, match=r"cond: pred must be a scalar.*fa\.where"):
        fa.cond(f64([1.0, 2.0]) > 0, fa.sin, fa.cos, f64(1.0))


def test_weak_initial_carry_takes_the_body_dtype():
    out = fa.fori_loop(0, 3, lambda i, v: v + f64(0.5), 0.0)
    assert out.dtype == np.float64 and float(out) == 1.5
