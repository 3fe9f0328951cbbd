"""Buffer traits of primitives, declared next to each primitive, read by the jit executor.

The executor (``transforms/executor.py``) reuses the buffer of an intermediate value once
that value is dead, so that a compiled program allocates only what it must.  Whether a
primitive's kernel can take part is a property of the primitive, never a special case in
the executor:

* **fresh result** — the kernel always returns a newly allocated buffer that aliases none of
  its operands (no view, no operand returned as is, no cached array).  Such a result belongs
  to the program, and once dead its buffer may hold a later result.  Elementwise primitives
  that are exactly one ufunc (``Primitive.ufunc``) are fresh by construction.
* **out kernel** — ``kernel(xp, *buffers, out=buffer, **params)`` writes the result into a
  given buffer of the result's shape and dtype (``out=`` of NumPy's ``matmul``).  The
  executor hands it a dead buffer of that shape and dtype when one is free; the given buffer
  never overlaps an operand.  A primitive with an out kernel is fresh as well (without a
  free buffer the executor calls its ordinary ``impl``).
* **in place** — the out kernel also computes the right values when ``out`` *is* one of
  its operands (of the result's shape and dtype): an elementwise loop that reads each
  element before writing it.  The executor then prefers an operand dying at that very
  equation as ``out``, as it does for ufuncs, so the result fills no new buffer.

* **elementwise** — every result element depends only on the operand elements at the same
  index (operands of the result's shape, or 0-d ones broadcast), so the kernel may run on
  contiguous blocks of its operands and give the same values as on the whole arrays.  The
  executor evaluates programs made only of such equations block by block
  (``transforms/blocked.py``).

* **scalar form** — ``rule(eqn, names) -> str | None``: the scalar expression computing one
  element of an elementwise equation from its operands' names, in the dtypes NumPy computes
  it in (None where a compiled loop could not reproduce NumPy's value).  The jit's compiled
  loops (``transforms/fused_kernels.py``, the ``accel`` extra) fuse such equations.

Ufuncs need no declaration: ``Primitive.ufunc`` names one, ufuncs accept ``out=`` and are
elementwise (their scalar forms come from the ufunc's name).
"""

from __future__ import annotations

from typing import Callable

_OUT_KERNELS: dict = {}
_FRESH: set = set()
_ELEMENTWISE: set = set()
_IN_PLACE: set = set()
_SCALAR_FORMS: dict = {}


def declare_out_kernel(prim, kernel: Callable) -> None:
    """Declare that ``kernel(xp, *buffers, out=..., **params)`` computes ``prim`` into a given
    buffer (which also makes ``prim``'s results fresh)."""
    _OUT_KERNELS[prim] = kernel
    _FRESH.add(prim)


def declare_fresh(*prims) -> None:
    """Declare that the kernels of ``prims`` always return new buffers aliasing no operand."""
    _FRESH.update(prims)


def declare_in_place(*prims) -> None:
    """Declare that the out kernels of ``prims`` may write over an operand (see the module
    docstring)."""
    _IN_PLACE.update(prims)


def declare_elementwise(*prims) -> None:
    """Declare that the kernels of ``prims`` are elementwise (see the module docstring)."""
    _ELEMENTWISE.update(prims)


def declare_scalar_form(prim, rule: Callable) -> None:
    """Declare ``rule(eqn, names)``, the scalar form of the elementwise ``prim`` (see the
    module docstring)."""
    _SCALAR_FORMS[prim] = rule


def scalar_form(prim) -> Callable | None:
    """The declared scalar form of ``prim``, or None."""
    return _SCALAR_FORMS.get(prim)


def is_elementwise(prim, params: dict) -> bool:
    """May ``prim`` run block by block on contiguous pieces of its operands?"""
    return not prim.multiple_results and (is_ufunc_call(prim, params) or prim in _ELEMENTWISE)


def out_kernel(prim, params: dict) -> Callable | None:
    """The kernel of ``prim`` that takes ``out=``: the ufunc (only without parameters: with
    them the impl, not the bare ufunc, is the kernel) or the declared out kernel."""
    if prim.ufunc is not None and not params:
        return None  # the executor calls the ufunc itself, see ``is_ufunc_call``
    return _OUT_KERNELS.get(prim)


def is_ufunc_call(prim, params: dict) -> bool:
    """Does the executor call ``prim`` as a bare ufunc (elementwise, writable in place)?"""
    return prim.ufunc is not None and not params


def writes_over_operand(prim, params: dict) -> bool:
    """May the executor hand ``prim``'s kernel one of its own operands as ``out``?"""
    return is_ufunc_call(prim, params) or (prim in _IN_PLACE and prim in _OUT_KERNELS)


def is_fresh(prim, params: dict) -> bool:
    """Is every result of ``prim`` a new buffer that aliases none of its operands?"""
    return not prim.multiple_results and (is_ufunc_call(prim, params) or prim in _FRESH)
