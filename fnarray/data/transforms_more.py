"""More torchvision transforms: ``ToPILImage``, ``PILToTensor``, ``ConvertImageDtype``,
``Grayscale``, ``ColorJitter``, ``RandomRotation``, ``RandomResizedCrop`` (re-exported by
``fnarray.data.transforms``; layouts and randomness as described there).

PIL images (Pillow, extra ``images``) go in and come out where torchvision gives PIL; the
colour operations on PIL images use Pillow's own ``ImageEnhance``/``convert`` as
torchvision does, and on arrays/tensors torchvision's tensor formulas.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from fnarray import _interop
from fnarray.core.array import Array
from fnarray.data import _pil, _resample
from fnarray.data._resample import InterpolationMode
from fnarray.data._worker import process_rng
from fnarray.data.sampler import as_generator
from fnarray.data.transforms import _apply, _pair, _tensor_like
from fnarray.core.shapes import is_float


def _channels_first(img) -> tuple[np.ndarray, object]:
    """``(x, device)``: a tensor/array/NumPy ``(C, H, W)`` image as NumPy (NumPy images are
    taken as ``(H, W)``/``(H, W, C)``, as everywhere in the transforms)."""
    if isinstance(img, Array) or _interop.is_tensor(img):
        array = img.array if _interop.is_tensor(img) else img
        return np.asarray(array), array.device
    x = np.asarray(img)
    return (x[None] if x.ndim == 2 else np.moveaxis(x, -1, 0)), None


class ToPILImage:
    """A ``(C, H, W)`` tensor/array or ``(H, W, C)`` NumPy image → a PIL image.  Float
    values are taken in ``[0, 1]`` and become ``uint8`` by ``x * 255`` truncated, as
    torchvision does; ``mode`` picks the PIL mode (inferred from channels and dtype)."""

    def __init__(self, mode: str | None = None):
        self.mode = mode

    def __call__(self, pic):
        if _pil.is_pil(pic):
            return pic.convert(self.mode) if self.mode and self.mode != pic.mode else pic
        x, _ = _channels_first(pic)
        if x.ndim != 3:
            raise ValueError(f"ToPILImage: expected a 2-D or 3-D image, got shape {x.shape}")
        if is_float(x.dtype) and self.mode != "F":
            x = (x * 255).astype(np.uint8)
        elif x.dtype == np.int64 and x.shape[0] == 1:
            x = x.astype(np.int32)
        return _pil.from_numpy(np.moveaxis(x, 0, -1), self.mode)

    def __repr__(self):
        return f"ToPILImage(mode={self.mode})"


class PILToTensor:
    """A PIL image → a ``(C, H, W)`` tensor of its values (no scaling, unlike ToTensor)."""

    def __call__(self, pic):
        if not _pil.is_pil(pic):
            raise TypeError(f"PILToTensor: expected a PIL image, got {type(pic).__name__}")
        x = _pil.to_numpy(pic)
        x = x[None] if x.ndim == 2 else np.moveaxis(x, -1, 0)
        return _interop.from_numpy(np.ascontiguousarray(x), None, as_tensor=True)

    def __repr__(self):
        return "PILToTensor()"


def _max_value(dtype: np.dtype) -> float:
    return 1.0 if is_float(dtype) else float(np.iinfo(dtype).max)


def convert_image_dtype(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """torchvision's ``convert_image_dtype``: rescale between value ranges (floats in
    ``[0, 1]``, integers in ``[0, max]``)."""
    if x.dtype == dtype:
        return x
    if is_float(x.dtype):
        if is_float(dtype):
            return x.astype(dtype)
        eps = 1e-3
        return (x * (_max_value(dtype) + 1.0 - eps)).astype(dtype)
    if is_float(dtype):
        return (x.astype(dtype) / dtype.type(_max_value(x.dtype)))
    in_max, out_max = int(_max_value(x.dtype)), int(_max_value(dtype))
    if in_max > out_max:
        return (x // ((in_max + 1) // (out_max + 1))).astype(dtype)
    return x.astype(dtype) * ((out_max + 1) // (in_max + 1))


class ConvertImageDtype:
    """Convert a tensor/array image to ``dtype`` and rescale its values accordingly."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def __call__(self, image):
        return _apply(image, lambda x: convert_image_dtype(x, self.dtype),
                      channels_last_numpy=False)

    def __repr__(self):
        return f"ConvertImageDtype(dtype={self.dtype})"


def rgb_to_grayscale(x: np.ndarray) -> np.ndarray:
    """``(..., 3, H, W)`` → ``(..., 1, H, W)`` by ITU-R 601-2 luma (torchvision's weights;
    integer images truncate back to their dtype)."""
    r, g, b = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
    luma = 0.2989 * r.astype(np.float32) + 0.587 * g + 0.114 * b
    return luma.astype(x.dtype)[..., None, :, :]


