"""Pytrees: nested containers whose leaves are arrays.

Tuples, lists, dicts (sorted by key), ``None``, namedtuples, dataclasses registered with
``register_dataclass`` and classes registered with ``register_node`` are containers; any
other object is a leaf.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple


class _NodeType(NamedTuple):
    flatten: Callable  # node -> (children, aux)
    unflatten: Callable  # (aux, children) -> node


_registry: dict[type, _NodeType] = {
    tuple: _NodeType(lambda t: (t, None), lambda _, c: tuple(c)),
    list: _NodeType(lambda t: (t, None), lambda _, c: list(c)),
    dict: _NodeType(lambda d: ([d[k] for k in sorted(d)], tuple(sorted(d))),
                    lambda keys, c: dict(zip(keys, c))),
    type(None): _NodeType(lambda _: ((), None), lambda _, c: None),
}


def register_node(cls: type, flatten: Callable, unflatten: Callable) -> None:
    """Make ``cls`` a container: ``flatten(obj) -> (children, aux)``,
    ``unflatten(aux, children) -> obj``."""
    _registry[cls] = _NodeType(flatten, unflatten)


def register_dataclass(cls: type) -> type:
    """Register a dataclass whose fields are all children; usable as a decorator."""
    names = [f.name for f in dataclasses.fields(cls)]
    register_node(cls, lambda o: ([getattr(o, n) for n in names], None),
                  lambda _, c: cls(**dict(zip(names, c))))
    return cls


def _node_type(x) -> _NodeType | None:
    t = type(x)
    nt = _registry.get(t)
    if nt is None and isinstance(x, tuple) and hasattr(x, "_fields"):  # namedtuple
        nt = _NodeType(lambda o: (tuple(o), None), lambda _, c, t=t: t(*c))
    return nt


class PyTreeDef:
    """The structure of a pytree, without its leaves; hashable and comparable."""

    __slots__ = ("node_type", "aux", "children", "num_leaves")

    def __init__(self, node_type, aux, children: tuple):
        self.node_type = node_type
        self.aux = aux
        self.children = children
        self.num_leaves = 1 if node_type is None else sum(c.num_leaves for c in children)

    def _key(self):
        return (self.node_type, self.aux, self.children)

    def __eq__(self, other):
        return isinstance(other, PyTreeDef) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        if self.node_type is None:
            return "*"
        inner = ", ".join(map(repr, self.children))
        name = getattr(self.node_type, "__name__", str(self.node_type))
        return f"{name}({inner})" if name not in ("tuple", "list", "dict") else {
            "tuple": f"({inner})", "list": f"[{inner}]",
            "dict": "{" + ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.aux or (), self.children)) + "}",
        }[name]


LEAF = PyTreeDef(None, None, ())


def flatten(tree, is_leaf: Callable | None = None) -> tuple[list, PyTreeDef]:
    """``(leaves, treedef)`` with leaves in a deterministic order."""
    leaves: list = []

    def rec(x):
        nt = None if (is_leaf is not None and is_leaf(x)) else _node_type(x)
        if nt is None:
            leaves.append(x)
            return LEAF
        children, aux = nt.flatten(x)
        key = type(x) if type(x) in _registry else (type(x), "namedtuple")
        return PyTreeDef(key, aux, tuple(rec(c) for c in children))

    return leaves, rec(tree)


def unflatten(treedef: PyTreeDef, leaves) -> Any:
    """Rebuild a pytree of the given structure from its leaves."""
    it = iter(leaves)

    def rec(td):
        if td.node_type is None:
            return next(it)
        kids = [rec(c) for c in td.children]
        key = td.node_type
        if isinstance(key, tuple):  # namedtuple
            return key[0](*kids)
        return _registry[key].unflatten(td.aux, kids)

    out = rec(treedef)
    if next(it, _SENTINEL) is not _SENTINEL:
        raise ValueError(f"too many leaves for tree structure {treedef}")
    return out


_SENTINEL = object()


def leaves(tree, is_leaf: Callable | None = None) -> list:
    return flatten(tree, is_leaf)[0]


def structure(tree, is_leaf: Callable | None = None) -> PyTreeDef:
    return flatten(tree, is_leaf)[1]


def map(f: Callable, tree, *rest, is_leaf: Callable | None = None):  # noqa: A001
    """Apply ``f`` leafwise to one or more trees of the same structure."""
    lv, td = flatten(tree, is_leaf)
    others = [flatten(r, is_leaf) for r in rest]
    for _, otd in others:
        if otd != td:
            raise ValueError(f"tree.map: tree structures differ: {td} vs {otd}")
    return unflatten(td, [f(*xs) for xs in zip(lv, *(o[0] for o in others))])


def broadcast_prefix(prefix, tree, is_leaf: Callable | None = None) -> list:
    """Expand a pytree prefix (e.g. vmap's ``in_axes``) to one entry per leaf of ``tree``."""
    out: list = []

    def rec(p, t):
        nt = _node_type(p) if p is not None else None
        if nt is None or (is_leaf is not None and is_leaf(p)):
            out.extend([p] * len(leaves(t)))
            return
        pk, _ = nt.flatten(p)
        tk, _ = _node_type(t).flatten(t) if _node_type(t) else ([], None)
        if type(p) is not type(t) or len(pk) != len(tk):
            raise ValueError(f"prefix {p!r} does not match the structure of {structure(t)}")
        for a, b in zip(pk, tk):
            rec(a, b)

    rec(prefix, tree)
    return out
