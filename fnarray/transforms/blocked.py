"""Cache-blocked evaluation of elementwise programs on NumPy.

NumPy runs one pass over memory per operation, so a program of a dozen elementwise
operations on a large array (an optimizer update on a 1.2M-float weight) streams every
operand and intermediate through DRAM a dozen times.  When every equation of a program is
elementwise over one shape (or over 0-d values), the result at each index depends only on
the operands at that index, so the program may run on contiguous blocks of its operands,
all equations per block before the next block, and gives the very same values: each byte is
then read from memory once, and the intermediates live in a few block-sized scratch
buffers that stay in the L2 cache.

Whether an equation is elementwise is a declared trait of its primitive
(``transforms/buffers.py``: ufuncs, ``declare_elementwise``), never an op special case.
Equations on 0-d values run once, first; equations on arrays of one shape with more than
``BLOCK`` elements run block by block, one loop per shape, when they are many enough for
blocking to pay (``_pays``); other shapes run whole.  The
buffer plan of ``executor.py`` is kept: an equation writes, block by block, into the block
of the same dead (or donated) buffer it would have written whole; a program output gets a
full buffer of its own; an intermediate gets a block of scratch.  Blocks are flat slices,
so an input that is not C-contiguous (a transposed weight gradient) is first copied
row-major: one extra pass, which blocking pays for many times over, where the plain code
would run every one of its passes over mixed layouts (NumPy's slow strided loops).

Where compiled kernels run (the ``accel`` extra; decided per call and per shape by
``backends/accel.py``), the equations of one shape run instead as a single compiled loop
generated from them (``fused_kernels.py``): one pass, no scratch, the results written into
the same planned buffers; blocks or whole arrays remain the NumPy path.
"""

from __future__ import annotations

import math

from fnarray.transforms.buffers import is_elementwise, is_ufunc_call, out_kernel
from fnarray.transforms.executor import assign, build_function, kernel_call
from fnarray.transforms.fused_kernels import call_lines, contiguous, fuse

BLOCK = 65536  # elements per block: measured best of 4K-256K (smaller blocks pay per-call overhead)


def compile_blocked(prog, xp, plan: dict, donated: frozenset = frozenset()):
    """``run`` evaluating the elementwise program ``prog`` shape by shape: a shape's
    equations as one compiled loop where compiled kernels run (``fused_kernels.py``), else
    block by block where blocking pays, else whole; or None when the program is not
    elementwise throughout or has nothing to fuse or block.  ``plan`` is the executor's
    buffer plan for ``prog`` with the inputs at positions ``donated`` donated."""
    shapes = _elementwise_shapes(prog)
    if shapes is None:
        return None
    big = {s for s in shapes if s and math.prod(s) > BLOCK and _pays(prog, s)}
    outputs = {id(v) for v in prog.outvars}
    spare = [v for i, v in enumerate(prog.invars) if i in donated and id(v) not in outputs]
    loops = {}
    for shape, eqns in shapes.items():
        if shape and len(eqns) > 1:
            made = [prog.eqns[i].outvars[0] for i in eqns]
            results = [v for v in made if id(v) in outputs]
            loop = fuse([prog.eqns[i] for i in eqns], results,
                        _held_buffers(prog, plan, eqns, results, spare))
            if loop is not None:
                loops[shape] = loop
    if not big and not loops:
        return None
    names: dict[int, str] = {}

    def name(v):
        return names.setdefault(id(v), f"v{len(names)}")

    inputs = list(prog.constvars) + list(prog.invars)
    args = ", ".join(name(v) for v in inputs)
    env: dict[str, object] = {"xp": xp}
    lines = [f"def run({args}):"]
    for v in inputs:  # blocks are flat slices: a strided input is copied once, row-major
        if tuple(v.aval.shape) in big:
            lines += contiguous(name(v), "    ")
    results = {id(v): name(v) for v in prog.outvars}
    for shape, eqns in shapes.items():
        if shape in big:
            part = _block_loop(prog, xp, plan, env, name, shape, eqns, results)
        else:
            part = []
            for i in eqns:
                e = prog.eqns[i]
                target = plan.get(i)
                call = kernel_call(env, xp, i, e, [name(v) for v in e.invars],
                                   None if target is None else name(target))
                part.append(assign([name(v) for v in e.outvars], call, e.prim.multiple_results))
        if shape in loops:
            part = call_lines(env, name, f"F{eqns[0]}", loops[shape], part, results, {})
        lines += part
    lines.append(f"    return [{', '.join(results[id(v)] for v in prog.outvars)}]")
    run = build_function(lines, env, len(prog.eqns))
    run.loops = list(loops.values())
    return run


