"""Structured control flow with JAX's signatures: ``cond``, ``switch``, ``while_loop``,
``fori_loop``, ``scan``, ``map``.

Each traces the user's functions once, on abstract values, into closed programs (see
``fnarray/transforms/subprogram.py``) and binds one primitive (``fnarray/ops/scan.py``,
``fnarray/ops/control_flow.py``).  So they work eagerly, inside ``jit`` without unrolling
(the IR holds one equation whatever the trip count), and under every transformation.
Values of enclosing computations that the functions close over become operands.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from fnarray.api._convert import as_operand, astype
from fnarray.core import tree as tree_util
from fnarray.core.array import ArrayBase
from fnarray.core.shapes import ShapedArray, int32
from fnarray.ops.control_flow import cond_p, while_p
from fnarray.ops.scan import scan_p
from fnarray.transforms import subprogram as sp
from fnarray.transforms.ir import has_effect

__all__ = ["cond", "switch", "while_loop", "fori_loop", "scan", "map"]


def _flatten(tree) -> tuple[list, Any]:
    """Pytree leaves, with every array-like (compat tensors included) kept as one leaf so
    that tensors recording gradients stay tensors."""
    return tree_util.flatten(tree, is_leaf=lambda x: isinstance(x, ArrayBase))


def _leaves(tree) -> tuple[list, Any]:
    leaves, treedef = _flatten(tree)
    return [as_operand(x) for x in leaves], treedef


def _device(leaves):
    """The device the sub-programs' inputs live on (the default one with no operand)."""
    if leaves:
        return sp.device_of(leaves[0])
    from fnarray.core.device import default
    return default()


def _types(avals) -> str:
    return "(" + ", ".join(a.str_short() for a in avals) + ")"


def _trace(fun, avals, device, name, out_store=None):
    """Trace ``fun`` on ``avals``; returns ``(program, captured)`` with outputs flattened
    (the output tree goes to ``out_store`` when given).  The program is optimised once
    here (constant folding, CSE, DCE), since its kernel runs it at every iteration."""
    def flat(*xs):
        outs = fun(*xs)
        leaves, treedef = _flatten(outs)
        if out_store is not None:
            out_store.append(treedef)
        return [as_operand(x) for x in leaves]
    prog, captured = sp.trace_closed(flat, avals, device, name)
    return sp.optimize(prog), captured


def _loop_body(fun, init_leaves, extra_avals, device, name, what):
    """Trace a loop body whose first outputs are the carry, fixing weak carry types.

    A carry that starts weakly typed (e.g. ``0.0``) takes the dtype the body gives it, as
    in JAX; any other change of shape or dtype is an error naming both types.
    """
    for attempt in range(2):
        avals = [x.aval for x in init_leaves]
        out_trees: list = []
        prog, captured = _trace(fun, avals + extra_avals, device, name, out_trees)
        got = sp.out_avals(prog)[:len(avals)]
        changed = [i for i, (a, b) in enumerate(zip(avals, got))
                   if a.dtype != b.dtype and a.weak_type and a.shape == b.shape]
        if not changed or attempt:
            break
        init_leaves = [astype(x, got[i].dtype) if i in changed else x
                       for i, x in enumerate(init_leaves)]
    bad = [(a, b) for a, b in zip(avals, got) if a.shape != b.shape or a.dtype != b.dtype]
    if bad:
        raise TypeError(
            f"{name}: {what} must return a carry of the same shapes and dtypes as its input: "
            f"got {_types(got)} for a carry of type {_types(avals)}. Make the initial value "
            f"match (e.g. with .astype(...)) or cast inside the function")
    return prog, captured, init_leaves, out_trees


