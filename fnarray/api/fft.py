"""``fa.fft``: the Array API (2023.12) FFT extension with NumPy's ``n``/``s``, ``axis``/``axes``
and ``norm`` semantics.

The transforms bind the three primitives of ``fnarray/ops/fft.py`` after zero-padding or
truncating each transformed axis to its requested length, so every function here is
differentiable (see that module for the complex cotangent convention: a complex cotangent
pairs with a tangent as ``Re sum(conj(ct) * t)``).  ``hfft``/``ihfft`` use the identity
``conj(F x) = F(reversed x)`` for real signals, so they need no complex conjugation op.
"""

from __future__ import annotations

import numpy as np

from fnarray.api._convert import as_operand, astype, to_inexact
from fnarray.api.creation import asarray
from fnarray.api.manipulation import flip, pad, roll, take_slice
from fnarray.api.reductions import normalize_axes
from fnarray.core.shapes import DEFAULT_FLOAT
from fnarray.ops import fft as _ops

_NORMS = ("backward", "ortho", "forward")


def _check_norm(op, norm):
    if norm not in _NORMS:
        raise ValueError(f"{op}: norm must be 'backward', 'ortho' or 'forward', got {norm!r}")


def _complex(x):
    x = to_inexact(as_operand(x))
    return x if x.dtype.kind == "c" else astype(x, np.result_type(x.dtype, np.complex64))


def _real(op, x):
    x = to_inexact(as_operand(x))
    if x.dtype.kind == "c":
        raise TypeError(f"{op}: expected a real input, got {x.dtype}; use fa.fft.fft for "
                        f"complex signals")
    return x


def _resize(x, axis: int, n: int):
    """Zero-pad or truncate ``x`` along ``axis`` to length ``n``."""
    have = x.shape[axis]
    if n == have:
        return x
    if n < have:
        return take_slice(x, axis, 0, n)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, n - have)
    return pad(x, widths)


def _axes_and_sizes(op, x, s, axes):
    """NumPy's rules for ``s`` and ``axes``: the transformed axes and their lengths."""
    if axes is None:
        axes = tuple(range(x.ndim)) if s is None else tuple(range(x.ndim - len(s), x.ndim))
    else:
        axes = tuple(axes)
    norm_axes = tuple(normalize_axes(a, x.ndim, op)[0] for a in axes)
    if len(set(norm_axes)) != len(norm_axes):
        raise ValueError(f"{op}: repeated axis in axes={axes}")
    sizes = tuple(x.shape[a] for a in norm_axes) if s is None else tuple(int(v) for v in s)
    if len(sizes) != len(norm_axes):
        raise ValueError(f"{op}: s={s} and axes={axes} must have the same length")
    for v in sizes:
        if v < 1:
            raise ValueError(f"{op}: every transform length must be at least 1, got s={sizes}")
    return norm_axes, sizes


def _one_axis(n, axis):
    return None if n is None else (n,), (axis,)


# --- complex transforms ------------------------------------------------------------------------

def _cfft(op, x, s, axes, norm, inverse):
    _check_norm(op, norm)
    x = _complex(x)
    axes, sizes = _axes_and_sizes(op, x, s, axes)
    for a, n in zip(axes, sizes):
        x = _resize(x, a, n)
    if not axes:
        return x
    return _ops.fft.bind(x, axes=axes, inverse=inverse, norm=norm)


def fft(x, n=None, axis: int = -1, norm: str = "backward"):
    """One-dimensional discrete Fourier transform along ``axis`` (length ``n``)."""
    return _cfft("fft", x, *_one_axis(n, axis), norm, False)


def ifft(x, n=None, axis: int = -1, norm: str = "backward"):
    """Inverse of ``fft``."""
    return _cfft("ifft", x, *_one_axis(n, axis), norm, True)


def fftn(x, s=None, axes=None, norm: str = "backward"):
    """N-dimensional discrete Fourier transform over ``axes`` (lengths ``s``)."""
    return _cfft("fftn", x, s, axes, norm, False)


def ifftn(x, s=None, axes=None, norm: str = "backward"):
    """Inverse of ``fftn``."""
    return _cfft("ifftn", x, s, axes, norm, True)


# --- real transforms ---------------------------------------------------------------------------

def rfftn(x, s=None, axes=None, norm: str = "backward"):
    """N-dimensional FFT of a real signal; the last axis keeps ``s[-1] // 2 + 1`` bins."""
    _check_norm("rfftn", norm)
    x = _real("rfftn", x)
    axes, sizes = _axes_and_sizes("rfftn", x, s, axes)
    if not axes:
        raise ValueError("rfftn: needs at least one axis to transform")
    for a, n in zip(axes, sizes):
        x = _resize(x, a, n)
    return _ops.rfft.bind(x, axes=axes, norm=norm)


