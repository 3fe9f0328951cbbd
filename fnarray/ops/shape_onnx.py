"""ONNX rules for the shape primitives (``fnarray/ops/shape.py``)."""

from __future__ import annotations

from fnarray.onnx.rules import onnx_rule

_INT64_MIN = -(2 ** 63)


@onnx_rule("reshape", dynamic=True)
def _reshape(g, ins, eqn, *, shape, **_):
    if list(shape).count(-1) > 1:
        raise NotImplementedError(
            f"reshape to {shape}: more than one target size follows the dynamic axes; "
            f"ONNX Reshape infers only one (-1)")
    return g.op("Reshape", [ins[0], g.ints(shape)])


@onnx_rule("broadcast_to", dynamic=True)
def _broadcast_to(g, ins, eqn, *, shape, **_):
    # Expand broadcasts both ways: a size 1 keeps the operand's (dynamic) size there.
    in_shape = eqn.invars[0].aval.shape
    lead = len(shape) - len(in_shape)
    for i, d in enumerate(shape):
        if d == -1 and (i < lead or in_shape[i - lead] == 1):
            raise NotImplementedError(
                f"broadcast_to {eqn.outvars[0].aval.shape} from {in_shape}: the broadcast "
                f"creates an axis that follows the dynamic axes")
    return g.op("Expand", [ins[0], g.ints(1 if d == -1 else d for d in shape)])


@onnx_rule("transpose")
def _transpose(g, ins, eqn, *, perm, **_):
    return g.op("Transpose", ins, perm=[int(p) for p in perm])


@onnx_rule("rev")
def _rev(g, ins, eqn, *, axes, **_):
    n = len(axes)
    return g.op("Slice", [ins[0], g.ints([-1] * n), g.ints([_INT64_MIN] * n), g.ints(axes),
                          g.ints([-1] * n)])


@onnx_rule("slice")
def _slice(g, ins, eqn, *, starts, limits, strides, **_):
    axes = range(len(starts))
    return g.op("Slice", [ins[0], g.ints(starts), g.ints(limits), g.ints(axes),
                          g.ints(s or 1 for s in strides)])


@onnx_rule("pad")
def _pad(g, ins, eqn, *, config, **_):
    if any(interior for _, _, interior in config):
        raise NotImplementedError(f"pad with interior padding {config}: ONNX Pad has none")
    pads = [lo for lo, _, _ in config] + [hi for _, hi, _ in config]
    return g.op("Pad", [ins[0], g.ints(pads)])  # zeros, as fnarray's pad


@onnx_rule("concatenate")
def _concatenate(g, ins, eqn, *, axis, **_):
    return g.op("Concat", ins, axis=int(axis))
