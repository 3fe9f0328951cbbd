"""Samples for the factorisation primitives: well-conditioned inputs only, because the
derivatives divide by eigenvalue/singular-value gaps and by pivots.

Matrices are built from random orthogonal factors and prescribed, well-separated spectra
(``1, 1.6, 2.2, ...`` with random signs where allowed), stacked over hypothesis-drawn batch
shapes (including size-0 and size-1 batch axes).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tests.samples import Sample, shapes


def _orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _stack(batch, build):
    """``build()`` for every batch position, as one (batch..., m, n) array."""
    mats = [build() for _ in range(int(np.prod(batch, dtype=int)))]
    shape = mats[0].shape if mats else build().shape
    return np.array(mats).reshape(batch + shape)


def _with_spectrum(rng, m, n, signed=False):
    """An m x n matrix with singular values 1, 1.6, 2.2, ... (optionally signed)."""
    k = min(m, n)
    s = 1.0 + 0.6 * np.arange(k)
    if signed:
        s = s * rng.choice([-1.0, 1.0], size=k)
    u, v = _orthogonal(rng, m)[:, :k], _orthogonal(rng, n)[:, :k]
    return (u * s) @ v.T


def _draw(min_side=1):
    return st.tuples(shapes(min_dims=0, max_dims=2, min_side=0, max_side=2),
                     st.integers(min_side, 4), st.integers(min_side, 4),
                     st.integers(0, 2**31 - 1))


def _square(build):
    """Samples of one (batch..., n, n) operand made by ``build(rng, n)``."""
    def make(t):
        batch, n, _, seed = t
        rng = np.random.default_rng(seed)
        return Sample((_stack(batch, lambda: build(rng, n)),))
    return lambda: _draw().map(make)


def _spd(rng, n):
    w = _with_spectrum(rng, n, n)
    return w @ w.T + 0.5 * np.eye(n)


def _symmetric(rng, n):
    q = _orthogonal(rng, n)
    w = -2.0 + 1.3 * np.arange(n) + 0.2 * rng.random(n)
    return (q * w) @ q.T


def _rectangular(t):
    batch, m, n, seed = t
    rng = np.random.default_rng(seed)
    return Sample((_stack(batch, lambda: _with_spectrum(rng, m, n)),))


def _qr_input(t):
    """Tall or wide; for wide inputs the leading square block is well conditioned."""
    batch, m, n, seed = t
    rng = np.random.default_rng(seed)

    def build():
        if m >= n:
            return _with_spectrum(rng, m, n)
        return np.concatenate([_with_spectrum(rng, m, m, signed=True),
                               rng.uniform(-1, 1, (m, n - m))], axis=1)
    return Sample((_stack(batch, build),))


def _solve_input(t):
    batch, n, k, seed = t
    rng = np.random.default_rng(seed)
    a = _stack(batch, lambda: _with_spectrum(rng, n, n, signed=True))
    b = rng.uniform(-2, 2, batch + (n, k))
    return Sample((a, b), diff=(0, 1))


SAMPLES = {
    "cholesky": _square(_spd),
    "eigh": _square(_symmetric),
    "det": _square(lambda rng, n: _with_spectrum(rng, n, n, signed=True)),
    "slogdet": _square(lambda rng, n: _with_spectrum(rng, n, n, signed=True)),
    "qr": lambda: _draw().map(_qr_input),
    "svd": lambda: _draw().map(_rectangular),
    "solve": lambda: _draw().map(_solve_input),
}