def _held_buffers(prog, plan: dict, eqns: list[int], results: list, spare: list) -> dict:
    """``{id(value): input}`` for the values of equations ``eqns`` that the buffer plan puts
    into an input's (donated) buffer, directly or along its chain of reuses; and for each
    of the loop's ``results`` the plan leaves to a new buffer, one of the ``spare`` (donated,
    not output) inputs of its shape and dtype that the loop reads, if one is left: the loop
    loads every operand at an index before it stores a result there, and in an elementwise
    program only this loop reads values of its shape, so the input is dead by then (an SGD
    momentum step writes the new momentum over the old one instead of a new buffer)."""
    produced = {id(prog.eqns[i].outvars[0]) for i in eqns}
    held: dict[int, object] = {}
    for i in eqns:
        target = plan.get(i)
        if target is not None:
            buf = held.get(id(target)) if id(target) in produced else target
            if buf is not None:
                held[id(prog.eqns[i].outvars[0])] = buf
    read = {id(v) for i in eqns for v in prog.eqns[i].invars}
    taken = {id(held[id(v)]) for v in results if id(v) in held}  # (the loop stores results only)
    for v in results:
        if id(v) in held:
            continue
        free = next((u for u in spare if id(u) in read and id(u) not in taken
                     and u.aval.shape == v.aval.shape and u.aval.dtype == v.aval.dtype), None)
        if free is not None:
            held[id(v)] = free
            taken.add(id(free))
    return held


def _elementwise_shapes(prog) -> dict | None:
    """``{result shape: equation indices}`` (0-d equations under ``()``, first), or None
    when some equation is not elementwise over one shape (operands of its result's shape
    or 0-d) or has effects."""
    shapes: dict[tuple, list[int]] = {(): []}
    for i, e in enumerate(prog.eqns):
        if len(e.outvars) != 1 or e.prim.effectful:
            return None
        shape = tuple(e.outvars[0].aval.shape)
        if shape and not is_elementwise(e.prim, e.params):
            return None
        if any(tuple(v.aval.shape) not in ((), shape) for v in e.invars):
            return None
        shapes.setdefault(shape, []).append(i)
    return shapes


def _pays(prog, shape) -> bool:
    """Blocking saves the passes over full-size intermediates; it pays when the equations
    on ``shape`` are at least 1.75 times as many as the full-size buffers they must stream
    anyway (inputs read, outputs written); with fewer, the per-block calls cost more than
    the traffic saved.  Measured on optimizer updates of a 1.2M-float parameter, one
    thread: Adam (13 equations, 7 buffers) and RMSprop (9, 5) ~0.9x, SGD with momentum
    (6, 5) and SGD with Nesterov momentum (8, 5) ~1.1-1.2x the whole-array time."""
    eqns = [e for e in prog.eqns if tuple(e.outvars[0].aval.shape) == shape]
    produced = {id(e.outvars[0]) for e in eqns}
    streamed = {id(v) for e in eqns for v in e.invars
                if tuple(v.aval.shape) == shape and id(v) not in produced}
    streamed |= {id(v) for v in prog.outvars if id(v) in produced}
    return 4 * len(eqns) >= 7 * len(streamed)


def _block_loop(prog, xp, plan, env, name, shape, eqns, results) -> list[str]:
    """The lines running equations ``eqns`` (all of result shape ``shape``) block by block;
    records in ``results`` the full buffer holding each program output they compute."""
    outputs = {id(v) for v in prog.outvars}
    # value -> (kind, buffer): "in" an input, "out" a new full output buffer, "tmp" a
    # scratch block, "new" a block the kernel allocates itself.
    root: dict[int, tuple[str, str]] = {}
    head, body, viewed, scratch = [], [], [], []

    def operand(v):
        if not v.aval.shape:
            return name(v)
        if id(v) not in root:  # an input: a flat view of it, sliced per block
            root[id(v)] = ("in", name(v))
            viewed.append(name(v))
        return f"c{name(v)}"

    for i in eqns:
        e = prog.eqns[i]
        v = e.outvars[0]
        ins = [operand(u) for u in e.invars]
        target = plan.get(i)
        takes_out = is_ufunc_call(e.prim, e.params) or out_kernel(e.prim, e.params) is not None
        into = None
        if target is not None and (id(v) not in outputs or root[id(target)][0] == "in"):
            root[id(v)], into = root[id(target)], f"c{name(target)}"
        elif id(v) in outputs:
            root[id(v)] = ("out", f"o{name(v)}")
            env[f"d{name(v)}"] = v.aval.dtype
            head.append(f"    o{name(v)} = xp.empty({shape!r}, d{name(v)})")
            head.append(f"    fo{name(v)} = o{name(v)}.reshape(-1)")
            into = f"fo{name(v)}[lo:hi]" if takes_out else None
        elif takes_out:
            root[id(v)] = ("tmp", f"s{len(scratch)}")
            into = root[id(v)][1]
            scratch.append(v.aval.dtype)
        else:
            root[id(v)] = ("new", "")
        body.append(assign([f"c{name(v)}"], kernel_call(env, xp, i, e, ins, into), False,
                           indent="        "))
        if id(v) in outputs:
            if into is None:
                body.append(f"        fo{name(v)}[lo:hi] = c{name(v)}")
            results[id(v)] = root[id(v)][1]
    n = math.prod(shape)
    head += [f"    f{src} = {src}.reshape(-1)" for src in viewed]
    env.update((f"ds{k}_{eqns[0]}", dt) for k, dt in enumerate(scratch))
    head += [f"    s{k}_all = xp.empty({BLOCK}, ds{k}_{eqns[0]})" for k in range(len(scratch))]
    loop = [f"    for lo in range(0, {n}, {BLOCK}):",
            f"        hi = lo + {BLOCK}"]
    loop += [f"        c{src} = f{src}[lo:hi]" for src in viewed]
    if scratch:
        loop.append(f"        m = min({BLOCK}, {n} - lo)")
        loop += [f"        s{k} = s{k}_all[:m]" for k in range(len(scratch))]
    return head + loop + body
