"""Threefry-2x32-20 as compiled loops: the kernels of ``fnarray/ops/random_bits.py``.

The NumPy code runs the cipher's twenty rounds as about a hundred passes over whole
arrays; here one loop hashes a block at a time with the state in registers, and LLVM
vectorises it (with AVX-512, sixteen blocks per register and each rotation one instruction),
so a dropout mask's words cost a tenth of the NumPy time.  The bits are those of the NumPy
code exactly: same key schedule, same counters, same word order.

numba widens uint32 arithmetic to 64 bits (``uint32 + uint32`` is uint64, and mixing in a
Python int gives int64); no intermediate here exceeds 2**63, so truncating each result
with ``uint32(...)`` gives the wrap-around modulo 2**32 that the cipher needs, and LLVM
then narrows the vector lanes back to 32 bits.

The loops are serial: a ``prange`` version of ``random_bits`` was slower for the ConvNet's
dropout mask (589824 words) even alone (1.4 ms against 0.32), and with two-thread OpenBLAS
GEMMs between the draws, as in the training step, it took 12-22 ms against 0.36.
"""

from __future__ import annotations

import numpy as np
from numpy import uint32

from fnarray.backends.kernels import compiled
from fnarray.ops.random_bits import _PARITY


@compiled(inline="always")
def _round(x0, x1, r):
    """One mix: ``x0 += x1; x1 = rotl(x1, r) ^ x0``."""
    x0 = uint32(x0 + x1)
    x1 = uint32((x1 << r) | (x1 >> (32 - r)))
    return x0, uint32(x1 ^ x0)


@compiled(inline="always")
def _inject(x0, x1, a, b, i):
    """The key injection after the ``i``-th group of four rounds (``i`` from 1)."""
    return uint32(x0 + a), uint32(x1 + b + i)


@compiled(inline="always")
def _block(k0, k1, k2, x0, x1):
    """Threefry-2x32-20 of counter words ``(x0, x1)`` under key words ``(k0, k1)``; ``k2``
    is the schedule's third word, ``k0 ^ k1 ^ _PARITY``."""
    x0, x1 = uint32(x0 + k0), uint32(x1 + k1)
    for i in range(5):  # constant trip counts: LLVM unrolls, so the rotations are constants
        if i % 2 == 0:
            x0, x1 = _round(x0, x1, 13)
            x0, x1 = _round(x0, x1, 15)
            x0, x1 = _round(x0, x1, 26)
            x0, x1 = _round(x0, x1, 6)
        else:
            x0, x1 = _round(x0, x1, 17)
            x0, x1 = _round(x0, x1, 29)
            x0, x1 = _round(x0, x1, 16)
            x0, x1 = _round(x0, x1, 24)
        if i % 3 == 0:
            x0, x1 = _inject(x0, x1, k1, k2, i + 1)
        elif i % 3 == 1:
            x0, x1 = _inject(x0, x1, k2, k0, i + 1)
        else:
            x0, x1 = _inject(x0, x1, k0, k1, i + 1)
    return x0, x1


@compiled
def threefry2x32(k0, k1, x0, x1):
    """The cipher elementwise over four equally long 1-d uint32 arrays: two new arrays."""
    y0 = np.empty(x0.shape[0], np.uint32)
    y1 = np.empty(x0.shape[0], np.uint32)
    for j in range(x0.shape[0]):
        k2 = uint32(k0[j] ^ k1[j] ^ _PARITY)
        y0[j], y1[j] = _block(k0[j], k1[j], k2, x0[j], x1[j])
    return y0, y1


@compiled
def random_bits(keys, n):
    """``n`` words per key for the ``(lead, 2)`` uint32 ``keys``: row ``k`` holds the hashes
    of the counters ``(0, 0), (0, 1), ...`` under key ``k``, two words per block (a last
    odd word is the first of its block), as a new ``(lead, n)`` array."""
    out = np.empty((keys.shape[0], n), np.uint32)
    half = n // 2
    zero = uint32(0)
    for k in range(keys.shape[0]):
        k0, k1 = keys[k, 0], keys[k, 1]
        k2 = uint32(k0 ^ k1 ^ _PARITY)
        row = out[k]
        for j in range(half):
            row[2 * j], row[2 * j + 1] = _block(k0, k1, k2, zero, uint32(j))
        if n % 2:
            row[n - 1] = _block(k0, k1, k2, zero, uint32(half))[0]
    return out
