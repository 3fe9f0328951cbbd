"""Samples for ``argsort`` and ``stop_gradient`` (``fnarray/ops/sorting.py``).

``argsort`` is drawn with many ties, to check that it is stable in both directions.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.samples import Sample, floats, shapes


@st.composite
def _argsort(draw):
    shape = draw(shapes(min_dims=1))
    x = draw(hnp.arrays(np.float64, shape, elements=st.integers(-2, 2).map(float)))
    return Sample((x,), {"axis": draw(st.integers(0, len(shape) - 1)),
                         "descending": draw(st.booleans())})


@st.composite
def _stop_gradient(draw):
    shape = draw(shapes())
    return Sample((draw(floats(shape, noncontiguous=draw(st.booleans()))),))


SAMPLES = {"argsort": _argsort, "stop_gradient": _stop_gradient}

REFERENCES = {
    "argsort": lambda x, axis, descending: np.argsort(-x if descending else x, axis=axis,
                                                      kind="stable"),
    "stop_gradient": lambda x: x,
}
