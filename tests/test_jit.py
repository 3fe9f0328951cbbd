"""jit, make_ir and checkpoint: results equal eager, caching, retracing, errors, composition."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import fnarray as fa
from fnarray.transforms.reverse import Node


def mlp_loss(params, x, y):
    h = fa.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"]
    return fa.mean((logits - y) ** 2)


@pytest.fixture
def mlp():
    rng = np.random.default_rng(0)
    params = {"w1": fa.asarray(rng.normal(size=(4, 8))), "b1": fa.zeros(8, dtype=fa.float64),
              "w2": fa.asarray(rng.normal(size=(8, 2)))}
    x = fa.asarray(rng.normal(size=(5, 4)))
    y = fa.asarray(rng.normal(size=(5, 2)))
    return params, x, y


def close(a, b, tol=1e-12):
    for u, v in zip(fa.tree.leaves(a), fa.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol)


def test_jit_matches_eager_and_caches(mlp):
    params, x, y = mlp
    f = fa.jit(mlp_loss)
    close(f(params, x, y), mlp_loss(params, x, y))
    f(params, x, y)
    assert f.trace_count == 1 and f._cache_size() == 1
    f(params, fa.asarray(np.ones((7, 4))), fa.asarray(np.ones((7, 2))))  # new shape: retrace
    assert f.trace_count == 2 and f._cache_size() == 2
    f(params, x.astype(fa.float32), y)  # new dtype: retrace
    assert f.trace_count == 3


def test_side_effects_run_only_when_tracing():
    log = []

    def f(x):
        log.append("traced")
        return x * 2

    g = fa.jit(f)
    for _ in range(3):
        g(fa.ones(3))
    assert log == ["traced"]


def test_static_argnums_and_argnames():
    def f(x, n, *, mode):
        out = x
        for _ in range(n):
            out = out * 2 if mode == "double" else out + 1
        return out

    g = fa.jit(f, static_argnums=1, static_argnames="mode")
    np.testing.assert_allclose(np.asarray(g(fa.ones(2), 3, mode="double")), 8.0)
    np.testing.assert_allclose(np.asarray(g(fa.ones(2), 3, mode="add")), 4.0)
    assert g.trace_count == 2
    g(fa.ones(2), 3, mode="add")
    assert g.trace_count == 2


def test_unhashable_static_arg_is_a_clear_type_error():
    g = fa.jit(lambda x, cfg: x, static_argnums=1)
    with pytest.raises(TypeError, match="not hashable.*tuple"):
        g(fa.ones(2), [1, 2])


def test_control_flow_on_traced_value_names_line_and_fixes():
    def f(x):
        if x.sum() > 0:  # the line the error must show
            return x
        return -x

    with pytest.raises(fa.ConcretizationError) as e:
        fa.jit(f)(fa.ones(3))
    msg = str(e.value)
    assert "bool()" in msg and "if x.sum() > 0" in msg and "test_jit.py" in msg
    assert "static_argnums" in msg and "fa.where" in msg
    assert "fa.cond" in msg and "fa.while_loop" in msg and "fa.fori_loop" in msg


def test_vmap_control_flow_on_batched_value_suggests_where():
    with pytest.raises(fa.ConcretizationError, match="fa.where"):
        fa.vmap(lambda x: x if x > 0 else -x)(fa.ones(3))


def test_compositions(mlp):
    params, x, y = mlp
    g_eager = fa.grad(mlp_loss)(params, x, y)
    close(fa.jit(fa.grad(mlp_loss))(params, x, y), g_eager)
    close(fa.grad(fa.jit(mlp_loss))(params, x, y), g_eager)
    # per-example gradients: vmap(grad) vs a Python loop
    per_ex = fa.vmap(fa.grad(mlp_loss), in_axes=(None, 0, 0))(params, x[:, None], y[:, None])
    for i in range(x.shape[0]):
        close(fa.tree.map(lambda a: a[i], per_ex), fa.grad(mlp_loss)(params, x[i:i + 1], y[i:i + 1]))
    # jit(vmap(jvp))
    f = lambda v: fa.sin(v) * v
    tangents = fa.asarray(np.ones((3, 4)))
    xs = fa.asarray(np.linspace(0, 1, 12).reshape(3, 4))
    jvp_b = fa.jit(fa.vmap(lambda p, t: fa.jvp(f, (p,), (t,))[1]))
    close(jvp_b(xs, tangents), fa.cos(xs) * xs + fa.sin(xs))
    # jacfwd(jacrev) == hessian, vmap(vmap)
    h = lambda v: fa.sum(fa.sin(v) * v[::-1])
    v = fa.asarray(np.linspace(0.1, 1, 4))
    close(fa.jit(fa.jacfwd(fa.jacrev(h)))(v), fa.hessian(h)(v))
    close(fa.vmap(fa.vmap(lambda a: a * 2))(xs), xs * 2)


def test_make_ir_is_readable(mlp):
    params, x, y = mlp
    prog = fa.make_ir(fa.value_and_grad(mlp_loss))(params, x, y)
    text = str(prog)
    assert "inputs" in text and "outputs" in text and "dot_general" in text and "tanh" in text
    assert "float64[5,4]" in text


def test_passes_remove_dead_and_duplicate_code():
    def f(x):
        unused = fa.exp(x) * 3  # noqa: F841 - dead code the pass removes
        a = fa.sin(x)
        b = fa.sin(x)  # same as a: CSE
        return a + b

    prog = fa.make_ir(f)(fa.ones(3))
    names = prog.primitive_names()
    assert names.count("sin") == 1 and "exp" not in names


def test_elementwise_chains_form_fusion_groups_and_reuse_buffers():
    f = lambda x: fa.tanh(fa.exp(fa.sin(x) * 2.0) + 1.0)
    prog = fa.make_ir(f)(fa.ones(16))
    assert prog.fusion_groups and len(prog.fusion_groups[0]) >= 3
    g = fa.jit(f)
    x = fa.asarray(np.linspace(0, 1, 16))
    close(g(x), f(x))
    assert "out=" in g._cache[next(iter(g._cache))].run.source


def test_jit_never_writes_into_inputs_or_constants():
    c = fa.asarray(np.arange(4.0))
    x = fa.asarray(np.ones(4))
    before_x, before_c = np.asarray(x).copy(), np.asarray(c).copy()
    g = fa.jit(lambda v: fa.exp(fa.sin(v + c) * 2.0) - 1.0)
    g(x)
    g(x)
    np.testing.assert_array_equal(np.asarray(x), before_x)
    np.testing.assert_array_equal(np.asarray(c), before_c)


def test_donation_reuses_an_unaliased_buffer_and_invalidates_the_input():
    g = fa.jit(lambda v: fa.sin(v) * 2.0, donate_argnums=0)
    x = fa.asarray(np.linspace(0, 1, 8))
    expected = np.sin(np.linspace(0, 1, 8)) * 2.0
    out = g(x)
    np.testing.assert_allclose(np.asarray(out), expected)
    with pytest.raises(RuntimeError, match="donated"):
        _ = x.shape
    # An input that something else still sees is never overwritten.
    y = fa.asarray(np.linspace(0, 1, 8))
    view = np.asarray(y)
    g(y)
    np.testing.assert_allclose(view, np.linspace(0, 1, 8))


def test_leaked_tracer_names_the_transformation():
    leaked = []

    def f(x):
        leaked.append(x * 2)
        return x.sum()

    fa.grad(f)(fa.ones(3))
    with pytest.raises(fa.UnexpectedTracerError, match="vjp"):
        fa.sin(leaked[0]) + 1


def test_checkpoint_stores_fewer_intermediates_and_same_gradient():
    def block(x):
        for _ in range(10):
            x = fa.sin(x) * 1.1
        return x

    x = fa.asarray(np.linspace(0, 1, 5))
    plain = lambda v: block(v).sum()
    remat = lambda v: fa.checkpoint(block)(v).sum()
    close(fa.grad(plain)(x), fa.grad(remat)(x))

    def live_nodes(f):
        _, pullback = fa.vjp(f, x)
        gc.collect()
        return sum(isinstance(o, Node) for o in gc.get_objects())

    assert live_nodes(remat) < live_nodes(plain) // 3
    close(fa.jit(fa.grad(remat))(x), fa.grad(plain)(x))
    close(fa.vmap(fa.grad(remat))(fa.ones((2, 5))), fa.vmap(fa.grad(plain))(fa.ones((2, 5))))
    close(fa.grad(fa.grad(lambda s: fa.checkpoint(block)(s)))(fa.asarray(0.3)),
          fa.grad(fa.grad(block))(fa.asarray(0.3)))


def test_backward_visits_a_shared_node_after_all_its_consumers():
    """Regression: a value read both directly and through a longer path (a diamond) must
    receive every cotangent contribution before its own rule runs."""
    w = fa.asarray(np.array([[0.3, -1.2], [0.8, 0.5]]))
    x = fa.asarray(np.array([[1.0, -2.0]]))
    y = fa.asarray(np.array([[0.0, 1.0]]))

    def loss(m):
        logits = fa.maximum(x @ m, 0.0) @ w
        return fa.sum((logits - fa.logsumexp(logits, axis=1, keepdims=True)) * y)

    m0 = np.array([[0.5, 0.1], [-0.4, 0.9]])
    g = np.asarray(fa.grad(loss)(fa.asarray(m0)))
    eps = 1e-6
    for i in range(2):
        for j in range(2):
            e = np.zeros((2, 2))
            e[i, j] = eps
            fd = (float(loss(fa.asarray(m0 + e))) - float(loss(fa.asarray(m0 - e)))) / (2 * eps)
            assert abs(fd - g[i, j]) < 1e-6
