"""Special functions: ``lgamma``, ``digamma`` and ``polygamma`` primitives.

fnarray needs no SciPy, so the kernels are computed here in float64 and cast back:

* ``lgamma`` is Python's ``math.lgamma`` applied elementwise (exact to double precision,
  about 100 ns per element; poles give ``+inf`` as in PyTorch);
* ``digamma`` reflects ``x < 1/2`` with ``psi(x) = psi(1 - x) - pi / tan(pi x)``, shifts up
  with ``psi(x) = psi(x + 1) - 1/x`` until ``x >= 10`` and sums the asymptotic series;
* ``polygamma(n, x)`` (``n >= 1``) shifts up with
  ``psi_n(x) = psi_n(x + 1) + (-1)^(n+1) n! / x^(n+1)`` and sums its asymptotic series.

The derivative chain closes on itself: ``lgamma' = digamma``, ``digamma' = polygamma(1)``
and ``polygamma(n)' = polygamma(n + 1)``, so every order of differentiation works.
"""

from __future__ import annotations

import math

import numpy as np

from fnarray.core.primitive import declare
from fnarray.ops.elementwise import _abstract, unary

# B_2k for k = 1..7: enough for a relative error below 1e-16 once x >= 10.
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)


def _host(kernel):
    """Run a float64 NumPy ``kernel`` on the host and return the input's dtype/device."""
    def impl(xp, x, **params):
        if x.dtype.kind == "c":
            raise TypeError(f"{kernel.__name__.strip('_')}: complex input ({x.dtype}) is not "
                            f"supported; this special function is defined for real x only")
        host = x if xp is np else xp.asnumpy(x)
        with np.errstate(all="ignore"):
            out = np.asarray(kernel(np.asarray(host, dtype=np.float64), **params))
        out = out.astype(host.dtype if host.dtype.kind == "f" else np.float64, copy=False)
        return out if xp is np else xp.asarray(out)
    return impl


def _lgamma_scalar(v: float) -> float:
    try:
        return math.lgamma(v)
    except ValueError:  # a pole (0, -1, -2, ...)
        return math.inf


_lgamma_vec = np.frompyfunc(_lgamma_scalar, 1, 1)


def _lgamma(x: np.ndarray) -> np.ndarray:
    return np.asarray(_lgamma_vec(x), dtype=np.float64) if x.size else x.copy()


def _shift_up(x: np.ndarray, term, threshold: float):
    """``(y, acc)``: ``y = x + k`` with the least ``k >= 0`` making ``y >= threshold`` and
    ``acc`` the sum of ``term(x + j)`` for ``j < k`` (NaN stays NaN and is never shifted)."""
    y, acc = x.copy(), np.zeros_like(x)
    low = y < threshold
    while low.any():
        acc = np.where(low, acc + term(np.where(low, y, 1.0)), acc)
        y = np.where(low, y + 1.0, y)
        low = y < threshold
    return y, acc


def _digamma(x: np.ndarray) -> np.ndarray:
    reflect = x < 0.5
    z = np.where(reflect, 1.0 - x, x)
    y, acc = _shift_up(z, lambda v: -1.0 / v, 10.0)
    inv2 = 1.0 / (y * y)
    series, power = 0.0, inv2
    for k, b in enumerate(_BERNOULLI, start=1):
        series = series + b / (2 * k) * power
        power = power * inv2
    out = acc + np.log(y) - 0.5 / y - series
    reflected = out - np.pi / np.tan(np.pi * x)
    out = np.where(reflect, reflected, out)
    # Poles: PyTorch gives -inf at 0 and NaN at the negative integers.
    pole = (x <= 0) & (x == np.floor(x))
    return np.where(pole, np.where(x == 0, -np.inf, np.nan), out)


def _polygamma(x: np.ndarray, *, n: int) -> np.ndarray:
    sign = 1.0 if n % 2 else -1.0  # (-1)^(n+1)
    fact = math.factorial(n)
    y, acc = _shift_up(x, lambda v: sign * fact / v ** (n + 1), 10.0 + n)
    # psi_n(y) ~ (-1)^(n+1) [(n-1)!/y^n + n!/(2 y^(n+1)) + sum B_2k (2k+n-1)!/((2k)! y^(2k+n))]
    series = math.factorial(n - 1) / y ** n + fact / (2.0 * y ** (n + 1))
    for k, b in enumerate(_BERNOULLI, start=1):
        coef = b * math.factorial(2 * k + n - 1) / math.factorial(2 * k)
        series = series + coef / y ** (2 * k + n)
    return acc + sign * series


def _polygamma_jvp(primals, tangents, *, n):
    x, = primals
    return polygamma.bind(x, n=n), tangents[0] * polygamma.bind(x, n=n + 1)


def _polygamma_vjp(ct, x, *, out, n):
    return (ct * polygamma.bind(x, n=n + 1),)


polygamma = declare(
    "polygamma", impl=_host(_polygamma), abstract=_abstract(),
    jvp=_polygamma_jvp, vjp=_polygamma_vjp,
    batch=lambda vals, dims, n: (polygamma.bind(vals[0], n=n), dims[0]))
digamma = unary("digamma", _host(_digamma), lambda x, o: polygamma.bind(x, n=1))
lgamma = unary("lgamma", _host(_lgamma), lambda x, o: digamma.bind(x))
