"""Permuted results computed in their final layout (``transforms/layout.py``): a transpose of
a contraction's result becomes the contraction with swapped operands, so reverse mode of
``x @ w.T`` gives a row-major weight cotangent; results equal eager."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa


def _loss(w, x):
    return fa.sum(fa.tanh(x @ w.T))


def test_weight_cotangent_of_x_times_w_transposed_is_row_major():
    rng = np.random.default_rng(0)
    w = fa.asarray(rng.normal(size=(5, 7)).astype(np.float32))
    x = fa.asarray(rng.normal(size=(4, 7)).astype(np.float32))
    grad = fa.grad(_loss)
    prog = fa.make_ir(grad)(w, x)
    last = prog.eqns[-1]  # the weight cotangent: one contraction, no transpose after it
    assert last.prim.name == "dot_general" and last.outvars[0] is prog.outvars[0], prog
    got = fa.jit(grad)(w, x)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(grad(w, x)))
    assert np.asarray(got).flags.c_contiguous


def test_permutation_of_a_result_used_elsewhere_is_kept():
    rng = np.random.default_rng(1)
    a = fa.asarray(rng.normal(size=(3, 4)))
    b = fa.asarray(rng.normal(size=(4, 5)))

    def f(a, b):
        c = a @ b
        return c.T, c * 2.0  # c is read twice: it must still be computed as it is

    prog = fa.make_ir(f)(a, b)
    assert "transpose" in prog.primitive_names()
    for got, want in zip(fa.jit(f)(a, b), f(a, b)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("perm, folded", [
    ((0, 2, 1), True),    # batch axis first, free blocks swapped: the swapped contraction
    ((1, 0, 2), False),   # moves the batch axis: stays a transpose
    ((2, 1, 0), False),
    ((0, 1, 2), True),    # the identity (empty transpose) is absorbed as well
])
def test_batched_contraction_absorbs_only_the_block_swap(perm, folded):
    rng = np.random.default_rng(2)
    a = fa.asarray(rng.normal(size=(2, 3, 4)))
    b = fa.asarray(rng.normal(size=(2, 4, 5)))

    def f(a, b):
        return fa.permute_dims(fa.matmul(a, b), perm)

    names = fa.make_ir(f)(a, b).primitive_names()
    assert ("transpose" not in names) == folded, names
    got, want = np.asarray(fa.jit(f)(a, b)), np.asarray(f(a, b))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    if folded:
        assert got.flags.c_contiguous


@pytest.mark.parametrize("a_shape, b_shape, folded", [
    ((8, 64), (64, 3), False),  # swapped: 3 rows, 8 columns over 64 (the slower order)
    ((3, 64), (64, 8), True),   # swapped: 8 rows, 3 columns (the faster order)
    ((8, 2), (2, 3), True),     # a contraction shorter than the columns
])
def test_swap_into_the_slower_product_order_is_not_folded(a_shape, b_shape, folded):
    """A transpose of a product is absorbed only where the swapped product is not the
    order BLAS runs slower (``ops.linalg.shorter_rows_first``); values equal eager."""
    from fnarray.ops.linalg import shorter_rows_first
    rng = np.random.default_rng(3)
    a, b = fa.asarray(rng.normal(size=a_shape)), fa.asarray(rng.normal(size=b_shape))

    def f(a, b):
        return (a @ b).T

    names = fa.make_ir(f)(a, b).primitive_names()
    assert ("transpose" not in names) == folded, names
    assert shorter_rows_first(b_shape[1], a_shape[0], a_shape[1]) == (not folded)
    np.testing.assert_array_equal(np.asarray(fa.jit(f)(a, b)), np.asarray(f(a, b)))
