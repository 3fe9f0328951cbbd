"""The optional Pillow bridge of the transforms (extra ``images``).

Pillow is imported on first use only.  A PIL image is read as the NumPy image it holds
(``(H, W)`` or ``(H, W, C)``) and rebuilt in the same mode afterwards, so a transform given
a PIL image returns a PIL image, as torchvision's do.
"""

from __future__ import annotations

import sys

import numpy as np


def pil():
    """The ``PIL.Image`` module, or an ImportError naming the extra to install."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("PIL images need Pillow: install the 'images' extra "
                          "(pip install 'fnarray[images]')") from e
    return Image


def is_pil(img) -> bool:
    """Whether ``img`` is a PIL image (without importing Pillow when nobody has)."""
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(img, module.Image)


def to_numpy(img) -> np.ndarray:
    """The pixels of a PIL image: ``(H, W)`` for one band, ``(H, W, C)`` otherwise."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    return np.asarray(img)


def from_numpy(x: np.ndarray, mode: str | None = None):
    """A PIL image of ``x`` (``(H, W)`` or ``(H, W, C)``), in ``mode`` when given."""
    image = pil()
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if mode is None:
        mode = _default_mode(x)
    if mode in ("L", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "HSV") and x.dtype != np.uint8:
        raise TypeError(f"ToPILImage: mode {mode!r} needs uint8 values, got {x.dtype}")
    return image.fromarray(np.ascontiguousarray(x), mode=mode)


def _default_mode(x: np.ndarray) -> str:
    if x.ndim == 2:
        modes = {np.dtype(np.uint8): "L", np.dtype(np.int16): "I;16",
                 np.dtype(np.uint16): "I;16", np.dtype(np.int32): "I",
                 np.dtype(np.float32): "F", np.dtype(np.bool_): "1"}
        if x.dtype not in modes:
            raise TypeError(f"ToPILImage: a 1-channel image of dtype {x.dtype} has no PIL mode "
                            f"(use uint8, int16, int32 or float32)")
        return modes[x.dtype]
    channels = x.shape[-1]
    if channels not in (2, 3, 4):
        raise ValueError(f"ToPILImage: expected 1 to 4 channels, got {channels} (shape "
                         f"{x.shape})")
    return {2: "LA", 3: "RGB", 4: "RGBA"}[channels]


def straight_alpha_resampler(img, fn, interpolation: str):
    """``fn`` (a resampler of ``(C, H, W)`` pixels) as Pillow applies it to ``img``: an RGBA
    or LA image is resampled with premultiplied alpha (Pillow converts to ``RGBa``/``La``
    and back), so transparent pixels do not bleed their colour; other images unchanged."""
    if not is_pil(img) or img.mode not in ("RGBA", "LA") or interpolation == "nearest":
        return fn
    return lambda x: _unpremultiply(fn(_premultiply(x)))


def _premultiply(x: np.ndarray) -> np.ndarray:
    """Pillow's ``RGBA -> RGBa``: colour * alpha / 255, rounded as its ``MULDIV255``."""
    colour, alpha = x[:-1].astype(np.int64), x[-1:].astype(np.int64)
    t = colour * alpha + 128
    return np.concatenate([((t >> 8) + t) >> 8, alpha]).astype(np.uint8)


def _unpremultiply(x: np.ndarray) -> np.ndarray:
    """Pillow's ``RGBa -> RGBA``: colour * 255 / alpha (floored, clipped); alpha 0 and 255
    leave the colour as it is."""
    colour, alpha = x[:-1].astype(np.int64), x[-1:].astype(np.int64)
    straight = np.clip(255 * colour // np.maximum(alpha, 1), 0, 255)
    colour = np.where((alpha == 0) | (alpha == 255), colour, straight)
    return np.concatenate([colour, alpha]).astype(np.uint8)
