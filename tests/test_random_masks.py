"""Dropout's keep masks come from the random words compared as integers
(``fa.random.uniform_at_least``), and must be exactly the masks ``uniform(key) >= p``
gives: same booleans for every float dtype and every ``p``, including ones that round
when cast to the dtype, the ends of [0, 1] and values just below 1."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
import fnarray.nn.functional as F
from fnarray.api import random as fr

PS = [0.1, 0.25, 0.5, 0.75, float(np.nextafter(np.float32(0.1), np.float32(0))) + 1e-12,
      1e-9, 0.0, 0.9999, 1 - 2 ** -24, 1.0, -0.5, 1.5, float("nan")]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_uniform_at_least_is_uniform_compared(dtype):
    key = fa.random.key(11)
    u = np.asarray(fr.uniform(key, (4000,), dtype))
    for p in PS:
        expected = u >= np.asarray(p, dtype=dtype)
        got = np.asarray(fr.uniform_at_least(key, p, (4000,), dtype))
        np.testing.assert_array_equal(got, expected, err_msg=f"p={p}")


def test_uniform_default_bounds_unchanged_by_the_fast_path():
    key = fa.random.key(5)
    fast = np.asarray(fr.uniform(key, (1000,)))
    general = np.asarray(fr.uniform(key, (1000,), minval=fa.asarray(0.0), maxval=1.0))
    np.testing.assert_array_equal(fast, general)


def test_dropout_mask_is_the_uniform_threshold():
    key = fa.random.key(2)
    x = fa.ones((64, 50), dtype=fa.float32)
    for p in (0.25, 0.5):
        out = np.asarray(F.dropout(x, p, key=key))
        keep = np.asarray(fr.uniform(key, (64, 50), fa.float32)) >= p
        np.testing.assert_array_equal(out, keep.astype(np.float32) * np.float32(1 / (1 - p)))
