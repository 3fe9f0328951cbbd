"""Optimisation passes over a ``Program``: dead-code elimination, common-subexpression
elimination, constant folding, permuted results computed in their final layout
(``transforms/layout.py``), and grouping of elementwise chains for fusion."""

from __future__ import annotations

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
    """Maximal chains of elementwise equations whose intermediates are used only inside the
    chain: each group could run as one kernel (on CuPy) and needs no intermediate buffers
    beyond one (on NumPy, via ``out=``)."""
    uses: dict[int, int] = {}
    for e in prog.eqns:
        for v in e.invars:
            uses[id(v)] = uses.get(id(v), 0) + 1
    outputs = {id(v) for v in prog.outvars}
    producer_group: dict[int, int] = {}
    groups: list[list[int]] = []
    for i, e in enumerate(prog.eqns):
        if e.prim.ufunc is None:
            continue
        joined = None
        for v in e.invars:
            g = producer_group.get(id(v))
            if g is not None and uses.get(id(v)) == 1 and id(v) not in outputs:
                joined = g if joined is None else joined
        if joined is None:
            joined = len(groups)
            groups.append([])
        groups[joined].append(i)
        for v in e.outvars:
            producer_group[id(v)] = joined
    return [g for g in groups if len(g) > 1]


def optimize(prog: Program) -> Program:
    prog = fold_permutations(dce(cse(fold_constants(prog))))
    prog.fusion_groups = fusion_groups(prog)
    return prog