def irfftn(x, s=None, axes=None, norm: str = "backward"):
    """Inverse of ``rfftn``: a real signal of lengths ``s`` (default: the last axis gives
    ``2 * (bins - 1)``)."""
    _check_norm("irfftn", norm)
    x = _complex(x)
    if axes is None and s is None:
        axes = tuple(range(x.ndim))
    axes, sizes = _axes_and_sizes("irfftn", x, s, axes)
    if not axes:
        raise ValueError("irfftn: needs at least one axis to transform")
    if s is None:
        sizes = sizes[:-1] + (2 * (x.shape[axes[-1]] - 1),)
        if sizes[-1] < 1:
            raise ValueError(f"irfftn: a half spectrum of 1 bin along axis {axes[-1]} needs an "
                             f"explicit output length n (or s)")
    for a, n in zip(axes[:-1], sizes[:-1]):
        x = _resize(x, a, n)
    x = _resize(x, axes[-1], sizes[-1] // 2 + 1)
    return _ops.irfft.bind(x, axes=axes, n=sizes[-1], norm=norm)


def rfft(x, n=None, axis: int = -1, norm: str = "backward"):
    """FFT of a real signal along ``axis``: ``n // 2 + 1`` non-negative-frequency bins."""
    return rfftn(x, *_one_axis(n, axis), norm=norm)


def irfft(x, n=None, axis: int = -1, norm: str = "backward"):
    """Inverse of ``rfft``: a real signal of length ``n`` (default ``2 * (bins - 1)``)."""
    return irfftn(x, *_one_axis(n, axis), norm=norm)


def _reverse_signal(x, axis):
    """``x[-k mod n]`` along ``axis``: the time reversal that conjugates a real spectrum."""
    return roll(flip(x, axis=axis), 1, axis=axis)


def hfft(x, n=None, axis: int = -1, norm: str = "backward"):
    """FFT of a signal with Hermitian symmetry (given by its half), a real spectrum of length
    ``n``: ``irfft(conj(x), n) * n`` in NumPy's normalisation."""
    _check_norm("hfft", norm)
    x = as_operand(x)
    axis = normalize_axes(axis, x.ndim, "hfft")[0]
    return _reverse_signal(irfft(x, n, axis, norm=_ops._DUAL[norm]), axis)


def ihfft(x, n=None, axis: int = -1, norm: str = "backward"):
    """Inverse of ``hfft``: the half spectrum ``conj(rfft(x, n)) / n`` of a real signal."""
    _check_norm("ihfft", norm)
    x = _real("ihfft", x)
    axis = normalize_axes(axis, x.ndim, "ihfft")[0]
    if n is not None:
        x = _resize(x, axis, int(n))
    return rfft(_reverse_signal(x, axis), None, axis, norm=_ops._DUAL[norm])


# --- helpers -----------------------------------------------------------------------------------

def fftfreq(n: int, d: float = 1.0, dtype=None, device=None):
    """Sample frequencies ``[0, 1, ..., -1] / (d * n)`` of an ``n``-point FFT."""
    return asarray(np.fft.fftfreq(int(n), float(d)), dtype=dtype or DEFAULT_FLOAT, device=device)


def rfftfreq(n: int, d: float = 1.0, dtype=None, device=None):
    """Sample frequencies ``[0, 1, ..., n // 2] / (d * n)`` of an ``n``-point ``rfft``."""
    return asarray(np.fft.rfftfreq(int(n), float(d)), dtype=dtype or DEFAULT_FLOAT, device=device)


def _shift_axes(x, axes):
    if axes is None:
        return tuple(range(x.ndim))
    return (axes,) if isinstance(axes, int) else tuple(axes)


def fftshift(x, axes=None):
    """Move the zero-frequency bin to the centre of ``axes`` (default all)."""
    x = as_operand(x)
    axes = _shift_axes(x, axes)
    return roll(x, tuple(x.shape[a] // 2 for a in axes), axes) if axes else x


def ifftshift(x, axes=None):
    """Inverse of ``fftshift``."""
    x = as_operand(x)
    axes = _shift_axes(x, axes)
    return roll(x, tuple(-(x.shape[a] // 2) for a in axes), axes) if axes else x


__all__ = ["fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft",
           "fftfreq", "rfftfreq", "fftshift", "ifftshift"]
