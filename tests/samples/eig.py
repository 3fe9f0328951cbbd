"""Samples for ``eig``: real matrices ``S D S^-1`` with a well-separated spectrum (real
eigenvalues 5 apart and complex pairs ``a +- ib`` with ``b`` in [2, 3]) and a
well-conditioned, non-orthogonal ``S``, so the eigenvector derivatives (which divide by the
eigenvalue gaps) are well conditioned, also after the registry adds imaginary parts."""

from __future__ import annotations

import numpy as np

from tests.samples import Sample
from tests.samples.decompositions import _draw, _orthogonal, _stack


def _general(rng, n):
    d = np.zeros((n, n))
    centers = -7.5 + 5.0 * np.arange(n)
    i = 0
    while i < n:
        if i + 1 < n and rng.random() < 0.5:
            a, b = centers[i] + 2.5, 2.0 + rng.random()
            d[i:i + 2, i:i + 2] = [[a, -b], [b, a]]
            i += 2
        else:
            d[i, i] = centers[i] + 0.5 * rng.random()
            i += 1
    s = _orthogonal(rng, n) @ (np.eye(n) + 0.3 * np.triu(rng.uniform(-1, 1, (n, n)), 1))
    return s @ d @ np.linalg.inv(s)


def _eig_input(t):
    batch, n, _, seed = t
    rng = np.random.default_rng(seed)
    return Sample((_stack(batch, lambda: _general(rng, n)),))


SAMPLES = {"eig": lambda: _draw().map(_eig_input)}
