"""Generated output builders for ``jit``: raw result buffers -> the user's output pytree.

A cached jit program returns a flat list of backend buffers; the caller wants them as
``Array``s arranged in the traced function's output structure.  ``tree.unflatten`` walks
the structure recursively on every call (a call per node plus an iterator step per leaf:
~25 us for an optimizer's ``(params, [SGDState, ...])``), although the structure is fixed
per cached program.  ``output_builder`` writes that walk out once as one Python expression,
e.g. ``([A(o[0], d), A(o[1], d)], [T0(A(o[2], d), A(o[3], d))])``, and compiles it, so a
call builds the outputs in a single frame.  The result is the very tree ``unflatten`` would
build (same container types, same order); structures too deep or too large for one
expression use ``unflatten``.
"""

from __future__ import annotations

from typing import Callable

from fnarray.core import tree as tree_util
from fnarray.core.array import Array

# Past these a generated expression stops paying (or nests deeper than the parser allows).
_MAX_DEPTH = 40
_MAX_LEAVES = 4096


def output_builder(out_tree: tree_util.PyTreeDef, device) -> Callable[[list], object]:
    """``build(bufs)``: the ``Array``s on ``device`` of ``bufs`` (weak_type False), arranged
    as ``out_tree``."""
    if out_tree.num_leaves > _MAX_LEAVES or _depth(out_tree) > _MAX_DEPTH:
        def build(bufs):
            return tree_util.unflatten(out_tree, [Array(b, device) for b in bufs])
        return build
    env: dict = {"A": Array, "d": device, "R": tree_util._registry}
    counter = iter(range(out_tree.num_leaves))
    expr = _expr(out_tree, counter, env)
    src = f"def build(o):\n    return {expr}\n"
    exec(compile(src, f"<fnarray.jit outputs {out_tree.num_leaves} leaves>", "exec"), env)
    return env["build"]


def _depth(td: tree_util.PyTreeDef) -> int:
    return 1 + max((_depth(c) for c in td.children), default=0)


def _bind(env: dict, value) -> str:
    """A name under which ``value`` is visible to the generated code."""
    name = f"c{len(env)}"
    env[name] = value
    return name


def _expr(td: tree_util.PyTreeDef, counter, env: dict) -> str:
    key = td.node_type
    if key is None:
        return f"A(o[{next(counter)}], d)"
    kids = [_expr(c, counter, env) for c in td.children]
    joined = ", ".join(kids)
    if key is tuple:
        return f"({joined},)" if len(kids) == 1 else f"({joined})"
    if key is list:
        return f"[{joined}]"
    if key is type(None):
        return "None"
    if isinstance(key, tuple):  # namedtuple: (type, "namedtuple"), as ``tree._rebuild``
        return f"{_bind(env, key[0])}({joined})"
    # dicts and registered nodes: their registered unflatten, looked up per call as
    # ``tree._rebuild`` does
    return f"R[{_bind(env, key)}].unflatten({_bind(env, td.aux)}, [{joined}])"
