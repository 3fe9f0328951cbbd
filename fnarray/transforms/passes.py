"""Optimisation passes over a ``Program``: dead-code elimination, common-subexpression
elimination, constant folding, permuted results computed in their final layout
(``transforms/layout.py``), and grouping of elementwise chains for fusion."""

from __future__ import annotations

from fnarray.transforms.buffers import is_elementwise, is_fresh
from fnarray.transforms.ir import Equation, Program, Var, has_effect
from fnarray.transforms.layout import fold_permutations


def dce(prog: Program) -> Program:
    """Drop equations whose outputs nothing uses (every primitive but the effectful ones,
    host callbacks, is pure)."""
    live = {id(v) for v in prog.outvars}
    kept = []
    for e in reversed(prog.eqns):
        if any(id(v) in live for v in e.outvars) or has_effect(e):
            kept.append(e)
            live.update(id(v) for v in e.invars)
    kept.reverse()
    constvars, consts = [], []
    for v, c in zip(prog.constvars, prog.consts):
        if id(v) in live:
            constvars.append(v)
            consts.append(c)
    return Program(prog.invars, constvars, consts, kept, prog.outvars, prog.in_tree, prog.out_tree)


def _params_key(params):
    try:
        key = tuple(sorted(params.items()))
        hash(key)
        return key
    except TypeError:
        return None


def cse(prog: Program) -> Program:
    """Reuse the result of an identical earlier equation (same primitive, inputs, params)."""
    subst: dict[int, Var] = {}
    seen: dict[tuple, Equation] = {}
    eqns = []
    for e in prog.eqns:
        invars = [subst.get(id(v), v) for v in e.invars]
        pk = None if has_effect(e) else _params_key(e.params)
        key = None if pk is None else (e.prim, tuple(id(v) for v in invars), pk)
        if key is not None and key in seen:
            for old, new in zip(e.outvars, seen[key].outvars):
                subst[id(old)] = new
            continue
        ne = Equation(e.prim, invars, e.params, e.outvars)
        if key is not None:
            seen[key] = ne
        eqns.append(ne)
    outvars = [subst.get(id(v), v) for v in prog.outvars]
    return Program(prog.invars, prog.constvars, prog.consts, eqns, outvars, prog.in_tree,
                   prog.out_tree)


def fold_constants(prog: Program) -> Program:
    """Evaluate equations whose inputs are all constants, once, at compile time."""
    const_val = {id(v): c for v, c in zip(prog.constvars, prog.consts)}
    constvars, consts = list(prog.constvars), list(prog.consts)
    eqns = []
    for e in prog.eqns:
        if (e.invars and not has_effect(e)
                and all(id(v) in const_val for v in e.invars)):
            out = e.prim.bind(*[const_val[id(v)] for v in e.invars], **e.params)
            outs = out if e.prim.multiple_results else [out]
            for v, o in zip(e.outvars, outs):
                const_val[id(v)] = o
                constvars.append(v)
                consts.append(o)
        else:
            eqns.append(e)
    return Program(prog.invars, constvars, consts, eqns, prog.outvars, prog.in_tree, prog.out_tree)


def fusion_groups(prog: Program) -> list[list[int]]:
    """Trees of elementwise equations over arrays of one shape, each as the indices of its
    equations in program order: every value of a tree but the last equation's (its root)
    is used exactly once, by a later equation of the tree, and is not a program output,
    and every operand is of the tree's shape or 0-d.  A tree can therefore run as one loop
    computing only its root (``fused_kernels.py``: a compiled loop on NumPy; one kernel on
    CuPy) without any intermediate buffer."""
    uses: dict[int, int] = {}
    for e in prog.eqns:
        for v in e.invars:
            uses[id(v)] = uses.get(id(v), 0) + 1
    outputs = {id(v) for v in prog.outvars}
    open_root: dict[int, int] = {}  # value -> the tree it is the root of
    groups: list[list[int] | None] = []
    for i, e in enumerate(prog.eqns):
        if not _fusible(e):
            continue
        members = [i]
        for v in e.invars:
            g = open_root.pop(id(v), None)
            if g is not None and uses[id(v)] == 1 and id(v) not in outputs:
                members += groups[g]
                groups[g] = None
        open_root[id(e.outvars[0])] = len(groups)
        groups.append(sorted(members))
    return [g for g in groups if g is not None and len(g) > 1]


def _fusible(e) -> bool:
    """Is ``e`` elementwise over its (non-0-d) result's shape, with fresh results?"""
    if len(e.outvars) != 1 or e.prim.effectful:
        return False
    shape = e.outvars[0].aval.shape
    return (bool(shape) and is_elementwise(e.prim, e.params) and is_fresh(e.prim, e.params)
            and all(v.aval.shape in ((), shape) for v in e.invars))


def optimize(prog: Program) -> Program:
    prog = fold_permutations(dce(cse(fold_constants(prog))))
    prog.fusion_groups = fusion_groups(prog)
    return prog
