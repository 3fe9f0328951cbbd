"""Samples for the host-callback primitives ``debug_callback`` and ``pure_callback``.

``pure_callback`` has no derivative by design (its JVP/VJP raise, tested in
``tests/test_callbacks.py``), so its sample runs the value and batching checks only.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from fnarray.core.shapes import ShapedArray
from tests.samples import Sample, floats, shapes

SEEN: list = []  # what the debug callback sample received (nothing is printed in tests)


def record(*xs):
    SEEN.append([np.asarray(x) for x in xs])


def host_fun(x, y):
    """A NumPy function the pure_callback sample calls: two results of x's shape."""
    return [np.sin(x) * y, np.exp(x) + y.sum()]


@st.composite
def _debug(draw):
    shape = draw(shapes())
    return Sample((draw(floats(shape)), draw(floats(shape))), dict(callback=record))


@st.composite
def _pure(draw):
    shape = draw(shapes())
    x, y = draw(floats(shape)), draw(floats(shape))
    avals = (ShapedArray(shape, np.dtype("float64")),) * 2
    method = draw(st.sampled_from(["sequential", "expand_dims"]))
    return Sample((x, y), dict(callback=host_fun, result_avals=avals, vmap_method=method),
                  diff=(0, 1), modes=())


REFERENCES = {"pure_callback": lambda x, y, **_: host_fun(x, y)[0]}
SAMPLES = {"debug_callback": _debug, "pure_callback": _pure}
