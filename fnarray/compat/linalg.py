"""``torch.linalg``: ``fa.linalg`` under PyTorch's argument names (``dim``/``keepdim``) and
result types (``linalg_svd(U, S, Vh)``, ``linalg_eigh``, ``linalg_qr``, ``linalg_slogdet``).

Every function composes fnarray operations on tensors, so results require grad (with a
``grad_fn`` named like PyTorch's) whenever an input does.
"""

from __future__ import annotations

from fnarray import api as fa, linalg as _la
from fnarray.compat import return_types
from fnarray.compat.tape import op_scope

LinAlgError = _la.LinAlgError


def _named(grad_name: str, fn):
    def op(*args, **kwargs):
        with op_scope(grad_name):
            return fn(*args, **kwargs)
    op.__name__ = fn.__name__
    op.__doc__ = f"``fa.linalg.{fn.__name__}`` on tensors (``grad_fn=<{grad_name}>``)."
    return op


det = _named("LinalgDetBackward0", _la.det)
inv = _named("LinalgInvExBackward0", _la.inv)
solve = _named("LinalgSolveExBackward0", _la.solve)
cholesky = _named("LinalgCholeskyExBackward0", _la.cholesky)
eigvalsh = _named("LinalgEighBackward0", _la.eigvalsh)
svdvals = _named("LinalgSvdBackward0", _la.svdvals)
pinv = _named("LinalgPinvBackward0", _la.pinv)
matrix_power = _named("LinalgMatrixPowerBackward0", _la.matrix_power)
matrix_rank = _la.matrix_rank
diagonal = _la.diagonal
matmul = _la.matmul


def slogdet(A):
    """``(sign, logabsdet)`` of the determinant."""
    with op_scope("LinalgSlogdetBackward0"):
        return return_types.linalg_slogdet(*_la.slogdet(A))


def eigh(A, UPLO: str = "L"):
    """``(eigenvalues, eigenvectors)`` of a symmetric matrix (read from the ``UPLO``
    triangle: ``'L'`` lower, ``'U'`` upper)."""
    sym = fa.tril(A) + fa.matrix_transpose(fa.tril(A, -1)) if UPLO == "L" else \
        fa.triu(A) + fa.matrix_transpose(fa.triu(A, 1))
    with op_scope("LinalgEighBackward0"):
        return return_types.linalg_eigh(*_la.eigh(sym))


def qr(A, mode: str = "reduced"):
    """``(Q, R)`` with ``A = Q R``."""
    with op_scope("LinalgQrBackward0"):
        return return_types.linalg_qr(*_la.qr(A, mode=mode))


def svd(A, full_matrices: bool = True):
    """``(U, S, Vh)`` with ``A = U diag(S) Vh`` (``torch.svd`` returns ``V`` instead)."""
    with op_scope("LinalgSvdBackward0"):
        return return_types.linalg_svd(*_la.svd(A, full_matrices=full_matrices))


def vector_norm(x, ord=2, dim=None, keepdim: bool = False):
    with op_scope("LinalgVectorNormBackward0"):
        return _la.vector_norm(x, axis=dim, keepdims=keepdim, ord=ord)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False):
    """The matrix norm over the two axes ``dim``."""
    axes = tuple(d % A.ndim for d in dim)
    with op_scope("LinalgMatrixNormBackward0"):
        out = _la.matrix_norm(fa.moveaxis(A, axes, (-2, -1)), ord=ord)
        return fa.expand_dims(out, tuple(sorted(axes))) if keepdim else out


def norm(A, ord=None, dim=None, keepdim: bool = False):
    """The vector norm (1-D input or one ``dim``) or matrix norm (2-D or two ``dim``s);
    ``ord=None`` is the 2-norm / Frobenius norm."""
    with op_scope("LinalgNormBackward0"):
        return _la.norm(A, ord=ord, axis=dim, keepdims=keepdim)


def cross(input, other, dim: int = -1):
    with op_scope("LinalgCrossBackward0"):
        return _la.cross(input, other, axis=dim)
