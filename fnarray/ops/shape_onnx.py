"""ONNX rules for the shape primitives (``fnarray/ops/shape.py``)."""

from __future__ import annotations

from fnarray.onnx.rules import onnx_rule

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


@onnx_rule("reshape", dynamic=True)
def _reshape(g, ins, eqn, *, shape, **_):
    if list(shape).count(-1) > 1:  # Reshape infers one -1: compute the others at run time
        return g.op("Reshape", [ins[0], g.shape_tensor(eqn.outvars[0].aval.shape,
                                                       g.other_params["shape"])])
    return g.op("Reshape", [ins[0], g.ints(shape)])


@onnx_rule("broadcast_to", dynamic=True)
def _broadcast_to(g, ins, eqn, *, shape, **_):
    if -1 in shape:  # sizes that follow the dynamic axes are computed at run time
        target = g.shape_tensor(eqn.outvars[0].aval.shape, g.other_params["shape"])
    else:
        target = g.ints(shape)
    return g.op("Expand", [ins[0], target])


@onnx_rule("transpose")
def _transpose(g, ins, eqn, *, perm, **_):
    return g.op("Transpose", ins, perm=[int(p) for p in perm])


@onnx_rule("rev")
def _rev(g, ins, eqn, *, axes, **_):
    n = len(axes)
    return g.op("Slice", [ins[0], g.ints([-1] * n), g.ints([_INT64_MIN] * n), g.ints(axes),
                          g.ints([-1] * n)])


@onnx_rule("slice", dynamic=True)
def _slice(g, ins, eqn, *, starts, limits, strides, **_):
    """A limit that follows a dynamic axis is allowed where it is the whole axis (to the
    end, whatever the size at run time)."""
    in_shape = eqn.invars[0].aval.shape
    if -1 in starts or any(d == -1 and eqn.params["limits"][i] != in_shape[i]
                           for i, d in enumerate(limits)):
        raise ValueError(f"slice {eqn.params} of {in_shape}: only slices to the end "
                                  f"of a dynamic axis are supported")
    limits = [_INT64_MAX if d == -1 else d for d in limits]
    axes = range(len(starts))
    return g.op("Slice", [ins[0], g.ints(starts), g.ints(limits), g.ints(axes),
                          g.ints(s or 1 for s in strides)])


@onnx_rule("pad")
def _pad(g, ins, eqn, *, config, **_):
    if any(interior for _, _, interior in config):
        raise ValueError(f"pad with interior padding {config}: ONNX Pad has none")
    pads = [lo for lo, _, _ in config] + [hi for _, hi, _ in config]
    return g.op("Pad", [ins[0], g.ints(pads)])  # zeros, as fnarray's pad


@onnx_rule("concatenate")
def _concatenate(g, ins, eqn, *, axis, **_):
    return g.op("Concat", ins, axis=int(axis))
