"""``fa.linalg``: the Array API (2023.12) linear-algebra extension, plus NumPy's ``norm``,
``inv`` and ``pinv`` conventions.

Everything here composes primitives: the factorisations of ``fnarray/ops/decompositions.py``,
``dot_general`` and elementwise/reduction ops, so derivatives, batching and ``jit`` come from
their rules (see that module for the assumptions: distinct eigen-/singular values, full rank).
Every function accepts stacks of matrices (``(..., m, n)``).

Norms at zero: ``vector_norm`` (and the norms built on it) returns the subgradient 0 at the
origin instead of NaN — the 2-norm and p-norms take the square/p-th root through a guarded
branch, ``abs`` has derivative ``sign(0) == 0``.  Spectral and nuclear norms follow the SVD
and are not differentiable where singular values repeat or vanish.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fnarray.api import contraction as _contraction
from fnarray.api._convert import as_operand, astype, device_of, promote, to_inexact
from fnarray.api.creation import device_put, eye, zeros
from fnarray.api.elementwise import abs as _abs, conj, real, sign, sqrt, where
from fnarray.api.indexing import getitem
from fnarray.api.manipulation import (broadcast_to, concatenate, expand_dims, matrix_transpose,
                                      moveaxis, stack)
from fnarray.api.reductions import max as _max, min as _min, normalize_axes, sum as _sum
from fnarray.core import bfloat16
from fnarray.core.shapes import broadcast_shapes
from fnarray.ops import decompositions as _dec

LinAlgError = np.linalg.LinAlgError

matmul = _contraction.matmul
tensordot = _contraction.tensordot
vecdot = _contraction.vecdot


class SlogdetResult(NamedTuple):
    sign: object
    logabsdet: object


class EighResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


class QRResult(NamedTuple):
    Q: object
    R: object


class SVDResult(NamedTuple):
    U: object
    S: object
    Vh: object


# --- input checks -----------------------------------------------------------------------------

def _matrix(op: str, x, square: bool = False):
    """``x`` as a floating stack of matrices, or an error naming the op, shape and fix."""
    x = to_inexact(as_operand(x))
    if x.dtype == np.float16:
        raise TypeError(f"{op}: float16 is not supported by the LAPACK kernels; convert with "
                        f"x.astype(fa.float32)")
    if x.ndim < 2:
        raise ValueError(f"{op}: expected a matrix or a stack of matrices (..., m, n), got "
                         f"shape {x.shape}")
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{op}: expected square matrices (..., n, n), got shape {x.shape}")
    return x


def _eye(x, n):
    return eye(n, dtype=x.dtype, device=device_of(x))


# --- determinants, solves and inverses ------------------------------------------------------------

def det(x):
    """Determinant of each square matrix in ``x``."""
    return _dec.det.bind(_matrix("det", x, square=True))


def slogdet(x) -> SlogdetResult:
    """``(sign, logabsdet)`` with ``det == sign * exp(logabsdet)``; stable for huge/tiny dets."""
    return SlogdetResult(*_dec.slogdet.bind(_matrix("slogdet", x, square=True)))


def solve(x1, x2):
    """Solve ``x1 @ y == x2``.  ``x2`` is one vector if it is 1-D, else a stack of
    ``(..., n, k)`` right-hand sides whose leading axes broadcast against ``x1``'s."""
    a = _matrix("solve", x1, square=True)
    b = to_inexact(as_operand(x2))
    if b.dtype != a.dtype:
        a, b = promote("solve", a, b)
    n = a.shape[-1]
    vector = b.ndim == 1
    if vector:
        b = expand_dims(b, -1)
    if b.ndim < 2 or b.shape[-2] != n:
        raise ValueError(f"solve: the right-hand side of shape {as_operand(x2).shape} "
                         f"does not fit matrices of shape {a.shape}; expected ({n},) or "
                         f"(..., {n}, k)")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], op="solve")
    out = _dec.solve.bind(broadcast_to(a, batch + a.shape[-2:]),
                          broadcast_to(b, batch + b.shape[-2:]))
    return out[..., 0] if vector else out


