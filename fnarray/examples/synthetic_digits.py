"""An offline stand-in for MNIST: digits rendered from vector stroke fonts.

Each digit of each of three stroke fonts (round, angular, handwritten) is a few polylines
and elliptic arcs in a unit box.  An image draws one glyph with a random smooth warp, a
random affine map (rotation, shear, aspect, scale, shift), a random stroke thickness with
anti-aliased edges, and pixel noise, white on black on a 28x28 canvas like MNIST.

Rendering is a vectorised distance computation (every pixel to every stroke segment, for
all images of one glyph at once), so 14,000 images take about two seconds.  It exists so that
``python -m fnarray.examples.mnist`` runs and learns on a fresh offline machine with no data
files; the accuracy it reaches says nothing about MNIST.
"""

from __future__ import annotations

import numpy as np

# A glyph is a list of strokes in a unit box (x right, y down): ("L", points) is a polyline,
# ("A", cx, cy, rx, ry, start, stop) an elliptic arc, angles in degrees (0 = right, 90 = down).
_ROUND = {
    0: [("A", .5, .5, .45, .5, 0, 360)],
    1: [("L", [(.25, .2), (.55, 0), (.55, 1)])],
    2: [("A", .5, .28, .42, .28, 180, 400), ("L", [(.82, .46), (.05, 1), (.95, 1)])],
    3: [("A", .5, .26, .4, .26, 200, 450), ("A", .5, .74, .45, .26, -90, 160)],
    4: [("L", [(.7, 1), (.7, 0), (0, .7), (1, .7)])],
    5: [("L", [(.9, 0), (.15, 0), (.14, .5)]), ("A", .5, .68, .42, .32, -150, 150)],
    6: [("A", .5, .68, .42, .32, 0, 360), ("A", .85, .68, .77, .66, 260, 180)],
    7: [("L", [(0, 0), (1, 0), (.35, 1)])],
    8: [("A", .5, .25, .36, .25, 0, 360), ("A", .5, .73, .44, .27, 0, 360)],
    9: [("A", .5, .32, .42, .32, 0, 360), ("A", .15, .32, .77, .66, 0, 80)],
}
_SIX = [(.9, 0), (.3, 0), (0, .35), (0, .85), (.15, 1), (.85, 1), (1, .85), (1, .6), (.85, .45),
        (0, .45)]
_ANGULAR = {
    0: [("L", [(.2, 0), (.8, 0), (1, .2), (1, .8), (.8, 1), (.2, 1), (0, .8), (0, .2), (.2, 0)])],
    1: [("L", [(.25, .2), (.5, 0), (.5, 1)]), ("L", [(.2, 1), (.8, 1)])],
    2: [("L", [(0, .15), (.15, 0), (.85, 0), (1, .15), (1, .4), (0, 1), (1, 1)])],
    3: [("L", [(0, 0), (1, 0), (.45, .42), (.8, .45), (1, .65), (1, .85), (.8, 1), (.15, 1),
               (0, .88)])],
    4: [("L", [(.3, 0), (0, .65), (1, .65)]), ("L", [(.7, .3), (.7, 1)])],
    5: [("L", [(1, 0), (0, 0), (0, .45), (.75, .45), (1, .6), (1, .85), (.8, 1), (0, 1)])],
    6: [("L", _SIX)],
    7: [("L", [(0, .12), (0, 0), (1, 0), (.45, 1)])],
    8: [("L", [(.2, 0), (.8, 0), (.9, .1), (.9, .35), (.8, .45), (.2, .45), (.1, .35), (.1, .1),
               (.2, 0)]),
        ("L", [(.15, .45), (.85, .45), (1, .6), (1, .85), (.85, 1), (.15, 1), (0, .85), (0, .6),
               (.15, .45)])],
    9: [("L", [(1 - x, 1 - y) for x, y in _SIX])],  # a 6 turned upside down
}
_HANDWRITTEN = {
    0: [("A", .5, .5, .4, .5, -100, 270)],
    1: [("L", [(.55, 0), (.45, 1)])],
    2: [("A", .5, .3, .45, .3, 200, 380), ("L", [(.92, .4), (0, 1), (1, .95)])],
    3: [("L", [(.05, 0), (.9, 0), (.4, .4)]), ("A", .45, .68, .5, .3, -80, 150)],
    4: [("L", [(.35, 0), (.05, .6), (.95, .6)]), ("L", [(.75, .25), (.7, 1)])],
    5: [("L", [(.95, 0), (.25, .02), (.15, .45)]), ("A", .5, .66, .45, .32, -140, 160)],
    6: [("A", .5, .7, .38, .3, 180, 540), ("L", [(.75, 0), (.12, .7)])],
    7: [("L", [(0, .05), (1, 0), (.35, 1)]), ("L", [(.4, .5), (.95, .5)])],
    8: [("A", .5, .23, .3, .23, 0, 360), ("A", .5, .72, .4, .28, 0, 360)],
    9: [("A", .5, .3, .4, .3, 0, 360), ("L", [(.9, .3), (.8, 1)])],
}
FONTS = {"round": _ROUND, "angular": _ANGULAR, "handwritten": _HANDWRITTEN}


