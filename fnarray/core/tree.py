"""Pytrees: nested containers whose leaves are arrays.

Tuples, lists, dicts (sorted by key), ``None``, namedtuples, dataclasses registered with
``register_dataclass`` and classes registered with ``register_node`` are containers; any
other object is a leaf.

As in JAX, ``map(f, tree, *rest)`` takes its structure from the first tree, which may be a
*prefix* of the others: a leaf of ``tree`` pairs with a whole subtree of each of ``rest``.
Key paths (``flatten_with_path`` and friends) name each leaf's position with JAX's key
entries: ``SequenceKey`` (tuples, lists), ``DictKey``, ``GetAttrKey`` (namedtuples and
registered dataclasses) and ``FlattenedIndexKey`` (other registered nodes).
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
from typing import Any, Callable, NamedTuple, Sequence


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


def register_dataclass(cls: type | None = None, data_fields: Sequence[str] | None = None,
                       meta_fields: Sequence[str] | None = None):
    """Register a dataclass as a container; usable as a decorator.

    ``data_fields`` are its children (array leaves or subtrees), ``meta_fields`` are static
    values kept in the structure (hashable; two trees with different metadata differ).  By
    default every field is data except those declared with
    ``dataclasses.field(metadata={"static": True})``, as in JAX.
    """
    if cls is None:
        return lambda c: register_dataclass(c, data_fields, meta_fields)
    fields = dataclasses.fields(cls)
    if data_fields is None and meta_fields is None:
        meta_fields = [f.name for f in fields if f.metadata.get("static", False)]
    if meta_fields is None:
        meta_fields = [f.name for f in fields if f.name not in data_fields]
    if data_fields is None:
        data_fields = [f.name for f in fields if f.name not in meta_fields]
    data, meta = tuple(data_fields), tuple(meta_fields)
    init_fields = {f.name for f in fields if f.init}
    if set(data) | set(meta) != init_fields or set(data) & set(meta):
        raise ValueError(f"register_dataclass({cls.__name__}): data_fields {list(data)} and "
                         f"meta_fields {list(meta)} must split the fields {sorted(init_fields)}")
    register_node(cls, lambda o: ([getattr(o, n) for n in data],
                                  tuple(getattr(o, n) for n in meta)),
                  lambda aux, c: cls(**dict(zip(data, c)), **dict(zip(meta, aux))))
    _field_names[cls] = data
    return cls


# Field names of registered dataclasses, for their key paths (``GetAttrKey``).
_field_names: dict[type, tuple] = {}


def _node_type(x) -> _NodeType | None:
    t = type(x)
    nt = _registry.get(t)
    if nt is None and isinstance(x, tuple) and hasattr(x, "_fields"):  # namedtuple
        nt = _NodeType(lambda o: (tuple(o), None), lambda _, c, t=t: t(*c))
    return nt


class PyTreeDef:
    """The structure of a pytree, without its leaves; hashable and comparable."""

    __slots__ = ("node_type", "aux", "children", "num_leaves", "_hash")

    def __init__(self, node_type, aux, children: tuple):
        self.node_type = node_type
        self.aux = aux
        self.children = children
        self.num_leaves = 1 if node_type is None else sum(c.num_leaves for c in children)
        self._hash = None

    def _key(self):
        return (self.node_type, self.aux, self.children)

    def __eq__(self, other):
        return self is other or (isinstance(other, PyTreeDef) and self._key() == other._key())

    def __hash__(self):
        # Computed once: a structure is immutable, and jit hashes its argument structure on
        # every call (a recursive hash of a 20-node tree is ~10 us).
        h = self._hash
        if h is None:
            h = self._hash = hash(self._key())
        return h

    def __getstate__(self):
        # The hash is not pickled: string hashes differ between processes.
        return self.node_type, self.aux, self.children, self.num_leaves

    def __setstate__(self, state):
        self.node_type, self.aux, self.children, self.num_leaves = state
        self._hash = None

    @property
    def num_nodes(self) -> int:
        """Nodes in the structure, leaves included (as JAX counts them)."""
        return 1 + sum(c.num_nodes for c in self.children)

    def unflatten(self, leaves):
        """Rebuild a pytree of this structure from its leaves (``tree.unflatten(self, ...)``)."""
        return unflatten(self, leaves)

    def flatten_up_to(self, tree) -> list:
        """The subtrees of ``tree`` at this structure's leaves (this structure must be a
        prefix of ``tree``'s)."""
        return flatten_up_to(self, tree)

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
    return leaves, _flatten_into(tree, leaves, is_leaf)