def inv(x):
    """Inverse of each square matrix (``solve(x, I)``)."""
    x = _matrix("inv", x, square=True)
    return _dec.solve.bind(x, broadcast_to(_eye(x, x.shape[-1]), x.shape))


def matrix_power(x, n: int):
    """``x`` multiplied by itself ``n`` times (``n < 0``: powers of ``inv(x)``; ``n == 0``: I)."""
    x = _matrix("matrix_power", x, square=True)
    if not isinstance(n, (int, np.integer)):
        raise TypeError(f"matrix_power: the exponent must be an integer, got {n!r}")
    n = int(n)
    if n < 0:
        x, n = inv(x), -n
    result, base = None, x
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return broadcast_to(_eye(x, x.shape[-1]), x.shape) if result is None else result


# --- factorisations -----------------------------------------------------------------------------

def cholesky(x, upper: bool = False):
    """Cholesky factor of each symmetric positive-definite matrix: ``L @ L.mT == x``
    (``upper=True``: ``U.mT @ U == x``).  Only the symmetric part of ``x`` is used; a matrix
    that is not positive definite gives an all-NaN factor (as in JAX), not an exception."""
    l = _dec.cholesky.bind(_matrix("cholesky", x, square=True))
    return _h(l) if upper else l


def eigh(x) -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of symmetric matrices."""
    return EighResult(*_dec.eigh.bind(_matrix("eigh", x, square=True)))


def eigvalsh(x):
    """Eigenvalues (ascending) of symmetric matrices."""
    return eigh(x).eigenvalues


def _complete_basis(q):
    """Extend orthonormal columns ``q`` (..., m, k) to an orthonormal basis (..., m, m).

    The extra columns come from the QR factorisation of ``[q, E]`` with a fixed generic
    ``E``, signs fixed so the first ``k`` columns reproduce ``q``; they are a smooth function
    of ``q``, so derivatives flow through this (one valid) choice of completion."""
    m, k = q.shape[-2:]
    generic = np.random.default_rng(m * 7919 + k).standard_normal((m, m - k))
    e = broadcast_to(as_operand(generic.astype(q.dtype)), q.shape[:-2] + (m, m - k))
    if device_of(q) != device_of(e):
        e = device_put(e, device_of(q))
    full, r = _dec.qr.bind(concatenate([q, e], axis=-1))
    signs = expand_dims(sign(_contraction.diagonal(r, axis1=-2, axis2=-1)), -2)
    return concatenate([q, (full * signs)[..., k:]], axis=-1)


def qr(x, mode: str = "reduced") -> QRResult:
    """QR factorisation ``x == Q @ R``; ``mode='reduced'`` (Q is m x k, k = min(m, n)) or
    ``'complete'`` (Q is m x m; its extra columns are one smooth orthonormal completion)."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"qr: mode must be 'reduced' or 'complete', got {mode!r}")
    x = _matrix("qr", x)
    q, r = _dec.qr.bind(x)
    m, n = x.shape[-2:]
    if mode == "complete" and m > n:
        q = _complete_basis(q)
        r = concatenate([r, zeros(r.shape[:-2] + (m - n, n), r.dtype, device_of(r))], axis=-2)
    return QRResult(q, r)


def svd(x, full_matrices: bool = True, compute_uv: bool = True):
    """Singular value decomposition ``x == U @ diag(S) @ Vh`` with ``S`` descending.

    ``full_matrices=False`` gives the reduced factors (U: m x k, Vh: k x n).  With
    ``full_matrices=True`` (the Array API default) and a non-square input, the extra
    columns of ``U`` (or rows of ``Vh``) are an orthonormal completion (see ``qr``); they are
    not unique, so only functions that do not depend on that choice have a meaningful
    derivative.  ``compute_uv=False`` returns ``S`` alone (NumPy)."""
    x = _matrix("svd", x)
    u, s, vh = _dec.svd.bind(x)
    if not compute_uv:
        return s
    m, n = x.shape[-2:]
    if full_matrices and m > n:
        u = _complete_basis(u)
    elif full_matrices and n > m:
        vh = matrix_transpose(_complete_basis(matrix_transpose(vh)))
    return SVDResult(u, s, vh)