def _segments(glyph) -> np.ndarray:
    """The glyph's strokes as line segments, shape (S, 2 ends, 2 coordinates)."""
    segments = []
    for stroke in glyph:
        if stroke[0] == "L":
            points = np.asarray(stroke[1], np.float32)
        else:
            _, cx, cy, rx, ry, start, stop = stroke
            angles = np.radians(np.linspace(start, stop, max(3, round(abs(stop - start) / 30)) + 1))
            points = np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], 1)
        segments.append(np.stack([points[:-1], points[1:]], 1))
    return np.concatenate(segments).astype(np.float32)


_GLYPHS = [[_segments(font[d]) for d in range(10)] for font in FONTS.values()]
_PX, _PY = (np.arange(784, dtype=np.float32) % 28 + 0.5), (np.arange(784, dtype=np.float32) // 28 + 0.5)


def make_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (uint8, n x 28 x 28) and labels (int64, uniform at random), reproducible
    from ``seed``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    fonts = rng.integers(0, len(FONTS), n)
    style = _random_style(n, rng)
    ink = np.empty((n, 784), np.float32)
    for f, row in enumerate(_GLYPHS):  # one batch per glyph: no padding to the longest one
        for d, segments in enumerate(row):
            chosen = np.flatnonzero((fonts == f) & (labels == d))
            for lo in range(0, len(chosen), 1000):
                part = chosen[lo:lo + 1000]
                ink[part] = _draw(segments, {k: v[part] for k, v in style.items()})
    noisy = np.clip(ink + rng.normal(0, 0.06, ink.shape).astype(np.float32), 0, 1)
    return (noisy * 255).astype(np.uint8).reshape(n, 28, 28), labels.astype(np.int64)


def _random_style(n: int, rng: np.random.Generator) -> dict:
    """Per image: a smooth warp, an affine map to pixels (a glyph about 15-21 px tall, like
    MNIST's 20x20 digit box), a stroke radius and an ink intensity."""
    angle, shear = rng.uniform(-0.25, 0.25, n), rng.uniform(-0.3, 0.3, n)
    height = rng.uniform(15, 21, n)
    width = height * rng.uniform(0.5, 0.85, n)
    cos, sin = np.cos(angle), np.sin(angle)
    # rotation @ [[width, shear * height], [0, height]]
    matrix = np.stack([np.stack([cos * width, cos * shear * height - sin * height], -1),
                       np.stack([sin * width, sin * shear * height + cos * height], -1)], -2)
    return {"amp": rng.uniform(-.06, .06, (n, 2)), "freq": rng.uniform(1.5, 4, (n, 2)),
            "phase": rng.uniform(0, 2 * np.pi, (n, 2)), "matrix": matrix,
            "shift": 14 + rng.uniform(-2, 2, (n, 2)), "radius": rng.uniform(0.7, 1.8, (n, 1)),
            "gain": rng.uniform(0.75, 1, (n, 1))}


def _draw(segments: np.ndarray, style: dict) -> np.ndarray:
    """Ink (B, 784) in [0, 1] for one glyph's segments (S, 2, 2) drawn in B styles."""
    centred = segments[None] - 0.5
    # each coordinate bends with a low-frequency sine of the other one
    centred = centred + style["amp"][:, None, None] * np.sin(
        style["freq"][:, None, None] * centred[..., ::-1] + style["phase"][:, None, None])
    ends = (np.einsum("bij,bsej->bsei", style["matrix"], centred)
            + style["shift"][:, None, None]).astype(np.float32)
    ax, ay = ends[:, :, 0, 0, None], ends[:, :, 0, 1, None]  # (B, S, 1)
    dx, dy = ends[:, :, 1, 0, None] - ax, ends[:, :, 1, 1, None] - ay
    rx, ry = _PX - ax, _PY - ay  # (B, S, 784)
    t = np.clip((rx * dx + ry * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0, 1)
    rx -= t * dx
    ry -= t * dy
    distance = np.sqrt((rx * rx + ry * ry).min(1))
    return np.clip(style["radius"] + 0.5 - distance, 0, 1) * style["gain"]
