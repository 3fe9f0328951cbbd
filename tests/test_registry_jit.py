"""Every primitive under ``jit``: the compiled program gives the eager result, and its
abstract rule predicts the shape and dtype the kernel actually produces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnarray as fa
from fnarray.core.primitive import REGISTRY
from tests.samples import all_samples

SAMPLES = all_samples()


def _bind(prim, args, params):
    out = prim.bind(*args, **params)
    return list(out) if prim.multiple_results else [out]


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if n in SAMPLES))
@settings(max_examples=8)
@given(data=st.data())
def test_jit_matches_eager_and_abstract_matches_kernel(name, data):
    prim = REGISTRY[name]
    sample = data.draw(SAMPLES[name]())
    args = [fa.asarray(a) for a in sample.args]
    eager = _bind(prim, args, sample.params)
    jitted = fa.jit(lambda *xs: _bind(prim, xs, sample.params))(*args)
    for e, j in zip(eager, jitted):
        assert e.shape == j.shape and e.dtype == j.dtype
        np.testing.assert_allclose(np.asarray(j), np.asarray(e), rtol=1e-12, atol=1e-12)
    avals = prim.abstract(*[a.aval for a in args], **sample.params)
    avals = list(avals) if prim.multiple_results else [avals]
    for aval, e in zip(avals, eager):
        assert aval.shape == e.shape and aval.dtype == e.dtype, (aval, e.shape, e.dtype)
