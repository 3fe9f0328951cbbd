"""ONNX rules for the max-pooling primitives (``fnarray/ops/pooling.py``)."""

from __future__ import annotations

import math

from fnarray.onnx.rules import onnx_rule
from fnarray.ops.conv_onnx import stacked_windows


@onnx_rule("max_pool")
def _max_pool(g, ins, eqn, *, kernel, strides, dilation, **_):
    """The maxima through ``MaxPool`` on ``(N, C, *spatial)`` (other leading axes are
    reshaped to that and back), the taps as the ``ArgMax`` (first maximum, as the kernel)
    over the stacked windows."""
    from onnx import helper
    from fnarray.ops.pooling import tap_dtype
    x_aval, taps_aval = eqn.invars[0].aval, eqn.outvars[1].aval
    nd = len(kernel)
    lead, spatial = x_aval.shape[:x_aval.ndim - nd], x_aval.shape[x_aval.ndim - nd:]
    out = taps_aval.shape[len(lead):]
    x = ins[0]
    if len(lead) != 2:
        x = g.op("Reshape", [x, g.ints((math.prod(lead), 1, *spatial))])
    values = g.op("MaxPool", [x], kernel_shape=list(kernel), strides=list(strides),
                  dilations=list(dilation))
    if len(lead) != 2:
        values = g.op("Reshape", [values, g.ints((*lead, *out))])
    stacked = stacked_windows(g, ins[0], first=len(lead), kernel=kernel, strides=strides,
                              dilation=dilation, out=out)
    taps = g.op("ArgMax", [stacked], axis=len(lead), keepdims=0, select_last_index=0)
    taps = g.op("Cast", [taps], to=helper.np_dtype_to_tensor_dtype(tap_dtype(kernel)))
    return values, taps
