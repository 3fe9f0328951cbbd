"""The IR: a program of primitive equations recorded from abstract values.

``trace_program(fun, avals)`` runs ``fun`` on ``IRTracer``s that carry only a shape, a
dtype and a device; every primitive they meet becomes an ``Equation``.  Concrete arrays
met during tracing (closed-over constants, values computed from them) become constants of
the program, so constant subexpressions are already folded by the time tracing ends.

``Program`` prints as readable text (``fa.make_ir(f)(*args)``) and can be evaluated by
binding each equation (``eval_program``), which is how jitted functions run under other
transformations.
"""

from __future__ import annotations

import itertools
import os
import traceback

from fnarray.core.array import Array
from fnarray.core.shapes import ShapedArray
from fnarray.core.trace import ConcretizationError, Trace, Tracer, new_main


class Var:
    """A value in a program: an input, a constant, or an equation's output."""

    __slots__ = ("aval", "count")
    _counter = itertools.count()

    def __init__(self, aval: ShapedArray):
        self.aval = aval
        self.count = next(Var._counter)

    def __repr__(self):
        return f"Var({self.aval.str_short()})"


class Equation:
    """``outvars = prim[params](*invars)``."""

    __slots__ = ("prim", "invars", "params", "outvars")

    def __init__(self, prim, invars, params, outvars):
        self.prim = prim
        self.invars = invars
        self.params = params
        self.outvars = outvars


class Program:
    """A traced function: inputs, constants (with values), equations, outputs."""

    def __init__(self, invars, constvars, consts, eqns, outvars, in_tree=None, out_tree=None):
        self.invars = list(invars)
        self.constvars = list(constvars)
        self.consts = list(consts)
        self.eqns = list(eqns)
        self.outvars = list(outvars)
        self.in_tree = in_tree
        self.out_tree = out_tree
        self.fusion_groups: list[list[int]] = []

    # --- inspection ---------------------------------------------------------------------
    def __len__(self):
        return len(self.eqns)

    def primitive_names(self) -> list[str]:
        return [e.prim.name for e in self.eqns]

    def __str__(self):
        names: dict[int, str] = {}

        def name(v):
            if id(v) not in names:
                names[id(v)] = _letters(len(names))
            return names[id(v)]

        def typed(v):
            return f"{name(v)}:{v.aval.str_short()}"

        group_of = {i: g for g, idxs in enumerate(self.fusion_groups) for i in idxs}
        lines = []
        if self.constvars:
            lines.append("  consts " + " ".join(typed(v) for v in self.constvars))
        lines.append("  inputs " + " ".join(typed(v) for v in self.invars))
        for i, e in enumerate(self.eqns):
            subs = {k: v for k, v in e.params.items() if _sub_programs(v)}
            params = " ".join(f"{k}={_short(v)}" for k, v in e.params.items() if k not in subs)
            head = " ".join(typed(v) for v in e.outvars)
            args = " ".join(name(v) for v in e.invars)
            fused = f"    # fused group {group_of[i]}" if i in group_of else ""
            lhs = f"{head} = " if head else ""  # an effect (host callback) has no result
            lines.append(f"  {lhs}{e.prim.name}{'[' + params + ']' if params else ''} {args}{fused}")
            for k, v in subs.items():  # sub-programs of control flow, nested and indented
                for j, sub in enumerate(_sub_programs(v)):
                    label = k if isinstance(v, Program) else f"{k}[{j}]"
                    lines.append(f"    {label} = " + str(sub).replace("\n", "\n    "))
        lines.append("  outputs " + " ".join(name(v) for v in self.outvars))
        return "{\n" + "\n".join(lines) + "\n}"

    __repr__ = __str__


