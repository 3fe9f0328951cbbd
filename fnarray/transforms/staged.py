"""Staged functions: a function traced once and split into a compiled forward program and a
compiled backward program, applied as one primitive (``staged_call``).

This is what ``fnarray.compat.compile`` records on the tape: the whole forward of a module is
one node whose VJP is one compiled program, instead of one node and one Python dispatch per
primitive.

``Staged(fun, avals_devices, diff)`` traces the joint function ``(inputs, cts) -> (outputs,
input cotangents)`` (forward followed by ``vjp``) into one IR program and partitions its
equations by whether they depend on the cotangents:

* the **forward program** holds the equations that do not: it returns the outputs and the
  *residuals* — every forward value the backward equations read (activations, masks);
* the **backward program** takes the inputs, the residuals and the output cotangents and
  holds the rest.

Nothing is computed twice, and each program is optimised and compiled like a ``jit``
program (``passes.optimize``, ``executor.compile_program``).

``staged_call(*inputs, staged=s)`` returns the outputs (the plain compiled forward runs when
nothing records).  When the compat tape or the reverse trace records it, they call its
``fwd`` rule, which runs the forward program and hands the residuals to the VJP rule (the
``residuals`` parameter).  Under further transformations (tracers as operands:
higher-order derivatives, ``vmap``) the rules evaluate the traced programs equation by
equation, and the VJP re-derives the residuals from the inputs so that second derivatives
are complete.
"""

from __future__ import annotations

import itertools

from fnarray.core.array import Array
from fnarray.core.primitive import declare
from fnarray.core.trace import quiet_fp_errors
from fnarray.transforms import ir, passes
from fnarray.transforms.executor import compile_program
from fnarray.core.shapes import is_inexact


def _inexact(aval) -> bool:
    return is_inexact(aval.dtype)


class Staged:
    """The split programs of ``fun`` (flat list of arrays -> flat list of arrays) for one
    input signature; ``diff[i]`` says whether input ``i`` gets a cotangent."""

    def __init__(self, fun, avals_devices: list, diff: tuple, name: str = "staged"):
        self.name = name
        self.n_in = len(avals_devices)
        self.signature = [(tuple(a.shape), a.dtype) for a, _ in avals_devices]
        self.diff = tuple(bool(d) and _inexact(a) for d, (a, _) in zip(diff, avals_devices))
        self.device = avals_devices[0][1] if avals_devices else _default_device()
        plain = ir.trace_flat(fun, avals_devices, name=name)
        self.out_avals = [v.aval for v in plain.outvars]
        self.n_out = len(self.out_avals)
        self.out_inexact = [_inexact(a) for a in self.out_avals]  # outputs with cotangents
        self.all_out_inexact = all(self.out_inexact)
        # where each input's cotangent is among the backward program's outputs (-1: none)
        position = itertools.count()
        self._grad_at = [next(position) if d else -1 for d in self.diff]
        self.plain = _Runnable(passes.optimize(plain), self.device)
        self.joint = ir.trace_flat(self._joint_fun(fun), avals_devices + [
            (a, self.device) for a in self.out_avals if _inexact(a)], name=name + "_vjp")
        fwd, bwd = _split(self.joint, self.n_in, self.n_out)
        self.forward = _Runnable(passes.optimize(fwd), self.device)
        self.backward = _Runnable(passes.optimize(bwd), self.device)
        self.residual_avals = [v.aval for v in fwd.outvars[self.n_out:]]

    def _joint_fun(self, fun):
        from fnarray import api as fa
        from fnarray.transforms.reverse import vjp_flat
        diff_idx = [i for i, d in enumerate(self.diff) if d]

        def joint(*xs):
            ins, cts = list(xs[:self.n_in]), iter(xs[self.n_in:])

            def of_diff(*d):
                full = list(ins)
                for i, v in zip(diff_idx, d):
                    full[i] = v
                return fun(*full)

            outs, pullback = vjp_flat(of_diff, [ins[i] for i in diff_idx])
            full_cts = [next(cts) if _inexact(a) else fa.zeros(a.shape, a.dtype)
                        for a in self.out_avals]
            return list(outs) + list(pullback(full_cts))
        return joint

    def spread_grads(self, grads: list) -> tuple:
        """The cotangents of the differentiable inputs (``grads``) as one entry per input,
        None for the others (the VJP rule's result)."""
        return tuple([None if i < 0 else grads[i] for i in self._grad_at])

    def check(self, avals) -> None:
        """Refuse operands (avals, arrays or tracers) of another signature than the one the
        programs were traced for."""
        got = [(tuple(a.shape), a.dtype) for a in avals]
        if got != self.signature:
            raise TypeError(f"staged_call {self.name}: traced for operands "
                            f"{_describe(self.signature)} but called with {_describe(got)}; "
                            f"stage the function again for this signature")

    def __repr__(self):
        return (f"Staged({self.name}: {self.n_in} inputs, {self.n_out} outputs, "
                f"{len(self.residual_avals)} residuals)")


