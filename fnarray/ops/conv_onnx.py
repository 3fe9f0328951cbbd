"""ONNX rules for the convolution primitives (``fnarray/ops/conv.py``)."""

from __future__ import annotations

import math

import numpy as np

from fnarray.onnx.rules import onnx_rule


def _attrs(strides, padding, dilation):
    return dict(strides=[int(s) for s in strides],
                pads=[int(lo) for lo, _ in padding] + [int(hi) for _, hi in padding],
                dilations=[int(d) for d in dilation])


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
    c, k = x.shape[1], math.prod(kernel)
    onehot = np.zeros((c * k, 1, *kernel), dtype=x.dtype)
    for ci in range(c):
        for j, offset in enumerate(np.ndindex(*kernel)):
            onehot[(ci * k + j, 0, *offset)] = 1
    cols = g.op("Conv", [ins[0], g.const(onehot)], group=int(c), kernel_shape=list(kernel),
                **_attrs(strides, padding, dilation))
    out = eqn.outvars[0].aval.shape
    # 0 keeps the (possibly dynamic) batch size of the Conv output
    return g.op("Reshape", [cols, g.ints((0, c, *kernel, *out[2 + len(kernel):]))])
