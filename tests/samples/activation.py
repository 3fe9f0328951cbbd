"""Samples for the activation primitives (``fnarray/ops/activation.py``).

Inputs lie on a grid offset from every bound (0, ±1, 6), so no sample sits on a kink
where the finite-difference check would see the one-sided derivatives.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tests.samples import Sample, broadcastable_pair, floats, shapes
from tests.samples.elementwise import grid

_OFF_KINK = 0.125  # grid points are 0.125 + 0.25 k: never 0, ±1 or 6


def _off_kink(shape):
    return grid(shape, offset=_OFF_KINK)


_BOUNDS = st.sampled_from([(0.0, None), (None, 1.0), (-1.0, 1.0), (0.0, 6.0)])


@st.composite
def _clamp(draw):
    lo, hi = draw(_BOUNDS)
    return Sample((draw(_off_kink(draw(shapes()))),),
                  dict(lo=lo, hi=hi, inclusive=draw(st.booleans())))


@st.composite
def _leaky_relu(draw):
    return Sample((draw(_off_kink(draw(shapes()))),),
                  dict(slope=draw(st.sampled_from([0.0, 0.01, 0.2]))))


@st.composite
def _gate(draw):
    s_ct, s_x = draw(broadcastable_pair())
    lo, hi = draw(_BOUNDS)
    params = dict(lo=lo, hi=hi, inclusive=draw(st.booleans()),
                  slope=draw(st.sampled_from([0.0, 0.1])))
    # Only the cotangent operand is differentiable; x chooses the branch.
    return Sample((draw(floats(s_ct)), draw(_off_kink(s_x))), params, diff=(0,))


@st.composite
def _log_softmax(draw):
    shape = draw(shapes(min_dims=1, min_side=1))
    return Sample((draw(floats(shape, -3.0, 3.0)),),
                  dict(axis=draw(st.integers(0, len(shape) - 1))))


@st.composite
def _log_softmax_grad(draw):
    shape = draw(shapes(min_dims=1, min_side=1))
    axis = draw(st.integers(0, len(shape) - 1))
    y = _log_softmax_reference(draw(floats(shape, -3.0, 3.0)), axis=axis)
    return Sample((draw(floats(shape)), y), dict(axis=axis), diff=(0, 1))


SAMPLES = {"clamp": _clamp, "leaky_relu": _leaky_relu, "gate": _gate,
           "log_softmax": _log_softmax, "log_softmax_grad": _log_softmax_grad}


def _gate_reference(ct, x, *, lo, hi, inclusive, slope):
    above = (x >= lo if inclusive else x > lo) if lo is not None else True
    below = (x <= hi if inclusive else x < hi) if hi is not None else True
    return np.where(np.logical_and(above, below), ct, slope * ct)


def _log_softmax_reference(x, *, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


REFERENCES = {
    "clamp": lambda x, *, lo, hi, inclusive: np.clip(x, lo, hi),
    "leaky_relu": lambda x, *, slope: np.where(x > 0, x, slope * x),
    "gate": _gate_reference,
    "log_softmax": _log_softmax_reference,
    "log_softmax_grad": lambda ct, y, *, axis: ct - np.exp(y) * ct.sum(axis=axis, keepdims=True),
}
