"""ONNX rules for the convolution primitives (``fnarray/ops/conv.py``,
``fnarray/ops/conv_patches.py``, ``fnarray/ops/conv_transpose.py``,
``fnarray/ops/conv_weight.py``).

``conv`` and ``conv_transpose`` map to ``Conv`` and ``ConvTranspose``.  The primitives of a
convolution's reverse mode keep fnarray's matrix formulation, so that an exported
gradient computes what fnarray computes: ``conv_patches`` (im2col) is strided slices,
``conv_channel_major`` a ``Transpose``, and ``conv_columns`` and
``conv_weight_cotangent`` one batched ``MatMul`` over the groups.  Sizes that follow the
sample axis are left to ``Reshape`` (``-1``), so the rules take a dynamic batch."""

from __future__ import annotations

import math

import numpy as np

from fnarray.onnx.rules import onnx_rule


def _attrs(strides, padding, dilation):
    return dict(strides=[int(s) for s in strides],
                pads=[int(lo) for lo, _ in padding] + [int(hi) for _, hi in padding],
                dilations=[int(d) for d in dilation])


def _onehot(c: int, kernel: tuple, dtype) -> np.ndarray:
    """``(C * K, 1, *kernel)`` kernels, ``K = prod(kernel)``: channel ``c * K + j`` picks
    kernel offset ``j`` of input channel ``c``."""
    k = math.prod(kernel)
    onehot = np.zeros((c * k, 1, *kernel), dtype=dtype)
    for ci in range(c):
        for j, offset in enumerate(np.ndindex(*kernel)):
            onehot[(ci * k + j, 0, *offset)] = 1
    return onehot


@onnx_rule("conv")
def _conv(g, ins, eqn, *, strides, padding, dilation, groups, **_):
    kernel = eqn.invars[1].aval.shape[2:]
    return g.op("Conv", ins, group=int(groups), kernel_shape=list(kernel),
                **_attrs(strides, padding, dilation))


def stacked_windows(g, x, *, first: int, kernel, strides, dilation, out) -> str:
    """The windows of ``x`` over its axes ``first, first + 1, ...`` (one per kernel axis):
    a strided ``Slice`` per kernel offset (row-major), stacked on a new axis ``first``, so
    the result is ``(*x.shape[:first], prod(kernel), *out)``.  Copies values exactly,
    infinities included (a ``-inf`` padding mask before max pooling)."""
    nk = len(kernel)
    axes = g.ints(range(first, first + nk))
    steps = g.ints(strides)
    new_axis = g.ints([first])
    windows = []
    for offset in np.ndindex(*kernel):
        starts = [k * d for k, d in zip(offset, dilation)]
        ends = [b + (o - 1) * s + 1 for b, o, s in zip(starts, out, strides)]
        piece = g.op("Slice", [x, g.ints(starts), g.ints(ends), axes, steps])
        windows.append(g.op("Unsqueeze", [piece, new_axis]))
    return g.op("Concat", windows, axis=first)


@onnx_rule("conv_patches")
def _conv_patches(g, ins, eqn, *, kernel, strides, padding, dilation, **_):
    """The patch columns ``(C, *kernel, N, *out)`` (``patch_columns``); followed by a
    reduction over the kernel axes this is average pooling."""
    out = eqn.outvars[0].aval.shape[2 + len(kernel):]
    return patch_columns(g, ins[0], kernel=kernel, strides=strides, padding=padding,
                         dilation=dilation, out=out)


def patch_columns(g, x: str, *, kernel, strides, padding, dilation, out) -> str:
    """The patch columns ``(C, *kernel, N, *out)`` of ``x`` ``(N, C, *spatial)``: the
    zero-padded input's windows (``stacked_windows``), reshaped and transposed
    channel-first."""
    nk = len(kernel)
    if any(lo or hi for lo, hi in padding):
        pads = [0, 0] + [lo for lo, _ in padding] + [0, 0] + [hi for _, hi in padding]
        x = g.op("Pad", [x, g.ints(pads)])
    stacked = stacked_windows(g, x, first=2, kernel=kernel, strides=strides,
                              dilation=dilation, out=out)
    # 0 keeps the (possibly dynamic) batch and channel sizes
    windows = g.op("Reshape", [stacked, g.ints((0, 0, *kernel, *out))])
    perm = (1, *range(2, 2 + nk), 0, *range(2 + nk, 2 + 2 * nk))
    return g.op("Transpose", [windows], perm=list(perm))


def transposed_conv(g, ct: str, w: str, *, groups: int, kernel, out, in_spatial, strides,
                    padding, dilation) -> str:
    """``ConvTranspose`` of ``ct`` (window positions ``out``) onto ``in_spatial``.  The
    rows at the high end of ``in_spatial`` that no window reaches come from a smaller end
    padding and, past the full grid, from zero padding (onnxruntime refuses an
    ``output_padding`` that is not below the stride, which dilation allows)."""
    extra = [n - (s * (o - 1) + (k - 1) * d + 1 - lo - hi)
             for n, s, o, k, d, (lo, hi) in zip(in_spatial, strides, out, kernel, dilation,
                                                 padding)]
    ends = [(lo, max(hi - e, 0)) for (lo, hi), e in zip(padding, extra)]
    y = g.op("ConvTranspose", [ct, w], group=int(groups), kernel_shape=list(kernel),
             **_attrs(strides, ends, dilation))
    zeros = [max(e - hi, 0) for (_, hi), e in zip(padding, extra)]
    if any(zeros):
        y = g.op("Pad", [y, g.ints([0] * (2 + len(kernel)) + [0, 0, *zeros])])
    return y


