"""Image transforms in the style of ``torchvision.transforms``.

Layouts.  A NumPy image is PIL-like: ``(H, W)`` or ``(H, W, C)`` (what a decoder or
``np.asarray(pil_image)`` gives).  An ``fa.Array`` or a tensor is ``(..., H, W)``, channels
first, as torchvision's tensors.  Every transform returns the kind it was given (NumPy in,
NumPy out), except ``ToTensor``, which turns an image into a channels-first float tensor
(a compat tensor when ``fnarray.compat`` is available, else an ``fa.Array``).

Randomness.  ``RandomCrop`` and ``RandomHorizontalFlip`` take ``generator=`` (anything
``fnarray.data.sampler.as_generator`` accepts).  Without one they draw from the process's
generator: inside a ``DataLoader`` worker it is seeded with the worker's seed
(``base_seed + worker_id``), so augmentations differ between workers and repeat when the
loader's ``generator`` is seeded; in the main process it is seeded once from the global
random state.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np

from fnarray import _interop
from fnarray.core.array import Array
from fnarray.data import _pil, _resample
from fnarray.data._resample import InterpolationMode
from fnarray.data._worker import process_rng
from fnarray.data.sampler import as_generator
from fnarray.core.shapes import is_inexact


class Compose:
    """Apply ``transforms`` one after another."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"{type(self).__name__}({inner}\n)"


def batched(transform) -> Callable[[np.ndarray], np.ndarray] | None:
    """``transform`` over a whole stack of NumPy images at once, or None.

    A pipeline of ``ToTensor`` followed only by ``Normalize`` steps (alone or in a
    ``Compose``; not subclasses) maps each pixel on its own, so a ``(N, H, W)`` or
    ``(N, H, W, C)`` stack can go through it in a few whole-array operations: the result
    is the ``(N, C, H, W)`` stack of the per-image results, value for value.  Datasets use
    it in ``__getitems__`` (MNIST: one call per batch instead of a chain of calls per
    image).  Anything else (random transforms, ``Lambda``, PIL steps) returns None."""
    steps = list(transform.transforms) if type(transform) is Compose else [transform]
    if not steps or type(steps[0]) is not ToTensor or \
            any(type(step) is not Normalize for step in steps[1:]):
        return None

    def run(images: np.ndarray) -> np.ndarray:
        x = ToTensor.channels_first(images, batch=True)
        for step in steps[1:]:
            x = step._normalize(x)
        return np.ascontiguousarray(x)
    return run


