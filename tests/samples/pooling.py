"""Samples for the max-pooling primitives: 1-d and 2-d windows, strides below and above the
(dilated) kernel (overlapping and disjoint windows), extra leading axes and empty batches.
``max_pool`` sees distinct values, so every window has one maximum (no ties)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.samples import Sample, floats
from tests.samples.reduction import distinct


@st.composite
def _geometry(draw):
    nd = draw(st.integers(1, 2))
    lead = tuple(draw(st.lists(st.integers(0, 2), min_size=0, max_size=2)))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    out = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    spatial = tuple((o - 1) * s + d * (k - 1) + 1 + draw(st.integers(0, 1))
                    for o, s, d, k in zip(out, strides, dilation, kernel))
    return dict(lead=lead, spatial=spatial, out=out,
                params=dict(kernel=kernel, strides=strides, dilation=dilation))


def _max_pool():
    return _geometry().flatmap(lambda g: distinct((*g["lead"], *g["spatial"])).map(
        lambda x: Sample(args=(x,), params=g["params"])))


def _scatter():
    def build(g):
        shape = (*g["lead"], *g["out"])
        taps = hnp.arrays(np.uint8, shape,
                          elements=st.integers(0, math.prod(g["params"]["kernel"]) - 1))
        return st.tuples(floats(shape), taps).map(lambda a: Sample(
            args=a, params=dict(g["params"], spatial=g["spatial"]), diff=(0,),
            batchable=(0, 1)))
    return _geometry().flatmap(build)


SAMPLES = {
    "max_pool": _max_pool,
    "max_pool_scatter": _scatter,
}
