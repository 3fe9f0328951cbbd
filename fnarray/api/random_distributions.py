"""More of ``fa.random``: gamma-family, multivariate and structured distributions, on the
same Threefry bits as ``fnarray/api/random.py`` (JAX's names and signatures).

Gamma samples use Marsaglia and Tsang's method ("A simple method for generating gamma
variables", 2000): for ``a >= 1`` propose ``d * (1 + c*z)**3`` from a normal ``z`` and
accept with a uniform draw; ``a < 1`` uses ``Gamma(a + 1) * u**(1/a)``, kept in log space
(``loggamma``) so tiny shapes do not underflow.  Rejection runs in vectorised rounds: each
round draws one proposal per sample (from its own key, ``fold_in(key, round)``) and fills
the samples not yet accepted.  The acceptance rate is above 95%, so eagerly the loop
stops after a few rounds; under ``jit``/``vmap`` (where it cannot look at the values) all
``GAMMA_ROUNDS`` rounds run, and a sample is left unaccepted with probability below
``0.05**GAMMA_ROUNDS`` (about 1e-21), in which case its last proposal is kept.

Derivatives: every sampler is differentiable in its float parameters.  ``normal``-based
ones (``multivariate_normal``, ...) by reparameterisation; gamma samples (and ``beta``,
``dirichlet``, ``chisquare``, ``t``, built on them) by implicit reparameterisation in the
shape ``a`` (``fnarray/api/random_gamma_grad.py``), as JAX does.
"""

from __future__ import annotations

import math

import numpy as np

from fnarray.api import creation, elementwise as ew, manipulation as mp
from fnarray.api._convert import as_operand, astype, to_inexact
from fnarray.api.contraction import matmul
from fnarray.api.indexing import take_along_axis
from fnarray.api.nn import log_softmax
from fnarray.api.random_gamma_grad import dlogz_da
from fnarray.api.random import (_check_key, _compute_dtype, _float_dtype, _shape, _unit, bits,
                                fold_in, key, normal, split)
from fnarray.api.searching import argsort
from fnarray.core.shapes import DEFAULT_INT, broadcast_shapes, float32, uint32
from fnarray.core.trace import ConcretizationError

__all__ = ["PRNGKey", "gamma", "loggamma", "beta", "dirichlet", "chisquare", "t", "laplace",
           "logistic", "cauchy", "multivariate_normal", "rademacher", "orthogonal"]

GAMMA_ROUNDS = 16


def PRNGKey(seed, device=None):  # noqa: N802 - JAX's name
    """JAX's older name for ``key(seed)`` (a raw ``uint32[2]`` key)."""
    return key(seed, device=device)


def _param_shape(op: str, shape, *params) -> tuple:
    """``shape``, or the parameters' broadcast shape; the parameters must broadcast to it."""
    bshape = broadcast_shapes(*(p.shape for p in params), op=f"random.{op}")
    if shape is None:
        return bshape
    shape = _shape(shape, op)
    if broadcast_shapes(shape, bshape, op=f"random.{op}") != shape:
        raise ValueError(f"random.{op}: the parameters' shape {bshape} does not broadcast to "
                         f"shape {shape}")
    return shape


# --- gamma family ------------------------------------------------------------------------------

def _all_accepted(accepted) -> bool:
    """True when the (concrete) mask is all True; False when it cannot be looked at."""
    try:
        return bool(np.asarray(accepted).all())
    except (ConcretizationError, TypeError):
        return False


def _log_gamma_ge1(k, a, shape):
    """``log`` of Gamma(a) samples for ``a >= 1`` (Marsaglia-Tsang rounds)."""
    d = a - 1.0 / 3.0
    c = 1.0 / ew.sqrt(9.0 * d)
    out = creation.zeros(shape, dtype=a.dtype, device=a.device)
    accepted = creation.zeros(shape, dtype=bool, device=a.device)
    for r in range(GAMMA_ROUNDS):
        kz, ku = split(fold_in(k, r))
        z = normal(kz, shape, a.dtype)
        u = _unit(ku, shape, a.dtype)
        v = 1.0 + c * z
        v3 = v * v * v
        ok_v = v > 0
        log_v3 = ew.log(ew.where(ok_v, v3, 1.0))
        ok = ok_v & (ew.log1p(-u) < 0.5 * z * z + d - d * v3 + d * log_v3)
        out = ew.where(accepted, out, ew.log(d) + log_v3)
        accepted = accepted | ok
        if _all_accepted(accepted):
            break
    return out


