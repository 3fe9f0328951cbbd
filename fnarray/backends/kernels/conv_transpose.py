"""Compiled gather for ``conv_transpose`` (:mod:`fnarray.ops.conv_transpose`).

The compiled path multiplies a chunk of samples' cotangent, laid out ``(positions,
C_out/g)``, by the weight laid out ``(C_out/g, kernel offsets * C_in/g)``: one row of
products per window position, holding every kernel offset's contribution to every input
channel.  :func:`gather` then adds those rows onto the input grid in one pass that writes
each result cell once: for every input row it sums, in a small buffer, the products of the
windows that cover it, and stores the row.  Padding cells are never multiplied (the NumPy
stride-1 kernel multiplies over the whole padded grid) and no patch columns are written
back and forth (the general kernel's col2im).  The order of addition differs from the NumPy
kernels' (along the last axis, a cell receives its kernel offsets in reverse), so results
agree to float rounding.

Operands have three spatial axes; 1-d and 2-d convolutions add leading unit axes (kernel 1,
stride 1, dilation 1, no padding), which leave the row-major offset numbering unchanged.
"""

from __future__ import annotations

import numpy as np

from fnarray.backends.kernels import compiled


@compiled
def gather(parts, res, out, kernel, strides, padding, dilation):
    """Write every cell of ``res`` ``(batch, groups, C_in/g, n0, n1, n2)``: the sum over the
    window positions ``i`` and kernel offsets ``t`` that reach it of ``parts[g, b, i, t *
    C_in/g + c]``, ``parts`` being ``(groups, batch, prod(out), prod(kernel) * C_in/g)``.
    ``out`` are the window positions per axis, ``padding`` the (non-negative) low padding.

    Each result row is summed in ``line``, laid out ``(padded position, channel)``: a window
    position's products for one kernel offset are ``C_in/g`` contiguous values there, and
    with dilation 1 along the last axis its ``kernel[2]`` offsets land side by side, so one
    add of ``kernel[2] * C_in/g`` contiguous values covers them.  (Flat unsigned indices:
    no negative-index wraparound in the inner loop, which then vectorises.)"""
    nb, ng, cg, n0, n1, n2 = res.shape
    o0, o1, o2 = out
    k0, k1, k2 = kernel
    s0, s1, s2 = strides
    p0, p1, p2 = padding
    d0, d1, d2 = dilation
    row = parts.shape[3]  # values per window position
    width, blocks = (k2 * cg, 1) if d2 == 1 else (cg, k2)
    span = max((o2 - 1) * s2 + (k2 - 1) * d2 + 1, p2 + n2)
    line = np.empty(span * cg, dtype=res.dtype)
    for b in range(nb):
        for g in range(ng):
            src = parts[g, b].ravel()
            dst = res[b, g]
            for y0 in range(n0):
                for y1 in range(n1):
                    line[:] = 0
                    for a0 in range(k0):
                        q0 = y0 + p0 - a0 * d0
                        if q0 < 0 or q0 % s0 != 0 or q0 // s0 >= o0:
                            continue
                        for a1 in range(k1):
                            q1 = y1 + p1 - a1 * d1
                            if q1 < 0 or q1 % s1 != 0 or q1 // s1 >= o1:
                                continue
                            first = (q0 // s0 * o1 + q1 // s1) * o2 * row
                            for a2 in range(blocks):
                                tap = ((a0 * k1 + a1) * k2 + a2) * cg
                                for i in range(o2):
                                    at = np.uintp((i * s2 + a2 * d2) * cg)
                                    frm = np.uintp(first + i * row + tap)
                                    for j in range(width):
                                        line[at + np.uintp(j)] += src[frm + np.uintp(j)]
                    for c in range(cg):
                        for x in range(n2):
                            dst[c, y0, y1, x] = line[np.uintp((x + p2) * cg + c)]
