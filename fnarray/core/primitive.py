"""Primitives: the indivisible operations every transformation understands.

A ``Primitive`` is declared once, in ``fnarray/ops/``, with every rule it needs:

* ``impl(xp, *buffers, **params)``   — the kernel, written against an array module ``xp``;
* ``abstract(*avals, **params)``     — shape/dtype inference (used by the IR tracer);
* ``jvp(primals, tangents, **params) -> (out, tangent_out)`` — forward mode; a tangent of
  ``None`` is a symbolic zero;
* ``vjp(ct, *primals, out, **params) -> tuple`` — reverse mode, one cotangent (or ``None``)
  per input;
* ``batch(values, dims, **params) -> (out, out_dim)`` — vmap.

Rules are written with fnarray operations, never raw kernels, so they are differentiable and
batchable themselves: that is what makes ``grad(grad(f))`` and ``vmap(grad(f))`` work.
"""

from __future__ import annotations

from typing import Callable

from fnarray.core import bfloat16 as _bf16
from fnarray.core.trace import bind as _bind

REGISTRY: dict[str, "Primitive"] = {}


class Primitive:
    """A named operation plus its rule slots; see the module docstring."""

    __slots__ = ("name", "impl", "abstract", "jvp", "vjp", "batch",
                 "multiple_results", "differentiable", "ufunc", "vjp_selective", "effectful", "fwd",
                 "widen_bfloat16", "__weakref__")

    def __init__(self, name: str, *, multiple_results: bool = False,
                 differentiable: bool = True):
        if name in REGISTRY:
            raise ValueError(f"primitive {name!r} is declared twice")
        self.name = name
        self.multiple_results = multiple_results
        self.differentiable = differentiable
        self.impl: Callable | None = None
        self.abstract: Callable | None = None
        self.jvp: Callable | None = None
        self.vjp: Callable | None = None
        self.batch: Callable | None = None
        # For elementwise primitives that are exactly one ufunc: its name, so the jit
        # executor may fuse them and write into dead intermediate buffers (``out=``).
        self.ufunc: str | None = None
        # A selective VJP rule accepts ``needed=(bool, ...)`` and may return None for
        # operands that need no cotangent (constants), skipping their computation.
        self.vjp_selective = False
        # An effectful primitive (a host callback such as ``fa.debug.print``) must run
        # whenever the program runs: optimisation passes never drop, merge or fold it.
        self.effectful = False
        # Optional, for primitives whose VJP needs values computed inside the forward pass
        # (a loop's per-iteration state): ``fwd(*primals, **params) -> (outs, residuals)``.
        # Reverse mode calls it instead of ``bind`` when it records the primitive, and the
        # VJP rule then receives ``residuals=`` among its parameters (without it, the rule
        # must compute them itself).
        self.fwd: Callable | None = None
        # bfloat16 operands run through the float32 kernel (see core/bfloat16.py) unless the
        # primitive only moves data or runs sub-programs, where it declares False.
        self.widen_bfloat16 = True
        REGISTRY[name] = self

    # ``prim.bind(*args, **params)``: apply this primitive (``fnarray.core.trace.bind`` is
    # the method itself, so the eager path costs no extra Python frame).
    bind = _bind

    def __repr__(self):
        return self.name

    def missing_rules(self) -> list[str]:
        """Names of rule slots that are still empty (the registry test requires none)."""
        return [slot for slot in ("impl", "abstract", "jvp", "vjp", "batch")
                if getattr(self, slot) is None]


def declare(name: str, *, impl: Callable, abstract: Callable, jvp: Callable, vjp: Callable,
            batch: Callable, multiple_results: bool = False,
            differentiable: bool = True, vjp_selective: bool = False,
            effectful: bool = False, fwd: Callable | None = None,
            widen_bfloat16: bool = True) -> Primitive:
    """Declare a primitive with all of its rules in one statement."""
    p = Primitive(name, multiple_results=multiple_results, differentiable=differentiable)
    p.impl, p.abstract, p.jvp, p.vjp, p.batch = impl, abstract, jvp, vjp, batch
    p.vjp_selective = vjp_selective
    p.effectful = effectful
    p.fwd = fwd
    p.widen_bfloat16 = widen_bfloat16
    if _bf16.loaded():
        _bf16.widen_kernel(p)
    return p
