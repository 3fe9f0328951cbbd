"""``fa.debug.print``/``callback`` at execution time, ``fa.pure_callback``,
``fa.eval_shape``/``ShapeDtypeStruct`` and the ``fa.tree_util`` names."""

from __future__ import annotations

import dataclasses
import time
import tracemalloc

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat  # noqa: F401 - fa.compat.tensor


def test_debug_print_runs_every_time_the_jitted_program_runs(capsys):
    def f(x):
        fa.debug.print("x={x} total={}", fa.sum(x), x=x)
        fa.debug.print("no operands")
        return x * 2

    jf = fa.jit(f)
    jf(fa.arange(3.0))
    jf(fa.arange(1.0, 4.0))
    assert jf.trace_count == 1
    assert capsys.readouterr().out.splitlines() == [
        "x=[0. 1. 2.] total=3.0", "no operands", "x=[1. 2. 3.] total=6.0", "no operands"]


def test_debug_print_inside_scan_and_under_vmap_and_grad(capsys):
    def f(x):
        return fa.scan(lambda c, t: (c * t, fa.debug.print("c={}", c)), 1.0, x)[0]

    fa.jit(f)(fa.arange(1.0, 4.0))
    assert capsys.readouterr().out.splitlines() == ["c=1.0", "c=1.0", "c=2.0"]
    fa.vmap(lambda v: fa.debug.print("lane {}", v))(fa.arange(3.0))
    assert capsys.readouterr().out.splitlines() == ["lane 0.0", "lane 1.0", "lane 2.0"]
    assert float(fa.grad(lambda x: (fa.debug.print("{}", x), x * x)[1])(3.0)) == 6.0
    assert capsys.readouterr().out.splitlines() == ["3.0"]


def test_effects_in_loops_over_constants_are_staged_into_jit(capsys):
    # The scan reads only constants, so it could run while tracing; its print must still
    # happen on every call, and dead-code elimination must keep the unused scan.
    f = fa.jit(lambda x: (fa.scan(lambda c, t: (c + t, fa.debug.print("t={}", t)), 0.0,
                                  fa.arange(2.0)), x)[1])
    f(1.0)
    f(2.0)
    assert capsys.readouterr().out.splitlines() == ["t=0.0", "t=1.0"] * 2


def test_reverse_mode_runs_a_scans_forward_loop_once(capsys):
    def f(x):
        return fa.scan(lambda c, t: (c * t, fa.debug.print("t={}", t)), x, fa.arange(1.0, 3.0))[0]

    assert float(fa.grad(f)(2.0)) == 2.0
    assert capsys.readouterr().out.splitlines() == ["t=1.0", "t=2.0"]
    x = fa.compat.tensor(2.0, requires_grad=True)
    f(x).backward()
    assert float(x.grad) == 2.0
    assert capsys.readouterr().out.splitlines() == ["t=1.0", "t=2.0"]


def test_debug_callback_survives_optimisation():
    seen = []
    f = fa.jit(lambda x: (fa.debug.callback(lambda v: seen.append(np.asarray(v)), x * 1.0), x)[1])
    f(fa.ones(2))
    f(fa.zeros(2))
    assert [s.tolist() for s in seen] == [[1.0, 1.0], [0.0, 0.0]]


def test_pure_callback_values_jit_and_vmap():
    calls = []

    def host(x):
        calls.append(x.shape)
        return np.sin(x)

    spec = lambda x: fa.ShapeDtypeStruct(x.shape, x.dtype)  # noqa: E731
    f = lambda x: fa.pure_callback(host, spec(x), x) * 2  # noqa: E731
    x = fa.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(np.asarray(fa.jit(f)(x)), 2 * np.sin(np.asarray(x)), rtol=1e-6)
    calls.clear()
    np.testing.assert_allclose(np.asarray(fa.vmap(f)(x)), 2 * np.sin(np.asarray(x)), rtol=1e-6)
    assert calls == [(3,), (3,)]  # sequential: once per example
    calls.clear()
    g = lambda x: fa.pure_callback(host, spec(x), x, vmap_method="expand_dims")  # noqa: E731
    fa.vmap(g)(x)
    assert calls == [(2, 3)]  # one call on the whole batch


def test_pure_callback_errors():
    spec = fa.ShapeDtypeStruct((3,), np.float32)
    with pytest.raises(TypeError, match=r"pure_callback: no derivative|custom_jvp"):
        fa.grad(lambda x: fa.sum(fa.pure_callback(np.sin, spec, x)))(fa.ones(3))
    with pytest.raises(TypeError, match=r"pure_callback: result 0 .*shape \(2,\).*float32\[3\]"):
        fa.pure_callback(lambda x: np.zeros(2), spec, fa.ones(3))
    with pytest.raises(ValueError, match="vmap_method"):
        fa.pure_callback(np.sin, spec, fa.ones(3), vmap_method="vectorized")


def test_eval_shape_of_a_huge_input_is_instant_and_allocates_nothing():
    x = fa.ShapeDtypeStruct((100_000, 100_000), np.float32)

    def f(x, scale):
        y = fa.tanh(x @ x.T) * scale
        return {"rows": fa.sum(y, axis=1), "scan": fa.scan(lambda c, r: (c + r, r[:2]), x[0], x)}

    tracemalloc.start()
    start = time.perf_counter()
    out = fa.eval_shape(f, x, 2.0)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 5_000_000  # 40 GB if anything were materialised
    assert out["rows"] == fa.ShapeDtypeStruct((100_000,), np.float32)
    assert out["scan"][1].shape == (100_000, 2)
    assert fa.eval_shape(lambda a: a.sum(), fa.ones((2, 3))).shape == ()
    assert repr(out["rows"]) == "ShapeDtypeStruct(shape=(100000,), dtype=float32)"


def test_tree_util_jax_names_and_register_dataclass_meta_fields():
    tu = fa.tree_util
    tree = {"a": (1, 2), "b": [3]}
    leaves, treedef = tu.tree_flatten(tree)
    assert leaves == [1, 2, 3] and tu.tree_unflatten(treedef, leaves) == tree
    assert tu.tree_leaves(tu.tree_map(lambda v: v * 10, tree)) == [10, 20, 30]
    assert tu.tree_structure(tree) == treedef

    class Pair:
        def __init__(self, x, y):
            self.x, self.y = x, y

    tu.register_pytree_node(Pair, lambda p: ((p.x, p.y), None), lambda _, c: Pair(*c))
    assert tu.tree_leaves(Pair(1, (2, 3))) == [1, 2, 3]

    @dataclasses.dataclass
    class Layer:
        w: object
        name: str = dataclasses.field(default="dense", metadata={"static": True})

    tu.register_dataclass(Layer)
    leaves, td = tu.tree_flatten(Layer(fa.ones(2), "out"))
    assert len(leaves) == 1 and tu.tree_unflatten(td, leaves).name == "out"
    assert td != tu.tree_structure(Layer(fa.ones(2), "in"))  # metadata is part of the structure
    g = fa.grad(lambda layer: fa.sum(layer.w * 3))(Layer(fa.ones(2)))
    assert isinstance(g, Layer) and np.asarray(g.w).tolist() == [3.0, 3.0]

    @dataclasses.dataclass
    class Opt:
        lr: float
        m: object

    tu.register_dataclass(Opt, data_fields=["m"], meta_fields=["lr"])
    assert tu.tree_leaves(Opt(0.1, fa.zeros(2)))[0].shape == (2,)
    with pytest.raises(ValueError, match="must split the fields"):
        tu.register_dataclass(Opt, data_fields=["m"], meta_fields=[])
