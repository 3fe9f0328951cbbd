"""ONNX rules for the convolution primitives (``fnarray/ops/conv.py``)."""

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


@onnx_rule("conv_patches")
def _conv_patches(g, ins, eqn, *, kernel, strides, padding, dilation, **_):
    """The windows ``(N, C, *kernel, *out)``: the zero-padded input sliced once per kernel
    offset (a strided ``Slice`` per offset, stacked on a new axis).  Copies values exactly,
    infinities included (a padding mask of ``-inf`` before max pooling); followed by a
    reduction this is max/average pooling."""
    nk = len(kernel)
    out = eqn.outvars[0].aval.shape[2 + nk:]
    x = ins[0]
    if any(lo or hi for lo, hi in padding):
        pads = [0, 0] + [lo for lo, _ in padding] + [0, 0] + [hi for _, hi in padding]
        x = g.op("Pad", [x, g.ints(pads)])
    axes = g.ints(range(2, 2 + nk))
    steps = g.ints(strides)
    new_axis = g.ints([2])
    windows = []
    for offset in np.ndindex(*kernel):
        starts = [k * d for k, d in zip(offset, dilation)]
        ends = [b + (o - 1) * s + 1 for b, o, s in zip(starts, out, strides)]
        piece = g.op("Slice", [x, g.ints(starts), g.ints(ends), axes, steps])
        windows.append(g.op("Unsqueeze", [piece, new_axis]))
    stacked = g.op("Concat", windows, axis=2)
    # 0 keeps the (possibly dynamic) batch and channel sizes
    return g.op("Reshape", [stacked, g.ints((0, 0, *kernel, *out))])


@onnx_rule("conv_patches_transpose")
def _conv_patches_transpose(g, ins, eqn, *, in_spatial, kernel, strides, padding, dilation,
                            **_):
    """col2im (the transpose of ``conv_patches``, behind transposed convolutions): the
    same one-hot kernels in a grouped ``ConvTranspose``, which adds every window back onto
    the input grid; ``output_padding`` restores sizes the strides leave ambiguous."""
    cols = eqn.invars[0].aval
    c, nk = cols.shape[1], len(kernel)
    out = cols.shape[2 + nk:]
    flat = g.op("Reshape", [ins[0], g.ints((0, c * math.prod(kernel), *out))])
    extra = [n - (s * (o - 1) + (k - 1) * d + 1 - lo - hi)
             for n, s, o, k, d, (lo, hi) in zip(in_spatial, strides, out, kernel, dilation,
                                                 padding)]
    return g.op("ConvTranspose", [flat, g.const(_onehot(c, kernel, cols.dtype))],
                group=int(c), kernel_shape=list(kernel), output_padding=extra,
                **_attrs(strides, padding, dilation))
