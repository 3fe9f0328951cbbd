"""Samples for ``staged_call`` (``fnarray/transforms/staged.py``): the call samples'
two-input, two-output function, staged for the drawn signature with both inputs
differentiable (its backward program reads the residuals ``sin(x)``, ``cos(x)`` and
``exp(x)`` that the forward program hands over)."""

from __future__ import annotations

from hypothesis import strategies as st

import fnarray as fa
from tests.samples import Sample, floats, shapes
from tests.samples.custom import fun


@st.composite
def _staged(draw):
    from fnarray.core.device import default
    from fnarray.transforms.staged import Staged
    shape = draw(shapes())
    x = draw(floats(shape, noncontiguous=draw(st.booleans())))
    y = draw(floats(shape))
    avals = [(fa.asarray(a).aval, default()) for a in (x, y)]
    return Sample((x, y), dict(staged=Staged(fun, avals, (True, True))), diff=(0, 1))


SAMPLES = {"staged_call": _staged}
