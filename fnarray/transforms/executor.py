"""Compile a ``Program`` into straight-line Python that calls backend kernels directly.

The generated function takes raw backend buffers and returns raw buffers: per equation
it costs one Python call, with no tracing machinery.  Elementwise ufunc equations write
into a dead intermediate buffer of the same shape and dtype (``out=``) when one is free,
so chains of elementwise ops allocate once.  Only buffers the program itself allocated
with a ufunc (or donated inputs) are ever reused, never a view and never an array a
caller can see.
"""

from __future__ import annotations

import functools


def compile_program(prog, xp, donated: frozenset = frozenset()):
    """Return ``run(*consts, *inputs) -> list of buffers`` for ``prog`` on module ``xp``."""
    names: dict[int, str] = {}

    def name(v):
        return names.setdefault(id(v), f"v{len(names)}")

    args = [name(v) for v in prog.constvars] + [name(v) for v in prog.invars]
    last_use: dict[int, int] = {}
    consumers_all_ufunc: dict[int, bool] = {}
    for i, e in enumerate(prog.eqns):
        for v in e.invars:
            last_use[id(v)] = i
            consumers_all_ufunc[id(v)] = consumers_all_ufunc.get(id(v), True) and e.prim.ufunc is not None
    outputs = {id(v) for v in prog.outvars}
    # Buffers we own and may overwrite: ufunc results, and donated inputs.
    owned = {id(v) for i, v in enumerate(prog.invars) if i in donated}
    env: dict[str, object] = {"xp": xp}
    lines = [f"def run({', '.join(args)}):"]
    for i, e in enumerate(prog.eqns):
        ins = ", ".join(name(v) for v in e.invars)
        outs = ", ".join(name(v) for v in e.outvars)
        if e.prim.ufunc is not None and not e.params:
            env[f"u{i}"] = getattr(xp, e.prim.ufunc)
            target = _free_buffer(e, i, owned, last_use, consumers_all_ufunc, outputs)
            call = f"u{i}({ins}, out={name(target)})" if target is not None else f"u{i}({ins})"
            owned.add(id(e.outvars[0]))
        else:
            env[f"k{i}"] = functools.partial(e.prim.impl, **e.params) if e.params else e.prim.impl
            call = f"k{i}(xp, {ins})" if ins else f"k{i}(xp)"
        if not e.outvars:  # an effect (host callback) with no result
            lines.append(f"    {call}")
            continue
        lines.append(f"    {outs}{',' if e.prim.multiple_results and len(e.outvars) == 1 else ''} = {call}")
    lines.append(f"    return [{', '.join(name(v) for v in prog.outvars)}]")
    src = "\n".join(lines)
    exec(compile(src, f"<fnarray.jit {len(prog.eqns)} eqns>", "exec"), env)  # noqa: S102
    run = env["run"]
    run.source = src
    return run


def _free_buffer(e, i, owned, last_use, consumers_all_ufunc, outputs):
    """An input of equation ``i`` whose buffer dies here and may hold its result (never a
    0-d one: NumPy returns scalars, not arrays, for 0-d ufunc results)."""
    out_aval = e.outvars[0].aval
    for v in e.invars:
        if (id(v) in owned and last_use.get(id(v)) == i and consumers_all_ufunc.get(id(v))
                and id(v) not in outputs and v.aval.shape == out_aval.shape and v.aval.shape
                and v.aval.dtype == out_aval.dtype):
            owned.discard(id(v))
            return v
    return None
