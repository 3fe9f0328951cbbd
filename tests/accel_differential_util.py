"""Shared helpers of the accel differential tests (``test_accel_differential*.py``): run a
function on the NumPy path and on the compiled one and compare, operands in awkward memory
layouts and with awkward values, and the hypothesis settings.

Tolerances: kernels documented as exact (im2col/col2im, the conv output swap, pooling,
Threefry, fused loops of ``+ - * /``, comparisons, casts) are compared bit for bit
(``same_bits``); the compiled ``conv_transpose`` adds in another order, so results built on
it (convolution input gradients, transposed convolutions) are compared with ``rtol = atol =
1e-4`` in float32 and ``1e-11`` in float64 (``TOL``), for operands in [-1, 1] and at most a
few hundred terms per sum (float32's eps is 1.2e-7, so a sum of n terms may differ by ~n eps
relative to the sum of the terms' magnitudes); fused ``exp``/``log``/trigonometric loops by
``rtol = 4e-7`` (float32: one or two ulps of libm against NumPy's SIMD functions) and
``1e-15`` (float64).  The gate's documented signed-zero freedom
(``backends/kernels/activation.py``) is allowed where it applies: ``numpy.array_equal``
there (``equal_up_to_zero_signs``), bits elsewhere.

``ACCEL_FUZZ_EXAMPLES=N`` hunts with N fresh random examples per test; CI runs a fixed,
derandomized few.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
from hypothesis import HealthCheck, settings

import fnarray as fa
from fnarray.backends import accel

HUNT = int(os.environ.get("ACCEL_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(deadline=None, max_examples=HUNT or 25, derandomize=not HUNT,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-11}


# --- comparison helpers --------------------------------------------------------------------------

def as_numpy(a) -> np.ndarray:
    return np.asarray(a)


def leaves(tree) -> list:
    return [x for x in fa.tree_util.tree_leaves(tree) if x is not None]


def snapshot(args) -> list:
    return [(as_numpy(a), as_numpy(a).copy()) for a in leaves(args) if hasattr(a, "shape")]


def unwritten(snap, what: str) -> None:
    for live, before in snap:
        assert live.tobytes() == before.tobytes(), f"{what}: an input buffer was written"


def unaliased(outs, args, what: str) -> None:
    ins = [as_numpy(a) for a in leaves(args) if hasattr(a, "shape")]
    for o in leaves(outs):
        o = as_numpy(o)
        for a in ins:
            if o.size and a.size:
                assert not np.shares_memory(o, a), f"{what}: a result shares memory with an input"


def both(fn, *args):
    """``fn(*args)`` on the NumPy path and on the compiled one (every size), checking on both
    that no input is written and no result aliases an input, and that a second compiled call
    gives the same bits and leaves the earlier results untouched (recycled scratch buffers):
    ``(numpy, compiled)``."""
    res, kept = [], []
    for on in (False, True, True):
        snap = snapshot(args)
        with accel.forced(on), np.errstate(all="ignore"):
            out = fn(*args)
        what = f"{getattr(fn, '__name__', fn)} ({'compiled' if on else 'numpy'})"
        unwritten(snap, what)
        unaliased(out, args, what)
        res.append(out)
        kept.append(snapshot(out))
    for snap in kept:
        unwritten(snap, "a later call")
    same_bits(res[1], res[2], "a second compiled call")
    return res[:2]


@contextlib.contextmanager
def small_buffers():
    """Chunk, block and recycling thresholds at their smallest, so that small operands take
    the code paths of large ones (chunk boundaries, recycled scratch and patch buffers)."""
    from fnarray.ops import conv_patches, conv_transpose, pooling
    saved = (conv_transpose._CHUNK_BYTES, conv_patches._PATCH_BUFFERS.MIN_BYTES,
             conv_transpose._SCRATCH.MIN_BYTES, pooling.BLOCK_BYTES)
    conv_transpose._CHUNK_BYTES = 1
    conv_patches._PATCH_BUFFERS.MIN_BYTES = conv_transpose._SCRATCH.MIN_BYTES = 0
    pooling.BLOCK_BYTES = 64
    try:
        yield
    finally:
        (conv_transpose._CHUNK_BYTES, conv_patches._PATCH_BUFFERS.MIN_BYTES,
         conv_transpose._SCRATCH.MIN_BYTES, pooling.BLOCK_BYTES) = saved


def same_bits(a, b, what="", nan_bits: bool = True) -> None:
    """Every leaf of ``a`` and ``b`` has the same dtype, shape and bytes; without
    ``nan_bits``, NaNs must only sit at the same places (their sign and payload are not
    compared: LLVM may fold ``-x + 0`` to ``0 - x``, which keeps ``x``'s NaN where NumPy's
    two passes give the negated one; IEEE 754 leaves a NaN result's sign unspecified)."""
    la, lb = leaves(a), leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        x, y = as_numpy(x), as_numpy(y)
        assert x.dtype == y.dtype and x.shape == y.shape, (what, x.dtype, y.dtype, x.shape, y.shape)
        if not nan_bits and x.dtype.kind == "f":
            nan = np.isnan(x)
            assert np.array_equal(nan, np.isnan(y)), f"{what}: NaNs at other places"
            x, y = np.where(nan, np.nan, x), np.where(nan, np.nan, y)
        if x.tobytes() != y.tobytes():
            bad = np.flatnonzero(np.frombuffer(x.tobytes(), np.uint8)
                                 != np.frombuffer(y.tobytes(), np.uint8))
            raise AssertionError(f"{what}: bits differ ({len(bad)} bytes), numpy {x.ravel()[:8]} "
                                 f"compiled {y.ravel()[:8]}")


def close(a, b, what="", tol=None) -> None:
    """Every leaf of ``b`` equals ``a``'s to ``tol`` (default ``TOL`` of its dtype), NaN
    where NaN."""
    la, lb = leaves(a), leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        x, y = as_numpy(x), as_numpy(y)
        assert x.dtype == y.dtype and x.shape == y.shape, (what, x.dtype, y.dtype, x.shape, y.shape)
        t = TOL.get(x.dtype, 0) if tol is None else tol
        np.testing.assert_allclose(y, x, rtol=t, atol=t, equal_nan=True, err_msg=what)


# --- operands ------------------------------------------------------------------------------------

LAYOUTS = ("c", "fortran", "negative", "strided", "transposed")


def laid_out(values: np.ndarray, layout: str):
    """``values`` as an fnarray array held in the memory layout ``layout`` (a view where the
    layout is not C order: the kernels see it as is)."""
    if layout == "fortran" and values.ndim:
        held = np.asfortranarray(values)
    elif layout == "negative" and values.ndim:
        held = np.ascontiguousarray(values[::-1])[::-1]
    elif layout == "strided" and values.ndim:
        held = np.repeat(values, 2, axis=-1)[..., ::2]
    elif layout == "transposed" and values.ndim > 1:
        held = np.moveaxis(np.ascontiguousarray(np.moveaxis(values, -1, 0)), 0, -1)
    else:
        held = np.array(values, order="C")
    assert np.array_equal(held, values, equal_nan=True)
    return fa.asarray(held)


def uniform(rng, shape, dtype):
    return np.asarray(rng.uniform(-1, 1, shape)).astype(dtype)


SPECIAL = (np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0, 0.5)


def special(rng, shape, dtype, share: float):
    """Uniform values with a fraction ``share`` replaced by NaN, infinities, signed zeros
    and repeated values (ties)."""
    values = uniform(rng, shape, dtype)
    pick = rng.random(shape) < share
    values[pick] = rng.choice(np.array(SPECIAL, dtype), size=int(pick.sum()))
    return values


def equal_up_to_zero_signs(a, b, exact: bool, what: str) -> None:
    """Equal values (NaN where NaN); bit for bit as well where ``exact``."""
    for x, y in zip(leaves(a), leaves(b)):
        x, y = as_numpy(x), as_numpy(y)
        assert x.dtype == y.dtype and x.shape == y.shape, what
        assert np.array_equal(x, y, equal_nan=True), f"{what}: numpy {x} compiled {y}"
    if exact:
        same_bits(a, b, what)
