"""Validation of what user-written derivative rules return (``custom_jvp`` / ``custom_vjp``).

A rule that returns the wrong number of cotangents, a wrong shape or dtype, or a bare array
where a tuple is expected would otherwise produce silently wrong derivatives (a missing
cotangent shifting the others onto the wrong inputs, a broadcast tangent).  These checks
compare a rule's output with the primal's structure, shapes and dtypes and raise a
``TypeError``/``ValueError`` naming the rule and the mismatch, as JAX does.

``None`` in a ``custom_vjp`` backward rule's output means "zero cotangent" for the whole
subtree it stands in (JAX's convention); it never shifts the other entries.
"""

from __future__ import annotations

from fnarray.core import tree as tree_util
from fnarray.core.trace import Tracer
from fnarray.core.shapes import is_inexact


def _is_tracer(x) -> bool:
    return isinstance(x, Tracer)


def _rule_name(rule) -> str:
    return getattr(rule, "__name__", type(rule).__name__)


def unpack_pair(kind: str, fun, role: str, rule, result, names: str):
    """``result`` as a pair, or a TypeError naming the rule (a JVP rule returns
    ``(primal_out, tangent_out)``; a custom_vjp fwd returns ``(output, residuals)``)."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise TypeError(f"{kind} {fun.__name__}: the {role} rule {_rule_name(rule)} must return "
                        f"a pair ({names}), got {type(result).__name__}")
    return result


def _describe(x) -> str:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"{x.dtype}{list(x.shape)}"
    return type(x).__name__


def _children(td, ct, where: str, fail):
    """The children of ``ct`` matching the container node ``td``, or ``fail(...)``."""
    kids, ct_td = tree_util.flatten(ct, is_leaf=lambda y: y is not ct)
    if ct_td.node_type != td.node_type or ct_td.aux != td.aux or len(kids) != len(td.children):
        fail(where, f"a {ct_td!r}-structured value where the primal has structure {td!r}")
    return kids


def match_cotangents(fun, rule, ct_tree, primal_tree, primal_leaves) -> list:
    """Flat cotangents (``None`` = zero) for ``primal_leaves`` from a bwd rule's output.

    ``ct_tree`` must be a tuple with one entry per differentiable argument (the structure
    ``primal_tree`` of the argument tuple); any entry or subtree may be ``None``.
    """
    fname, rname = _rule_name(fun), _rule_name(rule)
    nargs = len(primal_tree.children)

    def fail(where, what, exc=TypeError):
        raise exc(
            f"custom_vjp {fname}: the bwd rule {rname} must return a tuple with one cotangent "
            f"(or None) per differentiable argument of {fname} ({nargs} here), each shaped "
            f"like its argument; at {where} it returned {what}")

    if not isinstance(ct_tree, (tuple, list)):
        fail("the top level", f"a {_describe(ct_tree)} instead of a tuple of length {nargs} "
                              f"(for one argument write `return (ct,)`)")
    if len(ct_tree) != nargs:
        fail("the top level", f"{len(ct_tree)} cotangent(s) for {nargs} argument(s)")
    out: list = []
    it = iter(primal_leaves)

    def rec(td, ct, where):
        if ct is None:
            out.extend(None for _ in range(td.num_leaves))
            for _ in range(td.num_leaves):
                next(it)
            return
        if td.node_type is None:
            out.append(_check_leaf(ct, next(it), where, fail))
            return
        for k, (child_td, child) in enumerate(zip(td.children, _children(td, ct, where, fail))):
            rec(child_td, child, f"{where}[{k}]")

    for i, (td, ct) in enumerate(zip(primal_tree.children, ct_tree)):
        rec(td, ct, f"output[{i}]")
    return out


def _check_leaf(ct, primal, where, fail):
    from fnarray import api as fa
    ct_td = tree_util.flatten(ct)[1]
    if ct_td.node_type is not None:
        fail(where, f"a {ct_td!r}-structured value where the primal has one array "
                    f"{_describe(primal)}")
    weak = isinstance(ct, (int, float, complex)) and not isinstance(ct, bool)
    try:
        ct = fa.asarray(ct)
    except (TypeError, ValueError):
        fail(where, f"a {type(ct).__name__}, which is not an array")
    if tuple(ct.shape) != tuple(primal.shape):
        fail(where, f"shape {_describe(ct)} for an argument of shape {_describe(primal)}",
             ValueError)
    if not is_inexact(primal.dtype):
        return None  # integer/boolean inputs have no cotangent; JAX's float0 zeros
    if ct.dtype != primal.dtype:
        if not (weak or ct.weak_type):
            fail(where, f"dtype {_describe(ct)} for an argument of dtype {_describe(primal)}; "
                        f"cast it with .astype({primal.dtype})")
        ct = ct.astype(primal.dtype)
    return ct


def check_tangents(fun, rule, primal_out, tangent_out) -> list:
    """Flat tangents of a ``custom_jvp`` rule's output, checked against its primal output."""
    from fnarray import api as fa
    fname, rname = _rule_name(fun), _rule_name(rule)
    # Tracers (compat tensors among them) are leaves: a rule run on recorded tensors returns
    # a Tensor primal beside a plain-array tangent, which is the same structure.
    p_leaves, p_tree = tree_util.flatten(primal_out, is_leaf=_is_tracer)
    t_leaves, t_tree = tree_util.flatten(tangent_out, is_leaf=_is_tracer)
    prefix = (f"custom_jvp {fname}: the JVP rule {rname} must return (primal_out, "
              f"tangent_out) with tangent_out shaped like primal_out")
    if t_tree != p_tree:
        raise TypeError(f"{prefix}, but the tangent structure is {t_tree!r} and the primal "
                        f"structure {p_tree!r}")
    out = []
    for k, (p, t) in enumerate(zip(p_leaves, t_leaves)):
        weak = isinstance(t, (int, float, complex)) and not isinstance(t, bool)
        p, t = fa.asarray(p), fa.asarray(t)
        if tuple(t.shape) != tuple(p.shape):
            raise ValueError(f"{prefix}, but tangent output {k} is {_describe(t)} for a primal "
                             f"output {_describe(p)}")
        if is_inexact(p.dtype) and t.dtype != p.dtype:
            if not (weak or t.weak_type):
                raise TypeError(f"{prefix}, but tangent output {k} has dtype {_describe(t)} "
                                f"for a primal output {_describe(p)}; cast it with "
                                f".astype({p.dtype})")
            t = t.astype(p.dtype)
        out.append(t)
    return out
