"""Functional, reproducible random numbers (``fa.random``).

A key is a uint32 array of shape ``(2,)``; the same key always gives the same numbers, on
every backend and platform.  Keys are never updated in place: make new ones with ``split``
or ``fold_in``.  All bits come from the Threefry-2x32 primitives in
``fnarray/ops/random_bits.py``; to draw with many keys at once, ``fa.vmap`` over the keys.

Floats in ``[0, 1)`` use the mantissa trick: the top ``nmant`` bits of a random word,
scaled by ``2**-nmant`` (the value ``1.m - 1`` of a float with random mantissa ``m``), so
``bits`` and ``uniform`` are bit-identical everywhere.  Distributions that apply ``log``,
``cos`` or ``erf`` agree across backends to within those functions' rounding.

Random functions have integer bits at their root, so under ``grad`` they are constants.
"""

from __future__ import annotations

import math

import numpy as np

from fnarray.api import creation, elementwise as ew, manipulation as mp, reductions as red
from fnarray.api._convert import as_operand, astype, device_of, from_python, to_inexact
from fnarray.api.indexing import take
from fnarray.api.nn import log_softmax
from fnarray.api.searching import argsort
from fnarray.core import bfloat16
from fnarray.core.array import ArrayBase
from fnarray.core.shapes import DEFAULT_INT, canonical_dtype, float32, is_float, uint32, uint64
from fnarray.ops.random_bits import threefry2x32, random_bits

__all__ = ["key", "split", "fold_in", "bits", "uniform", "normal", "randint", "bernoulli",
           "permutation", "categorical", "truncated_normal", "choice", "gumbel", "exponential"]


# --- keys ---------------------------------------------------------------------------------------

