"""``device_put`` of pytrees, ``device_get``, ``block_until_ready`` and ``disable_jit``."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa


def test_device_put_pytree_keeps_structure():
    tree = {"w": np.ones((2, 2), np.float32), "b": [1.0, fa.arange(3)], "none": None}
    out = fa.device_put(tree, "cpu")
    assert set(out) == {"w", "b", "none"} and out["none"] is None
    assert isinstance(out["w"], fa.Array) and out["w"].dtype == np.float32
    assert isinstance(out["b"], list) and isinstance(out["b"][0], fa.Array)
    assert out["b"][1].tolist() == [0, 1, 2]
    assert all(leaf.device == fa.devices()[0] for leaf in fa.tree.leaves(out))
    # a single array is unchanged in behaviour
    x = fa.ones(3)
    assert fa.device_put(x) is x


def test_device_get_returns_numpy_leaves():
    tree = (fa.asarray([1.0, 2.0]), {"n": 3, "s": "label"})
    host = fa.device_get(tree)
    assert isinstance(host[0], np.ndarray) and host[0].tolist() == [1.0, 2.0]
    assert host[1] == {"n": 3, "s": "label"}
    with pytest.raises(ValueError):
        host[0][0] = 5.0  # a read-only view: the fnarray array stays immutable


def test_device_get_of_a_tracer_is_a_clear_error():
    with pytest.raises(fa.ConcretizationError, match="device_get"):
        fa.jit(lambda x: fa.device_get(x))(fa.ones(2))


def test_block_until_ready_function_and_method():
    x = fa.ones(3) * 2
    assert x.block_until_ready() is x
    tree = {"a": x, "b": [x, 1]}
    assert fa.block_until_ready(tree) is tree


def test_disable_jit_runs_eagerly():
    seen = []

    @fa.jit
    def f(x):
        seen.append(type(x).__name__)
        if float(fa.sum(x)) > 0:  # Python control flow needs concrete values
            return x * 2
        return x

    with fa.disable_jit():
        assert f(fa.ones(2)).tolist() == [2.0, 2.0]
        assert f(-fa.ones(2)).tolist() == [-1.0, -1.0]
    assert seen == ["Array", "Array"]
    with pytest.raises(fa.ConcretizationError):
        f(fa.ones(2))  # compiled again outside the block
    with fa.disable_jit():
        with fa.disable_jit(False):
            with pytest.raises(fa.ConcretizationError):
                f(fa.ones(2))
        assert f(fa.ones(1)).tolist() == [2.0]