def _loggamma_draw(k, a, shape):
    """``log`` of Gamma(a) samples, ``a > 0`` (broadcast to ``shape``), in ``a.dtype``."""
    a = mp.broadcast_to(a, shape)
    small = a < 1.0
    boosted = ew.where(small, a + 1.0, a)
    k_main, k_boost = split(k)
    out = _log_gamma_ge1(k_main, boosted, shape)
    u = _unit(k_boost, shape, a.dtype)
    return ew.where(small, out + ew.log1p(-u) / a, out)


def _loggamma_raw(k, a, shape):
    """``_loggamma_draw`` with the implicit reparameterisation derivative in ``a``."""
    from fnarray.transforms.custom import custom_jvp

    sample = custom_jvp(lambda k, a: _loggamma_draw(k, a, shape))

    @sample.defjvp
    def _rule(primals, tangents):
        k, a = primals
        logz = sample(k, a)
        return logz, dlogz_da(a, logz) * tangents[1]

    return sample(k, mp.broadcast_to(a, shape))


def _sampler(op: str, k, params, shape, dtype):
    """Common checks: ``(key, parameters as the compute dtype, shape, dtype)``."""
    k = _check_key(k, op)
    dtype = _float_dtype(dtype, op)
    work = _compute_dtype(dtype)
    params = [astype(to_inexact(p), work) for p in params]
    return k, params, _param_shape(op, shape, *params), dtype


def loggamma(key, a, shape=None, dtype=float32):
    """``log`` of Gamma(``a``, 1) samples: accurate for very small ``a``, where the
    samples themselves underflow."""
    k, (a,), shape, dtype = _sampler("loggamma", key, (a,), shape, dtype)
    return astype(_loggamma_raw(k, a, shape), dtype)


def gamma(key, a, shape=None, dtype=float32):
    """Gamma(``a``, 1) samples (shape ``a`` > 0, unit scale; multiply for another scale)."""
    k, (a,), shape, dtype = _sampler("gamma", key, (a,), shape, dtype)
    return astype(ew.exp(_loggamma_raw(k, a, shape)), dtype)


def beta(key, a, b, shape=None, dtype=float32):
    """Beta(``a``, ``b``) samples: ``X / (X + Y)`` for gamma variates, in log space."""
    k, (a, b), shape, dtype = _sampler("beta", key, (a, b), shape, dtype)
    ka, kb = split(k)
    lx, ly = _loggamma_raw(ka, a, shape), _loggamma_raw(kb, b, shape)
    return astype(ew.exp(lx - ew.logaddexp(lx, ly)), dtype)


def dirichlet(key, alpha, shape=None, dtype=float32):
    """Dirichlet(``alpha``) samples: ``alpha`` has shape ``(..., K)``; the result has shape
    ``shape + (K,)`` (``shape`` defaults to ``alpha.shape[:-1]``)."""
    k = _check_key(key, "dirichlet")
    dtype = _float_dtype(dtype, "dirichlet")
    alpha = astype(to_inexact(alpha), _compute_dtype(dtype))
    if alpha.ndim < 1:
        raise ValueError(f"random.dirichlet: alpha must have at least one dimension (the "
                         f"categories), got shape {alpha.shape}")
    batch = alpha.shape[:-1] if shape is None else _shape(shape, "dirichlet")
    if broadcast_shapes(batch, alpha.shape[:-1], op="random.dirichlet") != batch:
        raise ValueError(f"random.dirichlet: alpha's batch shape {alpha.shape[:-1]} does not "
                         f"broadcast to shape {batch}")
    full = batch + alpha.shape[-1:]
    return astype(ew.exp(log_softmax(_loggamma_raw(k, alpha, full), axis=-1)), dtype)


def chisquare(key, df, shape=None, dtype=float32):
    """Chi-square samples with ``df`` degrees of freedom: ``2 * Gamma(df / 2)``."""
    k, (df,), shape, dtype = _sampler("chisquare", key, (df,), shape, dtype)
    return astype(2.0 * ew.exp(_loggamma_raw(k, df / 2.0, shape)), dtype)


def t(key, df, shape=(), dtype=float32):
    """Student's t samples: ``z / sqrt(chi2(df) / df)``."""
    k, (df,), shape, dtype = _sampler("t", key, (df,), shape, dtype)
    kn, kg = split(k)
    log_chi2 = _loggamma_raw(kg, df / 2.0, shape) + math.log(2.0)
    return astype(normal(kn, shape, df.dtype) * ew.exp(-0.5 * log_chi2) * ew.sqrt(df), dtype)


# --- location-scale families -------------------------------------------------------------------

def _open_unit(k, shape, dtype):
    """Uniform floats in the open interval ``(0, 1)``."""
    work = _compute_dtype(dtype)
    return ew.maximum(_unit(k, shape, work), float(np.finfo(work).tiny))


