"""Resampling kernels shared by ``Resize``, ``RandomResizedCrop`` and ``RandomRotation``.

``resize`` follows Pillow's separable convolution resampler (``Image.resize``), which is
what torchvision's ``Resize`` gives for PIL images and, with ``antialias=True``, for
tensors: when shrinking, the filter is stretched by the scale factor, so every input pixel
contributes (no aliasing); bicubic is Keys' cubic with ``a = -0.5``.  Pillow runs the
horizontal pass, then the vertical one, except (from Pillow 13) when the height shrinks by
more than twice as many pixels as the width does: then the vertical pass runs first.
The order matters for 8-bit images, which are rounded and clipped between the passes.
For 8-bit images Pillow works in fixed point: each
coefficient is rounded to a multiple of 2**-22 (half away from zero) and each pass adds
2**21, shifts right by 22 and clips to 0..255 before the next one.  ``uint8`` input here
does exactly that (the integer sums are exact in float64 matrix products), so results are
Pillow's to the level, bicubic overshoot included.  Float input uses the same coefficients
unrounded, which is torchvision's antialiased tensor kernel (and Pillow's mode ``F``).

``antialias=False`` is torchvision's tensor path without antialiasing (PyTorch's
``interpolate(align_corners=False)``): bilinear is the same filter unstretched; bicubic
there is a different kernel, ``a = -0.75`` over four taps with the edge pixels repeated.

``rotate`` follows Pillow's ``Image.rotate`` (the inverse affine map sampled at pixel
centres, counter-clockwise angles in degrees, optional ``expand`` and ``center``).
"""

from __future__ import annotations

import enum
import math
import sys

import numpy as np
from fnarray.core.shapes import is_inexact

NEAREST, BILINEAR, BICUBIC = "nearest", "bilinear", "bicubic"


class InterpolationMode(str, enum.Enum):
    """torchvision's interpolation names (``InterpolationMode.BILINEAR`` == ``'bilinear'``)."""

    NEAREST = NEAREST
    BILINEAR = BILINEAR
    BICUBIC = BICUBIC


_PIL_CODES = {0: NEAREST, 2: BILINEAR, 3: BICUBIC}  # Image.NEAREST / BILINEAR / BICUBIC


def interpolation_mode(mode, who: str) -> str:
    """``mode`` (an ``InterpolationMode``, its name, or a Pillow filter code) as a name."""
    if isinstance(mode, enum.Enum):
        mode = mode.value
    if isinstance(mode, int) and not isinstance(mode, bool):
        mode = _PIL_CODES.get(mode, mode)
    if mode not in (NEAREST, BILINEAR, BICUBIC):
        raise ValueError(f"{who}: interpolation must be InterpolationMode.NEAREST, BILINEAR or "
                         f"BICUBIC, got {mode!r}")
    return str(mode)


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.abs(x))


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


_FILTERS = {BILINEAR: (_triangle, 1.0), BICUBIC: (_cubic, 2.0)}


#: Pillow's fixed-point fraction bits for 8-bit images (``32 - 8 - 2``).
PRECISION_BITS = 22


