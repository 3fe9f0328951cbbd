"""The fused record path of the compat layer's elementwise operations.

The general path of ``x * y`` on tensors runs through ``op_scope`` (the ``grad_fn``
name), PyTorch's promotion (``promotion.operands``), fnarray's (``promote``), ``bind``,
and ``CompatTrace.process_primitive`` before ``tape.run`` computes and records it: correct
for every operand, but ~5 µs of Python per recorded op, where PyTorch spends ~1.7–2 µs.

For the common case this module does the same work in one call.  A *plan* says which
single primitive (with which parameters, on which operands) an operation amounts to for
one operand signature (the tensors' dtypes and the Python scalars' types).  Plans are not
written by hand: the first call with a new signature traces the operation's general path
on abstract values (``trace_flat``), and if that program is exactly one primitive applied
to the operands (a Python scalar becoming a weak constant of the tensor's dtype, as the
core's promotion makes it), the plan is cached; otherwise the signature stays on the
general path.  A call with a planned signature then unwraps the operands and hands them
to ``tape.run``, which runs the primitive's kernel once, records the node and wraps the
result.

The fast path is taken only where it cannot differ from the general one: concrete
operands (no enclosing transformation's tracers), one device, no ``autocast``, and no
extra arguments.  Everything else goes the general way.
"""

from __future__ import annotations

import numpy as np

from fnarray.api._convert import weak_constant
from fnarray.compat import tape
from fnarray.compat.out import write_out
from fnarray.compat.tensor import Tensor
from fnarray.core.array import Array

_GENERAL = "general"  # the plan of a signature that is not one primitive on its operands
_op, _fused = tape._op, tape.run


def _plan(general, spec: tuple):
    """``(prim, params, flip)`` when ``general(*spec)`` is one application of ``prim`` to
    the arguments, else ``_GENERAL``.  ``flip``: a unary operation applies ``prim`` to
    ``(x, x)`` (``square``), a binary one to ``(b, a)`` (reflected operators).  ``spec``
    holds a dtype per tensor argument and a Python type per scalar argument; scalars are
    probed with two values, so a constant of the operation itself is never mistaken for
    the argument."""
    first, second = (_probe(general, spec, probe) for probe in ((3, 2.5), (5, 3.75)))
    try:
        same = first is not None and first == second
    except ValueError:  # parameters holding arrays: not a plan worth the risk
        same = False
    return first if same else _GENERAL


_FLIPS = {(0,): False, (0, 0): True, (0, 1): False, (1, 0): True}


def _probe(general, spec: tuple, probe: tuple):
    """The plan of ``general`` traced on ``spec`` with the scalar arguments set to
    ``probe`` (an int, a float), or None."""
    from fnarray.core.device import default
    from fnarray.core.shapes import ShapedArray
    from fnarray.transforms.ir import trace_flat

    dtypes = [s for s in spec if isinstance(s, np.dtype)]
    if len(set(dtypes)) != 1 or (len(dtypes) < len(spec) and dtypes[0].kind != "f"):
        return None  # mixed dtypes promote by dimension (0-d or not), kept general
    values = [s if isinstance(s, np.dtype) else probe[s is float] for s in spec]

    def run(*tracers):
        it = iter(tracers)
        return [general(*[next(it) if isinstance(v, np.dtype) else v for v in values])]

    try:
        prog = trace_flat(run, [(ShapedArray((2,), d), default()) for d in dtypes],
                          name="compat plan")
    except Exception:  # noqa: BLE001 - not traceable: the general path decides (or raises)
        return None
    if len(prog.eqns) != 1:
        return None
    eqn = prog.eqns[0]
    prim = eqn.prim
    if prim.multiple_results or prim.fwd is not None or eqn.outvars[0] is not prog.outvars[0]:
        return None
    tensor_pos = [i for i, v in enumerate(values) if isinstance(v, np.dtype)]
    scalar_pos = [i for i, v in enumerate(values) if not isinstance(v, np.dtype)]
    order = []
    for var in eqn.invars:
        if any(var is v for v in prog.invars):
            order.append(tensor_pos[[v is var for v in prog.invars].index(True)])
            continue
        const = [c for v, c in zip(prog.constvars, prog.consts) if v is var]
        if (len(scalar_pos) != 1 or not const or not const[0].weak_type or const[0].ndim
                or const[0].dtype != dtypes[0] or const[0].item() != values[scalar_pos[0]]):
            return None  # a constant of the operation, not the scalar argument
        order.append(scalar_pos[0])
    if _FLIPS.get(tuple(order)) is None or len(set(order)) != len(spec):
        return None
    return prim, eqn.params, _FLIPS[tuple(order)]


