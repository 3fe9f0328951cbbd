"""Implicit reparameterisation gradient of gamma samples (Figurnov, Mohamed and Mnih,
"Implicit Reparameterization Gradients", 2018), as JAX's ``random.gamma`` has.

A sample ``z`` of Gamma(``a``) is ``F^{-1}(u; a)`` for the CDF ``F = P(a, .)`` (the
regularised lower incomplete gamma function), so at fixed ``u``

    dz/da = -(dP(a, z)/da) / p(z; a),     p(z; a) = z**(a-1) exp(-z) / Gamma(a),

whatever algorithm drew ``z``.  ``dP/da`` is the forward-mode derivative (``fa.jvp``) of a
fixed-length evaluation of ``P``: the power series for ``z < a + 1``, Lentz's continued
fraction for ``Q = 1 - P`` otherwise, and, for ``a > LARGE_A`` (where both would need
``~9 sqrt(a)`` terms), Temme's uniform asymptotic expansion to first order (relative error
of the gradient about 1e-6 at ``a = 150``, smaller beyond).  Eagerly the loops stop once
every element has converged; under ``jit`` all ``TERMS`` steps are traced.  The result is
returned for ``log z`` (``loggamma``), which stays finite for tiny ``a`` where ``z``
underflows: ``d log z / da = -(dP/da) / exp(a log z - z - lgamma(a))``.  The formula is
itself differentiable (nothing is stopped), so second derivatives follow the same
inverse-CDF coupling.
"""

from __future__ import annotations

import math

import numpy as np

from fnarray.api import elementwise as ew
from fnarray.api.creation import ones_like, zeros_like
from fnarray.api.special import lgamma
from fnarray.core.trace import ConcretizationError

TERMS = 120  # series terms / continued-fraction steps: enough for a <= LARGE_A
CHECK_EVERY = 8  # eagerly, stop once every element has converged (checked this often)
LARGE_A = 150.0
_TINY = 1e-300


def _settled(flags) -> bool:
    """True when ``flags`` is concrete and all True (eager evaluation may stop early);
    False when it cannot be looked at (under ``jit``/``vmap`` every step runs)."""
    try:
        return bool(np.asarray(flags).all())
    except (ConcretizationError, TypeError):
        return False


def _series_p(a, x, logx):
    """``P(a, x)`` by its power series (good for ``x < a + 1``)."""
    term = ones_like(x)
    total = term
    for n in range(1, TERMS):
        term = term * x / (a + n)
        total = total + term
        if n % CHECK_EVERY == 0 and _settled(ew.abs(term) <= 1e-18 * ew.abs(total)):
            break
    return ew.exp(a * logx - x - lgamma(a + 1.0)) * total


def _cf_q(a, x, logx):
    """``Q(a, x) = 1 - P(a, x)`` by Lentz's continued fraction (good for ``x >= a + 1``)."""
    b = x + 1.0 - a
    c = 1.0 / _TINY + 0.0 * b
    d = 1.0 / b
    h = d
    for i in range(1, TERMS):
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = ew.where(ew.abs(d) < _TINY, _TINY, d)
        c = b + an / c
        c = ew.where(ew.abs(c) < _TINY, _TINY, c)
        d = 1.0 / d
        h = h * d * c
        if i % CHECK_EVERY == 0 and _settled(ew.abs(d * c - 1.0) <= 1e-16):
            break
    return ew.exp(a * logx - x - lgamma(a)) * h


def _temme_q(a, x):
    """``Q(a, x)`` for large ``a`` (Temme): ``erfc(eta sqrt(a/2)) / 2 + R`` with the first
    correction ``R = exp(-a eta**2 / 2) / sqrt(2 pi a) * c0(eta)``."""
    lam = x / a
    t = lam - 1.0
    small = ew.abs(t) < 1e-3
    safe_t = ew.where(small, 1.0, t)  # keeps the unused branch (and its derivative) finite
    eta_exact = ew.sign(safe_t) * ew.sqrt(2.0 * (safe_t - ew.log1p(safe_t)))
    eta_series = t * (1.0 - t / 3.0 + 7.0 * t * t / 36.0)  # eta(lambda) near lambda = 1
    eta = ew.where(small, eta_series, eta_exact)
    c0_exact = 1.0 / safe_t - 1.0 / ew.where(small, 1.0, eta_exact)
    c0_series = -1.0 / 3.0 + eta / 12.0 - 2.0 * eta * eta / 135.0
    c0 = ew.where(small, c0_series, c0_exact)
    main = 0.5 * (1.0 - ew.erf(eta * ew.sqrt(a / 2.0)))
    return main + ew.exp(-0.5 * a * eta * eta) / ew.sqrt(2.0 * math.pi * a) * c0


def _gamma_p(a, x, logx):
    """``P(a, x)`` by whichever evaluation converges for each element (a branch no element
    needs is skipped when the values are concrete)."""
    use_series = x < a + 1.0
    large = a > LARGE_A
    out = zeros_like(x)
    if not _settled(ew.logical_not(ew.logical_and(use_series, ew.logical_not(large)))):
        xs = ew.where(use_series, x, a)  # each branch sees inputs it handles
        log_xs = ew.where(use_series, logx, ew.log(ew.where(use_series, 1.0, xs)))
        out = ew.where(use_series, _series_p(a, xs, log_xs), out)
    if not _settled(ew.logical_or(use_series, large)):
        xc = ew.where(use_series, a + 1.0, x)
        log_xc = ew.where(use_series, ew.log(xc), logx)
        out = ew.where(use_series, out, 1.0 - _cf_q(a, xc, log_xc))
    if not _settled(ew.logical_not(large)):
        a_big = ew.where(large, a, LARGE_A + 1.0)
        out = ew.where(large, 1.0 - _temme_q(a_big, ew.where(large, x, a_big)), out)
    return out


def dlogz_da(a, logz):
    """``d log z / da`` for Gamma(``a``) samples ``z = exp(logz)``, elementwise (float64
    computation; ``a`` and ``logz`` broadcast together)."""
    from fnarray.api._convert import astype
    from fnarray.transforms.jvp import jvp
    a64, logz64 = astype(a, np.float64), astype(logz, np.float64)
    z = ew.exp(logz64)
    _, dp = jvp(lambda s: _gamma_p(s, z, logz64), (a64,), (ones_like(a64),))
    log_density_z = a64 * logz64 - z - lgamma(a64)  # log(z * p(z; a))
    return astype(-dp * ew.exp(-log_density_z), a.dtype)