def svdvals(x):
    """Singular values, descending."""
    return _dec.svd.bind(_matrix("svdvals", x))[1]


def _h(x):
    """Conjugate transpose of the last two axes (the transpose for real ``x``)."""
    x = matrix_transpose(x)
    return conj(x) if x.dtype.kind == "c" else x


def _default_rtol(x):
    return max(x.shape[-2:]) * float(bfloat16.finfo(x.dtype).eps)


def pinv(x, rtol=None, hermitian: bool = False):
    """Moore-Penrose pseudo-inverse through the SVD; singular values at or below
    ``rtol * max(S)`` (default ``max(m, n) * eps``) are treated as zero."""
    del hermitian  # the SVD route serves symmetric input as well
    x = _matrix("pinv", x)
    u, s, vh = _dec.svd.bind(x)
    rtol = _default_rtol(x) if rtol is None else rtol
    keep = s > rtol * _max(s, axis=-1, keepdims=True) if s.shape[-1] else s > 0
    s_inv = where(keep, 1.0 / where(keep, s, 1.0), 0.0)
    return matmul(_h(vh) * expand_dims(s_inv, -2), _h(u))  # V diag(1/S) U^H


def matrix_rank(x, rtol=None):
    """Number of singular values above ``rtol * max(S)`` (default ``max(m, n) * eps``)."""
    x = _matrix("matrix_rank", x)
    s = svdvals(x)
    rtol = _default_rtol(x) if rtol is None else rtol
    if not s.shape[-1]:
        return _sum(astype(s > 0, np.int64), axis=-1)
    return _sum(astype(s > rtol * _max(s, axis=-1, keepdims=True), np.int64), axis=-1)


# --- norms --------------------------------------------------------------------------------------

def _guarded_root(total, p: float):
    """``total ** (1/p)`` with derivative 0 (not NaN) where ``total == 0``."""
    zero = total == 0
    safe = where(zero, 1.0, total)
    root = sqrt(safe) if p == 2 else safe ** (1.0 / p)
    return where(zero, 0.0, root)


def vector_norm(x, axis=None, keepdims: bool = False, ord=2):
    """Vector p-norm over ``axis`` (None: all axes), ``ord`` in {any p != 0, 0, inf, -inf}."""
    x = to_inexact(as_operand(x))
    axes = normalize_axes(axis, x.ndim, "vector_norm")
    mag = _abs(x)
    if x.dtype.kind == "c":
        mag = real(mag)
    if ord == math.inf:
        return _max(mag, axis=axes, keepdims=keepdims)
    if ord == -math.inf:
        return _min(mag, axis=axes, keepdims=keepdims)
    if ord == 0:
        return _sum(astype(x != 0, mag.dtype), axis=axes, keepdims=keepdims)
    if ord == 1:
        return _sum(mag, axis=axes, keepdims=keepdims)
    if isinstance(ord, str) or not isinstance(ord, (int, float)):
        raise ValueError(f"vector_norm: ord must be a number, inf or -inf, got {ord!r}")
    if ord == 2:
        return _guarded_root(_sum(mag * mag, axis=axes, keepdims=keepdims), 2)
    if ord < 0:
        return _sum(mag ** float(ord), axis=axes, keepdims=keepdims) ** (1.0 / ord)
    return _guarded_root(_sum(mag ** float(ord), axis=axes, keepdims=keepdims), float(ord))


def _matrix_norm_last(x, ord):
    """Matrix norm over the last two axes (dropped)."""
    if ord in ("fro", None):
        return vector_norm(x, axis=(-2, -1))
    if ord == "nuc":
        return _sum(svdvals(x), axis=-1)
    if ord in (2, -2):
        s = svdvals(x)
        return _max(s, axis=-1) if ord == 2 else _min(s, axis=-1)
    if ord in (1, -1, math.inf, -math.inf):
        sums = _sum(_abs(x), axis=-2 if ord in (1, -1) else -1)
        return _max(sums, axis=-1) if ord > 0 else _min(sums, axis=-1)
    raise ValueError(f"matrix_norm: ord must be 'fro', 'nuc', 1, -1, 2, -2, inf or -inf, got "
                     f"{ord!r}")


