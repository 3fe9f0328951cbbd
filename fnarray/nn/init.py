"""``fnarray.nn.init``: PyTorch's in-place initialisers for tensors and parameters.

Each function rebinds the tensor's value (no gradient is recorded) from the compat global
generator, so ``torch.manual_seed`` makes initialisation reproducible.
"""

from __future__ import annotations

import math

import numpy as np

import fnarray as fa
from fnarray.compat import random as global_rng


def _set(tensor, value):
    tensor.data = fa.astype(value, tensor.dtype)
    return tensor


def _uniform(tensor, a, b):
    return global_rng.uniform(tuple(tensor.shape), tensor.dtype, tensor.device) * (b - a) + a


def _normal(tensor, mean, std):
    return global_rng.normal(tuple(tensor.shape), tensor.dtype, tensor.device) * std + mean


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for an activation (PyTorch's table)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out can not be computed for a tensor with fewer than 2 "
                         f"dimensions (shape {tuple(tensor.shape)})")
    receptive = 1
    for d in tuple(tensor.shape)[2:]:
        receptive *= d
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    return _set(tensor, _uniform(tensor, a, b))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    return _set(tensor, _normal(tensor, mean, std))


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None):
    """Normal values truncated to [a, b] by inverting the normal CDF on a uniform sample."""
    def cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0
    lo, hi = cdf((a - mean) / std), cdf((b - mean) / std)
    u = _uniform(tensor, 2 * lo - 1, 2 * hi - 1)
    value = _erfinv(fa.astype(u, fa.float64)) * (std * math.sqrt(2.0)) + mean
    return _set(tensor, fa.clip(value, a, b))


def _erfinv(y):
    """Inverse error function: Giles' single-precision approximation, then two Newton steps."""
    w = -fa.log((1.0 - y) * (1.0 + y))
    small = w < 5.0
    ws, wl = fa.where(small, w, 5.0) - 2.5, fa.sqrt(fa.where(small, 5.0, w)) - 3.0
    cs = [2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
          -0.00125372503, -0.00417768164, 0.246640727, 1.50140941]
    cl = [-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
          -0.0076224613, 0.00943887047, 1.00167406, 2.83297682]
    ps, pl = cs[0], cl[0]
    for c_s, c_l in zip(cs[1:], cl[1:]):
        ps, pl = ps * ws + c_s, pl * wl + c_l
    x = fa.where(small, ps, pl) * y
    for _ in range(2):
        x = x - (fa.erf(x) - y) / (2.0 / math.sqrt(math.pi) * fa.exp(-x * x))
    return x


def constant_(tensor, val: float):
    return _set(tensor, fa.full(tuple(tensor.shape), val, dtype=tensor.dtype))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def eye_(tensor):
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only 2-D tensors are supported, got shape {tuple(tensor.shape)}")
    return _set(tensor, fa.eye(*tuple(tensor.shape), dtype=tensor.dtype))


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None):
    """U(-b, b) with ``b = gain * sqrt(3 / fan)``."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None):
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def orthogonal_(tensor, gain: float = 1.0, generator=None):
    """A (semi-)orthogonal matrix from the QR decomposition of a normal sample."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, got "
                         f"shape {tuple(tensor.shape)}")
    rows = tensor.shape[0]
    cols = tensor.size // rows
    flat = np.asarray(global_rng.normal((rows, cols), np.float64))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    value = fa.asarray(q.reshape(tuple(tensor.shape)) * gain, dtype=tensor.dtype,
                       device=tensor.device)
    return _set(tensor, value)
