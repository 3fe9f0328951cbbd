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
    """The windows ``(N, C, *kernel, *out)`` as a grouped ``Conv`` with one-hot kernels
    (each output channel copies one kernel offset of one input channel; zero padding as
    fnarray's), reshaped to split channels from offsets.  Followed by a reduction this is
    max/average pooling."""
    x = eqn.invars[0].aval
    c = x.shape[1]
    onehot = _onehot(c, kernel, x.dtype)
    cols = g.op("Conv", [ins[0], g.const(onehot)], group=int(c), kernel_shape=list(kernel),
                **_attrs(strides, padding, dilation))
    out = eqn.outvars[0].aval.shape
    # 0 keeps the (possibly dynamic) batch size of the Conv output
    return g.op("Reshape", [cols, g.ints((0, c, *kernel, *out[2 + len(kernel):]))])


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
