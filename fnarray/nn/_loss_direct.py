"""The common eager ``cross_entropy`` recorded without the general path's layers.

A training step's loss is nearly always ``F.cross_entropy(logits, labels)``: a recorded
(N, C) float compat tensor, int64 class labels of shape (N,), no class weights, no label
smoothing.  The general path checks and converts every option, then records the
``LogSoftmaxBackward0`` node and the ``NllLossBackward0`` node.  ``cross_entropy`` here
records those very two nodes — the same primitives (``log_softmax``, ``class_nll``),
parameters and names — straight through ``tape.run`` after a handful of exact checks, and
says None (nothing recorded) for anything else, which the general path then handles, errors
and messages included.  ``nll_loss`` here does the same for an unweighted ``F.nll_loss``.
"""

from __future__ import annotations

from fnarray.core.array import Array
from fnarray.core.shapes import is_float
from fnarray.nn._staged import _compat
from fnarray.ops.activation import log_softmax as _LOG_SOFTMAX
from fnarray.ops.loss import class_nll as _CLASS_NLL

_AXIS1 = {"axis": 1}  # the parameters of log_softmax over the class axis of (N, C)
_REDUCTIONS = ("mean", "sum", "none")


def _usual(input, target, ignore_index, reduction):
    """``(tape, v, tv, dev)`` when ``input`` is a recorded concrete (N, C) float tensor and
    ``target`` an integer (N,) tensor on its device, with an ``int`` ignore index, a valid
    reduction, grad mode on and no autocast; else None."""
    grad_mode, tape, _ = _compat()
    tensor_t = tape.TENSOR
    if (type(input) is not tensor_t or type(target) is not tensor_t or input._node is None
            or target._node is not None or not grad_mode._state.enabled
            or tape._op.autocast is not None or type(ignore_index) is not int
            or type(reduction) is not str or reduction not in _REDUCTIONS):
        return None
    v, tv = input._value, target._value
    if type(v) is not Array or type(tv) is not Array:
        return None
    x, t, dev = v._value, tv._value, v._device
    if (x.ndim != 2 or t.ndim != 1 or t.shape[0] != x.shape[0] or not x.size
            or t.dtype.kind not in "iu" or not is_float(x.dtype) or tv._device is not dev):
        return None
    return tape, v, tv, dev


def _nll_node(tape, logp, v, target, tv, dev, ignore_index, reduction):
    """``nll_loss``'s node on the log-probabilities ``logp`` (value ``v``)."""
    params = {"ignore_index": ignore_index, "reduction": reduction, "class_dim": 1}
    return tape.run(_CLASS_NLL, params, "NllLossBackward0", logp, v, target, tv, dev)


def cross_entropy(input, target, ignore_index, reduction):
    """``cross_entropy(input, target, ignore_index=..., reduction=...)`` with default
    weights and smoothing, for the usual operands (``_usual``); else None."""
    usual = _usual(input, target, ignore_index, reduction)
    if usual is None:
        return None
    tape, v, tv, dev = usual
    # ``F.log_softmax``'s node, as its own direct path records it, then ``nll_loss``'s
    logp = tape.run(_LOG_SOFTMAX, _AXIS1, "LogSoftmaxBackward0", input, v, None, None, dev)
    return _nll_node(tape, logp, logp._value, target, tv, dev, ignore_index, reduction)


def nll_loss(input, target, ignore_index, reduction):
    """``nll_loss(input, target, ignore_index=..., reduction=...)`` without class weights,
    for the usual operands (``_usual``; the MNIST example's loss of a model's
    ``log_softmax`` output); else None."""
    usual = _usual(input, target, ignore_index, reduction)
    if usual is None:
        return None
    tape, v, tv, dev = usual
    return _nll_node(tape, input, v, target, tv, dev, ignore_index, reduction)
