"""``x.at[idx]``: ``get(mode=, fill_value=)``, ``divide/power/apply`` and the ``mode=`` of
every update, compared with the values JAX documents (computed here with NumPy)."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
from fnarray.testing import check_grads

X = np.arange(12, dtype=np.float64).reshape(3, 4)


def test_get_fill_clip_and_default_fill_values():
    x = fa.asarray(X)
    idx = np.array([0, 2, 5, -1, -7])
    out = x.at[idx].get(mode="fill", fill_value=-1.0)
    expect = np.stack([X[0], X[2], np.full(4, -1.0), X[-1], np.full(4, -1.0)])
    np.testing.assert_array_equal(out, expect)
    assert np.isnan(np.asarray(x.at[:, 9].get(mode="fill"))).all()
    clipped = np.clip(np.where(idx < 0, idx + 3, idx), 0, 2)
    np.testing.assert_array_equal(x.at[idx].get(mode="clip"), X[clipped])
    np.testing.assert_array_equal(x.at[1, 7].get(mode="promise_in_bounds"), X[1, 3])
    ints = fa.arange(4, dtype=fa.int32)
    assert ints.at[np.array([1, 9])].get(mode="fill").tolist() == [1, np.iinfo(np.int32).min]
    assert fa.arange(3, dtype=fa.uint8).at[5].get(mode="fill").item() == 255
    assert fa.asarray([False]).at[3].get(mode="drop").item() is True
    # without a mode an out-of-bounds index is an error (NumPy's rule)
    with pytest.raises(IndexError, match="out of bounds"):
        x.at[5].get()


def test_get_fill_keeps_numpy_layout_with_mixed_indices():
    x = fa.asarray(np.arange(24.0).reshape(2, 3, 4))
    rows = np.array([[0, 5], [2, 1]])
    out = x.at[:, rows, 1:3].get(mode="fill", fill_value=0.0)
    padded = np.concatenate([np.arange(24.0).reshape(2, 3, 4), np.zeros((2, 1, 4))], axis=1)
    np.testing.assert_array_equal(out, padded[:, np.where(rows < 3, rows, 3), 1:3])
    assert out.shape == (2, 2, 2, 2)


def test_updates_with_drop_and_clip():
    x = fa.asarray(X[0])  # [0, 1, 2, 3]
    idx = np.array([1, 4, -1, -9])
    assert x.at[idx].set(10.0, mode="drop").tolist() == [0, 10, 2, 10]
    assert x.at[idx].add(1.0, mode="fill").tolist() == [0, 2, 2, 4]
    assert x.at[idx].set(np.array([5.0, 6, 7, 8]), mode="clip").tolist() == [8, 5, 2, 7]
    assert x.at[np.array([3, 3, 7])].add(1.0, mode="promise_in_bounds").tolist() == [0, 1, 2, 6]
    assert x.at[idx].multiply(3.0, mode="drop").tolist() == [0, 3, 2, 9]
    assert x.at[idx].min(-1.0, mode="drop").tolist() == [0, -1, 2, -1]
    assert x.at[idx].max(9.0, mode="drop").tolist() == [0, 9, 2, 9]
    with pytest.raises(IndexError, match="out of bounds"):
        x.at[idx].set(1.0)
    with pytest.raises(ValueError, match="unknown mode 'wrap'.*clip"):
        x.at[0].set(1.0, mode="wrap")


def test_divide_power_apply():
    x = fa.asarray([1.0, 2.0, 3.0, 4.0])
    assert x.at[1:3].divide(2.0).tolist() == [1.0, 1.0, 1.5, 4.0]
    assert x.at[np.array([0, 3])].power(2.0).tolist() == [1.0, 2.0, 3.0, 16.0]
    np.testing.assert_allclose(x.at[::2].apply(fa.sqrt), [1.0, 2.0, np.sqrt(3.0), 4.0])
    ints = fa.asarray([7, 8, 9])
    out = ints.at[0].divide(2)
    assert out.dtype == ints.dtype and out.tolist() == [3, 8, 9]
    assert x.at[np.array([9, 2])].apply(fa.negative, mode="drop").tolist() == [1.0, 2.0, -3.0, 4.0]


def test_modes_under_jit_and_grads():
    idx = fa.asarray([0, 3, -1, 8])

    @fa.jit
    def f(x, i):
        return x.at[i].get(mode="fill", fill_value=0.0)

    np.testing.assert_array_equal(f(fa.asarray([1.0, 2.0, 3.0]), idx), [1.0, 0.0, 3.0, 0.0])
    x = fa.asarray([0.5, 1.5, 2.0])
    check_grads(lambda x: x.at[idx].get(mode="fill", fill_value=0.0) ** 2, (x,), order=2)
    check_grads(lambda x: x.at[idx].get(mode="clip") * x[0], (x,), order=1)
    check_grads(lambda x, v: x.at[idx].set(v, mode="drop"), (x, fa.asarray([1.0, 2.0, 3.0, 4.0])),
                order=1)
    check_grads(lambda x: x.at[1:].divide(x[0]), (x,), order=1)
    check_grads(lambda x: x.at[0].power(3.0), (x,), order=2)
