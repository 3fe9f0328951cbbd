"""``fa.tree_util``: JAX's ``jax.tree_util`` names over ``fa.tree`` (one implementation of
pytrees; this module only gives it the names JAX code is written against)."""

from __future__ import annotations

from typing import Callable

from fnarray.core import tree as _tree
from fnarray.core.tree import (  # noqa: F401 - re-exported under their JAX names
    DictKey, FlattenedIndexKey, GetAttrKey, PyTreeDef, SequenceKey, keystr, register_dataclass)

tree_map = _tree.map
tree_leaves = _tree.leaves
tree_flatten = _tree.flatten
tree_unflatten = _tree.unflatten
tree_structure = _tree.structure
tree_reduce = _tree.reduce
tree_all = _tree.all
tree_transpose = _tree.transpose
tree_flatten_with_path = _tree.flatten_with_path
tree_leaves_with_path = _tree.leaves_with_path
tree_map_with_path = _tree.map_with_path


def register_pytree_node(nodetype: type, flatten_func: Callable,
                         unflatten_func: Callable) -> None:
    """Make ``nodetype`` a container: ``flatten_func(node) -> (children, aux_data)`` and
    ``unflatten_func(aux_data, children) -> node`` (JAX's signature)."""
    _tree.register_node(nodetype, flatten_func, unflatten_func)


__all__ = ["tree_map", "tree_leaves", "tree_flatten", "tree_unflatten", "tree_structure",
           "tree_reduce", "tree_all", "tree_transpose", "tree_flatten_with_path",
           "tree_leaves_with_path", "tree_map_with_path", "register_pytree_node",
           "register_dataclass", "keystr", "PyTreeDef", "SequenceKey", "DictKey", "GetAttrKey",
           "FlattenedIndexKey"]