def scan(f: Callable, init, xs=None, length: int | None = None, reverse: bool = False,
         unroll: int | bool = 1):
    """Loop ``carry, y = f(carry, x)`` over the leading axis of ``xs``; returns
    ``(final_carry, stacked_ys)``.

    ``xs`` is a pytree of arrays with a common leading length (or ``None`` with
    ``length``); ``reverse=True`` runs from the last element to the first (``ys`` stay in
    the original order).  ``unroll=k`` runs ``k`` steps per call of the compiled body (the
    body repeated ``k`` times in one program: less per-step overhead, a larger program to
    compile); ``True`` unrolls fully, ``False`` is 1.  The IR stays one equation either way.
    """
    if not isinstance(unroll, int) or (not isinstance(unroll, bool) and unroll < 1):
        raise ValueError(f"scan: unroll must be a positive int or a bool, got {unroll!r}")
    x_leaves, x_tree = _leaves(xs)
    lengths = set()
    for x in x_leaves:
        if x.ndim == 0:
            raise ValueError(f"scan: every leaf of xs needs a leading axis to scan over, got a "
                             f"scalar ({x.aval.str_short()})")
        lengths.add(x.shape[0])
    if length is not None:
        lengths.add(int(length))
    if len(lengths) != 1:
        got = sorted(lengths)
        raise ValueError("scan: " + ("xs is empty (None) and no length was given" if not got
                                     else f"the leading axes of xs and length disagree: {got}"))
    n = lengths.pop()
    init_leaves, init_tree = _leaves(init)
    x_avals = [ShapedArray(x.shape[1:], x.dtype, x.weak_type) for x in x_leaves]
    nk = len(init_leaves)

    def body(*args):
        out = f(tree_util.unflatten(init_tree, args[:nk]), tree_util.unflatten(x_tree, args[nk:]))
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"scan: f must return a pair (carry, y), got "
                            f"{type(out).__name__}")
        carry_tree = _flatten(out[0])[1]
        if carry_tree != init_tree:
            raise TypeError(f"scan: f must return a carry with the structure of init "
                            f"{init_tree}, got {carry_tree}")
        return out

    device = _device(init_leaves + x_leaves)
    prog, captured, init_leaves, out_trees = _loop_body(body, init_leaves, x_avals, device,
                                                        "scan", "f")
    y_tree = out_trees[-1].children[1]
    outs = _bind(scan_p, [*captured, *init_leaves, *x_leaves], [prog], body=prog,
                 n_consts=len(captured), n_carry=nk, length=n, reverse=bool(reverse),
                 unroll=max(n, 1) if unroll is True else int(unroll))
    return (tree_util.unflatten(init_tree, outs[:nk]), tree_util.unflatten(y_tree, outs[nk:]))


def map(f: Callable, xs):  # noqa: A001 - JAX's name
    """``f`` applied to each slice of ``xs`` along its leading axis, results stacked
    (a ``scan`` without a carry)."""
    return scan(lambda c, x: (c, f(x)), None, xs)[1]


def fori_loop(lower, upper, body_fun: Callable, init_val):
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``.

    With concrete bounds this is a ``scan`` (so reverse-mode differentiable); with traced
    bounds a ``while_loop`` (forward-mode only).
    """
    lo, hi = sp.concrete_value(lower), sp.concrete_value(upper)
    if lo is not None and hi is not None:
        from fnarray import api as fa
        dtype = fa.result_type(lo, hi)
        n = max(int(hi) - int(lo), 0)

        def step(carry, _):
            i, val = carry
            return (i + 1, body_fun(i, val)), None

        (_, val), _ = scan(step, (fa.asarray(int(lo), dtype=dtype), init_val), None, length=n)
        return val

    def cond_fun(c):
        return c[0] < c[1]

    def body(c):
        i, u, val = c
        return i + 1, u, body_fun(i, val)

    return while_loop(cond_fun, body, (as_operand(lower), as_operand(upper), init_val))[2]


def while_loop(cond_fun: Callable, body_fun: Callable, init_val):
    """``while cond_fun(val): val = body_fun(val)``; returns the final ``val``.

    Forward-mode differentiable; reverse mode raises an error pointing to ``fori_loop``
    and ``scan``.
    """
    init_leaves, tree = _leaves(init_val)
    device = _device(init_leaves)
    nk = len(init_leaves)
    cprog, c_capt = _trace(lambda *k: cond_fun(tree_util.unflatten(tree, k)),
                           [x.aval for x in init_leaves], device, "while_loop")
    pred = sp.out_avals(cprog)
    if len(pred) != 1 or pred[0].shape != () or pred[0].dtype.kind != "b":
        raise TypeError(f"while_loop: cond_fun must return a boolean scalar, got "
                        f"{_types(pred)}")

    def body(*k):
        out = body_fun(tree_util.unflatten(tree, k))
        if _flatten(out)[1] != tree:
            raise TypeError(f"while_loop: body_fun must return a value with the structure "
                            f"of init_val {tree}, got {_flatten(out)[1]}")
        return out

    bprog, b_capt, init_leaves, _ = _loop_body(body, init_leaves, [], device, "while_loop",
                                               "body_fun")
    if [x.aval.dtype for x in init_leaves] != [a.dtype for a in sp.in_avals(cprog)[len(c_capt):]]:
        cprog, c_capt = _trace(lambda *k: cond_fun(tree_util.unflatten(tree, k)),
                               [x.aval for x in init_leaves], device, "while_loop")
    outs = _bind(while_p, [*c_capt, *b_capt, *init_leaves], [cprog, bprog], cond_prog=cprog,
                 body_prog=bprog, n_cc=len(c_capt), n_bc=len(b_capt))
    return tree_util.unflatten(tree, outs[:nk])


def cond(pred, true_fun: Callable, false_fun: Callable, *operands):
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``.

    Both functions are traced (they must return the same types); only the taken one runs.
    Under ``vmap`` with a batched ``pred`` both run and the results are selected.
    """
    pred = as_operand(pred)
    if pred.shape != ():
        raise TypeError(f"cond: pred must be a scalar, got shape {tuple(pred.shape)}; for an "
                        f"elementwise choice use fa.where(pred, a, b)")
    index = astype(pred if pred.dtype.kind == "b" else pred != 0, int32)
    return _switch(index, [false_fun, true_fun], operands, "cond")