class Lambda:
    """Apply a user function."""

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise TypeError(f"Lambda needs a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, img):
        return self.fn(img)


class ToTensor:
    """A ``(H, W)``/``(H, W, C)`` NumPy or PIL image → a ``(C, H, W)`` float tensor.

    ``uint8`` values are scaled to ``[0, 1]`` as ``float32``; other dtypes keep their values
    and dtype.  An ``fa.Array`` or tensor is taken to be channels-first already.
    """

    def __call__(self, pic):
        if isinstance(pic, Array) or _interop.is_tensor(pic):
            value, device = _interop.to_numpy(pic), (pic.array if _interop.is_tensor(pic) else pic).device
            if value.dtype == np.uint8:
                value = value.astype(np.float32) / np.float32(255)
        else:
            value, device = (_pil.to_numpy(pic) if _pil.is_pil(pic) else np.asarray(pic)), None
            value = self.channels_first(value)
        return _interop.from_numpy(np.ascontiguousarray(value), device, as_tensor=True)

    @staticmethod
    def channels_first(value: np.ndarray, batch: bool = False) -> np.ndarray:
        """A NumPy ``(H, W)``/``(H, W, C)`` image (with ``batch``, a stack of them) as
        channels-first, ``uint8`` scaled to ``[0, 1]`` float32."""
        lead = int(batch)
        if value.ndim - lead not in (2, 3):
            raise ValueError(f"ToTensor: expected an (H, W) or (H, W, C) image, got shape "
                             f"{value.shape[lead:]}")
        value = (np.expand_dims(value, lead) if value.ndim - lead == 2
                 else np.moveaxis(value, -1, lead))
        if value.dtype == np.uint8:
            value = value.astype(np.float32) / np.float32(255)
        return value

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel of a channels-first ``(..., C, H, W)`` image
    (NumPy input too: it normally follows ``ToTensor``).  Integer input becomes float32."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        self.mean, self.std = tuple(mean), tuple(std)
        if len(self.mean) != len(self.std):
            raise ValueError(f"Normalize: mean {self.mean} and std {self.std} differ in length")
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std {self.std} contains 0, which would divide by zero")

    def __call__(self, img):
        return _apply(img, self._normalize, channels_last_numpy=False)

    def _normalize(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 3 or (len(self.mean) != 1 and x.shape[-3] != len(self.mean)):
            raise ValueError(f"Normalize: expected a (C, H, W) image with C = {len(self.mean)}, "
                             f"got shape {x.shape}")
        dtype = x.dtype if is_inexact(x.dtype) else np.float32
        mean = np.asarray(self.mean, dtype=dtype)[:, None, None]
        std = np.asarray(self.std, dtype=dtype)[:, None, None]
        return (x.astype(dtype, copy=False) - mean) / std

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class Resize:
    """Resize to ``size``: ``(h, w)``, or an int (the shorter side becomes ``size``, keeping
    the aspect ratio; ``max_size`` caps the longer side).

    ``interpolation`` is an ``InterpolationMode`` (bilinear by default); ``antialias=True``
    (the default, as in torchvision) filters like Pillow's ``Image.resize`` when shrinking,
    so NumPy, tensor and PIL inputs all give Pillow's result (see ``_resample``).
    """

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None,
                 antialias: bool = True):
        self.size = _pair(size, "Resize") if not isinstance(size, numbers.Integral) else int(size)
        self.interpolation = _resample.interpolation_mode(interpolation, "Resize")
        self.max_size, self.antialias = max_size, bool(antialias)

    def __call__(self, img):
        antialias = self.antialias or _pil.is_pil(img)  # Pillow always antialiases
        pillow = not _tensor_like(img)

        def resize(x: np.ndarray) -> np.ndarray:
            oh, ow = self.output_size(*x.shape[-2:])
            return _resample.resize(x, oh, ow, self.interpolation, antialias, pillow)
        return _apply(img, _pil.straight_alpha_resampler(img, resize, self.interpolation))

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        if not isinstance(self.size, int):
            return self.size
        short, long = min(h, w), max(h, w)
        new_short, new_long = self.size, int(self.size * long / short)
        if self.max_size is not None and new_long > self.max_size:
            new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
        return (new_short, new_long) if h <= w else (new_long, new_short)

    def __repr__(self):
        return (f"Resize(size={self.size}, interpolation={self.interpolation}, "
                f"max_size={self.max_size}, antialias={self.antialias})")


class CenterCrop:
    """Crop the centre ``size`` (int or ``(h, w)``); a smaller image is zero-padded first."""

    def __init__(self, size):
        self.size = _pair(size, "CenterCrop")

    def __call__(self, img):
        return _apply(img, self._crop)

    def _crop(self, x: np.ndarray) -> np.ndarray:
        th, tw = self.size
        x = _pad_to(x, th, tw)
        h, w = x.shape[-2:]
        top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
        return x[..., top:top + th, left:left + tw]

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class RandomCrop:
    """Crop a random ``size`` window, after optional ``padding``.

    ``padding``: int (all sides), ``(left/right, top/bottom)`` or ``(left, top, right,
    bottom)``; ``padding_mode``: ``"constant"`` (with ``fill``), ``"edge"``, ``"reflect"`` or
    ``"symmetric"``.  ``pad_if_needed`` pads an image smaller than ``size``.
    """

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0,
                 padding_mode: str = "constant", generator=None):
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError(f"RandomCrop: unknown padding_mode {padding_mode!r}")
        self.size = _pair(size, "RandomCrop")
        self.padding = _padding(padding)
        self.pad_if_needed, self.fill, self.padding_mode = pad_if_needed, fill, padding_mode
        self.generator = as_generator(generator)

    def __call__(self, img):
        return _apply(img, self._crop)

    def _crop(self, x: np.ndarray) -> np.ndarray:
        if self.padding is not None:
            x = self._pad(x, *self.padding)
        th, tw = self.size
        h, w = x.shape[-2:]
        if self.pad_if_needed and (h < th or w < tw):
            dh, dw = max(0, th - h), max(0, tw - w)
            x = self._pad(x, dw, dh, dw, dh)
            h, w = x.shape[-2:]
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the (padded) "
                             f"image {(h, w)}; pass padding= or pad_if_needed=True")
        rng = self.generator or process_rng()
        top, left = int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))
        return x[..., top:top + th, left:left + tw]

    def _pad(self, x: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
        widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
        if self.padding_mode == "constant":
            return np.pad(x, widths, mode="constant", constant_values=self.fill)
        return np.pad(x, widths, mode=self.padding_mode)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5, generator=None):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p
        self.generator = as_generator(generator)

    def __call__(self, img):
        rng = self.generator or process_rng()
        if rng.random() < self.p:
            return _apply(img, lambda x: x[..., ::-1])
        return img

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


