"""Compiled gather for ``conv_transpose`` (:mod:`fnarray.ops.conv_transpose`).

The compiled path multiplies a chunk of samples' cotangent, laid out ``(positions,
C_out/g)``, by the weight laid out ``(C_out/g, kernel offsets * C_in/g)``: one row of
products per window position, holding every kernel offset's contribution to every input
channel.  :func:`gather` then adds those rows, read once and in order, onto the input grid
of one sample at a time (a buffer that stays in cache) and writes each result cell once.
Padding cells are never multiplied (the NumPy stride-1 kernel multiplies over the whole
padded grid) and no patch columns are written back and forth (the general kernel's
col2im).  The order of addition differs from the NumPy kernels' (a cell receives its
contributions in the order of the window positions), so results agree to float rounding.

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

    Per sample and group, the window positions' rows of products are read in order (one
    stream) and added into ``acc``, the input grid laid out ``(n0, n1, padded n2,
    channel)``: one kernel offset's products are ``C_in/g`` contiguous values there, and with
    dilation 1 along the last axis a row's ``kernel[2]`` offsets land side by side, so one
    add of ``kernel[2] * C_in/g`` contiguous values covers them.  ``acc`` is then written
    out channel-major.  (Flat unsigned indices: no negative-index wraparound in the inner
    loop, which then vectorises.)"""
    nb, ng, cg, n0, n1, n2 = res.shape
    o0, o1, o2 = out
    k0, k1, k2 = kernel
    s0, s1, s2 = strides
    p0, p1, p2 = padding
    d0, d1, d2 = dilation
    row = parts.shape[3]  # values per window position
    width, blocks = (k2 * cg, 1) if d2 == 1 else (cg, k2)
    e2 = max((o2 - 1) * s2 + (k2 - 1) * d2 + 1, p2 + n2)  # padded last axis, as reached
    acc = np.empty(n0 * n1 * e2 * cg, dtype=res.dtype)
    for b in range(nb):
        for g in range(ng):
            src = parts[g, b].ravel()
            dst = res[b, g]
            acc[:] = 0
            for i0 in range(o0):
                for i1 in range(o1):
                    for i2 in range(o2):
                        at2 = i2 * s2 * cg
                        frm2 = ((i0 * o1 + i1) * o2 + i2) * row
                        for a0 in range(k0):
                            y0 = i0 * s0 + a0 * d0 - p0
                            if y0 < 0 or y0 >= n0:
                                continue
                            for a1 in range(k1):
                                y1 = i1 * s1 + a1 * d1 - p1
                                if y1 < 0 or y1 >= n1:
                                    continue
                                at1 = (y0 * n1 + y1) * e2 * cg + at2
                                frm1 = frm2 + (a0 * k1 + a1) * k2 * cg
                                for a2 in range(blocks):
                                    at = np.uintp(at1 + a2 * d2 * cg)
                                    frm = np.uintp(frm1 + a2 * cg)
                                    for j in range(width):
                                        acc[at + np.uintp(j)] += src[frm + np.uintp(j)]
            for c in range(cg):
                for y0 in range(n0):
                    for y1 in range(n1):
                        first = ((y0 * n1 + y1) * e2 + p2) * cg + c
                        for x in range(n2):
                            dst[c, y0, y1, x] = acc[np.uintp(first + x * cg)]