@onnx_rule("conv_patches_transpose")
def _conv_patches_transpose(g, ins, eqn, *, in_spatial, kernel, strides, padding, dilation,
                            **_):
    """col2im (the transpose of ``conv_patches``): one-hot kernels in a grouped
    ``ConvTranspose``, which adds every window back onto the input grid."""
    cols = eqn.invars[0].aval  # (C, *kernel, N, *out)
    c, nk = cols.shape[0], len(kernel)
    out = cols.shape[2 + nk:]
    perm = (1 + nk, *range(1 + nk), *range(2 + nk, 2 + 2 * nk))
    batch_first = g.op("Transpose", [ins[0]], perm=list(perm))  # (N, C, *kernel, *out)
    flat = g.op("Reshape", [batch_first, g.ints((0, c * math.prod(kernel), *out))])
    return transposed_conv(g, flat, g.const(_onehot(c, kernel, cols.dtype)), groups=c,
                           kernel=kernel, out=out, in_spatial=in_spatial, strides=strides,
                           padding=padding, dilation=dilation)


@onnx_rule("conv_transpose")
def _conv_transpose(g, ins, eqn, *, in_spatial, strides, padding, dilation, groups, **_):
    """ONNX ``ConvTranspose`` takes the convolution's weight ``(C_out, C_in // groups,
    *kernel)`` as it is."""
    ct, w = eqn.invars[0].aval, eqn.invars[1].aval
    return transposed_conv(g, ins[0], ins[1], groups=groups, kernel=w.shape[2:],
                           out=ct.shape[2:], in_spatial=in_spatial, strides=strides,
                           padding=padding, dilation=dilation)


def _grouped(g, value: str, groups: int, rows: int) -> str:
    """``value`` as ``(groups, rows, -1)``: one matrix per group (the channel axis, first
    and group-major, leads)."""
    return g.op("Reshape", [value, g.ints((groups, rows, -1))])


def _channel_major(g, ct: str, aval, groups: int) -> str:
    """The output cotangent ``ct`` ``(N, O, *out)`` (abstract value ``aval``) as
    ``(groups, O/g, N*out)``: the two outer axes swapped, then grouped."""
    swapped = g.op("Transpose", [ct], perm=[1, 0, *range(2, aval.ndim)])
    return _grouped(g, swapped, groups, aval.shape[1] // groups)


@onnx_rule("conv_channel_major")
def _conv_channel_major(g, ins, eqn, *, groups, sums, **_):
    """``(N, O, *out)`` -> ``(g, O/g, N*out)`` (``_channel_major``); with ``sums`` also
    the sum over the samples, ``(O, *out)``."""
    ctm = _channel_major(g, ins[0], eqn.invars[0].aval, groups)
    if not sums:
        return [ctm]
    return [ctm, g.op("ReduceSum", [ins[0], g.ints([0])], keepdims=0)]


@onnx_rule("conv_columns")
def _conv_columns(g, ins, eqn, *, groups, **_):
    """``(g, O/g, C/g*K) @ (g, C/g*K, N*out)``, laid out ``(N, O, *out)``, plus the
    optional bias per output channel."""
    cols, w = eqn.invars[0].aval, eqn.invars[1].aval
    o, out = w.shape[0], eqn.outvars[0].aval.shape[2:]
    wg = _grouped(g, ins[1], groups, o // groups)
    y = g.op("MatMul", [wg, _grouped(g, ins[0], groups, cols.shape[0] // groups
                                     * math.prod(w.shape[2:]))])
    y = g.op("Reshape", [y, g.ints((o, -1, *out))])
    y = g.op("Transpose", [y], perm=[1, 0, *range(2, 2 + len(out))])
    if len(ins) == 3:
        y = g.op("Add", [y, g.op("Reshape", [ins[2], g.ints((o, *[1] * len(out)))])])
    return y


@onnx_rule("conv_weight_cotangent")
def _conv_weight_cotangent(g, ins, eqn, *, kernel, strides, padding, dilation, groups, **_):
    """``(O/g, N*out) @ (N*out, C/g*K)`` per group: the output cotangent channel-major
    against the input's patch columns (``patch_columns``)."""
    x, ct = eqn.invars[0].aval, eqn.invars[1].aval
    cols = patch_columns(g, ins[0], kernel=kernel, strides=strides, padding=padding,
                         dilation=dilation, out=ct.shape[2:])
    pg = _grouped(g, cols, groups, x.shape[1] // groups * math.prod(kernel))
    pg_t = g.op("Transpose", [pg], perm=[0, 2, 1])
    gw = g.op("MatMul", [_channel_major(g, ins[1], ct, groups), pg_t])
    return g.op("Reshape", [gw, g.ints(eqn.outvars[0].aval.shape)])
