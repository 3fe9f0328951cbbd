"""Compile a ``Program`` into straight-line Python that calls backend kernels directly.

The generated function takes raw backend buffers and returns raw buffers: per equation
it costs one Python call, with no tracing machinery.

Buffers are reused by liveness analysis.  A value's buffer is *owned* by the program when
a fresh kernel made it (``transforms/buffers.py``: ufuncs, declared out kernels, declared
fresh kernels) or when it is a donated input; it becomes *free* after the value's last use,
provided it is not a program output and every consumer is fresh (a consumer that may
return a view, such as ``reshape``, keeps the buffer reachable).  An equation whose kernel
takes ``out=`` then writes into a free buffer of its result's shape and dtype: an
elementwise ufunc (or a kernel declared in place) preferably into an operand dying at
that very equation, any other out kernel into a buffer freed earlier (never one of its own
operands).  So chains
of elementwise ops allocate once, and GEMMs, bias additions and parameter updates write
into the buffers of intermediates that are already dead.  Inputs that are
not donated, constants, and anything a caller can see are never written.
"""

from __future__ import annotations

import functools

from fnarray.transforms.buffers import (is_fresh, is_ufunc_call, out_kernel,
                                       writes_over_operand)


def compile_program(prog, xp, donated: frozenset = frozenset()):
    """Return ``run(*consts, *inputs) -> list of buffers`` for ``prog`` on module ``xp``."""
    names: dict[int, str] = {}

    def name(v):
        return names.setdefault(id(v), f"v{len(names)}")

    args = [name(v) for v in prog.constvars] + [name(v) for v in prog.invars]
    plan = plan_buffers(prog.eqns, prog.invars, prog.outvars, donated)
    env: dict[str, object] = {"xp": xp}
    lines = [f"def run({', '.join(args)}):"]
    for i, e in enumerate(prog.eqns):
        target = plan.get(i)
        call = kernel_call(env, xp, i, e, [name(v) for v in e.invars],
                           None if target is None else name(target))
        lines.append(assign([name(v) for v in e.outvars], call, e.prim.multiple_results))
    lines.append(f"    return [{', '.join(name(v) for v in prog.outvars)}]")
    if getattr(xp, "__name__", None) == "numpy":  # CuPy fuses on the device anyway
        from fnarray.transforms.blocked import compile_blocked
        blocked = compile_blocked(prog, xp, plan, donated)
        if blocked is not None:
            return blocked
        from fnarray.transforms.fused_trees import compile_fused_trees
        plain = build_function(lines, env, len(prog.eqns))
        return compile_fused_trees(prog, xp, donated, plain) or plain
    return build_function(lines, env, len(prog.eqns))


def kernel_call(env: dict, xp, i: int, e, ins: list[str], into: str | None) -> str:
    """The Python expression that runs equation ``i`` on the buffers named ``ins``, writing
    into the buffer named ``into`` when given (its kernel then takes ``out=``)."""
    args = ", ".join(ins)
    out = "" if into is None else f", out={into}"
    if is_ufunc_call(e.prim, e.params):
        env[f"u{i}"] = getattr(xp, e.prim.ufunc)
        return f"u{i}({args}{out})"
    if into is not None:
        env[f"k{i}"] = functools.partial(out_kernel(e.prim, e.params), **e.params)
        return f"k{i}(xp, {args}{out})"
    env[f"k{i}"] = functools.partial(e.prim.impl, **e.params) if e.params else e.prim.impl
    return f"k{i}(xp, {args})" if args else f"k{i}(xp)"


def assign(outs: list[str], call: str, multiple: bool, indent: str = "    ") -> str:
    """The line binding an equation's results (a bare call for an effect without any)."""
    if not outs:  # an effect (host callback) with no result
        return f"{indent}{call}"
    return f"{indent}{', '.join(outs)}{',' if multiple and len(outs) == 1 else ''} = {call}"


def build_function(lines: list[str], env: dict, n_eqns: int):
    """Compile the generated source ``lines`` defining ``run`` in the namespace ``env``."""
    src = "\n".join(lines)
    exec(compile(src, f"<fnarray.jit {n_eqns} eqns>", "exec"), env)  # noqa: S102
    run = env["run"]
    run.source = src
    return run


def plan_buffers(eqns: list, invars: list, outvars: list, donated: frozenset) -> dict:
    """``{index in eqns: Var whose dead buffer receives that equation's result}`` for a
    program's equations ``eqns`` (``donated``: indices into ``invars``)."""
    last_use: dict[int, int] = {}
    viewed: set[int] = set()  # values some consumer may return a view of (or alias)
    for i, e in enumerate(eqns):
        fresh = is_fresh(e.prim, e.params)
        for v in e.invars:
            last_use[id(v)] = i
            if not fresh:
                viewed.add(id(v))
    keep = {id(v) for v in outvars} | viewed
    owned = {id(v) for i, v in enumerate(invars) if i in donated}
    free: dict[tuple, list] = {}  # (shape, dtype) -> dead owned buffers
    plan = {}
    for i, e in enumerate(eqns):
        ufunc = is_ufunc_call(e.prim, e.params)
        if len(e.outvars) == 1 and e.outvars[0].aval.shape and (
                ufunc or out_kernel(e.prim, e.params) is not None):
            aval = e.outvars[0].aval
            key = (tuple(aval.shape), aval.dtype)
            target = None
            if writes_over_operand(e.prim, e.params):  # an operand dying here may hold it
                target = next((v for v in e.invars if id(v) in owned and id(v) not in keep
                               and last_use[id(v)] == i and v.aval.dtype == aval.dtype
                               and tuple(v.aval.shape) == key[0]), None)
                if target is not None:
                    owned.discard(id(target))
            if target is None and free.get(key):
                target = free[key].pop()
            if target is not None:
                plan[i] = target
        if is_fresh(e.prim, e.params):
            owned.update(id(v) for v in e.outvars)
        for v in {id(v): v for v in e.invars}.values():
            if last_use[id(v)] == i and id(v) in owned and id(v) not in keep:
                owned.discard(id(v))
                if v.aval.shape:
                    free.setdefault((tuple(v.aval.shape), v.aval.dtype), []).append(v)
    return plan