def laplace(key, shape=(), dtype=float32):
    """Standard Laplace samples (density ``exp(-|x|) / 2``)."""
    k = _check_key(key, "laplace")
    dtype = _float_dtype(dtype, "laplace")
    u = _unit(k, _shape(shape, "laplace"), _compute_dtype(dtype)) * 2.0 - 1.0  # [-1, 1)
    return astype(-ew.sign(u) * ew.log1p(-ew.abs(u)), dtype)


def logistic(key, shape=(), dtype=float32):
    """Standard logistic samples: ``log(u / (1 - u))``."""
    k = _check_key(key, "logistic")
    dtype = _float_dtype(dtype, "logistic")
    u = _open_unit(k, _shape(shape, "logistic"), dtype)
    return astype(ew.log(u) - ew.log1p(-u), dtype)


def cauchy(key, shape=(), dtype=float32):
    """Standard Cauchy samples: ``tan(pi * (u - 1/2))``."""
    k = _check_key(key, "cauchy")
    dtype = _float_dtype(dtype, "cauchy")
    u = _open_unit(k, _shape(shape, "cauchy"), dtype)
    return astype(ew.tan(math.pi * (u - 0.5)), dtype)


def multivariate_normal(key, mean, cov, shape=None, dtype=None, method: str = "cholesky"):
    """Samples of N(``mean``, ``cov``): ``mean`` is ``(..., n)``, ``cov`` ``(..., n, n)``;
    the result has shape ``shape + (n,)`` (``shape`` defaults to the broadcast batch shape).
    ``method`` factors ``cov`` by ``cholesky`` (positive definite), ``eigh`` or ``svd``
    (positive semi-definite).  Differentiable in ``mean`` and ``cov``."""
    k = _check_key(key, "multivariate_normal")
    mean, cov = to_inexact(mean), to_inexact(cov)
    dtype = _float_dtype(dtype or np.promote_types(mean.dtype, cov.dtype), "multivariate_normal")
    if mean.ndim < 1 or cov.ndim < 2 or cov.shape[-2:] != (mean.shape[-1],) * 2:
        raise ValueError(f"random.multivariate_normal: mean must be (..., n) and cov "
                         f"(..., n, n), got shapes {mean.shape} and {cov.shape}")
    from fnarray.api import linalg
    if method == "cholesky":
        factor = linalg.cholesky(cov)
    elif method == "eigh":
        w, v = linalg.eigh(cov)
        factor = v * mp.expand_dims(ew.sqrt(ew.maximum(w, 0)), -2)
    elif method == "svd":
        u, s, _ = linalg.svd(cov)
        factor = u * mp.expand_dims(ew.sqrt(s), -2)
    else:
        raise ValueError(f"random.multivariate_normal: method must be 'cholesky', 'eigh' or "
                         f"'svd', got {method!r}")
    batch = broadcast_shapes(mean.shape[:-1], cov.shape[:-2], op="random.multivariate_normal")
    shape = batch if shape is None else _shape(shape, "multivariate_normal")
    z = normal(k, shape + mean.shape[-1:], dtype)
    return astype(mean + matmul(factor, mp.expand_dims(z, -1))[..., 0], dtype)


# --- discrete and structured ----------------------------------------------------------------

def rademacher(key, shape=(), dtype=DEFAULT_INT):
    """Uniform random signs, -1 or +1."""
    k = _check_key(key, "rademacher")
    b = astype(bits(k, _shape(shape, "rademacher"), uint32) >> 31, dtype)
    return 2 * b - 1


def orthogonal(key, n: int, shape=(), dtype=float32):
    """Haar-uniform random ``n x n`` orthogonal matrices (batch ``shape``): the QR
    factor of a Gaussian matrix, with column signs fixed by ``R``'s diagonal."""
    from fnarray.api import linalg
    k = _check_key(key, "orthogonal")
    dtype = _float_dtype(dtype, "orthogonal")
    z = normal(k, _shape(shape, "orthogonal") + (int(n), int(n)), _compute_dtype(dtype))
    q, r = linalg.qr(z)
    d = linalg.diagonal(r)
    return astype(q * mp.expand_dims(ew.where(d < 0, -1.0, 1.0), -2), dtype)


def permute_independent(key, x, axis: int = 0):
    """``x`` with every 1-D slice along ``axis`` permuted independently (what
    ``permutation(key, x, axis, independent=True)`` returns)."""
    x = as_operand(x)
    order = argsort(bits(_check_key(key, "permutation"), x.shape, np.uint64), axis=axis)
    return take_along_axis(x, order, axis=axis)
