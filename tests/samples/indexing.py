"""Samples for ``gather`` and ``scatter`` (``fnarray/ops/indexing.py``).

Index arrays are drawn from small ranges, so repeated indices are common: ``scatter``
must accumulate them (``mode='add'``) or keep the last write (``mode='set'``), and its
derivatives must agree with that.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.samples import Sample, floats, shapes


@st.composite
def _indexed(draw):
    """``(x, idx)``: ``x`` whose ``k`` leading axes are indexed by int64 arrays of one shape."""
    k = draw(st.integers(1, 2))
    lead = tuple(draw(st.integers(1, 3)) for _ in range(k))
    x_shape = lead + draw(shapes(max_dims=2))
    x = draw(floats(x_shape, noncontiguous=draw(st.booleans())))
    s = draw(shapes(max_dims=2, max_side=3))
    idx = tuple(draw(hnp.arrays(np.int64, s, elements=st.integers(0, n - 1))) for n in lead)
    return x, idx


@st.composite
def _gather(draw):
    x, idx = draw(_indexed())
    return Sample((x, *idx))


@st.composite
def _scatter(draw):
    x, idx = draw(_indexed())
    v = draw(floats(idx[0].shape + x.shape[len(idx):]))
    return Sample((x, *idx, v), {"mode": draw(st.sampled_from(["add", "set"]))},
                  diff=(0, len(idx) + 1))


SAMPLES = {"gather": _gather, "scatter": _scatter}