# ----------------------------------------------------------------------------- helpers

def _tensor_like(img) -> bool:
    """An ``fa.Array`` or tensor (resized as torchvision resizes tensors, not as Pillow)."""
    return isinstance(img, Array) or _interop.is_tensor(img)


def _apply(img, fn: Callable[[np.ndarray], np.ndarray], channels_last_numpy: bool = True):
    """Run ``fn`` on ``img`` viewed as ``(..., H, W)`` and return ``img``'s own kind."""
    if _pil.is_pil(img):
        x = _pil.to_numpy(img)
        out = fn(x if x.ndim == 2 else np.moveaxis(x, -1, 0))
        out = out if out.ndim == 2 else np.moveaxis(out, 0, -1)
        return _pil.from_numpy(out.astype(x.dtype, copy=False),
                               img.mode if img.mode != "P" else None)
    if isinstance(img, Array) or _interop.is_tensor(img):
        array = img.array if _interop.is_tensor(img) else img
        out = np.ascontiguousarray(fn(np.asarray(array)))
        return _interop.from_numpy(out, array.device, as_tensor=_interop.is_tensor(img))
    x = np.asarray(img)
    if x.ndim < 2:
        raise ValueError(f"expected an image with at least 2 dimensions, got shape {x.shape}")
    if channels_last_numpy and x.ndim == 3:
        return np.ascontiguousarray(np.moveaxis(fn(np.moveaxis(x, -1, 0)), 0, -1))
    return np.ascontiguousarray(fn(x))


def _pad_to(x: np.ndarray, th: int, tw: int) -> np.ndarray:
    h, w = x.shape[-2:]
    if h >= th and w >= tw:
        return x
    dh, dw = max(0, th - h), max(0, tw - w)
    widths = [(0, 0)] * (x.ndim - 2) + [(dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)]
    return np.pad(x, widths)


def _pair(size, who: str) -> tuple[int, int]:
    if isinstance(size, numbers.Integral):
        size = (int(size), int(size))
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or any(not isinstance(s, numbers.Integral) or s <= 0 for s in size):
        raise ValueError(f"{who}: size must be a positive int or (h, w), got {size!r}")
    return int(size[0]), int(size[1])


def _padding(padding) -> tuple[int, int, int, int] | None:
    if padding is None:
        return None
    if isinstance(padding, numbers.Integral):
        return (int(padding),) * 4
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        return padding[0], padding[1], padding[0], padding[1]
    if len(padding) == 4:
        return padding
    raise ValueError(f"RandomCrop: padding must be an int, a pair or a 4-tuple, got {padding!r}")


# The rest of torchvision's transforms live in ``transforms_more`` (split by size).
from fnarray.data.transforms_more import (  # noqa: E402,F401
    ColorJitter, ConvertImageDtype, Grayscale, PILToTensor, RandomResizedCrop, RandomRotation,
    ToPILImage)
