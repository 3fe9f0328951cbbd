"""A compat autograd graph as plain data, for tests comparing the graphs two code paths
record (a fast path against the general one)."""

from __future__ import annotations


def grad_fn_tree(fn, depth: int = 3):
    """``fn``'s node name and its inputs' trees down ``next_functions``, ``depth`` levels
    deep (None for a missing node, the bare name at the last level)."""
    if fn is None:
        return None
    if depth == 0:
        return type(fn).__name__
    return (type(fn).__name__, tuple(grad_fn_tree(f, depth - 1) for f, _ in fn.next_functions))
