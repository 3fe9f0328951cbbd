"""Compiled ``gate``: the one-pass backward of ``relu``/``hardtanh``/``clamp`` and the
forward and backward of ``leaky_relu``, as one loop.

The NumPy kernel of :mod:`fnarray.ops.activation` makes three or four passes (a comparison,
a cast of the mask, a product, and a finiteness sum deciding whether an exact select is
needed for ``inf * 0``); here the select is exact per element at no cost.  Operands are
flat (1-d, C-ordered) arrays of one dtype, float32 or float64, and the result goes into
``out``, a flat view of a fresh NumPy array (one NumPy owns, as the NumPy kernel's results
are, so a caller may donate it to a jitted function), or, with ``gate_in_place``, over one
of the operands (a dying buffer the jit executor hands on).  The bounds and slope arrive as
scalars of that dtype, so comparisons happen in the array's precision, as NumPy's do with a
Python float bound.

``clamp``'s forward has no compiled kernel: ``numpy.clip`` is one vectorised pass already,
and a compiled loop measured no faster (slower on operands out of cache, as in a training
step).

Results equal the NumPy kernel's (``numpy.array_equal``), bit for bit where the cotangent is
finite and the slope's sign bit is clear (``-0.0`` counts as negative: ``leaky_relu(x, -0.0)``
is ``+0`` here, as ``x * -0.0`` in PyTorch, where NumPy's masked product keeps ``x``'s
sign); otherwise only the sign of some zeros can differ.  The
result is ``c`` where ``x`` is inside the interval, else ``c * slope``.  With slope 0 that is
``c * 0`` (a signed zero, as NumPy's masked product) and ``+0`` where ``c`` is infinite or
NaN (as NumPy's exact select, which it takes for the whole array once any element is
non-finite, so its zeros are all ``+0`` then).  With a non-zero slope NumPy's branch-free
``c * mask + (c * slope) * ~mask`` gives ``+0`` where this select gives ``-0`` for a negative
slope.
"""

from __future__ import annotations

from fnarray.backends.kernels import compiled


@compiled(inline="always")
def _gated(c, v, lo, lo_inclusive, hi, hi_inclusive, slope):
    """One element: ``c`` where ``v`` is inside the interval, else ``c * slope`` (``+0`` for
    a non-finite ``c`` when ``slope`` is 0)."""
    above = v >= lo if lo_inclusive else v > lo
    below = v <= hi if hi_inclusive else v < hi
    if above and below:
        return c
    c = c * slope
    if slope == slope - slope and c != c:  # inf * 0 or NaN * 0: the exact select's 0
        return slope - slope
    return c


@compiled
def gate(ct, x, lo, lo_inclusive, hi, hi_inclusive, slope, out):
    """``ct`` where ``lo < x < hi`` (``<=`` on an inclusive side), else ``ct * slope``
    (``+0`` for a non-finite ``ct`` when ``slope`` is 0), written into ``out``, which
    overlaps neither operand."""
    for i in range(ct.size):
        out[i] = _gated(ct[i], x[i], lo, lo_inclusive, hi, hi_inclusive, slope)
    return out


@compiled
def gate_in_place(ct, x, lo, lo_inclusive, hi, hi_inclusive, slope, into_ct):
    """``gate`` written over its operand ``ct`` (``into_ct``) or ``x`` (a dying operand the
    jit executor hands over, so no new buffer is filled).  A loop of its own: given the
    same array as an operand and as ``out``, ``gate``'s loop fails LLVM's runtime overlap
    check and runs scalar (3.5x slower on the ConvNet's 2.4M-element gate), while this one
    reads each element before writing it in one vectorised loop."""
    if into_ct:
        for i in range(ct.size):
            ct[i] = _gated(ct[i], x[i], lo, lo_inclusive, hi, hi_inclusive, slope)
        return ct
    for i in range(ct.size):
        x[i] = _gated(ct[i], x[i], lo, lo_inclusive, hi, hi_inclusive, slope)
    return x
