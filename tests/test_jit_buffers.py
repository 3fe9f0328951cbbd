"""Buffer reuse in compiled programs (``transforms/executor.py``, ``transforms/buffers.py``):
dead intermediates' buffers hold later results (``out=``), results stay identical to eager,
and no buffer that is still visible (an output, an input, a constant, a value some view
still reads) is ever written."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnarray as fa
from fnarray.core.primitive import REGISTRY
from fnarray.transforms import buffers
from tests.samples import all_samples

SAMPLES = all_samples()


def _source(jitted) -> str:
    return next(iter(jitted._cache.values())).run.source


def _bufs(sample):
    return [np.asarray(a) for a in sample.args]


@pytest.mark.parametrize("name", sorted(p.name for p in buffers._OUT_KERNELS))
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_out_kernel_matches_impl_into_contiguous_and_strided_buffers(name, data):
    prim = REGISTRY[name]
    sample = data.draw(SAMPLES[name]())
    args = _bufs(sample)
    want = prim.impl(np, *args, **sample.params)
    kernel = buffers.out_kernel(prim, sample.params)
    for order in "CF":
        out = np.full(want.shape, 7, dtype=want.dtype, order=order)
        got = kernel(np, *args, out=out, **sample.params)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", sorted(n for n, p in REGISTRY.items()
                                        if n in SAMPLES and buffers.is_fresh(p, {})))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_fresh_kernels_never_return_an_operand_or_a_view_of_one(name, data):
    prim = REGISTRY[name]
    sample = data.draw(SAMPLES[name]())
    if not buffers.is_fresh(prim, sample.params):
        return
    args = _bufs(sample)
    out = np.asarray(prim.impl(np, *args, **sample.params))
    for a in args:
        assert out is not a and not np.shares_memory(out, a)


def test_gemm_and_bias_add_write_into_dead_buffers():
    rng = np.random.default_rng(0)
    w1, w2 = (fa.asarray(rng.normal(size=(6, 6))) for _ in range(2))
    x = fa.asarray(rng.normal(size=(4, 6)))

    def f(x, w1, w2):
        a = x @ w1 + 1.0    # the bias add writes into the matmul's result
        mask = a > 0.5      # a's last use (a bool result): a's buffer is free after it
        c = x @ w2          # so this matmul writes into it
        return fa.sum(c * mask)

    g = fa.jit(f)
    np.testing.assert_array_equal(np.asarray(g(x, w1, w2)), np.asarray(f(x, w1, w2)))
    src = _source(g)
    assert src.count("out=") >= 3, src
    kernel_into = [line for line in src.splitlines() if " = k" in line and "out=" in line]
    assert kernel_into, src  # a non-ufunc kernel (the GEMM) wrote into a dead buffer


def test_value_read_through_a_view_is_not_overwritten():
    rng = np.random.default_rng(1)
    x, w1, w2 = (fa.asarray(rng.normal(size=(5, 5))) for _ in range(3))

    def f(x, w1, w2):
        a = x @ w1
        view = a.T          # a view of a's buffer, alive until the end
        b = fa.exp(a)       # last direct use of a
        c = (b @ w2) @ w1   # same shape as a: must not land in a's buffer
        return view + 0.0, c

    g = fa.jit(f)
    for got, want in zip(g(x, w1, w2), f(x, w1, w2)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_outputs_inputs_and_constants_are_never_written():
    rng = np.random.default_rng(2)
    c = fa.asarray(rng.normal(size=(4, 4)))
    x, w = (fa.asarray(rng.normal(size=(4, 4))) for _ in range(2))
    before = [np.asarray(v).copy() for v in (c, x, w)]

    def f(x, w):
        a = x @ w           # an output: its buffer is the caller's
        b = fa.tanh(a) @ c  # a GEMM after a's last use inside the program
        return a, b @ w, fa.sin(b)

    g = fa.jit(f)
    outs = g(x, w)
    for got, want in zip(outs, f(x, w)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    first = [np.asarray(o).copy() for o in outs]
    g(x, w)
    for o, kept in zip(outs, first):  # a second call writes nothing the first returned
        np.testing.assert_array_equal(np.asarray(o), kept)
    for v, b in zip((c, x, w), before):
        np.testing.assert_array_equal(np.asarray(v), b)


def test_donated_input_buffer_receives_a_gemm_result():
    rng = np.random.default_rng(3)
    w = fa.asarray(rng.normal(size=(4, 4)))
    x_np = rng.normal(size=(4, 4))

    def f(x, w):
        return fa.sum(fa.exp(x) @ w * 0.5)

    g = fa.jit(f, donate_argnums=0)
    x = fa.asarray(x_np.copy())
    np.testing.assert_array_equal(np.asarray(g(x, w)), np.asarray(f(fa.asarray(x_np), w)))
    with pytest.raises(RuntimeError, match="donated"):
        _ = x.shape
    assert np.asarray(w).shape == (4, 4)  # not donated: still readable


def _random_program(rng, n_ops: int):
    """A random straight-line function of two (n, n) arrays mixing GEMMs, elementwise ops,
    views and reductions, returning a random subset of its values."""
    ops = []
    for _ in range(n_ops):
        ops.append((rng.integers(0, 7), rng.integers(0, 1 << 30), rng.integers(0, 1 << 30)))
    outs = rng.choice(n_ops, size=min(3, n_ops), replace=False)

    def f(x, w):
        vals = [x, w]
        for kind, i, j in ops:
            a, b = vals[i % len(vals)], vals[j % len(vals)]
            if kind == 0:
                v = a @ b
            elif kind == 1:
                v = a @ b.T
            elif kind == 2:
                v = fa.tanh(a) + b
            elif kind == 3:
                v = a.T
            elif kind == 4:
                v = a * 0.5 - b
            elif kind == 5:
                v = fa.reshape(a, (-1,))[::-1].reshape(a.shape)
            else:
                v = a + fa.sum(b, axis=0, keepdims=True)
            vals.append(v)
        return [vals[2 + k] for k in outs]
    return f


@pytest.mark.parametrize("seed", range(25))
def test_random_programs_equal_eager_and_leave_inputs_alone(seed):
    rng = np.random.default_rng(seed)
    f = _random_program(rng, int(rng.integers(3, 12)))
    x_np, w_np = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    want = f(fa.asarray(x_np), fa.asarray(w_np))
    for donate in ((), (0,)):
        g = fa.jit(f, donate_argnums=donate)
        x, w = fa.asarray(x_np.copy()), fa.asarray(w_np.copy())
        got = g(x, w)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(w), w_np)
        if not donate:
            np.testing.assert_array_equal(np.asarray(x), x_np)
