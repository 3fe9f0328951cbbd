"""Samples for ``all_reduce_sum`` (one process: the sum over a single rank is x itself)."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.samples import Sample, floats, shapes


@st.composite
def _all_reduce_sum(draw):
    return Sample((draw(floats(draw(shapes()))),), dict(group=None))


REFERENCES = {"all_reduce_sum": lambda x, **_: x}
SAMPLES = {"all_reduce_sum": _all_reduce_sum}
