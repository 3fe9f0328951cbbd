"""ONNX rules for the max-pooling primitives (``fnarray/ops/pooling.py``)."""

from __future__ import annotations

import math

import numpy as np

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


@onnx_rule("max_pool_scatter")
def _max_pool_scatter(g, ins, eqn, *, spatial, kernel, strides, dilation, **_):
    """Each window's cotangent added at its tap: ``ScatterElements`` (``reduction='add'``)
    into zeros ``(L, prod(spatial))``, ``L`` the leading axes flattened (they may follow a
    dynamic batch).  A window's flat target is its origin (a constant per window position)
    plus its tap's offset (a constant table, gathered by the tap), so a cotangent is added,
    never multiplied: an infinite one reaches its tap only, as in fnarray."""
    from onnx import TensorProto
    ct_aval = eqn.invars[0].aval
    nd = len(kernel)
    out = ct_aval.shape[ct_aval.ndim - nd:]
    row = np.cumprod((1, *spatial[:0:-1]))[::-1]  # row-major strides of the grid
    offsets = np.array([sum(k * d * r for k, d, r in zip(tap, dilation, row))
                        for tap in np.ndindex(*kernel)], dtype=np.int64)
    origins = np.array([sum(o * s * r for o, s, r in zip(pos, strides, row))
                        for pos in np.ndindex(*out)], dtype=np.int64)
    positions = math.prod(out)
    ct = g.op("Reshape", [ins[0], g.ints((-1, positions))])
    taps = g.op("Cast", [g.op("Reshape", [ins[1], g.ints((-1, positions))])],
                to=TensorProto.INT64)
    index = g.op("Add", [g.op("Gather", [g.const(offsets), taps], axis=0), g.const(origins)])
    rows = g.op("Slice", [g.op("Shape", [ct]), g.ints([0]), g.ints([1])])
    grid = g.op("Concat", [rows, g.ints([math.prod(spatial)])], axis=0)
    zeros = g.op("Expand", [g.const(np.zeros((), ct_aval.dtype)), grid])
    summed = g.op("ScatterElements", [zeros, index, ct], axis=1, reduction="add")
    lead = g.op("Slice", [g.op("Shape", [ins[0]]), g.ints([0]), g.ints([ct_aval.ndim - nd])])
    return g.op("Reshape", [summed, g.op("Concat", [lead, g.ints(spatial)], axis=0)])
