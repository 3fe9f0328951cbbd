"""Samples for reductions and scans (``fnarray/ops/reduction.py``).

``max``/``min`` see distinct values (no ties, so the derivative is unambiguous) and never
reduce over an empty axis; ``argmax``/``argmin`` reduce one non-empty axis.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.samples import Sample, floats, shapes


def distinct(shape):
    """float64 arrays whose elements are all different (a shuffled grid)."""
    n = int(np.prod(shape))
    return st.permutations(range(n)).map(
        lambda p: (np.asarray(p, dtype=np.float64) * 0.37 - 0.3 * n).reshape(shape))


def _axes(ndim):
    return st.lists(st.integers(0, max(ndim - 1, 0)), unique=True, max_size=ndim).map(
        lambda a: tuple(sorted(a)) if ndim else ())


@st.composite
def reduce(draw, make=floats, min_side=0):
    shape = draw(shapes(min_side=min_side))
    x = draw(make(shape))
    return Sample((x,), {"axes": draw(_axes(len(shape))), "keepdims": draw(st.booleans())})


@st.composite
def arg_reduce(draw):
    shape = draw(shapes(min_dims=1, min_side=1))
    x = draw(hnp.arrays(np.float64, shape, elements=st.integers(-3, 3).map(float)))
    axis = draw(st.integers(0, len(shape) - 1))
    return Sample((x,), {"axes": (axis,), "keepdims": draw(st.booleans())})


@st.composite
def scan(draw, lo=-2.0, hi=2.0):
    shape = draw(shapes(min_dims=1))
    x = draw(floats(shape, lo, hi, noncontiguous=draw(st.booleans())))
    return Sample((x,), {"axis": draw(st.integers(0, len(shape) - 1)),
                         "reverse": draw(st.booleans())})


def _bools(s):
    return hnp.arrays(np.bool_, s)


SAMPLES = {
    "reduce_sum": lambda: reduce(lambda s: floats(s, noncontiguous=True)),
    "reduce_prod": lambda: reduce(lambda s: floats(s, -1.3, 1.3)),
    "reduce_max": lambda: reduce(distinct, min_side=1),
    "reduce_min": lambda: reduce(distinct, min_side=1),
    "reduce_and": lambda: reduce(_bools),
    "reduce_or": lambda: reduce(_bools),
    "argmax": arg_reduce,
    "argmin": arg_reduce,
    "cumsum": lambda: scan(),
    "cumprod": lambda: scan(-1.3, 1.3),
}


def _arg_reference(fn):
    return lambda x, axes, keepdims: fn(x, axis=axes[0], keepdims=keepdims)


REFERENCES = {
    "reduce_and": lambda x, axes, keepdims: np.all(x, axis=axes, keepdims=keepdims),
    "reduce_or": lambda x, axes, keepdims: np.any(x, axis=axes, keepdims=keepdims),
    "argmax": _arg_reference(np.argmax),
    "argmin": _arg_reference(np.argmin),
}
