"""``isin`` and the ``size=``/``fill_value=`` forms of ``nonzero``, ``argwhere``,
``flatnonzero``, ``where(cond)`` and ``unique`` (jit-able), compared with NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa

X = np.array([[0, 3, 0], [1, 0, 2]])
A = np.array([3, 1, 2, 3, 1, np.nan, np.nan, 7.0])


def test_isin():
    e = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(fa.isin(e, [2, 4, 5]), np.isin(e, [2, 4, 5]))
    np.testing.assert_array_equal(fa.isin(e, np.array([[4]]), invert=True), np.isin(e, [[4]], invert=True))
    assert fa.jit(lambda v: fa.isin(v, fa.asarray([3])))(fa.asarray(e)).tolist() == [[False, False],
                                                                                     [True, False]]


def test_nonzero_family_with_size():
    rows, cols = fa.nonzero(X, size=5, fill_value=-1)
    np.testing.assert_array_equal(rows, [0, 1, 1, -1, -1])
    np.testing.assert_array_equal(cols, [1, 0, 2, -1, -1])
    rows, cols = fa.nonzero(X, size=2)  # truncated
    np.testing.assert_array_equal(np.stack([rows, cols]), np.stack(np.nonzero(X))[:, :2])
    np.testing.assert_array_equal(fa.jit(lambda v: fa.argwhere(v, size=3))(fa.asarray(X)), np.argwhere(X))
    np.testing.assert_array_equal(fa.where(X > 0, size=4, fill_value=(7, 8))[1], [1, 0, 2, 8])
    np.testing.assert_array_equal(fa.flatnonzero(X, size=4), [1, 3, 5, 0])
    batched = fa.vmap(lambda v: fa.nonzero(v, size=2)[0])(fa.asarray(X))
    np.testing.assert_array_equal(batched, [[1, 0], [0, 2]])
    with pytest.raises(ValueError, match="fill_value has 3 entries"):
        fa.nonzero(X, size=2, fill_value=(1, 2, 3))
    with pytest.raises(TypeError, match="one-argument form"):
        fa.where(X > 0, 1, 2, size=3)


def test_without_size_under_jit_names_size():
    for f in (fa.nonzero, fa.argwhere, fa.flatnonzero, fa.unique, fa.unique_values):
        with pytest.raises(fa.ConcretizationError, match="size="):
            fa.jit(f)(fa.asarray(X))


def test_unique_matches_numpy():
    np.testing.assert_array_equal(fa.unique(A), np.unique(A))
    got = fa.unique(A, return_index=True, return_inverse=True, return_counts=True)
    expect = np.unique(A, return_index=True, return_inverse=True, return_counts=True)
    for g, e in zip(got, expect):
        np.testing.assert_array_equal(g, e)
    m = np.array([[1, 2], [1, 2], [0, 5]])
    np.testing.assert_array_equal(fa.unique(m, axis=0), np.unique(m, axis=0))


def test_unique_with_size_under_jit():
    f = fa.jit(lambda v: fa.unique(v, return_index=True, return_inverse=True,
                                   return_counts=True, size=7, fill_value=-1))
    values, index, inverse, counts = f(fa.asarray(A))
    ev, ei, einv, ec = np.unique(A, return_index=True, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(values, np.concatenate([ev, [-1, -1]]))
    np.testing.assert_array_equal(index, np.concatenate([ei, [0, 0]]))
    np.testing.assert_array_equal(inverse, einv.reshape(A.shape))
    np.testing.assert_array_equal(counts, np.concatenate([ec, [0, 0]]))
    v, c = fa.unique(A, size=3, return_counts=True)  # truncated: the 3 smallest
    np.testing.assert_array_equal(v, ev[:3])
    np.testing.assert_array_equal(c, ec[:3])
    np.testing.assert_array_equal(fa.unique(np.array([4, 4, 9]), size=3), [4, 9, 4])  # fill: the min
    counts = fa.unique_counts(fa.asarray([2, 2, 5]), size=3)
    assert counts.values.tolist() == [2, 5, 2] and counts.counts.tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="axis=None"):
        fa.unique(X, axis=0, size=3)


@pytest.mark.parametrize("name", ["union1d", "intersect1d", "setdiff1d", "setxor1d"])
def test_set_operations_match_numpy(name):
    a, b = np.array([5, 1, 3, 3, 7, 1]), np.array([[3, 9], [1, 0]])
    expect = getattr(np, name)(a, b)
    np.testing.assert_array_equal(getattr(fa, name)(a, b), expect)
    jitted = fa.jit(lambda x, y: getattr(fa, name)(x, y, size=6, fill_value=-1))
    padded = np.concatenate([expect, np.full(6 - expect.size, -1)])
    np.testing.assert_array_equal(jitted(fa.asarray(a), fa.asarray(b)), padded)
    with pytest.raises(fa.ConcretizationError, match="size="):
        fa.jit(getattr(fa, name))(fa.asarray(a), fa.asarray(b))


def test_intersect1d_indices():
    a, b = np.array([5, 1, 3, 3, 7, 1]), np.array([3, 9, 1, 1, 0])
    for got, expect in zip(fa.intersect1d(a, b, return_indices=True),
                           np.intersect1d(a, b, return_indices=True)):
        np.testing.assert_array_equal(got, expect)
    values, i1, i2 = fa.intersect1d(a, b, return_indices=True, size=4)
    assert values.tolist()[:2] == [1, 3] and i1.tolist() == [1, 2, 0, 0] and i2.tolist() == [2, 0, 0, 0]