def matrix_norm(x, keepdims: bool = False, ord="fro"):
    """Matrix norm of the last two axes: ``'fro'``, ``'nuc'``, 1, -1, 2, -2, inf, -inf."""
    x = _matrix("matrix_norm", x)
    out = _matrix_norm_last(x, ord)
    return expand_dims(out, (-2, -1)) if keepdims else out


def norm(x, ord=None, axis=None, keepdims: bool = False):
    """NumPy's ``linalg.norm``: a vector norm for 1-D input or one ``axis``, a matrix norm for
    2-D input or two axes, the 2-norm of the flattened array when ``ord`` and ``axis`` are
    both None."""
    x = to_inexact(as_operand(x))
    if axis is None:
        if ord is None:
            return vector_norm(x, axis=None, keepdims=keepdims)
        if x.ndim not in (1, 2):
            raise ValueError(f"norm: ord={ord!r} needs a 1-D or 2-D input or an explicit axis, "
                             f"got shape {x.shape}")
        axis = tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(axes) == 1:
        if isinstance(ord, str):
            raise ValueError(f"norm: ord={ord!r} is a matrix norm; vector norms take a number, "
                             f"inf or -inf")
        return vector_norm(x, axis=axes, keepdims=keepdims, ord=2 if ord is None else ord)
    if len(axes) != 2:
        raise ValueError(f"norm: axis must be an int or a pair of ints, got {axis!r}")
    a1, a2 = normalize_axes(axes[0], x.ndim, "norm")[0], normalize_axes(axes[1], x.ndim, "norm")[0]
    if a1 == a2:
        raise ValueError(f"norm: the two axes must differ, got {axis!r}")
    out = _matrix_norm_last(moveaxis(x, (a1, a2), (-2, -1)), ord)
    return expand_dims(out, tuple(sorted((a1, a2)))) if keepdims else out


# --- products and views ------------------------------------------------------------------------

def outer(x1, x2):
    """Outer product of two vectors."""
    a, b = as_operand(x1), as_operand(x2)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"outer: expected two 1-D arrays, got shapes {a.shape} and {b.shape}")
    return _contraction.outer(a, b)


def cross(x1, x2, axis: int = -1):
    """Cross product of 3-vectors along ``axis`` (other axes broadcast)."""
    a, b = promote("cross", x1, x2)
    shape = broadcast_shapes(a.shape, b.shape, op="cross")
    a, b = broadcast_to(a, shape), broadcast_to(b, shape)
    if not shape or not -len(shape) <= axis < len(shape) or shape[axis] != 3:
        raise ValueError(f"cross: axis {axis} must have size 3 in shapes {x1.shape} and "
                         f"{x2.shape}")
    a, b = moveaxis(a, axis, -1), moveaxis(b, axis, -1)
    c = [getitem(a, (Ellipsis, i)) for i in range(3)], [getitem(b, (Ellipsis, i)) for i in range(3)]
    (a0, a1, a2), (b0, b1, b2) = c
    out = stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return moveaxis(out, -1, axis)


def diagonal(x, offset: int = 0):
    """The ``offset`` diagonal of each matrix (last two axes)."""
    return _contraction.diagonal(as_operand(x), offset, -2, -1)


def trace(x, offset: int = 0, dtype=None):
    """Sum of the ``offset`` diagonal of each matrix (last two axes)."""
    return _sum(diagonal(x, offset), axis=-1, dtype=dtype)


__all__ = ["LinAlgError", "SlogdetResult", "EighResult", "QRResult", "SVDResult",
           "cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul",
           "matrix_norm", "matrix_power", "matrix_rank", "matrix_transpose", "norm", "outer",
           "pinv", "qr", "slogdet", "solve", "svd", "svdvals", "tensordot", "trace", "vecdot",
           "vector_norm"]
