"""Compiled activation kernels: ``clamp`` and ``gate`` (``relu``'s forward and the one-pass
backward of ``relu``/``hardtanh``/``clamp``/``leaky_relu``) as one loop each.

The NumPy kernels of :mod:`fnarray.ops.activation` make one pass for ``clamp`` (``clip``)
but three or four for ``gate`` (a comparison, a cast of the mask, a product, and a finiteness
sum deciding whether an exact select is needed for ``inf * 0``); here the select is exact
per element at no cost.  Operands are flat (1-d, C-ordered) arrays of one dtype, float32 or
float64, and the result goes into ``out``, a flat view of a fresh NumPy array (one NumPy
owns, as the NumPy kernels' results are, so a caller may donate it to a jitted function).
The bounds and slope arrive as scalars of that dtype, so comparisons happen in the array's
precision, as NumPy's do with a Python float bound.

Results equal the NumPy kernels' (``numpy.array_equal``), bit for bit where the cotangent is
finite and the slope is not negative; otherwise only the sign of some zeros can differ:

* ``clamp``: ``lo`` if ``v < lo``, then ``hi`` if ``v > hi``, as ``numpy.clip`` on x86
  (NaN stays NaN with its sign, ``-0.0`` stays ``-0.0`` against a bound of ``+0.0``, and
  ``lo > hi`` gives ``hi``).
* ``gate``: ``c`` where ``x`` is inside the interval, else ``c * slope``.  With slope 0 that
  is ``c * 0`` (a signed zero, as NumPy's masked product) and ``+0`` where ``c`` is infinite
  or NaN (as NumPy's exact select, which it takes for the whole array once any element is
  non-finite, so its zeros are all ``+0`` then).  With a non-zero slope NumPy's branch-free
  ``c * mask + (c * slope) * ~mask`` gives ``+0`` where this select gives ``-0`` for a
  negative slope.
"""

from __future__ import annotations

from fnarray.backends.kernels import compiled


@compiled
def clamp(x, lo, hi, out):
    """``x`` clipped into ``[lo, hi]``, written into ``out``; ``lo``/``hi`` are not NaN."""
    for i in range(x.size):
        v = x[i]
        if v < lo:
            v = lo
        if v > hi:
            v = hi
        out[i] = v
    return out


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