def _letters(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(97 + r) + s
    return s


def _sub_programs(v) -> list:
    """The programs held by an equation parameter (one, or a tuple of branches)."""
    if isinstance(v, Program):
        return [v]
    if isinstance(v, tuple) and v and all(isinstance(p, Program) for p in v):
        return list(v)
    return []


def has_effect(e: Equation) -> bool:
    """Does running equation ``e`` have a side effect (a host callback, possibly inside a
    control-flow sub-program)?  Such equations are never dropped, merged or folded."""
    return e.prim.effectful or any(has_effect(sub_e) for v in e.params.values()
                                   for sub in _sub_programs(v) for sub_e in sub.eqns)


def _short(v):
    if callable(v):
        return getattr(v, "__name__", "fn")
    if hasattr(v, "name") and hasattr(v, "kind"):  # numpy dtype
        return v.name
    return repr(v).replace(" ", "")


# --- the tracing interpreter -------------------------------------------------------------

class IRTracer(Tracer):
    __slots__ = ("var", "_device")

    def __init__(self, trace, var, device):
        self._trace = trace
        self.var = var
        self._device = device

    @property
    def aval(self):
        return self.var.aval

    @property
    def device(self):
        return self._device

    def concrete(self, why="a concrete value"):
        raise ConcretizationError(_concretization_message(self, why))


def _concretization_message(t, why: str) -> str:
    where = user_frame()
    return (
        f"{t._trace.main.name}: {why} needs a concrete value of a traced "
        f"{t.aval.str_short()} array, but inside {t._trace.main.name} only its shape and dtype "
        f"are known{where}. Fixes: write the branch or loop with structured control flow "
        f"(fa.cond / fa.switch for `if`, fa.while_loop / fa.fori_loop / fa.scan for loops), "
        f"or mark that argument static with static_argnums=/static_argnames= (it is then part "
        f"of the cache key), or select elementwise with fa.where(cond, a, b), or move the "
        f"computation outside the transformation")


def user_frame() -> str:
    """' (at file:line: `source`)' for the innermost frame outside fnarray, or ''."""
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for fr in reversed(traceback.extract_stack()):
        if not os.path.abspath(fr.filename).startswith(pkg):
            return f" (at {fr.filename}:{fr.lineno}: `{(fr.line or '').strip()}`)"
    return ""


class EscapedTracer(Exception):
    """Tracing met a tracer of an enclosing transformation (a closed-over traced value)."""


class IRTrace(Trace):
    __slots__ = ()

    def builder(self) -> "_Builder":
        return self.main.data

    def pure(self, value):
        if isinstance(value, Tracer):
            raise EscapedTracer()
        return self.builder().const(self, value)

    lift = pure

    def process_primitive(self, prim, tracers, params):
        b = self.builder()
        avals = [t.aval for t in tracers]
        out_aval = prim.abstract(*avals, **params)
        dev = tracers[0].device if tracers else None
        if prim.multiple_results:
            outvars = [Var(a) for a in out_aval]
        else:
            outvars = [Var(out_aval)]
        b.eqns.append(Equation(prim, [t.var for t in tracers], params, outvars))
        outs = [IRTracer(self, v, dev) for v in outvars]
        return tuple(outs) if prim.multiple_results else outs[0]


class _Builder:
    def __init__(self):
        self.eqns: list[Equation] = []
        self.constvars: list[Var] = []
        self.consts: list[Array] = []
        self._const_ids: dict = {}

    def const(self, trace, value: Array):
        """The program constant for ``value``; equal scalars share one constant."""
        key = (("scalar", value.dtype, value.weak_type, value.__array__().tobytes())
               if value.ndim == 0 else id(value))  # by bytes: -0.0 and 0.0 stay apart
        t = self._const_ids.get(key)
        if t is None:
            v = Var(value.aval)
            self.constvars.append(v)
            self.consts.append(value)
            t = IRTracer(trace, v, value.device)
            self._const_ids[key] = t
        return t


def trace_flat(fun, avals_devices: list, name: str = "jit") -> Program:
    """Trace ``fun`` (flat list -> flat list) on abstract inputs into a ``Program``."""
    b = _Builder()
    with new_main(IRTrace, name, data=b) as main:
        trace = IRTrace(main)
        invars = [Var(a) for a, _ in avals_devices]
        ins = [IRTracer(trace, v, d) for v, (_, d) in zip(invars, avals_devices)]
        outs = fun(*ins)
        outvars = []
        for o in outs:
            if not (isinstance(o, IRTracer) and o._trace.main is main):
                from fnarray import api as fa
                o = b.const(trace, fa.asarray(o))
            outvars.append(o.var)
    return Program(invars, b.constvars, b.consts, b.eqns, outvars)


def eval_program(prog: Program, args: list) -> list:
    """Run a program by binding each equation: works on arrays and on any tracers."""
    env = {id(v): c for v, c in zip(prog.constvars, prog.consts)}
    env.update({id(v): a for v, a in zip(prog.invars, args)})
    for e in prog.eqns:
        out = e.prim.bind(*[env[id(v)] for v in e.invars], **e.params)
        if e.prim.multiple_results:
            for v, o in zip(e.outvars, out):
                env[id(v)] = o
        else:
            env[id(e.outvars[0])] = out
    return [env[id(v)] for v in prog.outvars]


def call_abstract(*avals, fun, **_):
    """Abstract evaluation of a call primitive: trace its function on the input avals."""
    from fnarray.core.device import default
    prog = trace_flat(fun, [(a, default()) for a in avals], name="abstract")
    return [v.aval for v in prog.outvars]


def make_ir(fun, static_argnums=()):
    """``make_ir(f)(*args)`` returns the optimised ``Program`` that ``jit(f)`` would run."""
    from fnarray.transforms.jit import jit

    def build(*args, **kwargs):
        return jit(fun, static_argnums=static_argnums).lower(*args, **kwargs)

    return build
