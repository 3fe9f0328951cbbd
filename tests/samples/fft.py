"""Samples for the FFT primitives: complex or real signals over 1-2 drawn axes, every
normalisation, odd and even lengths (the Nyquist bin of ``rfft``/``irfft``)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tests.samples import Sample, shapes

_NORMS = st.sampled_from(["backward", "ortho", "forward"])


def _draw():
    """(shape with >= 1 axis of size >= 1, transformed axes, norm, seed)."""
    def axes_for(shape):
        return st.lists(st.sampled_from(range(len(shape))), min_size=1, max_size=2,
                        unique=True).map(tuple)
    base = shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)
    return base.flatmap(lambda s: st.tuples(st.just(s), axes_for(s), _NORMS,
                                            st.integers(0, 2**31 - 1)))


def _fft(t):
    shape, axes, norm, seed = t
    rng = np.random.default_rng(seed)
    z = rng.uniform(-2, 2, shape) + 1j * rng.uniform(-2, 2, shape)
    return Sample((z,), dict(axes=axes, inverse=bool(seed % 2), norm=norm))


def _rfft(t):
    shape, axes, norm, seed = t
    return Sample((np.random.default_rng(seed).uniform(-2, 2, shape),), dict(axes=axes, norm=norm))


def _irfft(t):
    shape, axes, norm, seed = t
    n = shape[axes[-1]]
    half = list(shape)
    half[axes[-1]] = n // 2 + 1
    rng = np.random.default_rng(seed)
    z = rng.uniform(-2, 2, half) + 1j * rng.uniform(-2, 2, half)
    return Sample((z,), dict(axes=axes, n=n, norm=norm))


SAMPLES = {
    "fft": lambda: _draw().map(_fft),
    "rfft": lambda: _draw().map(_rfft),
    "irfft": lambda: _draw().map(_irfft),
}
