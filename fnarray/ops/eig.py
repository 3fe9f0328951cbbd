"""``eig``: eigenvalues and right eigenvectors of general (non-symmetric) square matrices.

``eig(a) -> (w, v)`` with ``a @ v == v * w``; both outputs are complex (``complex64`` for
``float32``/``complex64`` input, ``complex128`` otherwise), whatever the spectrum.  Each
eigenvector has unit norm and its largest-magnitude component real and positive: a
deterministic phase (NumPy leaves it to LAPACK), so that the eigenvectors are a smooth
function of ``a`` and have a derivative.

Derivatives (JAX's convention for complex values; Magnus 1985, Eqs. for simple
eigenvalues): with ``P = V^-1 dA V``, ``dw = diag(P)`` and ``dV = V (F * P)`` with
``F[i, j] = 1 / (w[j] - w[i])``, then projected so the norm and the phase convention above
hold to first order.  They need *distinct* eigenvalues (and a diagonalisable ``a``): at a
repeated eigenvalue the eigenvector derivative is infinite/NaN, as in JAX.  When only the
eigenvalues are used, the reverse rule skips the ``F`` term, so eigenvalue gradients stay
finite wherever ``V`` is invertible.  The VJP is the exact transpose of the JVP under
``Re sum(ct * t)``.  CuPy has no general eigensolver, so on a GPU the kernel runs on the host.
"""

from __future__ import annotations

import numpy as np

from fnarray import api as fa
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray, is_float, is_inexact
from fnarray.ops.decompositions import (_batch_front, _diag, _diag_embed, _eye_like, _gap_inverse,
                                        _mm, _square_check, _t, solve)


def _complex_dtype(dtype) -> np.dtype:
    return np.dtype(np.complex64) if dtype in (np.float32, np.complex64) else np.dtype(np.complex128)


def _eig_impl(xp, a):
    ctype = _complex_dtype(a.dtype)
    if hasattr(xp.linalg, "eig"):
        w, v = xp.linalg.eig(a)
    else:  # pragma: no cover - CuPy: LAPACK on the host
        w, v = (xp.asarray(r) for r in np.linalg.eig(xp.asnumpy(a)))
    w, v = w.astype(ctype), v.astype(ctype)
    if v.shape[-1] == 0 or v.size == 0:
        return w, v
    lead = xp.take_along_axis(v, xp.argmax(xp.abs(v), axis=-2)[..., None, :], axis=-2)
    return w, v * (xp.abs(lead) / lead)


def _eig_abstract(a):
    _square_check("eig", a)
    if not is_inexact(a.dtype) or a.dtype.itemsize < 4:  # float16 and bfloat16 too
        raise TypeError(f"eig: expected float32/64 or complex64/128 matrices, got {a.dtype}")
    ctype = _complex_dtype(a.dtype)
    return (ShapedArray(a.shape[:-1], ctype), ShapedArray(a.shape, ctype))


def _lead_mask(v):
    """One-hot (..., n, n): 1 at the largest-magnitude component of each eigenvector."""
    n = v.shape[-1]
    if v.size == 0:
        return fa.zeros_like(v)
    idx = fa.argmax(fa.abs(v), axis=-2, keepdims=True)
    rows = fa.reshape(fa.arange(n, device=v.device), (n, 1))
    return fa.astype(rows == idx, v.dtype)


def _inverse(v):
    return solve.bind(v, fa.broadcast_to(_eye_like(v, v.shape[-1]), v.shape))


def _eig_jvp(primals, tangents):
    a, = primals
    w, v = eig.bind(a)
    p = _mm(_inverse(v), fa.astype(tangents[0], v.dtype), v)
    dv = _mm(v, _gap_inverse(w) * p)
    # unit norm: no component along v in Re(v^H dv)
    dv = dv - v * fa.real(fa.sum(fa.conj(v) * dv, axis=-2, keepdims=True))
    # phase: the leading component stays real
    mask = _lead_mask(v)
    lead = fa.real(fa.sum(mask * v, axis=-2, keepdims=True))
    dv = dv - 1j * v * (fa.imag(fa.sum(mask * dv, axis=-2, keepdims=True)) / lead)
    return (w, v), (_diag(p), dv)


def _eig_vjp(cts, a, *, out):
    wbar, vbar = cts
    w, v = out
    mask = _lead_mask(v)
    lead = fa.real(fa.sum(mask * v, axis=-2, keepdims=True))
    g = vbar - 1j * mask * (fa.imag(fa.sum(vbar * v, axis=-2, keepdims=True)) / lead)
    g = g - fa.conj(v) * fa.real(fa.sum(g * v, axis=-2, keepdims=True))
    vg = _mm(_t(v), g)
    pbar = fa.where(vg == 0, fa.zeros((), vg.dtype), _gap_inverse(w) * vg) + _diag_embed(wbar)
    abar = _mm(_t(_inverse(v)), pbar, _t(v))
    return (fa.real(abar) if is_float(a.dtype) else abar,)


eig = declare("eig", impl=_eig_impl, abstract=_eig_abstract, jvp=_eig_jvp, vjp=_eig_vjp,
              batch=None, multiple_results=True)
eig.batch = _batch_front(eig, 2)
