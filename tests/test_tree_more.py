"""``fa.tree`` beyond the basics: prefix mapping, reduce/all/transpose, key paths,
``treedef.unflatten`` and leaf-count errors (JAX's ``jax.tree`` semantics)."""

from __future__ import annotations

import dataclasses
import operator
from typing import NamedTuple

import pytest

import fnarray as fa


class Pt(NamedTuple):
    x: object
    y: object


@fa.tree.register_dataclass
@dataclasses.dataclass
class Params:
    w: object
    b: object


class Bag:
    def __init__(self, items):
        self.items = items


fa.tree.register_node(Bag, lambda b: (b.items, None), lambda _, c: Bag(list(c)))


def test_map_over_a_prefix_tree():
    # JAX: the first tree's leaves pair with whole subtrees of the others.
    out = fa.tree.map(lambda n, sub: (n, sub), [1, 2], [(3, 4), {"a": 5}])
    assert out == [(1, (3, 4)), (2, {"a": 5})]
    scales = {"enc": 2.0, "dec": 10.0}
    params = {"enc": [1.0, 2.0], "dec": (3.0,)}
    scaled = fa.tree.map(lambda s, p: fa.tree.map(lambda v: s * v, p), scales, params)
    assert scaled == {"enc": [2.0, 4.0], "dec": (30.0,)}


def test_map_prefix_mismatch_names_the_place():
    with pytest.raises(ValueError, match=r"structures differ at \['b'\].*prefix"):
        fa.tree.map(lambda a, b: a, {"a": 1, "b": [1, 2]}, {"a": 1, "b": (1, 2)})
    with pytest.raises(ValueError, match="structures differ"):
        fa.tree.map(lambda a, b: a, [1, 2], [1, 2, 3])


def test_reduce_and_all():
    assert fa.tree.reduce(operator.add, {"a": [1, 2], "b": 3}) == 6
    assert fa.tree.reduce(operator.add, [], 7) == 7
    assert fa.tree.reduce(lambda a, b: a + [b], (1, (2,)), []) == [1, 2]
    with pytest.raises(TypeError, match="no leaves and no initializer"):
        fa.tree.reduce(operator.add, [])
    assert fa.tree.all({"a": True, "b": [1, 2]}) is True
    assert fa.tree.all([True, (0,)]) is False
    assert fa.tree.all([]) is True


def test_transpose():
    outer = fa.tree.structure([0, 0, 0])
    inner = fa.tree.structure({"a": 0, "b": 0})
    tree = [{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}]
    out = fa.tree.transpose(outer, inner, tree)
    assert out == {"a": [1, 3, 5], "b": [2, 4, 6]}
    assert fa.tree.transpose(outer, None, tree) == out
    with pytest.raises(ValueError, match="inner structure"):
        fa.tree.transpose(outer, inner, [{"a": 1, "b": 2}, {"a": 3}, {"a": 5, "b": 6}])


def test_paths_and_keystr():
    tree = {"p": [Pt(1, 2), Params(w=3, b=4)], "q": (Bag([5, 6]), None)}
    pairs, td = fa.tree.flatten_with_path(tree)
    assert [v for _, v in pairs] == fa.tree.leaves(tree)
    assert td == fa.tree.structure(tree)
    strs = [fa.tree.keystr(p) for p, _ in pairs]
    assert strs == ["['p'][0].x", "['p'][0].y", "['p'][1].w", "['p'][1].b",
                    "['q'][0][<flat index 0>]", "['q'][0][<flat index 1>]"]
    first = pairs[0][0]
    assert first == (fa.tree.DictKey("p"), fa.tree.SequenceKey(0), fa.tree.GetAttrKey("x"))
    assert fa.tree.leaves_with_path([7]) == [((fa.tree.SequenceKey(0),), 7)]


def test_map_with_path_and_prefix():
    out = fa.tree.map_with_path(lambda p, v: fa.tree.keystr(p) + str(v), {"a": [1], "b": 2})
    assert out == {"a": ["['a'][0]1"], "b": "['b']2"}
    out = fa.tree.map_with_path(lambda p, v, r: (p[0].key, v, r), {"a": 1}, {"a": [9, 9]})
    assert out == {"a": ("a", 1, [9, 9])}


def test_treedef_methods_and_leaf_count_errors():
    td = fa.tree.structure({"a": (1, 2), "b": None})
    assert td.unflatten([5, 6]) == {"a": (5, 6), "b": None}
    assert td.num_leaves == 2 and td.num_nodes == 5
    assert td.flatten_up_to({"a": ([1], 2), "b": None}) == [[1], 2]
    with pytest.raises(ValueError, match="too few leaves.*has 2 leaves but 1 were given"):
        td.unflatten([5])
    with pytest.raises(ValueError, match="too many leaves.*has 2 leaves but 3 were given"):
        fa.tree.unflatten(td, iter([1, 2, 3]))


def test_prefix_map_of_arrays_under_grad():
    lr = {"w": 0.1, "b": 1.0}

    def loss(p):
        return fa.sum(p["w"] ** 2) + fa.sum(p["b"])

    p = {"w": fa.asarray([1.0, 2.0]), "b": fa.asarray([0.5])}
    g = fa.grad(loss)(p)
    new = fa.tree.map(lambda s, v, d: v - s * d, lr, p, g)
    assert new["w"].tolist() == pytest.approx([0.8, 1.6])
    assert new["b"].tolist() == pytest.approx([-0.5])
