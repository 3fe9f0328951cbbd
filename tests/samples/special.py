"""Samples for the special-function primitives (``fnarray/ops/special.py``).

Inputs stay positive and away from the poles at 0, -1, -2, ...; ``lgamma`` also sees
negative non-integers (between the poles) where ``log|Gamma|`` is smooth.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.samples.elementwise import unary


def _between_poles(shape):
    return hnp.arrays(np.float64, shape, elements=st.sampled_from(
        [-2.5, -1.7, -0.3, 0.4, 1.1, 2.6, 4.0]))


SAMPLES = {
    "lgamma": lambda: unary(make=_between_poles),
    "digamma": lambda: unary(0.3, 4.0),
    "polygamma": lambda: st.integers(1, 3).flatmap(
        lambda n: unary(0.5, 4.0, params={"n": n})),
}
