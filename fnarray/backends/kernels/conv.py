"""Compiled data movement around the matrix products of a convolution
(``fnarray/ops/conv.py``, ``fnarray/ops/conv_patches.py``): im2col, col2im, and the swap
of the two outer axes of the product's output (adding the bias on the way) and of the
output cotangent (summing it over samples on the way, for the bias's cotangent).

NumPy runs each as a strided copy (or add) whose innermost loop covers one output row of a
few dozen values (24 for conv2 of the tutorial ConvNet), so much of its time is per-row
overhead, and the bias add and the sum are passes of their own.  im2col and col2im take
their operands in a fixed rank, 3 spatial axes: the caller views 1-d and 2-d
convolutions with leading size-1 spatial axes (a free reshape of a C-ordered array), so
one compiled loop serves every rank; the swaps take ``(A, B, L)`` arrays.  The kernels
copy values, add a bias, or add values in NumPy's order (col2im kernel offset by kernel
offset, as the strided adds; the sums sample by sample, as ``ct.sum(axis=0)``), so they
give the NumPy path's results exactly.  All are serial: they are memory-bound, and a
parallel loop right after an OpenBLAS product measured slower on this class of machine.
"""

from __future__ import annotations

import numpy as np

from fnarray.backends.kernels import compiled

_U = np.uint64  # an index known to be non-negative (see ``patches``)


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
    first = min(first, count)
    return first, max(min(stop, count), first)


@compiled
def patches(x, out, strides, padding, dilation):
    """im2col: ``out[c, kd, kh, kw, n, od, oh, ow] = x[n, c, od*sd + kd*dd - pd, ...]``
    (zero where that cell is padding).  ``x`` is ``(N, C, D, H, W)``; ``out`` the C-ordered
    ``(C, KD, KH, KW, N, OD, OH, OW)`` buffer to fill, row by row in memory order (every
    entry is written).  Rows are short (24 values for conv2 of the tutorial ConvNet), so
    the valid ranges are worked out per block and rows advance by offsets; offsets and
    counts are unsigned, since a signed index costs a wraparound test per element, which
    keeps LLVM from vectorising the copy (measured: 3-5x slower)."""
    n_, c_, d_, h_, w_ = x.shape
    _, kd_, kh_, kw_, _, od_, oh_, ow_ = out.shape
    sd, sh, sw = strides
    pd, ph, pw = padding
    dd, dh, dw = dilation
    src = x.reshape(x.size)
    dst = out.reshape(out.size)
    zero = out.dtype.type(0)
    block = oh_ * ow_
    at = 0
    for c in range(c_):
        for kd in range(kd_):
            d0, d1 = _valid(kd * dd - pd, d_, sd, od_)
            for kh in range(kh_):
                h0, h1 = _valid(kh * dh - ph, h_, sh, oh_)
                for kw in range(kw_):
                    base = kw * dw - pw
                    w0, w1 = _valid(base, w_, sw, ow_)
                    for n in range(n_):
                        for od in range(od_):
                            if od < d0 or od >= d1 or h0 == h1:  # a block of padding
                                for t in range(_U(block)):
                                    dst[_U(at) + t] = zero
                                at += block
                                continue
                            i = od * sd + kd * dd - pd
                            for t in range(_U(h0 * ow_)):
                                dst[_U(at) + t] = zero
                            at += h0 * ow_
                            j = h0 * sh + kh * dh - ph
                            row = (((n * c_ + c) * d_ + i) * h_ + j) * w_ + base + w0 * sw
                            for _ in range(h1 - h0):
                                a0, r0 = _U(at + w0), _U(row)
                                if sw == 1 and w0 == 0 and w1 == ow_:  # the common row
                                    for t in range(_U(ow_)):
                                        dst[a0 + t] = src[r0 + t]
                                else:
                                    for t in range(_U(w0)):
                                        dst[_U(at) + t] = zero
                                    for t in range(_U(w1 - w0)):
                                        dst[a0 + t] = src[r0 + t * _U(sw)]
                                    for t in range(_U(at + w1), _U(at + ow_)):
                                        dst[t] = zero
                                at += ow_
                                row += sh * w_
                            for t in range((oh_ - h1) * ow_):
                                dst[_U(at) + _U(t)] = zero
                            at += (oh_ - h1) * ow_


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
    src = cols.reshape(cols.size)
    dst = out.reshape(out.size)
    usw = _U(sw)
    for n in range(n_):
        for c in range(c_):
            plane = (n * c_ + c) * d_
            for kd in range(kd_):
                d0, d1 = _valid(kd * dd - pd, d_, sd, od_)
                for kh in range(kh_):
                    h0, h1 = _valid(kh * dh - ph, h_, sh, oh_)
                    for kw in range(kw_):
                        base = kw * dw - pw
                        w0, w1 = _valid(base, w_, sw, ow_)
                        col = (((c * kd_ + kd) * kh_ + kh) * kw_ + kw) * n_ + n
                        for od in range(d0, d1):
                            i = od * sd + kd * dd - pd
                            for oh in range(h0, h1):
                                j = oh * sh + kh * dh - ph
                                r0 = _U(((plane + i) * h_ + j) * w_ + base + w0 * sw)
                                a0 = _U(((col * od_ + od) * oh_ + oh) * ow_ + w0)
                                if sw == 1:
                                    for t in range(_U(w1 - w0)):
                                        dst[r0 + t] += src[a0 + t]
                                else:
                                    for t in range(_U(w1 - w0)):
                                        dst[r0 + t * usw] += src[a0 + t]


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


@compiled
def swap_outer_sum(y, out, sums):
    """``swap_outer`` that also adds up the rows it moves: ``sums[b, :] += y[a, b, :]``
    for ``a = 0, 1, ...`` in order (NumPy's order for ``y.sum(axis=0)``), ``sums`` being
    the zero-filled ``(B, L)`` accumulator.  The cotangent of a convolution's output
    ``(N, O, L)`` becomes channel-major for the weight's product while its bias's
    cotangent is summed in the same pass."""
    a_, b_, l_ = y.shape
    for b in range(b_):
        acc = sums[b]
        for a in range(a_):
            src = y[a, b]
            dst = out[b, a]
            for i in range(l_):
                v = src[i]
                dst[i] = v
                acc[i] += v