def _new_plan(plans: dict, general, key):
    """Make (and cache) the plan of ``general`` for the signature ``key``."""
    plan = plans[key] = _plan(general, key if isinstance(key, tuple) else (key,))
    return plan


def unary(general, name: str, torch_name: str):
    """The operation ``general(input)`` with the fused path for a tensor ``input``;
    ``torch.<torch_name>``'s ``out=`` is taken here, so ``compat.out`` adds no wrapper."""
    plans: dict = {}

    def op(input, *, out=None):
        if out is not None:
            return write_out(torch_name, out, general(input))
        if isinstance(input, Tensor) and _op.autocast is None:
            v = input._value
            if type(v) is Array:
                key = v._value.dtype
                plan = plans.get(key) or _new_plan(plans, general, key)
                if plan is not _GENERAL:
                    prim, params, dup = plan
                    if dup:
                        return _fused(prim, params, name, input, v, input, v, v._device)
                    return _fused(prim, params, name, input, v, None, None, v._device)
        return general(input)

    return _described(op, general, plans)


def binary(general, name: str):
    """The operation ``general(a, b)`` with the fused path for tensors and Python
    scalars."""
    plans: dict = {}

    def op(a, b):
        if _op.autocast is None:
            if isinstance(a, Tensor):
                va = a._value
                if type(va) is Array:
                    tb = type(b)
                    if tb is float or tb is int:  # tensor op scalar
                        vb, key = None, (va._value.dtype, tb)
                    elif isinstance(b, Tensor) and type(b._value) is Array \
                            and b._value._device is va._device:
                        vb = b._value
                        key = (va._value.dtype, vb._value.dtype)
                    else:
                        key = None
                    if key is not None:
                        plan = plans.get(key) or _new_plan(plans, general, key)
                        if plan is not _GENERAL:
                            dev = va._device
                            if vb is None:  # the weak constant the core would make
                                vb = weak_constant(b, va._value.dtype, dev)
                            prim, params, flip = plan
                            if flip:
                                return _fused(prim, params, name, b, vb, a, va, dev)
                            return _fused(prim, params, name, a, va, b, vb, dev)
            elif isinstance(b, Tensor) and (type(a) is float or type(a) is int):
                vb = b._value
                if type(vb) is Array:  # scalar op tensor
                    key = (type(a), vb._value.dtype)
                    plan = plans.get(key) or _new_plan(plans, general, key)
                    if plan is not _GENERAL:
                        dev = vb._device
                        va = weak_constant(a, vb._value.dtype, dev)
                        prim, params, flip = plan
                        if flip:
                            return _fused(prim, params, name, b, vb, a, va, dev)
                        return _fused(prim, params, name, a, va, b, vb, dev)
        return general(a, b)

    return _described(op, general, plans)


def _described(op, general, plans: dict):
    """``op`` named after ``general``, with ``op.general`` (the general path) and
    ``op.plans`` (signature -> plan) for inspection and tests."""
    op.__name__, op.__doc__ = getattr(general, "__name__", "op"), general.__doc__
    op.general, op.plans = general, plans
    return op
