"""Counter-based random bits: the Threefry-2x32 block cipher (20 rounds; Salmon et al.,
"Parallel random numbers: as easy as 1, 2, 3", SC 2011).

Everything is written with uint32 array operations of the backend module (add, xor,
shifts), which wrap modulo 2**32 identically on NumPy and CuPy, so a key gives the same bits
on every backend and platform.

* ``threefry2x32(k0, k1, x0, x1)`` hashes counter words ``(x0, x1)`` under key words
  ``(k0, k1)``; operands broadcast against each other; two uint32 results.
* ``random_bits(key, shape=...)``: ``key`` is uint32 ``(..., 2)`` (leading axes are a batch
  of keys); the result is uint32 ``(..., *shape)``, the hashes of the counters
  ``0, 1, 2, ...`` taken two words per block.

On NumPy, large draws run the compiled kernels of ``fnarray/backends/kernels/random.py``
(the ``accel`` extra), which give the same bits; the NumPy code below stays the reference.

Both have integer outputs, so they are not differentiable: under ``grad`` they are
constants.  Their batching rules only move axes: the kernels are vectorised over keys.
"""

from __future__ import annotations

import math

from fnarray import api as fa
from fnarray.backends import accel
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray, broadcast_shapes, uint32
from fnarray.ops._util import move_bdim
from fnarray.transforms.buffers import declare_fresh

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA  # the key-schedule constant of Threefish
MAX_BLOCKS = 2 ** 32  # counters are (0, j) with j a uint32
# The compiled kernels are asked for with the size of the NumPy work they replace: about
# sixty passes per word (the cipher's ~115 operations over half as many blocks).  NumPy's
# hundred-odd calls cost ~0.08 ms even for a few words, so a draw of a few hundred words
# (dropout's (64, 128) mask: 0.13 ms on NumPy, 0.006 ms compiled) is already worth it.
# Smaller draws (key splits) run compiled as soon as the kernels are loaded (``accel.loaded``).
_PASSES = 60


def threefry(xp, k0, k1, x0, x1):
    """Threefry-2x32-20 on equally shaped uint32 arrays (at least 1-d, so NumPy keeps
    array semantics: uint32 arithmetic wraps silently).

    The ~115 word operations run in place (``out=``) on two fresh state arrays and one
    scratch array: allocating a new array per operation made dropout's masks ~5x slower."""
    ks = (k0, k1, k0 ^ k1 ^ xp.uint32(_PARITY))
    x0, x1 = x0 + ks[0], x1 + ks[1]  # fresh arrays: the state is updated in place below
    spill = xp.empty_like(x1)
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            xp.add(x0, x1, out=x0)
            xp.left_shift(x1, xp.uint32(r), out=spill)
            xp.right_shift(x1, xp.uint32(32 - r), out=x1)
            xp.bitwise_or(x1, spill, out=x1)
            xp.bitwise_xor(x1, x0, out=x1)
        xp.add(x0, ks[(i + 1) % 3], out=x0)
        xp.add(x1, ks[(i + 2) % 3], out=x1)
        xp.add(x1, xp.uint32(i + 1), out=x1)
    return x0, x1


def _nondiff(*_, **__):
    """Integer outputs: the transforms never differentiate these primitives."""
    return (None,) * 4


# --- threefry2x32 ------------------------------------------------------------------------------

def _threefry_impl(xp, k0, k1, x0, x1):
    shape = broadcast_shapes(k0.shape, k1.shape, x0.shape, x1.shape)
    flat = [xp.broadcast_to(a, shape).reshape(-1) for a in (k0, k1, x0, x1)]
    k = accel.kernels("random", xp, _PASSES * math.prod(shape))
    if k is not None:
        return [y.reshape(shape) for y in k.threefry2x32(*map(xp.ascontiguousarray, flat))]
    return [y.reshape(shape) for y in threefry(xp, *flat)]


def _threefry_abstract(*avals):
    for a in avals:
        if a.dtype != uint32:
            raise TypeError(f"threefry2x32: operands must be uint32, got {a.dtype}")
    shape = broadcast_shapes(*(a.shape for a in avals))
    return [ShapedArray(shape, uint32), ShapedArray(shape, uint32)]


def _threefry_batch(vals, dims):
    rank = max(v.ndim - (d is not None) for v, d in zip(vals, dims))
    moved = []
    for v, d in zip(vals, dims):
        if d is not None:
            v = move_bdim(v, d, 0)
            v = fa.reshape(v, (v.shape[0],) + (1,) * (rank - v.ndim + 1) + v.shape[1:])
        moved.append(v)
    return threefry2x32.bind(*moved), (0, 0)


threefry2x32 = declare(
    "threefry2x32", impl=_threefry_impl, abstract=_threefry_abstract, jvp=_nondiff,
    vjp=_nondiff, batch=_threefry_batch, multiple_results=True, differentiable=False)


# --- random_bits -------------------------------------------------------------------------------

def _random_bits_impl(xp, key, *, shape):
    batch, n = key.shape[:-1], math.prod(shape)
    lead = math.prod(batch)
    # a small draw (a key split) runs compiled too once a large one has loaded the kernels
    k = accel.kernels("random", xp, _PASSES * lead * n) or accel.loaded("random", xp)
    if k is not None:
        return k.random_bits(xp.ascontiguousarray(key.reshape(lead, 2)), n).reshape(
            (*batch, *shape))
    blocks = (n + 1) // 2
    keys = key.reshape(lead, 1, 2)
    k0 = xp.broadcast_to(keys[..., 0], (lead, blocks)).reshape(-1)
    k1 = xp.broadcast_to(keys[..., 1], (lead, blocks)).reshape(-1)
    counter = xp.broadcast_to(xp.arange(blocks, dtype=xp.uint32), (lead, blocks)).reshape(-1)
    y0, y1 = threefry(xp, k0, k1, xp.zeros_like(counter), counter)
    words = xp.stack([y0, y1], axis=-1).reshape(lead, 2 * blocks)[:, :n]
    return xp.ascontiguousarray(words).reshape((*batch, *shape))


def _random_bits_abstract(key, *, shape):
    if key.dtype != uint32 or not key.shape or key.shape[-1] != 2:
        raise TypeError(f"random_bits: the key must be uint32 of shape (..., 2), got "
                        f"{key.dtype}{list(key.shape)}; make one with fa.random.key(seed)")
    if (math.prod(shape) + 1) // 2 > MAX_BLOCKS:
        raise ValueError(f"random_bits: shape {shape} asks for more than 2**33 values from "
                         f"one key; split the key and draw in parts")
    return ShapedArray((*key.shape[:-1], *shape), uint32)


random_bits = declare(
    "random_bits", impl=_random_bits_impl, abstract=_random_bits_abstract, jvp=_nondiff,
    vjp=_nondiff,
    batch=lambda vals, dims, *, shape: (
        random_bits.bind(move_bdim(vals[0], dims[0], 0), shape=shape), 0),
    differentiable=False)
declare_fresh(random_bits)  # the words are a new buffer, never a view of the key
