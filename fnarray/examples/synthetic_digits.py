"""A small offline stand-in for MNIST: digits drawn from a 5x7 bitmap font.

Each image is one of the ten glyphs, scaled, shifted, thickened and blurred at random,
with pixel noise, on a 28x28 canvas (uint8, white on black like MNIST).  It exists so that
``python -m fnarray.examples.mnist`` runs on a fresh offline machine with no data files;
the numbers it reaches say nothing about MNIST.
"""

from __future__ import annotations

import numpy as np

_FONT = {  # 5 columns x 7 rows per digit
    0: ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    1: ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    2: ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    3: ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
    4: ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    5: ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    6: ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    7: ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    8: ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    9: ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
}
_GLYPHS = np.array([[[int(c) for c in row] for row in _FONT[d]] for d in range(10)], np.float32)


def make_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (uint8, n x 28 x 28) and labels (int64), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = np.zeros((n, 28, 28), np.float32)
    for i, d in enumerate(labels):
        scale = rng.uniform(2.2, 3.0)
        h, w = int(round(7 * scale)), int(round(5 * scale * rng.uniform(0.8, 1.1)))
        rows = np.minimum((np.arange(h) / h * 7).astype(int), 6)
        cols = np.minimum((np.arange(w) / w * 5).astype(int), 4)
        glyph = _GLYPHS[d][rows][:, cols]
        if rng.random() < 0.5:  # thicker strokes
            glyph = np.maximum(glyph, np.roll(glyph, 1, axis=1))
        top = rng.integers(0, 28 - h + 1)
        left = rng.integers(0, 28 - w + 1)
        images[i, top:top + h, left:left + w] = glyph
    blurred = (images + np.roll(images, 1, 1) + np.roll(images, 1, 2) + np.roll(images, -1, 1)
               + np.roll(images, -1, 2)) / 5.0
    noisy = np.clip(0.6 * images + 0.4 * blurred + rng.normal(0, 0.05, images.shape), 0, 1)
    return (noisy * 255).astype(np.uint8), labels.astype(np.int64)