class _Runnable:
    """An optimised program and its compiled kernel-calling function."""

    def __init__(self, program, device):
        self.program = program
        self.device = device
        self.const_bufs = [c._value for c in program.consts]
        self.run = compile_program(program, device.xp)

    def __call__(self, values: list) -> list:
        """Run on ``values`` (Arrays: compiled; any tracer: equation by equation)."""
        if _concrete(values):
            return self.run_arrays(values)
        return ir.eval_program(self.program, list(values))

    def run_arrays(self, values: list) -> list:
        """The compiled program on ``values``, all of them ``Array``s."""
        with quiet_fp_errors():  # intended inf/nan are silent, as eagerly (core/trace.py)
            outs = self.run(*self.const_bufs, *[v._value for v in values])
        device = self.device
        return [Array(o, device) for o in outs]


def _concrete(values) -> bool:
    return all([isinstance(v, Array) for v in values])


def _describe(signature) -> str:
    return ", ".join(f"{dtype}{list(shape)}" for shape, dtype in signature)


def _split(joint: ir.Program, n_in: int, n_out: int) -> tuple[ir.Program, ir.Program]:
    """Partition ``joint`` (inputs, cts -> outputs, input cts) into forward and backward."""
    ct_vars = joint.invars[n_in:]
    depends = {id(v) for v in ct_vars}
    fwd_eqns, bwd_eqns = [], []
    for e in joint.eqns:
        if any(id(v) in depends for v in e.invars):
            bwd_eqns.append(e)
            depends.update(id(v) for v in e.outvars)
        else:
            fwd_eqns.append(e)
    inputs = {id(v) for v in joint.invars[:n_in]}
    consts = {id(v) for v in joint.constvars}
    residuals, seen = [], set()
    wanted = [v for e in bwd_eqns for v in e.invars] + joint.outvars[n_out:]
    for v in wanted:
        if id(v) not in depends and id(v) not in inputs and id(v) not in consts \
                and id(v) not in seen:
            seen.add(id(v))
            residuals.append(v)
    fwd = ir.Program(joint.invars[:n_in], joint.constvars, joint.consts, fwd_eqns,
                     joint.outvars[:n_out] + residuals)
    bwd = ir.Program(joint.invars[:n_in] + residuals + ct_vars, joint.constvars, joint.consts,
                     bwd_eqns, joint.outvars[n_out:])
    return fwd, bwd


def _default_device():
    from fnarray.core.device import default
    return default()


# --- the primitive ---------------------------------------------------------------------------

def _impl(xp, *buffers, staged, residuals=None):
    staged.check(buffers)
    return staged.plain.run(*staged.plain.const_bufs, *buffers)


def _fwd(*primals, staged):
    """Run by the tape and the reverse trace when they record: outputs and residuals."""
    staged.check(primals)  # (anything with .shape and .dtype: no aval objects built)
    values = staged.forward(list(primals))
    return values[:staged.n_out], values[staged.n_out:]


def _abstract(*avals, staged, residuals=None):
    staged.check(avals)
    return list(staged.out_avals)


def _jvp(primals, tangents, *, staged, residuals=None):
    from fnarray import api as fa
    from fnarray.transforms.jvp import jvp
    ts = [fa.zeros_like(p) if t is None else t for p, t in zip(primals, tangents)]
    outs, t_out = jvp(lambda *xs: staged.plain(list(xs)), tuple(primals), tuple(ts))
    return list(outs), list(t_out)


def _vjp(cts, *primals, out, staged, residuals=None):
    if not staged.all_out_inexact:
        cts = [c for c, keep in zip(cts, staged.out_inexact) if keep]
    if residuals is not None:
        args = [*primals, *residuals, *cts]
        if _concrete(args):
            return staged.spread_grads(staged.backward.run_arrays(args))
    # traced (or recorded without residuals): the joint program, differentiable
    return staged.spread_grads(ir.eval_program(staged.joint, [*primals, *cts])[staged.n_out:])


def _batch(vals, dims, *, staged, residuals=None):
    from fnarray.transforms.vmap import vmap
    outs = vmap(lambda *xs: staged.plain(list(xs)), in_axes=tuple(dims))(*vals)
    return list(outs), [0] * len(outs)


staged_call = declare("staged_call", impl=_impl, abstract=_abstract, jvp=_jvp, vjp=_vjp,
                      batch=_batch, multiple_results=True, fwd=_fwd, widen_bfloat16=False)
