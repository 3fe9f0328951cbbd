"""Layout traits of primitives, and the pass that computes permuted results in place.

A program often permutes the axes of a value it has just computed: reverse mode turns
``x @ w.T`` into a weight cotangent computed as ``(x.T @ ct)`` and then transposed back.  The
permutation is free (a view), but the result is then a transposed view, and every later
elementwise pass that meets it next to row-major operands (the optimizer's update of the
row-major weight) walks one of them against its strides, which NumPy does at a fraction of
its speed.  Many producers can write the permuted layout directly instead: a contraction
just swaps its operands.

Two declarations, made next to each primitive, drive the rewrite; the pass itself knows no
primitive:

* ``declare_permutation(prim, perm_of)``: ``prim`` only permutes its operand's axes;
  ``perm_of(params)`` is the permutation (``transpose``).
* ``declare_permuted_result(prim, rule)``: ``rule(*operand_avals, perm, **params)`` returns
  ``(operand order, params)`` such that ``prim[params](*operands in that order)`` equals the
  result permuted by ``perm``, or None when it cannot.
"""

from __future__ import annotations

from typing import Callable

from fnarray.transforms.ir import Equation, Program

_PERMUTATIONS: dict = {}
_PERMUTED_RESULTS: dict = {}


def declare_permutation(prim, perm_of: Callable) -> None:
    """``prim`` is a pure axis permutation; ``perm_of(params)`` gives it."""
    _PERMUTATIONS[prim] = perm_of


def declare_permuted_result(prim, rule: Callable) -> None:
    """``rule(*operand_avals, perm, **params) -> (order, params) | None``, see the module."""
    _PERMUTED_RESULTS[prim] = rule


def fold_permutations(prog: Program) -> Program:
    """Replace ``permute(producer(...))`` by one producer equation computing the permuted
    result directly, when the producer declares how and its result has no other use."""
    uses: dict[int, int] = {}
    for v in [v for e in prog.eqns for v in e.invars] + list(prog.outvars):
        uses[id(v)] = uses.get(id(v), 0) + 1
    producer = {id(e.outvars[0]): j for j, e in enumerate(prog.eqns) if len(e.outvars) == 1}
    replaced: dict[int, Equation] = {}
    dropped: set[int] = set()
    for i, e in enumerate(prog.eqns):
        perm_of = _PERMUTATIONS.get(e.prim)
        if perm_of is None or len(e.invars) != 1 or uses.get(id(e.invars[0])) != 1:
            continue
        j = producer.get(id(e.invars[0]))
        rule = None if j is None or j in replaced else _PERMUTED_RESULTS.get(prog.eqns[j].prim)
        if rule is None:
            continue
        p = prog.eqns[j]
        found = rule(*[v.aval for v in p.invars], tuple(perm_of(e.params)), **p.params)
        if found is None:
            continue
        order, params = found
        invars = [p.invars[k] for k in order]
        aval = p.prim.abstract(*[v.aval for v in invars], **params)
        want = e.outvars[0].aval
        if aval.shape != want.shape or aval.dtype != want.dtype:
            continue  # a rule that does not produce the permuted value: leave it alone
        replaced[j] = Equation(p.prim, invars, params, e.outvars)
        dropped.add(i)
    if not replaced:
        return prog
    eqns = [replaced.get(j, e) for j, e in enumerate(prog.eqns) if j not in dropped]
    return Program(prog.invars, prog.constvars, prog.consts, eqns, prog.outvars, prog.in_tree,
                   prog.out_tree)
