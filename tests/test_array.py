"""The Array contract of API.md section 1: attributes, repr, interop, copies, devices."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
from fnarray.backends import numpy as numpy_backend
from fnarray.core.device import Device


def test_attributes_and_methods():
    x = fa.asarray(np.arange(6.0).reshape(2, 3))
    assert x.shape == (2, 3) and isinstance(x.shape, tuple)
    assert x.dtype == fa.float64 and fa.float32 == np.float32
    assert x.ndim == 2 and x.size == 6 and len(x) == 2 and str(x.device) == "cpu"
    np.testing.assert_array_equal(np.asarray(x.T), np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_array_equal(np.asarray(fa.ones((4, 2, 3)).mT), np.ones((4, 3, 2)))
    assert x[1, 2].item() == 5.0 and x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert [row.tolist() for row in x] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert x.astype(fa.int32).dtype == np.int32
    assert float(x.sum(axis=0, keepdims=True)[0, 1]) == 5.0
    with pytest.raises(TypeError, match="0-d"):
        len(fa.asarray(1.0))


def test_repr_follows_numpy_layout():
    x = fa.asarray([[1.0, 2.0], [3.0, 4.0]])
    assert repr(x) == "Array([[1., 2.],\n       [3., 4.]], dtype=float32)"
    assert repr(fa.arange(3)) == "Array([0, 1, 2], dtype=int64)"


def test_default_dtypes_and_weak_scalars():
    assert fa.asarray([1.0, 2.0]).dtype == np.float32
    assert fa.asarray([1, 2]).dtype == np.int64
    assert fa.zeros(3).dtype == np.float32
    assert (fa.ones(3) * 2.0).dtype == np.float32
    assert (fa.ones(3, dtype=fa.float64) + 1).dtype == np.float64
    assert fa.asarray(np.ones(2)).dtype == np.float64  # float64 is kept, not truncated


def test_asarray_copies_numpy_input_unless_copy_false():
    host = np.arange(3.0)
    copied = fa.asarray(host)
    host[0] = 99.0
    assert copied[0].item() == 0.0
    shared = fa.asarray(host, copy=False)
    assert np.shares_memory(np.asarray(shared), host)


def test_numpy_view_is_read_only_and_zero_copy():
    x = fa.asarray(np.arange(4.0))
    view = np.asarray(x)
    assert not view.flags.writeable
    assert np.shares_memory(view, np.asarray(x))
    with pytest.raises(ValueError):
        view[0] = 1.0


def test_dlpack_exchange_with_numpy_is_zero_copy():
    x = fa.asarray(np.arange(5.0))
    back = np.from_dlpack(x)
    np.testing.assert_array_equal(back, np.arange(5.0))
    assert np.shares_memory(back, np.asarray(x))
    y = fa.from_dlpack(np.arange(4, dtype=np.int32))
    assert y.dtype == np.int32 and y.tolist() == [0, 1, 2, 3]


def test_array_namespace():
    assert fa.ones(2).__array_namespace__() is fa


def test_devices_and_placement():
    assert str(fa.devices()[0]) == "cpu"
    x = fa.device_put(fa.ones(2), "cpu")
    assert str(x.device) == "cpu"
    with fa.default_device("cpu"):
        assert str(fa.zeros(2).device) == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        fa.device_put(fa.ones(2), "tpu")


def test_mixing_devices_names_both_devices():
    other = Device("cuda", 7, numpy_backend)  # stands in for a second device
    a = fa.ones(3)
    b = fa.Array(np.ones(3, np.float32), other)
    with pytest.raises(ValueError) as e:
        a + b
    msg = str(e.value)
    assert "cpu" in msg and "cuda:7" in msg and "device_put" in msg


def test_immutability_and_functional_updates():
    x = fa.zeros(4)
    with pytest.raises(TypeError, match=r"x.at\[0\].set"):
        x[0] = 1.0
    y = x.at[fa.asarray([1, 1, 3])].add(1.0)
    assert y.tolist() == [0.0, 2.0, 0.0, 1.0] and x.tolist() == [0.0] * 4
