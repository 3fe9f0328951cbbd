"""Sub-programs: the closed IR programs that control-flow primitives carry as parameters.

``fa.scan``, ``fa.cond`` and ``fa.while_loop`` trace the user's functions once, on abstract
values, into ``Program``s.  Those functions usually close over values of the enclosing
computation (weights, a learning rate, a value being differentiated or batched).  Concrete
arrays become constants of the program; values traced by an enclosing transformation
become extra *captured* inputs (closure conversion), so the control-flow primitive is
bound with them as ordinary operands and every transformation sees them.

The rules of the control-flow primitives build new programs from old ones by tracing a
Python function that evaluates the old program under ``jvp_flat``/``vjp_flat``/
``vmap_flat`` (``trace_avals``), and ``split_forward_backward`` partitions a traced
forward-and-backward program into the part the primal outputs need and the rest (what
``scan`` stores per iteration are the values crossing between the two).
"""

from __future__ import annotations

from fnarray.core.array import Array, ArrayBase
from fnarray.core.shapes import ShapedArray, is_inexact
from fnarray.core.trace import ConcretizationError, Tracer, new_main
from fnarray.transforms.ir import (IRTrace, IRTracer, Program, Var, _Builder, eval_program,
                                   has_effect)


class _ClosureBuilder(_Builder):
    """An IR builder that turns tracers of enclosing transformations into inputs."""

    def __init__(self):
        super().__init__()
        self.captured: list = []
        self.capture_vars: list[Var] = []
        self._captured_ids: dict[int, IRTracer] = {}

    def capture(self, trace, value: Tracer) -> IRTracer:
        t = self._captured_ids.get(id(value))
        if t is None:
            v = Var(value.aval)
            self.captured.append(value)
            self.capture_vars.append(v)
            t = IRTracer(trace, v, device_of(value))
            self._captured_ids[id(value)] = t
        return t


def device_of(value):
    """The device of ``value``; the default device for a tracer without one."""
    try:
        return value.device
    except ConcretizationError:
        from fnarray.core.device import default
        return default()


class _ClosureTrace(IRTrace):
    __slots__ = ()

    def pure(self, value):
        if isinstance(value, Tracer):
            return self.builder().capture(self, value)
        return self.builder().const(self, value)

    lift = pure


def trace_closed(fun, avals: list, device, name: str) -> tuple[Program, list]:
    """Trace ``fun`` (flat list -> flat list) on ``avals``.

    Returns ``(program, captured)``: the program's inputs are the captured values of
    enclosing transformations first, then one per aval; ``captured`` lists those values.
    """
    from fnarray import api as fa
    b = _ClosureBuilder()
    with new_main(_ClosureTrace, name, data=b) as main:
        trace = _ClosureTrace(main)
        invars = [Var(a) for a in avals]
        outs = fun(*[IRTracer(trace, v, device) for v in invars])
        outvars = []
        for o in outs:
            if not (isinstance(o, IRTracer) and o._trace.main is main):
                o = trace.full_raise(o if isinstance(o, ArrayBase) else fa.asarray(o))
            outvars.append(o.var)
    prog = Program(b.capture_vars + invars, b.constvars, b.consts, b.eqns, outvars)
    return prog, b.captured


def trace_avals(fun, avals: list, name: str) -> Program:
    """Trace a rule's helper function (flat -> flat) on ``avals``; it must not close over
    traced values (rules pass everything as arguments), so nothing is captured."""
    from fnarray.core.device import default
    prog, captured = trace_closed(fun, avals, default(), name)
    if captured:
        raise AssertionError(f"{name}: a rule's sub-program closed over a traced value")
    return prog


def in_avals(prog: Program) -> list[ShapedArray]:
    return [v.aval for v in prog.invars]


def out_avals(prog: Program) -> list[ShapedArray]:
    return [v.aval for v in prog.outvars]


def call(prog: Program, args) -> list:
    """Evaluate ``prog`` on arrays or tracers, binding each equation."""
    return eval_program(prog, list(args))


def runner(prog: Program, xp):
    """``run(*buffers) -> list of buffers`` for ``prog`` on array module ``xp``, compiled
    once per program and module to straight-line code (the jit executor's)."""
    cache = prog.__dict__.setdefault("_runners", {})
    run = cache.get(xp.__name__)
    if run is None:
        from fnarray.transforms.executor import compile_program
        compiled = compile_program(prog, xp)
        const_bufs = [c._value for c in prog.consts]

        def run(*bufs):
            return compiled(*const_bufs, *bufs)

        cache[xp.__name__] = run
    return run


def batched_aval(a: ShapedArray, size: int) -> ShapedArray:
    return ShapedArray((size, *a.shape), a.dtype, a.weak_type)


