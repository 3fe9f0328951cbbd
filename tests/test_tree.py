"""Pytrees (``fa.tree``): containers, leaves, structures and user-registered nodes."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pytest

import fnarray as fa


class Pair(NamedTuple):
    a: object
    b: object


@fa.tree.register_dataclass
@dataclasses.dataclass
class Layer:
    w: object
    b: object


class Box:
    """A user class registered with ``register_node``; ``label`` is static data."""

    def __init__(self, label, items):
        self.label = label
        self.items = items


fa.tree.register_node(Box, lambda box: (box.items, box.label),
                      lambda label, items: Box(label, list(items)))


def test_leaves_order_and_none():
    tree = {"b": [1, (2, None)], "a": 3}
    assert fa.tree.leaves(tree) == [3, 1, 2]
    assert fa.tree.leaves(None) == []
    assert fa.tree.leaves(5) == [5]


def test_flatten_unflatten_roundtrip():
    tree = {"x": Pair(1, [2, 3]), "y": (None, Layer(4, 5)), "z": Box("lbl", [6, 7])}
    leaves, td = fa.tree.flatten(tree)
    assert leaves == [1, 2, 3, 4, 5, 6, 7]
    back = fa.tree.unflatten(td, leaves)
    assert isinstance(back["x"], Pair) and back["x"].b == [2, 3]
    assert isinstance(back["y"][1], Layer) and back["y"][1].b == 5 and back["y"][0] is None
    assert isinstance(back["z"], Box) and back["z"].label == "lbl" and back["z"].items == [6, 7]
    assert td.num_leaves == 7


def test_unflatten_with_wrong_leaf_count():
    _, td = fa.tree.flatten((1, 2))
    with pytest.raises(ValueError, match="too many leaves"):
        fa.tree.unflatten(td, [1, 2, 3])


def test_structure_equality():
    s = fa.tree.structure
    assert s({"a": 1, "b": [2]}) == s({"b": [9], "a": 8})
    assert s((1, 2)) != s([1, 2])
    assert s(Pair(1, 2)) != s((1, 2))
    assert s(Box("a", [1])) != s(Box("b", [1]))
    assert hash(s({"a": (1, None)})) == hash(s({"a": (5, None)}))
    assert s(Layer(1, 2)) == s(Layer(3, 4))


def test_map_one_and_several_trees():
    t = {"a": [1, 2], "b": Pair(3, 4)}
    assert fa.tree.map(lambda x: x * 10, t) == {"a": [10, 20], "b": Pair(30, 40)}
    assert fa.tree.map(lambda x, y: x + y, t, t) == {"a": [2, 4], "b": Pair(6, 8)}
    with pytest.raises(ValueError, match="structures differ"):
        fa.tree.map(lambda x, y: x, t, {"a": [1], "b": Pair(3, 4)})


def test_map_is_leaf():
    t = {"a": [1, 2], "b": [3]}
    out = fa.tree.map(lambda x: len(x), t, is_leaf=lambda x: isinstance(x, list))
    assert out == {"a": 2, "b": 1}


def test_map_over_arrays_and_none():
    t = {"w": fa.ones(2), "skip": None}
    out = fa.tree.map(lambda x: x * 2, t)
    assert out["skip"] is None
    assert out["w"].tolist() == [2.0, 2.0]


def test_registered_nodes_under_transformations():
    layer = Layer(fa.asarray([1.0, 2.0]), fa.asarray(0.5))
    box = Box("static", [fa.asarray(3.0)])

    def f(layer, box):
        return fa.sum(layer.w * box.items[0]) + layer.b

    g_layer, g_box = fa.grad(f, argnums=(0, 1))(layer, box)
    assert isinstance(g_layer, Layer) and isinstance(g_box, Box)
    assert g_box.label == "static"
    assert g_layer.w.tolist() == [3.0, 3.0] and float(g_layer.b) == 1.0
    assert float(g_box.items[0]) == 3.0
