"""Compiled data movement around the matrix products of a convolution
(``fnarray/ops/conv.py``): im2col, col2im and the swap of the two outer axes.

NumPy runs each as a strided copy (or add) whose innermost loop covers one output row of a
few dozen values (24 for conv2 of the tutorial ConvNet), so most of its time is per-row
overhead; these loops move the same values at close to memory speed.  Every kernel takes
its operands in a fixed rank, 3 spatial axes: the caller views 1-d and 2-d convolutions
with leading size-1 spatial axes (a free reshape of a C-ordered array), so one compiled
loop serves every rank.  All kernels only copy or add values, so they give the NumPy
path's results exactly (col2im adds each cell's contributions in the same order, kernel
offset by kernel offset).
"""

from __future__ import annotations

import numpy as np

from fnarray.backends.kernels import compiled

_U = np.uint64  # an index known to be non-negative (see ``patches``)
_ONE = _U(1)


@compiled
def _valid(lo_shift, size, stride, count):
    """The window positions ``[first, stop)`` among ``count`` whose cell
    ``i * stride + lo_shift`` lies inside ``[0, size)``."""
    first = 0
    if lo_shift < 0:
        first = (-lo_shift + stride - 1) // stride
    stop = 0
    if size - 1 - lo_shift >= 0:
        stop = (size - 1 - lo_shift) // stride + 1
    return min(first, count), max(min(stop, count), min(first, count))


@compiled
def patches(x, out, strides, padding, dilation):
    """im2col: ``out[c, kd, kh, kw, n, od, oh, ow] = x[n, c, od*sd + kd*dd - pd, ...]``
    (zero where that cell is padding).  ``x`` is ``(N, C, D, H, W)``; ``out`` the C-ordered
    ``(C, KD, KH, KW, N, OD, OH, OW)`` buffer to fill (every entry is written).  Input
    indices are unsigned once known to be in range: a signed index costs a wraparound test
    per element, which keeps LLVM from vectorising the row copy."""
    n_, c_, d_, h_, w_ = x.shape
    _, kd_, kh_, kw_, _, od_, oh_, ow_ = out.shape
    sd, sh, sw = strides
    pd, ph, pw = padding
    dd, dh, dw = dilation
    zero = out.dtype.type(0)
    usw = _U(sw)
    for c in range(c_):
        for kd in range(kd_):
            for kh in range(kh_):
                for kw in range(kw_):
                    base = kw * dw - pw
                    w0, w1 = _valid(base, w_, sw, ow_)
                    for n in range(n_):
                        for od in range(od_):
                            i = od * sd + kd * dd - pd
                            for oh in range(oh_):
                                j = oh * sh + kh * dh - ph
                                if i < 0 or i >= d_ or j < 0 or j >= h_:
                                    for ow in range(ow_):
                                        out[c, kd, kh, kw, n, od, oh, ow] = zero
                                    continue
                                ui, uj = _U(i), _U(j)
                                for ow in range(w0):
                                    out[c, kd, kh, kw, n, od, oh, ow] = zero
                                iw, uo = _U(w0 * sw + base), _U(w0)
                                if sw == 1:  # contiguous: a vectorised copy
                                    for t in range(_U(w1 - w0)):
                                        out[c, kd, kh, kw, n, od, oh, uo + t] = x[n, c, ui, uj,
                                                                                 iw + t]
                                else:
                                    for _ in range(w1 - w0):
                                        out[c, kd, kh, kw, n, od, oh, uo] = x[n, c, ui, uj, iw]
                                        iw += usw
                                        uo += _ONE
                                for ow in range(ow_ - w1):
                                    out[c, kd, kh, kw, n, od, oh, ow + w1] = zero


@compiled
def patches_transpose(cols, out, strides, padding, dilation):
    """col2im: add every column entry ``cols[c, kd, kh, kw, n, od, oh, ow]`` onto
    ``out[n, c, od*sd + kd*dd - pd, ...]``, dropping those that land on padding.  ``out``
    is the zero-filled ``(N, C, D, H, W)`` result (the input grid WITHOUT padding); the
    contributions to a cell are added kernel offset by kernel offset, as NumPy's strided
    adds do."""
    c_, kd_, kh_, kw_, n_, od_, oh_, ow_ = cols.shape
    _, _, d_, h_, w_ = out.shape
    sd, sh, sw = strides
    pd, ph, pw = padding
    dd, dh, dw = dilation
    usw = _U(sw)
    for n in range(n_):
        for c in range(c_):
            for kd in range(kd_):
                d0, d1 = _valid(kd * dd - pd, d_, sd, od_)
                for kh in range(kh_):
                    h0, h1 = _valid(kh * dh - ph, h_, sh, oh_)
                    for kw in range(kw_):
                        base = kw * dw - pw
                        w0, w1 = _valid(base, w_, sw, ow_)
                        for od in range(d0, d1):
                            ui = _U(od * sd + kd * dd - pd)
                            for oh in range(h0, h1):
                                uj = _U(oh * sh + kh * dh - ph)
                                iw = _U(w0 * sw + base)
                                for ow in range(w0, w1):
                                    out[n, c, ui, uj, iw] += cols[c, kd, kh, kw, n, od, oh, ow]
                                    iw += usw


@compiled
def swap_outer(y, out):
    """``out[b, a, :] = y[a, b, :]``: ``y`` is ``(A, B, L)``, ``out`` ``(B, A, L)``."""
    a_, b_, l_ = y.shape
    for b in range(b_):
        for a in range(a_):
            src = y[a, b]
            dst = out[b, a]
            for i in range(l_):
                dst[i] = src[i]


@compiled
def swap_outer_bias(y, bias, out):
    """``out[b, a, :] = y[a, b, :] + bias[a]``: the output of a convolution's matrix
    product ``(O, N, L)`` as ``(N, O, L)`` with its bias added in the same pass."""
    a_, b_, l_ = y.shape
    for b in range(b_):
        for a in range(a_):
            src = y[a, b]
            dst = out[b, a]
            v = bias[a]
            for i in range(l_):
                dst[i] = src[i] + v