def _flatten_into(x, leaves: list, is_leaf) -> PyTreeDef:
    """``flatten``'s recursion (module-level, like ``_rebuild``, so no reference cycle
    keeps the leaves alive)."""
    nt = None if (is_leaf is not None and is_leaf(x)) else _node_type(x)
    if nt is None:
        leaves.append(x)
        return LEAF
    children, aux = nt.flatten(x)
    return PyTreeDef(_node_key(x), aux, tuple([_flatten_into(c, leaves, is_leaf)
                                               for c in children]))


def unflatten(treedef: PyTreeDef, leaves) -> Any:
    """Rebuild a pytree of the given structure from its leaves."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        few = "too few" if len(leaves) < treedef.num_leaves else "too many"
        raise ValueError(f"tree.unflatten: {few} leaves for tree structure {treedef}: it has "
                         f"{treedef.num_leaves} leaves but {len(leaves)} were given")
    return _rebuild(treedef, iter(leaves))


def _rebuild(td: PyTreeDef, it) -> Any:
    """``unflatten``'s recursion.  A module-level function rather than a closure: a
    recursive closure is a reference cycle that would keep the leaves (often large
    buffers) alive until the garbage collector runs."""
    if td.node_type is None:
        return next(it)
    # (a leaf child is taken inline: most children are leaves, and a call each is costly)
    kids = [next(it) if c.node_type is None else _rebuild(c, it) for c in td.children]
    key = td.node_type
    if isinstance(key, tuple):  # namedtuple
        return key[0](*kids)
    return _registry[key].unflatten(td.aux, kids)


def _node_key(x):
    """The ``PyTreeDef.node_type`` of a container ``x``."""
    return type(x) if type(x) in _registry else (type(x), "namedtuple")


def flatten_up_to(treedef: PyTreeDef, tree) -> list:
    """The subtrees of ``tree`` found at the leaves of ``treedef`` (a prefix of ``tree``'s
    structure), or a ``ValueError`` naming where the two differ."""
    out: list = []

    def rec(td, t, where):
        if td.node_type is None:
            out.append(t)
            return
        nt = _node_type(t)
        if nt is None or _node_key(t) != td.node_type:
            raise ValueError(f"tree structures differ at {where or 'the root'}: expected "
                             f"{td}, got {type(t).__name__} {t!r:.80}")
        children, aux = nt.flatten(t)
        if aux != td.aux or len(children) != len(td.children):
            raise ValueError(f"tree structures differ at {where or 'the root'}: expected "
                             f"{td}, got {structure(t)}")
        for i, (c, ctd) in enumerate(zip(children, td.children)):
            rec(ctd, c, f"{where}[{td.aux[i]!r}]" if td.node_type is dict else f"{where}[{i}]")

    rec(treedef, tree, "")
    return out


def leaves(tree, is_leaf: Callable | None = None) -> list:
    return flatten(tree, is_leaf)[0]


def structure(tree, is_leaf: Callable | None = None) -> PyTreeDef:
    return flatten(tree, is_leaf)[1]


def map(f: Callable, tree, *rest, is_leaf: Callable | None = None):  # noqa: A001
    """Apply ``f`` leafwise to ``tree`` and the matching parts of ``rest``.

    Each tree in ``rest`` has ``tree``'s structure or has it as a prefix: where ``tree``
    has a leaf, ``f`` receives that leaf and the whole corresponding subtree of each of
    ``rest`` (JAX's semantics; ``is_leaf`` applies to ``tree``)."""
    lv, td = flatten(tree, is_leaf)
    return unflatten(td, [f(*xs) for xs in zip(lv, *_rest_up_to(td, rest, "map"))])


def _rest_up_to(td: PyTreeDef, rest, op: str) -> list:
    """Each tree of ``rest`` flattened up to ``td``, or an error naming ``op``."""
    try:
        return [flatten_up_to(td, r) for r in rest]
    except ValueError as e:
        raise ValueError(f"tree.{op}: {e}; every tree after the first must have the first "
                         f"tree's structure or have it as a prefix") from None


_NO_INIT = object()


def reduce(function: Callable, tree, initializer: Any = _NO_INIT,  # noqa: A001
           is_leaf: Callable | None = None):
    """``functools.reduce(function, leaves(tree)[, initializer])``."""
    lv = leaves(tree, is_leaf)
    if initializer is _NO_INIT:
        if not lv:
            raise TypeError("tree.reduce: the tree has no leaves and no initializer was given")
        return functools.reduce(function, lv)
    return functools.reduce(function, lv, initializer)


def all(tree, is_leaf: Callable | None = None) -> bool:  # noqa: A001
    """True if every leaf is truthy (``True`` for a tree without leaves)."""
    return builtins.all(leaves(tree, is_leaf))


def transpose(outer_treedef: PyTreeDef, inner_treedef: PyTreeDef | None, tree):
    """Turn a tree of structure ``outer`` of trees of structure ``inner`` into an ``inner``
    tree of ``outer`` trees (``inner_treedef=None`` takes it from the first inner tree)."""
    inners = flatten_up_to(outer_treedef, tree)
    if inner_treedef is None:
        inner_treedef = structure(inners[0]) if inners else LEAF
    try:
        grid = [flatten_up_to(inner_treedef, t) for t in inners]
    except ValueError as e:
        raise ValueError(f"tree.transpose: an inner tree does not match the inner structure "
                         f"{inner_treedef}: {e}") from None
    columns = [unflatten(outer_treedef, [row[j] for row in grid])
               for j in range(inner_treedef.num_leaves)]
    return unflatten(inner_treedef, columns)


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


# --- key paths ----------------------------------------------------------------------------------

class SequenceKey(NamedTuple):
    """The position of a child in a tuple or list."""
    idx: int

    def __str__(self):
        return f"[{self.idx!r}]"


class DictKey(NamedTuple):
    """The key of a child in a dict."""
    key: Any

    def __str__(self):
        return f"[{self.key!r}]"


class GetAttrKey(NamedTuple):
    """The attribute name of a child of a namedtuple or registered dataclass."""
    name: str

    def __str__(self):
        return f".{self.name}"


class FlattenedIndexKey(NamedTuple):
    """The position of a child among a registered node's flattened children."""
    key: int

    def __str__(self):
        return f"[<flat index {self.key}>]"


def keystr(path: tuple) -> str:
    """A key path as a string, e.g. ``"['params'][0].w"``."""
    return "".join(str(k) for k in path)


def _child_keys(x, children, aux) -> list:
    t = type(x)
    if t is dict:
        return [DictKey(k) for k in aux]
    if t in (tuple, list):
        return [SequenceKey(i) for i in range(len(children))]
    names = getattr(x, "_fields", None) if isinstance(x, tuple) else _field_names.get(t)
    if names is not None:
        return [GetAttrKey(n) for n in names]
    return [FlattenedIndexKey(i) for i in range(len(children))]


def flatten_with_path(tree, is_leaf: Callable | None = None) -> tuple[list, PyTreeDef]:
    """``([(key_path, leaf), ...], treedef)``: each leaf with the path of keys reaching it."""
    out: list = []

    def rec(x, path):
        nt = None if (is_leaf is not None and is_leaf(x)) else _node_type(x)
        if nt is None:
            out.append((path, x))
            return
        children, aux = nt.flatten(x)
        for k, c in zip(_child_keys(x, children, aux), children):
            rec(c, (*path, k))

    rec(tree, ())
    return out, structure(tree, is_leaf)


def leaves_with_path(tree, is_leaf: Callable | None = None) -> list:
    """``[(key_path, leaf), ...]`` in leaf order."""
    return flatten_with_path(tree, is_leaf)[0]


def map_with_path(f: Callable, tree, *rest, is_leaf: Callable | None = None):
    """Like ``map``, with the key path of each leaf of ``tree`` as ``f``'s first argument."""
    pairs, td = flatten_with_path(tree, is_leaf)
    others = _rest_up_to(td, rest, "map_with_path")
    return unflatten(td, [f(p, x, *xs) for (p, x), *xs in zip(pairs, *others)])
