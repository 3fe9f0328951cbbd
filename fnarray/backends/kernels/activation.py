"""Compiled ``gate``: the one-pass backward of ``relu``/``hardtanh``/``clamp`` and the
forward and backward of ``leaky_relu``, as one loop.

The NumPy kernel of :mod:`fnarray.ops.activation` makes three or four passes (a comparison,
a cast of the mask, a product, and a finiteness sum deciding whether an exact select is
needed for ``inf * 0``); here the select is exact per element at no cost.  Operands are
flat (1-d, C-ordered) arrays of one dtype, float32 or float64, and the result goes into
``out``, a flat view of a fresh NumPy array (one NumPy owns, as the NumPy kernel's results
are, so a caller may donate it to a jitted function).  The bounds and slope arrive as
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


@compiled
def gate(ct, x, lo, lo_inclusive, hi, hi_inclusive, slope, out):
    """``ct`` where ``lo < x < hi`` (``<=`` on an inclusive side), else ``ct * slope``
    (``+0`` for a non-finite ``ct`` when ``slope`` is 0), written into ``out``."""
    zero = slope - slope  # 0 in the operands' dtype (slope is finite)
    flat = slope == zero
    for i in range(ct.size):
        v = x[i]
        c = ct[i]
        above = v >= lo if lo_inclusive else v > lo
        below = v <= hi if hi_inclusive else v < hi
        if not (above and below):
            c = c * slope
            if flat and c != c:  # inf * 0 or NaN * 0: the exact select's 0
                c = zero
        out[i] = c
    return out
