"""Samples for the Threefry primitives (integer outputs: nothing to differentiate, so only
evaluation and batching are checked)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.samples import Sample, broadcastable_pair


def _words(shape):
    return hnp.arrays(np.uint32, shape, elements=st.integers(0, 2 ** 32 - 1))


def _threefry():
    return broadcastable_pair().flatmap(lambda shapes: st.tuples(
        _words(shapes[0]), _words(shapes[1]), _words(shapes[1]), _words(shapes[0])).map(
        lambda a: Sample(args=a, diff=())))


def _random_bits():
    shape = hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)
    return st.tuples(_words((2,)), shape).map(
        lambda a: Sample(args=(a[0],), params=dict(shape=a[1]), diff=()))


SAMPLES = {"threefry2x32": _threefry, "random_bits": _random_bits}