def vmap_program(prog: Program, in_batched: list, size: int, name: str,
                 force_out: list | None = None) -> tuple[Program, list]:
    """``prog`` vectorised over a leading batch axis of the inputs marked in ``in_batched``.

    Returns ``(program, out_batched)``: an output comes out batched (axis 0) only if it
    depends on a batched input or ``force_out`` marks it; the others stay unbatched, so
    loop rules can find which carries really vary across the batch (a fixed point).
    """
    from fnarray.transforms.vmap import BatchTracer, vmap_flat
    out_batched: list = []

    def axes(outs):
        out_batched[:] = [(isinstance(o, BatchTracer) and o.bdim is not None)
                          or bool(force_out and force_out[i]) for i, o in enumerate(outs)]
        return [0 if b else None for b in out_batched]

    def batched(*args):
        return vmap_flat(lambda *a: call(prog, a), list(args),
                         [0 if b else None for b in in_batched], size, axes)

    avals = [batched_aval(a, size) if b else a for a, b in zip(in_avals(prog), in_batched)]
    return trace_avals(batched, avals, name), out_batched


def nonzero_tangents(prog: Program, nonzero_in: list) -> list[bool]:
    """Which outputs of ``prog`` get a nonzero tangent when the inputs marked in
    ``nonzero_in`` have one (traced abstractly with symbolic zeros elsewhere); loop rules
    iterate this to a fixed point so that carries nothing perturbs carry no tangent."""
    from fnarray.transforms.jvp import JVPTrace, JVPTracer
    found: list = []

    def probe(*args):
        with new_main(JVPTrace, "jvp") as main:
            trace = JVPTrace(main)
            outs = call(prog, [JVPTracer(trace, a, a if nz else None)
                               for a, nz in zip(args, nonzero_in)])
            found[:] = [isinstance(o, JVPTracer) and o._trace.main is main
                        and o.tangent is not None and is_float(o.aval) for o in outs]
        return []

    trace_avals(probe, in_avals(prog), "jvp_analysis")
    return found


def is_float(aval) -> bool:
    return is_inexact(aval.dtype)


def zeros_for(aval: ShapedArray):
    from fnarray import api as fa
    return fa.zeros(aval.shape, dtype=aval.dtype)


def split_forward_backward(prog: Program, n_primal_in: int, n_primal_out: int):
    """Partition a program whose first ``n_primal_in`` inputs are primals (the rest are
    cotangents) and whose first ``n_primal_out`` outputs are primal outputs.

    The forward part holds every equation the primal outputs (or a side effect) need; the
    backward part holds the rest.  Returns ``(fwd, bwd, residuals)``: ``fwd`` maps the
    primal inputs to the primal outputs followed by ``residuals`` (the values the backward
    part reads from the forward part); ``bwd`` maps ``residuals`` then the cotangent inputs
    to the remaining outputs.  Equations inside a ``checkpoint`` recomputation are needed
    by no primal output, so they stay in the backward part: only the checkpoint's inputs
    become residuals.
    """
    needed = {id(v) for v in prog.outvars[:n_primal_out]}
    ct_in = {id(v) for v in prog.invars[n_primal_in:]}
    in_fwd = [False] * len(prog.eqns)
    for i in range(len(prog.eqns) - 1, -1, -1):
        e = prog.eqns[i]
        effect = has_effect(e) and not any(id(v) in ct_in for v in e.invars)
        if effect or any(id(v) in needed for v in e.outvars):
            in_fwd[i] = True
            needed.update(id(v) for v in e.invars)
    fwd_eqns = [e for e, f in zip(prog.eqns, in_fwd) if f]
    bwd_eqns = [e for e, f in zip(prog.eqns, in_fwd) if not f]
    fwd_defined = {id(v) for v in prog.invars[:n_primal_in]}
    fwd_defined.update(id(v) for e in fwd_eqns for v in e.outvars)
    residuals, seen = [], set()
    for v in [v for e in bwd_eqns for v in e.invars] + prog.outvars[n_primal_out:]:
        if id(v) in fwd_defined and id(v) not in seen:
            seen.add(id(v))
            residuals.append(v)
    fwd = Program(prog.invars[:n_primal_in], prog.constvars, prog.consts, fwd_eqns,
                  prog.outvars[:n_primal_out] + residuals)
    bwd = Program(residuals + prog.invars[n_primal_in:], prog.constvars, prog.consts,
                  bwd_eqns, prog.outvars[n_primal_out:])
    return _prune(fwd), _prune(bwd), residuals


def _prune(prog: Program) -> Program:
    from fnarray.transforms.passes import dce
    return dce(prog)


def optimize(prog: Program) -> Program:
    """Constant folding, CSE and DCE on a sub-program (its inputs stay as they are)."""
    from fnarray.transforms.passes import cse, dce, fold_constants
    return dce(cse(fold_constants(prog)))


def concrete_value(x):
    """``x`` as a concrete ``Array`` if it has one (Python number, array, or a tracer
    with a concrete primal), else ``None``."""
    if isinstance(x, Array):
        return x
    if isinstance(x, Tracer):
        try:
            return x.concrete("a loop bound")
        except ConcretizationError:
            return None
    from fnarray import api as fa
    return fa.asarray(x)