class Grayscale:
    """RGB → grayscale with ``num_output_channels`` 1 or 3 (the luma repeated)."""

    def __init__(self, num_output_channels: int = 1):
        if num_output_channels not in (1, 3):
            raise ValueError(f"Grayscale: num_output_channels must be 1 or 3, got "
                             f"{num_output_channels}")
        self.num_output_channels = num_output_channels

    def __call__(self, img):
        if _pil.is_pil(img):
            gray = img.convert("L")
            return gray if self.num_output_channels == 1 else gray.convert("RGB")
        return _apply(img, self._gray)

    def _gray(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 3 or x.shape[-3] != 3:
            raise ValueError(f"Grayscale: expected an RGB image with 3 channels, got shape "
                             f"{x.shape}")
        gray = rgb_to_grayscale(x)
        return np.repeat(gray, self.num_output_channels, axis=-3)

    def __repr__(self):
        return f"Grayscale(num_output_channels={self.num_output_channels})"


# ----------------------------------------------------------------------------- colour

def _blend(a: np.ndarray, b, ratio: float, dtype: np.dtype) -> np.ndarray:
    bound = _max_value(dtype)
    out = np.clip(ratio * a.astype(np.float32) + (1.0 - ratio) * b, 0, bound)
    return out.astype(dtype)


def adjust_brightness(x, factor):
    return _blend(x, 0.0, factor, x.dtype)


def adjust_contrast(x, factor):
    gray = rgb_to_grayscale(x) if x.shape[-3] == 3 else x
    mean = gray.astype(np.float32).mean(axis=(-3, -2, -1), keepdims=True)
    return _blend(x, mean, factor, x.dtype)


def adjust_saturation(x, factor):
    if x.shape[-3] == 1:
        return x
    return _blend(x, rgb_to_grayscale(x).astype(np.float32), factor, x.dtype)


def adjust_hue(x, hue_factor):
    """Rotate the hue by ``hue_factor`` turns (in [-0.5, 0.5]) through HSV."""
    if x.shape[-3] == 1:
        return x
    f = x.astype(np.float32) / np.float32(_max_value(x.dtype))
    r, g, b = f[..., 0, :, :], f[..., 1, :, :], f[..., 2, :, :]
    maxc, minc = f.max(axis=-3), f.min(axis=-3)
    v, cr = maxc, maxc - minc
    s = cr / np.where(maxc == 0, 1, maxc)
    crd = np.where(cr == 0, 1, cr)
    rc, gc, bc = (maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd
    h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(cr == 0, 0.0, h)
    h = ((h / 6.0 + 1.0) % 1.0 + hue_factor) % 1.0
    i = np.floor(h * 6.0)
    frac = h * 6.0 - i
    i = i.astype(np.int64) % 6
    p = np.clip(v * (1.0 - s), 0, 1)
    q = np.clip(v * (1.0 - s * frac), 0, 1)
    t = np.clip(v * (1.0 - s * (1.0 - frac)), 0, 1)
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.stack([np.choose(i, [row[c] for row in table]) for c in range(3)], axis=-3)
    if is_float(x.dtype):
        return out.astype(x.dtype)
    return (out * _max_value(x.dtype)).astype(x.dtype)


def _pil_adjust(img, which: str, factor: float):
    from PIL import ImageEnhance
    if which == "hue":
        if img.mode in ("L", "1", "I", "F"):
            return img
        h, s, v = img.convert("HSV").split()
        hue = np.asarray(h).astype(np.uint8)
        with np.errstate(over="ignore"):
            hue = hue + np.uint8(int(factor * 255) % 256)
        image = _pil.pil()
        return image.merge("HSV", (image.fromarray(hue, "L"), s, v)).convert(img.mode)
    enhancer = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast,
                "saturation": ImageEnhance.Color}[which]
    return enhancer(img).enhance(factor)


class ColorJitter:
    """Randomly change brightness, contrast, saturation and hue, in a random order.

    Each of ``brightness``/``contrast``/``saturation`` is a float ``f`` (factor drawn from
    ``[max(0, 1 - f), 1 + f]``) or a ``(min, max)`` range; ``hue`` is ``h`` in [0, 0.5]
    (shift drawn from ``[-h, h]``) or a range.  Images are ``(..., 3, H, W)`` tensors/arrays,
    ``(H, W, 3)`` NumPy or PIL.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0, generator=None):
        self.brightness = self._range(brightness, "brightness")
        self.contrast = self._range(contrast, "contrast")
        self.saturation = self._range(saturation, "saturation")
        self.hue = self._range(hue, "hue", center=0, bound=(-0.5, 0.5), clip_first=False)
        self.generator = as_generator(generator)

    @staticmethod
    def _range(value, name, center=1.0, bound=(0, math.inf), clip_first=True):
        if isinstance(value, numbers.Number):
            if value < 0:
                raise ValueError(f"ColorJitter: if {name} is a single number, it must be "
                                 f"non negative, got {value}")
            value = [center - float(value), center + float(value)]
            if clip_first:
                value[0] = max(value[0], 0.0)
        elif not (isinstance(value, Sequence) and len(value) == 2):
            raise TypeError(f"ColorJitter: {name} should be a single number or a list/tuple "
                            f"with length 2, got {value!r}")
        lo, hi = float(value[0]), float(value[1])
        if not bound[0] <= lo <= hi <= bound[1]:
            raise ValueError(f"ColorJitter: {name} values should be between {bound}, got "
                             f"{[lo, hi]}")
        return None if lo == hi == center else (lo, hi)

    def get_params(self, rng) -> tuple[list, list]:
        """The order of the four adjustments and their factors (None: not applied)."""
        order = list(rng.permutation(4))
        factors = [None if r is None else float(rng.uniform(r[0], r[1]))
                   for r in (self.brightness, self.contrast, self.saturation, self.hue)]
        return order, factors

    def __call__(self, img):
        order, factors = self.get_params(self.generator or process_rng())
        names = ("brightness", "contrast", "saturation", "hue")
        fns = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
        for i in order:
            if factors[i] is None:
                continue
            if _pil.is_pil(img):
                img = _pil_adjust(img, names[i], factors[i])
            else:
                img = _apply(img, lambda x, i=i: fns[i](x, factors[i]))
        return img

    def __repr__(self):
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue})")


# ----------------------------------------------------------------------------- geometry

class RandomRotation:
    """Rotate by an angle drawn from ``degrees`` (``d`` means ``[-d, d]``), counter-
    clockwise, as Pillow's ``Image.rotate`` (``expand``, ``center``, ``fill``)."""

    def __init__(self, degrees, interpolation=InterpolationMode.NEAREST, expand: bool = False,
                 center=None, fill=0, generator=None):
        if isinstance(degrees, numbers.Number):
            if degrees < 0:
                raise ValueError(f"RandomRotation: if degrees is a single number, it must be "
                                 f"positive, got {degrees}")
            degrees = (-float(degrees), float(degrees))
        if len(degrees) != 2:
            raise ValueError(f"RandomRotation: degrees must be a number or (min, max), got "
                             f"{degrees!r}")
        self.degrees = (float(degrees[0]), float(degrees[1]))
        self.interpolation = _resample.interpolation_mode(interpolation, "RandomRotation")
        self.expand, self.center, self.fill = expand, center, fill
        self.generator = as_generator(generator)

    def __call__(self, img):
        rng = self.generator or process_rng()
        angle = float(rng.uniform(*self.degrees))
        if _pil.is_pil(img):
            image = _pil.pil()
            fill = self.fill
            if isinstance(fill, (list, tuple)) and len(fill) == 1:
                fill = fill[0]
            resample = {"nearest": image.NEAREST, "bilinear": image.BILINEAR,
                        "bicubic": image.BICUBIC}[self.interpolation]
            return img.rotate(angle, resample, self.expand, self.center,
                              fillcolor=tuple(fill) if isinstance(fill, list) else fill)
        return _apply(img, lambda x: self._rotate(x, angle))

    def _rotate(self, x: np.ndarray, angle: float) -> np.ndarray:
        lead = x.shape[:-2]
        flat = x.reshape((-1,) + x.shape[-2:])
        out = _resample.rotate(flat, angle, self.interpolation, self.expand, self.center,
                               self.fill)
        return out.reshape(lead + out.shape[-2:])

    def __repr__(self):
        return (f"RandomRotation(degrees={list(self.degrees)}, "
                f"interpolation={self.interpolation}, expand={self.expand}, fill={self.fill})")


class RandomResizedCrop:
    """Crop a random area (fraction in ``scale``) with a random aspect ratio (in
    ``ratio``, drawn log-uniformly) and resize it to ``size`` — torchvision's parameter
    draw, 10 attempts, then a centre crop."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=InterpolationMode.BILINEAR, antialias: bool = True,
                 generator=None):
        self.size = _pair(size, "RandomResizedCrop")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"RandomResizedCrop: scale and ratio should be of kind (min, max), "
                             f"got scale={scale}, ratio={ratio}")
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.interpolation = _resample.interpolation_mode(interpolation, "RandomResizedCrop")
        self.antialias = antialias
        self.generator = as_generator(generator)

    def get_params(self, height: int, width: int, rng) -> tuple[int, int, int, int]:
        """``(top, left, h, w)`` of the crop."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * float(rng.uniform(*self.scale))
            aspect = math.exp(float(rng.uniform(*log_ratio)))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return (int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)),
                        h, w)
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            h, w = height, int(round(height * max(self.ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img):
        rng = self.generator or process_rng()
        antialias = self.antialias or _pil.is_pil(img)  # Pillow always antialiases
        pillow = not _tensor_like(img)

        def crop_resize(x: np.ndarray) -> np.ndarray:
            top, left, h, w = self.get_params(*x.shape[-2:], rng)
            patch = x[..., top:top + h, left:left + w]
            return _resample.resize(patch, *self.size, self.interpolation, antialias, pillow)
        return _apply(img, _pil.straight_alpha_resampler(img, crop_resize, self.interpolation))

    def __repr__(self):
        return (f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio}, "
                f"interpolation={self.interpolation}, antialias={self.antialias})")