def key(seed: int, device=None):
    """A key from an integer seed in ``[-2**63, 2**64)`` (negative seeds wrap modulo
    2**64): the high and low 32-bit words of the seed.

    The seed may be an integer array scalar, traced under ``jit``/``vmap`` too; as in JAX,
    a seed narrower than 64 bits has a zero high word."""
    if isinstance(seed, ArrayBase):
        return _key_from_array(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"random.key: the seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not -2 ** 63 <= seed < 2 ** 64:
        raise ValueError(f"random.key: seed {seed} is outside [-2**63, 2**64)")
    seed %= 2 ** 64
    return from_python(np.array([seed >> 32, seed & 0xFFFFFFFF], dtype=np.uint32),
                       device=device)


def _key_from_array(seed):
    """``key`` for an integer array scalar, with array operations (so it can be traced)."""
    if seed.dtype.kind not in "iu" or seed.shape:
        raise TypeError(f"random.key: the seed must be an integer scalar, got {seed.dtype} of "
                        f"shape {seed.shape}")
    if seed.dtype.itemsize == 8:
        high = astype(ew.bitwise_right_shift(seed, 32), uint32)
    else:
        high = creation.zeros((), dtype=uint32, device=device_of(seed))
    low = astype(seed, uint32)  # integer conversion keeps the low 32 bits
    return mp.stack([high, low])


def _check_key(k, op: str):
    k = as_operand(k)
    if k.dtype != uint32 or k.shape != (2,):
        raise TypeError(f"random.{op}: expected a key (uint32 array of shape (2,), from "
                        f"fa.random.key(seed)), got {k.dtype} of shape {k.shape}; to use many "
                        f"keys, fa.vmap over them")
    return k


def _shape(shape, op: str) -> tuple:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if any(int(d) < 0 for d in shape):
        raise ValueError(f"random.{op}: shape {shape} has a negative dimension")
    return tuple(int(d) for d in shape)


def split(key, num=2):
    """``num`` new independent keys, as a ``(num, 2)`` array; ``num`` may be a shape
    tuple, giving ``(*num, 2)`` (the same keys as ``split(key, prod(num))``, reshaped)."""
    key = _check_key(key, "split")
    return random_bits.bind(key, shape=(*_shape(num, "split"), 2))


def fold_in(key, data):
    """A new key derived from ``key`` and the integer ``data`` (which may be traced)."""
    key = _check_key(key, "fold_in")
    data = as_operand(data)
    if data.dtype.kind not in "iub" or data.shape:
        raise TypeError(f"random.fold_in: data must be an integer scalar, got {data.dtype} "
                        f"of shape {data.shape}")
    word = astype(data, uint32)
    zero = creation.zeros((), dtype=uint32, device=device_of(key))
    y0, y1 = threefry2x32.bind(key[0], key[1], zero, word)
    return mp.stack([y0, y1])


# --- bits and uniform floats ------------------------------------------------------------------

def bits(key, shape=(), dtype=uint32):
    """Uniformly random unsigned integers (uint8/16/32/64)."""
    key = _check_key(key, "bits")
    shape, dtype = _shape(shape, "bits"), canonical_dtype(dtype)
    if dtype.kind != "u":
        raise TypeError(f"random.bits: dtype must be unsigned (uint8/16/32/64), got {dtype}")
    if dtype == uint64:
        words = astype(random_bits.bind(key, shape=(*shape, 2)), uint64)
        return (words[..., 0] << 32) | words[..., 1]
    word = random_bits.bind(key, shape=shape)
    return word if dtype == uint32 else astype(word >> (32 - 8 * dtype.itemsize), dtype)


def _float_dtype(dtype, op: str):
    dtype = canonical_dtype(dtype)
    if not is_float(dtype):
        raise TypeError(f"random.{op}: dtype must be a float dtype, got {dtype}")
    return dtype


def _unit(key, shape, dtype):
    """Floats in ``[0, 1)`` with ``nmant`` random mantissa bits."""
    nmant = bfloat16.finfo(dtype).nmant  # NumPy's finfo, or ml_dtypes' for bfloat16
    if nmant > 32:
        word, width = bits(key, shape, uint64), 64
    else:
        word, width = random_bits.bind(key, shape=shape), 32
    return astype(word >> (width - nmant), dtype) * (2.0 ** -nmant)


def uniform(key, shape=(), dtype=float32, minval=0.0, maxval=1.0):
    """Uniform floats in ``[minval, maxval)``."""
    key = _check_key(key, "uniform")
    dtype = _float_dtype(dtype, "uniform")
    u = _unit(key, _shape(shape, "uniform"), dtype)
    if _is_number(minval) and _is_number(maxval) and (minval, maxval) == (0, 1):
        return u  # u * (1 - 0) + 0 and maximum(0, u) are u exactly: three passes saved
    lo, hi = astype(minval, dtype), astype(maxval, dtype)
    return ew.maximum(lo, u * (hi - lo) + lo)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def uniform_at_least(key, p: float, shape=(), dtype=float32):
    """``uniform(key, shape, dtype) >= p`` for a Python float ``p``, compared on the random
    words themselves — one integer comparison instead of the conversion to floats (dropout
    draws its masks this way).  The uniform value is ``m * 2**-nmant`` for the top
    ``nmant`` bits ``m`` of a word, and the comparison rounds ``p`` to ``dtype`` first, so
    it holds exactly when the word is at least ``ceil(p' * 2**nmant) << (width - nmant)``
    with ``p'`` the rounded ``p``: the same booleans, bit for bit."""
    key = _check_key(key, "uniform_at_least")
    dtype, shape = _float_dtype(dtype, "uniform_at_least"), _shape(shape, "uniform_at_least")
    rounded = float(np.asarray(p, dtype=dtype)) if dtype.kind == "f" else math.nan
    nmant = bfloat16.finfo(dtype).nmant
    least = math.ceil(rounded * 2.0 ** nmant) if 0.0 < rounded < 1.0 else 0
    if least == 0 or least >= 2 ** nmant:
        # the ends (everything or nothing passes), NaN, and bfloat16 (whose comparison
        # widens): nothing to gain, compare the floats
        return _unit(key, shape, dtype) >= p
    if nmant > 32:
        return bits(key, shape, uint64) >= np.uint64(least << (64 - nmant))
    return random_bits.bind(key, shape=shape) >= np.uint32(least << (32 - nmant))


def _compute_dtype(dtype):
    """Transcendental functions run in at least float32 (float16 loses too much)."""
    return dtype if dtype.itemsize >= 4 else float32


def normal(key, shape=(), dtype=float32):
    """Standard normal samples (Box-Muller on two uniform draws).  A complex ``dtype``
    gives standard complex normals, ``(x + iy) / sqrt(2)`` with independent real normals
    from the two halves of ``split(key)`` (JAX's construction; ``E|z|**2 == 1``)."""
    key = _check_key(key, "normal")
    if canonical_dtype(dtype).kind == "c":
        part = np.finfo(canonical_dtype(dtype)).dtype
        k_re, k_im = split(key)
        re, im = normal(k_re, shape, part), normal(k_im, shape, part)
        return (astype(re, dtype) + 1j * astype(im, dtype)) * (1.0 / math.sqrt(2.0))
    dtype = _float_dtype(dtype, "normal")
    work = _compute_dtype(dtype)
    u = _unit(key, (2, *_shape(shape, "normal")), work)
    radius = ew.sqrt(-2.0 * ew.log1p(-u[0]))  # 1 - u in (0, 1]
    return astype(radius * ew.cos((2.0 * math.pi) * u[1]), dtype)


def exponential(key, shape=(), dtype=float32):
    """Exponential samples with rate 1: ``-log(1 - u)``."""
    key = _check_key(key, "exponential")
    dtype = _float_dtype(dtype, "exponential")
    u = _unit(key, _shape(shape, "exponential"), _compute_dtype(dtype))
    return astype(-ew.log1p(-u), dtype)


def gumbel(key, shape=(), dtype=float32):
    """Standard Gumbel samples: ``-log(-log(u))`` with ``u`` in ``(0, 1)``."""
    key = _check_key(key, "gumbel")
    dtype = _float_dtype(dtype, "gumbel")
    work = _compute_dtype(dtype)
    u = _unit(key, _shape(shape, "gumbel"), work)
    u = ew.maximum(u, float(np.finfo(work).tiny))
    return astype(-ew.log(-ew.log(u)), dtype)


# --- integers and discrete choices ---------------------------------------------------------

def randint(key, shape, minval, maxval, dtype=DEFAULT_INT):
    """Integers uniform in ``[minval, maxval)`` (a 64-bit draw reduced modulo the range, so
    the bias is below ``range / 2**64``).  An empty range gives ``minval``."""
    key = _check_key(key, "randint")
    dtype = canonical_dtype(dtype)
    if dtype.kind not in "iu":
        raise TypeError(f"random.randint: dtype must be an integer dtype, got {dtype}")
    lo = astype(minval, np.int64)
    hi = astype(maxval, np.int64)
    span = astype(ew.maximum(hi - lo, 1), uint64)
    offset = astype(bits(key, _shape(shape, "randint"), uint64) % span, np.int64)
    return astype(lo + offset, dtype)


def bernoulli(key, p=0.5, shape=None):
    """Booleans that are True with probability ``p`` (broadcast to ``shape``)."""
    key = _check_key(key, "bernoulli")
    p = to_inexact(p)
    shape = p.shape if shape is None else _shape(shape, "bernoulli")
    return uniform(key, shape, p.dtype) < p


def permutation(key, x, axis: int = 0, independent: bool = False):
    """A random permutation of ``arange(x)`` (int ``x``) or of ``x`` along ``axis``; with
    ``independent``, every 1-D slice along ``axis`` gets its own permutation."""
    key = _check_key(key, "permutation")
    if independent:
        if isinstance(x, (int, np.integer)):
            raise TypeError("random.permutation: independent=True needs an array x, not an int")
        from fnarray.api.random_distributions import permute_independent
        return permute_independent(key, x, axis)
    if isinstance(x, (int, np.integer)):
        x = creation.arange(int(x), device=device_of(key))
    x = as_operand(x)
    if x.ndim == 0:
        raise ValueError("random.permutation: x must be an int or an array with at least "
                         "one dimension")
    order = argsort(bits(key, (x.shape[axis],), uint64))
    return take(x, order, axis=axis)


def categorical(key, logits, axis: int = -1, shape=None):
    """Samples from the categorical distributions given by unnormalised ``logits`` along
    ``axis`` (Gumbel-max: ``argmax(logits + gumbel)``).  ``shape`` defaults to the logits'
    shape without ``axis``; it may add leading axes."""
    key = _check_key(key, "categorical")
    logits = mp.moveaxis(to_inexact(logits), axis, -1)
    batch = logits.shape[:-1]
    shape = batch if shape is None else _shape(shape, "categorical")
    if shape[len(shape) - len(batch):] != batch:
        raise ValueError(f"random.categorical: shape {shape} must end with the logits' batch "
                         f"shape {batch} (the logits' shape without axis {axis})")
    noise = gumbel(key, (*shape, logits.shape[-1]), logits.dtype)
    return red.argmax(noise + logits, axis=-1)


def choice(key, a, shape=(), replace: bool = True, p=None, axis: int = 0):
    """Samples from ``a`` (an array, or ``arange(a)`` for an int) along ``axis``, with or
    without replacement, uniformly or with probabilities ``p``."""
    key = _check_key(key, "choice")
    if isinstance(a, (int, np.integer)):
        a = creation.arange(int(a), device=device_of(key))
    a = as_operand(a)
    if a.ndim == 0:
        raise ValueError("random.choice: a must be an int or an array with at least one "
                         "dimension")
    n, shape = a.shape[axis], _shape(shape, "choice")
    count = math.prod(shape)
    if not replace and count > n:
        raise ValueError(f"random.choice: cannot take {count} samples without replacement "
                         f"from {n} items; use replace=True or a smaller shape")
    if p is not None:
        p = to_inexact(p)
        if p.shape != (n,):
            raise ValueError(f"random.choice: p must have shape ({n},), got {p.shape}")
    if replace and p is None:
        idx = randint(key, shape, 0, n)
    elif replace:
        cdf = red.cumsum(p)
        u = uniform(key, shape, p.dtype) * cdf[-1]
        idx = ew.minimum(_searchsorted_right(cdf, u), n - 1)
    else:
        scores = (bits(key, (n,), uint64) if p is None
                  else gumbel(key, (n,), p.dtype) + log_softmax(ew.log(p)))
        idx = mp.reshape(argsort(scores, descending=True)[:count], shape)
    flat = take(a, mp.ravel(idx), axis=axis)
    ax = axis % a.ndim
    return mp.reshape(flat, (*a.shape[:ax], *shape, *a.shape[ax + 1:]))


def _searchsorted_right(cdf, u):
    """Number of ``cdf`` entries ``<= u`` (vectorised comparison, fine for moderate n)."""
    grid = mp.reshape(cdf, (1,) * u.ndim + cdf.shape)
    return red.sum(grid <= mp.expand_dims(u, -1), axis=-1)


# --- truncated normal -----------------------------------------------------------------------

# Rational approximations of the normal quantile (P. J. Acklam), refined below by one
# Halley step, which brings them to double precision.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00)
_P_LOW = 0.02425


def _poly(coeffs, t):
    out = coeffs[0]
    for c in coeffs[1:]:
        out = out * t + c
    return out


def _normal_cdf(x):
    return 0.5 * (1.0 + ew.erf(x * (1.0 / math.sqrt(2.0))))


def _normal_quantile(p):
    """``Phi^{-1}(p)`` for float64 ``p`` in ``[0, 1]`` (``-inf``/``inf`` at the ends)."""
    q = p - 0.5
    r = q * q
    central = q * _poly(_A, r) / (_poly(_B, r) * r + 1.0)
    tail_p = ew.clip(ew.minimum(p, 1.0 - p), 1e-300, None)
    t = ew.sqrt(-2.0 * ew.log(tail_p))
    tail = _poly(_C, t) / (_poly(_D, t) * t + 1.0)
    tail = ew.where(p < 0.5, tail, -tail)
    x = ew.where(ew.abs(q) <= 0.5 - _P_LOW, central, tail)
    err = _normal_cdf(x) - p
    u = err * math.sqrt(2.0 * math.pi) * ew.exp(0.5 * x * x)
    x = x - u / (1.0 + 0.5 * x * u)
    return ew.where(p <= 0.0, -math.inf, ew.where(p >= 1.0, math.inf, x))


def truncated_normal(key, lower, upper, shape=None, dtype=float32):
    """Standard normal samples conditioned on ``lower < x < upper`` (inverse-CDF method,
    computed in float64; ``shape`` defaults to the broadcast shape of the bounds)."""
    key = _check_key(key, "truncated_normal")
    dtype = _float_dtype(dtype, "truncated_normal")
    lo, hi = astype(lower, np.float64), astype(upper, np.float64)
    if shape is None:
        shape = mp.broadcast_arrays(lo, hi)[0].shape
    u = uniform(key, _shape(shape, "truncated_normal"), np.float64,
                _normal_cdf(lo), _normal_cdf(hi))
    x = ew.clip(_normal_quantile(u), lo, hi)
    return astype(x, dtype)
