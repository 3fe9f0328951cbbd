"""Fusion trees of a jitted program run as compiled loops (NumPy with the ``accel`` extra).

A program that is not elementwise throughout (GEMMs, reductions, convolutions between the
elementwise work) still holds trees of elementwise equations over one shape whose values
but the root are used only inside the tree (``passes.fusion_groups``): a dropout's mask
and scale, an optimizer update inside a training step.  Each tree whose equations all have
a scalar form (``fused_kernels.py``) runs as one compiled loop, at its root's place in the
program, computing only the root: one pass over memory instead of one per equation, and no
intermediate buffers.

The buffer plan of such a program is made with every tree standing as one equation (a
fresh, elementwise result, writable in place over an operand dying there, like a ufunc),
so that no buffer a tree reads is handed to another equation before the tree runs.  The
program so compiled runs when compiled kernels run for its largest tree; otherwise the
program compiled as before (``executor.py``), the NumPy reference, runs unchanged.  Within
it, a tree too small for compiled kernels (``FusedLoop.size``) runs its equations on NumPy, each into a new
buffer (all small), the root into the planned one.
"""

from __future__ import annotations

from fnarray.backends import accel
from fnarray.transforms.buffers import is_ufunc_call, out_kernel
from fnarray.transforms.executor import assign, build_function, kernel_call, plan_buffers
from fnarray.transforms.fused_kernels import call_lines, fuse
from fnarray.transforms.ir import Equation


class _Tree:
    """Stands for a fused tree in the buffer plan: one elementwise equation with a fresh
    result that may be written over an operand dying there, as a ufunc's."""

    name = "fused_tree"
    ufunc = "fused_tree"
    multiple_results = False
    effectful = False


def compile_fused_trees(prog, xp, donated: frozenset, plain):
    """``run`` choosing per call between ``plain`` (the program compiled as before) and
    the program with its fusion trees as compiled loops; None when no tree can be fused."""
    trees = [g for g in prog.fusion_groups if _fusable(prog, g)]
    if not trees:
        return None
    root_of = {g[-1]: g for g in trees}
    inside = {i for g in trees for i in g[:-1]}
    steps, origin = [], []  # the program's equations, each tree as one equation at its root
    for i, e in enumerate(prog.eqns):
        if i in root_of:
            steps.append(Equation(_Tree, _external(prog, root_of[i]), {}, e.outvars))
        elif i not in inside:
            steps.append(e)
        else:
            continue
        origin.append(i)
    plan = plan_buffers(steps, prog.invars, prog.outvars, donated)
    names: dict[int, str] = {}

    def name(v):
        return names.setdefault(id(v), f"v{len(names)}")

    args = [name(v) for v in prog.constvars] + [name(v) for v in prog.invars]
    env: dict[str, object] = {"xp": xp}
    lines = [f"def run({', '.join(args)}):"]
    loops = []
    for k, (i, step) in enumerate(zip(origin, steps)):
        target = plan.get(k)
        if i in root_of:
            loop, tree_lines = _tree_lines(prog, xp, env, name, root_of[i], target)
            loops.append(loop)
            lines += tree_lines
            continue
        call = kernel_call(env, xp, i, step, [name(v) for v in step.invars],
                           None if target is None else name(target))
        lines.append(assign([name(v) for v in step.outvars], call, step.prim.multiple_results))
    lines.append(f"    return [{', '.join(name(v) for v in prog.outvars)}]")
    fused = build_function(lines, env, len(prog.eqns))
    size = max(loop.size for loop in loops)

    def run(*buffers):
        if accel.kernels("fusion", xp, size) is None:
            return plain(*buffers)
        return fused(*buffers)

    run.source = plain.source + "\n# with compiled kernels:\n" + fused.source
    run.loops = loops
    return run


def _fusable(prog, tree: list[int]) -> bool:
    eqns = [prog.eqns[i] for i in tree]
    return fuse(eqns, [eqns[-1].outvars[0]], {}) is not None


def _external(prog, tree: list[int]) -> list:
    """The values a tree reads that it does not compute, each once, in order of use."""
    made = {id(prog.eqns[i].outvars[0]) for i in tree}
    seen: dict[int, object] = {}
    for i in tree:
        for v in prog.eqns[i].invars:
            if id(v) not in made:
                seen.setdefault(id(v), v)
    return list(seen.values())


def _tree_lines(prog, xp, env, name, tree: list[int], target):
    """The loop of ``tree`` and the lines running it (or, below the compiled kernels' size,
    its equations), the root into the planned buffer ``target`` when there is one."""
    eqns = [prog.eqns[i] for i in tree]
    root = eqns[-1]
    result = root.outvars[0]
    loop = fuse(eqns, [result], {} if target is None else {id(result): target})
    fallback = []
    for i, e in zip(tree, eqns):
        into = None
        if e is root and target is not None and (
                is_ufunc_call(e.prim, e.params)
                or (out_kernel(e.prim, e.params) is not None
                    and all(v is not target for v in e.invars))):
            into = name(target)
        call = kernel_call(env, xp, i, e, [name(v) for v in e.invars], into)
        fallback.append(assign([name(e.outvars[0])], call, False))
    spare = {} if target is None or loop.held[0] is not None else {id(result): name(target)}
    lines = call_lines(env, name, f"F{tree[-1]}", loop, fallback, {id(result): name(result)},
                       spare)
    return loop, lines
