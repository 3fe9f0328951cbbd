"""Samples for ``staged_call`` (``fnarray/transforms/staged.py``).

The staged function is ``[x * sin(y), exp(y) + x]`` differentiated in ``x`` only, so its
residual (``sin(y)``, which the backward program reads) depends on ``y`` alone: the
residual outputs are gradient-stopped by definition, and here that definition agrees with
the finite differences the registry test compares against.
"""

from __future__ import annotations

from hypothesis import strategies as st

import fnarray as fa
from tests.samples import Sample, floats, shapes


def _fun(x, y):
    return [x * fa.sin(y), fa.exp(y) + x]


@st.composite
def _staged(draw):
    from fnarray.core.device import default
    from fnarray.transforms.staged import Staged
    shape = draw(shapes())
    x = draw(floats(shape, noncontiguous=draw(st.booleans())))
    y = draw(floats(shape))
    avals = [(fa.asarray(a).aval, default()) for a in (x, y)]
    return Sample((x, y), dict(staged=Staged(_fun, avals, (True, False))), diff=(0,))


SAMPLES = {"staged_call": _staged}
