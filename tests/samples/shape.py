"""Samples for the shape primitives (``fnarray/ops/shape.py``)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tests.samples import Sample, floats, shapes


@st.composite
def _operand(draw, min_dims=0):
    shape = draw(shapes(min_dims=min_dims))
    return draw(floats(shape, noncontiguous=draw(st.booleans())))


@st.composite
def _reshape(draw):
    x = draw(_operand())
    targets = [(x.size,), x.shape[::-1], (1, *x.shape), (*x.shape, 1)]
    if x.ndim >= 2:
        targets.append((x.shape[0] * x.shape[1], *x.shape[2:]))
    return Sample((x,), {"shape": draw(st.sampled_from(targets))})


@st.composite
def _transpose(draw):
    x = draw(_operand())
    return Sample((x,), {"perm": tuple(draw(st.permutations(range(x.ndim))))})


@st.composite
def _broadcast_to(draw):
    x = draw(_operand())
    lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    tail = tuple(draw(st.integers(0, 3)) if d == 1 else d for d in x.shape)
    return Sample((x,), {"shape": lead + tail})


def _subset(ndim):
    return st.lists(st.integers(0, max(ndim - 1, 0)), unique=True, max_size=ndim).map(
        lambda a: tuple(sorted(a)) if ndim else ())


@st.composite
def _rev(draw):
    x = draw(_operand())
    return Sample((x,), {"axes": draw(_subset(x.ndim))})


@st.composite
def _slice(draw):
    x = draw(_operand())
    starts, limits, strides = [], [], []
    for n in x.shape:
        s = draw(st.integers(0, n))
        starts.append(s)
        limits.append(draw(st.integers(s, n)))
        strides.append(draw(st.integers(1, 3)))
    return Sample((x,), {"starts": tuple(starts), "limits": tuple(limits),
                         "strides": tuple(strides)})


@st.composite
def _pad(draw):
    x = draw(_operand())
    config = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2)), draw(st.integers(0, 2)))
                   for _ in x.shape)
    return Sample((x,), {"config": config})


@st.composite
def _concatenate(draw):
    base = list(draw(shapes(min_dims=1)))
    axis = draw(st.integers(0, len(base) - 1))
    k = draw(st.integers(1, 3))
    args = []
    for _ in range(k):
        base[axis] = draw(st.integers(0, 3))
        args.append(draw(floats(tuple(base), noncontiguous=draw(st.booleans()))))
    return Sample(tuple(args), {"axis": axis}, diff=tuple(range(k)))


SAMPLES = {
    "reshape": _reshape,
    "transpose": _transpose,
    "broadcast_to": _broadcast_to,
    "rev": _rev,
    "slice": _slice,
    "pad": _pad,
    "concatenate": _concatenate,
}

REFERENCES = {
    "reshape": lambda x, shape: np.reshape(x, shape),
    "transpose": lambda x, perm: np.transpose(x, perm),
    "broadcast_to": lambda x, shape: np.broadcast_to(x, shape),
    "rev": lambda x, axes: np.flip(x, axes),
    "concatenate": lambda *xs, axis: np.concatenate(xs, axis=axis),
}
