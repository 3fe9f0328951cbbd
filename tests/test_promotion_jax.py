"""Type promotion across kinds follows JAX's lattice; NumPy scalars are weak (API.md §1).

The expected dtypes are JAX's documented promotion table (jax.numpy type promotion
semantics, 64-bit types enabled): an integer or bool array meeting a float or complex array
takes the inexact operand's dtype; within a kind the Array API tables apply."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa

# (a, b, JAX's result) for mixed-kind pairs, from JAX's promotion table.
JAX_TABLE = [
    ("float32", "int64", "float32"),
    ("float32", "int32", "float32"),
    ("float32", "uint64", "float32"),
    ("float16", "int64", "float16"),
    ("float16", "uint8", "float16"),
    ("float64", "int8", "float64"),
    ("bool", "float32", "float32"),
    ("bool", "float16", "float16"),
    ("complex64", "int64", "complex64"),
    ("complex64", "bool", "complex64"),
    ("complex64", "float64", "complex128"),
    ("complex128", "float32", "complex128"),
    ("bool", "int8", "int8"),
    ("uint8", "int8", "int16"),
]


@pytest.mark.parametrize("a, b, want", JAX_TABLE)
def test_mixed_kind_array_promotion_matches_jax(a, b, want):
    x, y = fa.ones(3, dtype=a), fa.ones(3, dtype=b)
    assert (x * y).dtype == want and (y * x).dtype == want
    assert fa.result_type(a, b) == want and fa.result_type(x, y) == want
    assert fa.jit(lambda u, v: u + v)(x, y).dtype == want
    assert fa.where(fa.ones(3, dtype=bool), x, y).dtype == want


def test_float32_times_int_array_computes_in_float32():
    f32 = fa.ones(5, dtype=fa.float32)
    assert (f32 * fa.arange(5)).dtype == fa.float32
    assert (fa.arange(5) / f32).dtype == fa.float32
    assert fa.matmul(fa.ones((2, 3)), fa.ones((3, 2), dtype=fa.int64)).dtype == fa.float32
    g = fa.grad(lambda w: (w * fa.arange(5)).sum())(f32)
    assert g.dtype == fa.float32
    np.testing.assert_allclose(g, np.arange(5))
    assert fa.concatenate([f32, fa.arange(2)]).dtype == fa.float32


def test_three_way_promotion_is_decided_by_the_inexact_operands():
    assert fa.result_type(fa.int64, fa.uint64, fa.float32) == fa.float32
    assert fa.result_type(fa.int8, fa.float16, fa.float32) == fa.float32
    assert fa.result_type(fa.int8, fa.uint8) == fa.int16  # same kind: Array API table


@pytest.mark.parametrize("scalar", [np.float64(2.0), np.float32(2.0), np.int64(2), np.int8(2),
                                    np.sqrt(4)])
def test_numpy_scalars_are_weak(scalar):
    f32 = fa.ones(3, dtype=fa.float32)
    assert (f32 * scalar).dtype == fa.float32
    assert (scalar * f32).dtype == fa.float32
    assert (f32 / scalar).dtype == fa.float32
    np.testing.assert_allclose(f32 * scalar, np.full(3, float(scalar)))
    assert fa.result_type(f32, scalar) == fa.float32


def test_numpy_scalar_kind_still_counts():
    # a weak float next to an integer array gives the default float, as a Python float does
    assert (fa.arange(3) * np.float64(0.5)).dtype == fa.float32
    assert (fa.ones(3, dtype=fa.int8) + np.int64(3)).dtype == fa.int8
    assert (fa.ones(3, dtype=fa.float32) * np.complex128(1j)).dtype == fa.complex64
    # converted by value: a NumPy integer that does not fit the array's dtype is an error
    with pytest.raises(OverflowError):
        fa.ones(3, dtype=fa.int8) + np.int64(300)


def test_numpy_arrays_stay_strong():
    # 0-d NumPy arrays are arrays, not scalars (as in JAX)
    assert (fa.ones(3, dtype=fa.float32) * np.array(2.0)).dtype == fa.float64
    assert fa.add(np.float64(1.0), np.float64(2.0)).dtype == fa.float64  # no array: NumPy's


def test_f32_over_numpy_sqrt_stays_float32_under_jit():
    d = 16

    @fa.jit
    def attn_scale(q):
        return q / np.sqrt(d)

    out = attn_scale(fa.ones((2, 2), dtype=fa.float32))
    assert out.dtype == fa.float32
    np.testing.assert_allclose(out, np.full((2, 2), 0.25))


def test_eager_results_keep_the_weak_type_a_traced_program_sees():
    # JAX: where of two Python floats is a weak float32, so a float16 array keeps its dtype
    c = fa.asarray(np.array([True, False]))
    x = fa.ones(2, dtype=fa.float16)

    def f(c, x):
        return x * fa.where(c, 1.0, 0.5)

    assert fa.where(c, 1.0, 0.5).weak_type
    assert f(c, x).dtype == fa.float16 == fa.jit(f)(c, x).dtype
    assert not (fa.ones(2) * 2.0).weak_type  # a strong operand makes a strong result
