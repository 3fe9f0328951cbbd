"""``fa.linalg`` for general matrices: ``eig``/``eigvals`` (non-symmetric eigenproblems)
and ``lstsq`` (least squares), NumPy's names and results.

``eig`` is the ``eig`` primitive (``fnarray/ops/eig.py``, which documents the derivative
policy: exact for distinct eigenvalues, eigenvectors with unit norm and a real positive
largest component).  ``lstsq`` composes the SVD, so it is differentiable (for full-rank
``a``, through the ``svd`` rules) and runs under ``jit``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fnarray.api._convert import as_operand, astype, promote, to_inexact
from fnarray.api.contraction import matmul
from fnarray.api.elementwise import abs as _abs, conj, where
from fnarray.api.linalg import _matrix
from fnarray.api.manipulation import expand_dims, matrix_transpose
from fnarray.api.reductions import sum as _sum
from fnarray.core import bfloat16
from fnarray.core.trace import ConcretizationError
from fnarray.ops import decompositions as _dec
from fnarray.ops.eig import eig as _eig

__all__ = ["EigResult", "eig", "eigvals", "lstsq"]


class EigResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


def eig(x) -> EigResult:
    """Eigenvalues ``w`` and right eigenvectors ``v`` (columns, ``x @ v == v * w``) of each
    square matrix; always complex.  Each eigenvector has unit norm and its largest
    component real and positive (NumPy's vectors up to that phase)."""
    return EigResult(*_eig.bind(_matrix("eig", x, square=True)))


def eigvals(x):
    """The (complex) eigenvalues of each square matrix."""
    return eig(x).eigenvalues


def lstsq(a, b, rcond=None, *, numpy_resid: bool = False):
    """Least-squares solution of ``a @ x ~= b``: NumPy's ``(x, residuals, rank, s)``.

    ``a`` is ``(M, N)``; ``b`` is ``(M,)`` or ``(M, K)``.  Singular values at or below
    ``rcond * max(s)`` (default ``max(M, N) * eps``, NumPy 2's default) count as zero.
    ``residuals`` are the squared 2-norms of the columns of ``b - a @ x``; as in JAX they
    are always computed (shape ``(K,)``, ``(1,)`` for a vector ``b``) so the function runs
    under ``jit`` — pass ``numpy_resid=True`` for NumPy's empty array when
    ``rank < N`` or ``M <= N`` (that needs a concrete rank).  ``x`` and ``residuals`` are
    differentiable in ``a`` (full rank) and ``b``."""
    a = to_inexact(a)
    b = to_inexact(as_operand(b))
    if a.ndim != 2:
        raise ValueError(f"lstsq: a must be a 2-D matrix (M, N), got shape {a.shape}")
    vector = b.ndim == 1
    if b.ndim not in (1, 2) or b.shape[0] != a.shape[0]:
        raise ValueError(f"lstsq: b must have shape ({a.shape[0]},) or ({a.shape[0]}, K) "
                         f"to match a of shape {a.shape}, got {b.shape}")
    a, b = promote("lstsq", a, b)
    a = _matrix("lstsq", a)
    b2 = expand_dims(b, -1) if vector else b
    m, n = a.shape
    u, s, vh = _dec.svd.bind(a)
    eps = float(bfloat16.finfo(s.dtype).eps)
    rcond = eps * max(m, n) if rcond is None or rcond < 0 else float(rcond)
    keep = s > rcond * s[0] if s.shape[0] else s > 0
    s_inv = where(keep, 1.0 / where(keep, s, 1.0), 0.0)
    rank = _sum(astype(keep, np.int64))
    uh = matrix_transpose(conj(u) if u.dtype.kind == "c" else u)
    v = matrix_transpose(conj(vh) if vh.dtype.kind == "c" else vh)
    x = matmul(v, expand_dims(astype(s_inv, a.dtype), -1) * matmul(uh, b2))
    r = b2 - matmul(a, x)
    resid = _sum(_abs(r) ** 2, axis=0)
    if numpy_resid:
        try:
            full = int(rank) == n and m > n
        except ConcretizationError:
            raise ConcretizationError(
                "lstsq: numpy_resid=True makes the residuals' shape depend on the rank, which "
                "is traced here; use the default numpy_resid=False under jit/vmap") from None
        if not full:
            resid = resid[:0]
    return x[:, 0] if vector else x, resid, rank, s
