"""``fa.gelu`` follows ``jax.nn.gelu`` (tanh approximation by default); PyTorch's layer and
functional keep the exact default.  ``grad(hypot)`` at the origin is a finite subgradient."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fnarray as fa
from fnarray import nn
from fnarray.nn import functional as F

X = np.linspace(-4, 4, 17).astype(np.float32)


def _tanh_gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _exact_gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def test_gelu_defaults_to_jax_tanh_approximation():
    np.testing.assert_allclose(fa.gelu(X), _tanh_gelu(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fa.gelu(X, approximate=True), _tanh_gelu(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fa.gelu(X, approximate=False), _exact_gelu(X), rtol=1e-6, atol=1e-6)
    # the two differ visibly, so the default really is the approximation
    assert abs(float(fa.gelu(1.0)) - float(fa.gelu(1.0, approximate=False))) > 1e-4


def test_gelu_accepts_pytorch_spellings_and_rejects_others():
    np.testing.assert_allclose(fa.gelu(X, approximate="tanh"), fa.gelu(X, approximate=True))
    np.testing.assert_allclose(fa.gelu(X, approximate="none"), fa.gelu(X, approximate=False))
    for bad in ("fast", None, 1.0):
        with pytest.raises(ValueError, match="gelu: approximate must be True/False"):
            fa.gelu(X, approximate=bad)


def test_compat_gelu_keeps_pytorch_exact_default():
    np.testing.assert_allclose(F.gelu(fa.asarray(X)), _exact_gelu(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(nn.GELU()(fa.asarray(X)), _exact_gelu(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(nn.GELU(approximate="tanh")(fa.asarray(X)), _tanh_gelu(X),
                               rtol=1e-6, atol=1e-6)


def test_grad_hypot_at_origin_is_zero_not_nan():
    gx, gy = fa.grad(fa.hypot, argnums=(0, 1))(0.0, 0.0)
    assert float(gx) == 0.0 and float(gy) == 0.0
    assert float(fa.jit(fa.grad(fa.hypot))(0.0, 0.0)) == 0.0
    _, t = fa.jvp(fa.hypot, (0.0, 0.0), (1.0, -1.0))
    assert float(t) == 0.0
    assert np.isfinite(float(fa.grad(fa.grad(fa.hypot))(0.0, 0.0)))
    # away from the origin: x / hypot(x, y)
    gx, gy = fa.grad(fa.hypot, argnums=(0, 1))(3.0, -4.0)
    np.testing.assert_allclose([float(gx), float(gy)], [0.6, -0.8], rtol=1e-6)
    g = fa.vmap(fa.grad(fa.hypot))(fa.asarray([0.0, 3.0]), fa.asarray([0.0, 4.0]))
    np.testing.assert_allclose(g, [0.0, 0.6], rtol=1e-6)