def switch(index, branches: Sequence[Callable], *operands):
    """``branches[index](*operands)`` with ``index`` clamped into ``[0, len(branches) - 1]``."""
    index = as_operand(index)
    if index.shape != () or index.dtype.kind not in "iub":
        raise TypeError(f"switch: index must be an integer scalar, got "
                        f"{index.aval.str_short()}")
    if not branches:
        raise ValueError("switch: branches must hold at least one function")
    return _switch(astype(index, int32), list(branches), operands, "switch")


def _switch(index, branches, operands, name):
    op_leaves, op_tree = _leaves(tuple(operands))
    device = _device(op_leaves)
    avals = [x.aval for x in op_leaves]
    traced, out_trees = [], []
    for fun in branches:
        store: list = []
        prog, capt = _trace(lambda *a, fun=fun: fun(*tree_util.unflatten(op_tree, a)), avals,
                            device, name, store)
        traced.append((prog, capt))
        out_trees.append(store[-1])
    first = sp.out_avals(traced[0][0])
    for i, ((prog, _), t) in enumerate(zip(traced, out_trees)):
        got = sp.out_avals(prog)
        if t != out_trees[0] or [(a.shape, a.dtype) for a in got] != [(a.shape, a.dtype)
                                                                     for a in first]:
            raise TypeError(f"{name}: every branch must return the same structure, shapes and "
                            f"dtypes: branch 0 returns {out_trees[0]} {_types(first)}, branch "
                            f"{i} returns {t} {_types(got)}")
    captured, progs = _share_captures(traced)
    outs = _bind(cond_p, [index, *captured, *op_leaves], progs, branches=tuple(progs))
    return tree_util.unflatten(out_trees[0], outs)


def _bind(prim, operands: list, programs: list, **params):
    """Bind ``prim``; when its sub-programs have side effects (``fa.debug.print``), stage
    it into an enclosing ``jit`` even with only concrete operands, so the effect happens
    every time the compiled program runs."""
    if any(has_effect(e) for p in programs for e in p.eqns):
        from fnarray.callbacks import bind_staged
        return bind_staged(prim, operands, params)
    return prim.bind(*operands, **params)


def _share_captures(traced):
    """Give every branch program the union of all branches' captured inputs."""
    from fnarray.transforms.ir import Program, Var
    captured, where = [], {}
    for _, capt in traced:
        for c in capt:
            if id(c) not in where:
                where[id(c)] = len(captured)
                captured.append(c)
    progs = []
    for prog, capt in traced:
        own = {id(c): v for c, v in zip(capt, prog.invars)}
        cap_vars = [own.get(id(c)) or Var(c.aval) for c in captured]
        progs.append(Program(cap_vars + prog.invars[len(capt):], prog.constvars, prog.consts,
                             prog.eqns, prog.outvars))
    return captured, progs