def _weights(n_in: int, n_out: int, mode: str, antialias: bool) -> np.ndarray:
    """The ``(n_out, n_in)`` resampling matrix (rows sum to 1) of Pillow's coefficients
    (``precompute_coeffs``, operation for operation, so the 8-bit rounding agrees)."""
    if mode == BICUBIC and not antialias:
        return cubic_weights((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, n_in)
    kernel, support = _FILTERS[mode]
    scale = n_in / n_out
    filterscale = max(scale, 1.0) if antialias else 1.0
    support *= filterscale
    centers = (np.arange(n_out) + 0.5) * scale
    lo = np.clip(np.trunc(centers - support + 0.5), 0, n_in).astype(np.int64)
    hi = np.clip(np.trunc(centers + support + 0.5), 0, n_in).astype(np.int64)
    src = np.arange(n_in)
    w = kernel((src[None, :] - centers[:, None] + 0.5) * (1.0 / filterscale))
    w = np.where((src[None, :] >= lo[:, None]) & (src[None, :] < hi[:, None]), w, 0.0)
    total = w.sum(axis=1, keepdims=True)
    return w / np.where(total == 0, 1.0, total)


def cubic_weights(src: np.ndarray, n_in: int) -> np.ndarray:
    """PyTorch's ``upsample_bicubic2d`` (no antialiasing) as a ``(len(src), n_in)`` matrix:
    four taps around each source coordinate (``(i + 0.5) * scale - 0.5``, or
    ``i * (n_in - 1) / (n_out - 1)`` with ``align_corners``) weighted by the ``a = -0.75``
    cubic, taps beyond the edge reading the edge pixel."""
    base = np.floor(src).astype(np.int64)
    w = np.zeros((len(src), n_in))
    rows = np.arange(len(src))
    for k in (-1, 0, 1, 2):
        np.add.at(w, (rows, np.clip(base + k, 0, n_in - 1)), _cubic(src - (base + k), a=-0.75))
    return w


def _fixed_point(w: np.ndarray) -> np.ndarray:
    """Pillow's ``normalize_coeffs_8bpc``: coefficients as integers of 2**-22, rounded half
    away from zero (held as float64, where they and the pass sums are exact)."""
    return np.trunc(w * (1 << PRECISION_BITS) + np.where(w < 0, -0.5, 0.5))


def _pass_8bit(products: np.ndarray) -> np.ndarray:
    """One 8-bit pass's output from the fixed-point sums: Pillow's ``clip8`` after adding
    half a unit."""
    half = 1 << (PRECISION_BITS - 1)
    return np.clip(np.floor((products + half) / (1 << PRECISION_BITS)), 0, 255).astype(np.uint8)


def _nearest(n_in: int, n_out: int) -> np.ndarray:
    """Source pixels of nearest-neighbour scaling, accumulated step by step as Pillow
    does (so positions landing on a pixel edge round the same way)."""
    step = n_in / n_out
    pos = np.add.accumulate(np.r_[step * 0.5, np.full(n_out - 1, step)])
    return np.clip(np.floor(pos), 0, n_in - 1).astype(np.int64)


def _finish(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if is_inexact(dtype):
        return values.astype(dtype, copy=False)
    if dtype == np.bool_:
        return values > 0.5
    info = np.iinfo(dtype)
    return np.clip(np.floor(values + 0.5), info.min, info.max).astype(dtype)


def resize(x: np.ndarray, out_h: int, out_w: int, mode: str = BILINEAR,
           antialias: bool = True, pillow: bool = True) -> np.ndarray:
    """``x`` of shape ``(..., H, W)`` resampled to ``(..., out_h, out_w)``.

    ``pillow``: as Pillow resizes an image (PIL or NumPy input): integer images are rounded
    between the passes, 8-bit ones in Pillow's fixed point.  Otherwise as torchvision
    resizes a tensor: both passes in floating point, integers rounded (half to even) and
    clipped once at the end."""
    h, w = x.shape[-2:]
    if mode == NEAREST:
        return x[..., _nearest(h, out_h)[:, None], _nearest(w, out_w)]
    if mode not in _FILTERS:
        raise ValueError(f"Resize: interpolation must be one of nearest, bilinear, bicubic; "
                         f"got {mode!r}")
    fixed_point = pillow and antialias and x.dtype == np.uint8
    finish = (lambda v: v) if not pillow else _pass_8bit if fixed_point else \
        (lambda v: _finish(v, x.dtype))

    def weights(n_in, n_out):
        k = _weights(n_in, n_out, mode, antialias)
        return _fixed_point(k) if fixed_point else k

    def horizontal(v):
        if w == out_w:
            return v
        return finish(np.asarray(v, dtype=np.float64) @ weights(w, out_w).T)

    def vertical(v):
        if h == out_h:
            return v
        return finish(weights(h, out_h) @ np.asarray(v, dtype=np.float64))

    if pillow and _vertical_first(h, w, out_h, out_w):
        return horizontal(vertical(x))
    out = vertical(horizontal(x))
    return out if pillow else _finish_tensor(np.asarray(out, dtype=np.float64), x.dtype)


def _finish_tensor(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """torchvision's cast back after a float resize: round half to even, clip to the
    integer range (bicubic overshoots it)."""
    if is_inexact(dtype):
        return values.astype(dtype, copy=False)
    if dtype == np.bool_:
        return values > 0.5
    info = np.iinfo(dtype)
    return np.clip(np.round(values), info.min, info.max).astype(dtype)


def _vertical_first(h: int, w: int, out_h: int, out_w: int) -> bool:
    """Pillow's choice of pass order (Pillow 13, python-pillow/Pillow#9549): vertical first
    when the height shrinks by more than twice as many pixels as the width; earlier Pillow
    versions (when the caller's Pillow is one) always run the horizontal pass first."""
    if out_h >= h or h - out_h <= 2 * (w - out_w):
        return False
    pil = sys.modules.get("PIL")
    version = getattr(pil, "__version__", "13")
    return int(version.split(".")[0]) >= 13


def rotate_matrix(angle: float, w: int, h: int, expand: bool, center) -> tuple:
    """``(matrix, out_w, out_h)``: Pillow's inverse affine map of a rotation by ``angle``
    degrees counter-clockwise about ``center`` (the image centre by default)."""
    theta = -math.radians(angle)
    a, b = round(math.cos(theta), 15), round(math.sin(theta), 15)
    m = [a, b, 0.0, -b, a, 0.0]
    cx, cy = (w / 2.0, h / 2.0) if center is None else center

    def apply(x, y):
        return m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]

    m[2], m[5] = apply(-cx, -cy)
    m[2] += cx
    m[5] += cy
    out_w, out_h = w, h
    if expand:
        corners = [apply(x, y) for x, y in ((0, 0), (w, 0), (w, h), (0, h))]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        out_w = math.ceil(max(xs)) - math.floor(min(xs))
        out_h = math.ceil(max(ys)) - math.floor(min(ys))
        m[2], m[5] = apply(-(out_w - w) / 2.0, -(out_h - h) / 2.0)
    return m, out_w, out_h


def rotate(x: np.ndarray, angle: float, mode: str = NEAREST, expand: bool = False,
           center=None, fill=0) -> np.ndarray:
    """``x`` of shape ``(C, H, W)`` rotated like Pillow's ``Image.rotate``; pixels from
    outside the input get ``fill`` (a number or one per channel)."""
    c, h, w = x.shape
    m, out_w, out_h = rotate_matrix(angle, w, h, expand, center)
    yy, xx = np.meshgrid(np.arange(out_h) + 0.5, np.arange(out_w) + 0.5, indexing="ij")
    sx = m[0] * xx + m[1] * yy + m[2]
    sy = m[3] * xx + m[4] * yy + m[5]
    fill = np.broadcast_to(np.asarray(fill, dtype=np.float64).reshape(-1), (c,))[:, None, None]
    if mode == NEAREST:
        ix, iy = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        vals = x[:, np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1)].astype(np.float64)
        return _finish(np.where(inside[None], vals, fill), x.dtype)
    if mode != BILINEAR:
        raise ValueError(f"RandomRotation: interpolation must be nearest or bilinear, got "
                         f"{mode!r}")
    fx, fy = sx - 0.5, sy - 0.5
    x0, y0 = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    dx, dy = fx - x0, fy - y0
    acc = np.zeros((c, out_h, out_w))
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    for oy, wy in ((0, 1 - dy), (1, dy)):
        for ox, wx in ((0, 1 - dx), (1, dx)):
            px = np.clip(x0 + ox, 0, w - 1)
            py = np.clip(y0 + oy, 0, h - 1)
            acc += x[:, py, px] * (wx * wy)[None]
    return _finish(np.where(inside[None], acc, fill), x.dtype)
