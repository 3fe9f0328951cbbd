"""Matrix factorisations and solves: ``cholesky``, ``qr``, ``eigh``, ``svd``, ``solve``,
``det`` and ``slogdet``.

Every primitive acts on the last two axes and treats the leading axes as a batch (as
``numpy.linalg`` does), so each batching rule only moves the batch axis to the front.

Derivatives follow the standard matrix-calculus identities; each VJP is written as the exact
transpose of its JVP (so ``<ct, J t> == <J^T ct, t>`` holds to rounding).  Assumptions:

* ``cholesky`` and ``eigh`` factor the *symmetric part* ``(a + a^H) / 2`` of their input, so
  they are smooth functions of every entry and their derivatives see symmetrised tangents
  (NumPy reads one triangle instead; the two agree on symmetric input).
* ``eigh`` needs distinct eigenvalues and ``svd`` distinct, non-zero singular values for the
  eigen-/singular-vector derivatives (they divide by the gaps); eigen-/singular-values alone
  are differentiable, but the rules compute the full formula, so repeated values give
  non-finite vector derivatives as in JAX.  Eigen-/singular-vectors are determined up to sign;
  the derivative is that of the vectors NumPy returns, continued smoothly.
* ``qr`` (reduced) needs a full-rank leading ``k x k`` block (``k = min(m, n)``).
* ``cholesky`` of a matrix that is not positive definite is all NaN (as in JAX), so one
  bad matrix does not abort a batch; ``fa.linalg.cholesky`` documents this too.
* ``solve``, ``det`` and ``slogdet`` need a non-singular matrix for their derivatives.
Complex input: ``cholesky`` and ``eigh`` factor the Hermitian part; the rules of these and
of ``svd`` use conjugate transposes.  Complex eigenvectors (and pairs of singular vectors)
are determined up to a phase each: their derivatives are JAX's, with ``diag(V^H dV) == 0``,
so only phase-invariant functions of them (projectors, ``u_i v_i^H``) have a meaningful
derivative.  ``slogdet``'s sign (on the unit circle) gets a derivative; ``solve`` and ``det``
are holomorphic.  All follow JAX's convention (a VJP is the transpose of the JVP, without
conjugation).  Complex ``qr`` keeps R's diagonal real (as LAPACK does), so it is unique and
its derivative needs no phase convention.
"""

from __future__ import annotations

import numpy as np

from fnarray import api as fa
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray
from fnarray.ops._util import bdim_to_front, batch_size


# --- helpers (all fnarray ops, so rules stay differentiable and batchable) -----------------------

def _t(x):
    return fa.matrix_transpose(x)


def _h(x):
    """Conjugate transpose of the last two axes (the transpose for real ``x``)."""
    return fa.conj(_t(x)) if x.dtype.kind == "c" else _t(x)


def _sym(x):
    """The Hermitian (for real ``x``: symmetric) part."""
    return (x + _h(x)) * 0.5


def _mm(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = fa.matmul(out, x)
    return out


def _diag(x):
    """The main diagonal of the last two axes, as the last axis."""
    return fa.diagonal(x, axis1=-2, axis2=-1)


def _eye_like(x, n):
    from fnarray.api._convert import device_of
    return fa.eye(n, dtype=x.dtype, device=device_of(x))


def _diag_embed(v):
    """``(..., k) -> (..., k, k)`` with ``v`` on the diagonal."""
    return fa.expand_dims(v, -1) * _eye_like(v, v.shape[-1])


def _gap_inverse(w):
    """``F[i, j] = 1 / (w[j] - w[i])`` off the diagonal, 0 on it (for ascending ``w``)."""
    diff = fa.expand_dims(w, -2) - fa.expand_dims(w, -1)
    eye = _eye_like(w, w.shape[-1])
    return (1.0 - eye) / (diff + eye)


def _solve(a, b):
    return solve.bind(a, b)


def _right_solve(b, a):
    """``b a^{-1}``."""
    return _t(_solve(_t(a), _t(b)))


def _square_check(op, a):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: expected a stack of square matrices (..., n, n), got shape "
                         f"{a.shape}")


def _solve_kernel(xp, a, b):
    """``xp.linalg.solve``, naming the fnarray op when LAPACK finds a singular matrix."""
    try:
        return xp.linalg.solve(a, b)
    except np.linalg.LinAlgError as e:
        raise np.linalg.LinAlgError(
            f"solve: {e}: the matrix of shape {a.shape} is singular; use fa.linalg.pinv for a "
            f"least-squares solution") from None


def _batch_front(prim, n_out):
    """Batching for a primitive on stacked matrices: batch axes to the front, bind again."""
    def rule(vals, dims, **params):
        size = batch_size(vals, dims)
        moved = [bdim_to_front(v, d, size) for v, d in zip(vals, dims)]
        out = prim.bind(*moved, **params)
        return out, ((0,) * n_out if prim.multiple_results else 0)
    return rule


# --- cholesky ---------------------------------------------------------------------------------

def _phi(x):
    """Lower triangle with the diagonal halved (self-adjoint under <., .>)."""
    return fa.tril(x) - 0.5 * _diag_embed(_diag(x))


def _chol_jvp(primals, tangents):
    a, = primals
    l = cholesky.bind(a)
    s = _sym(tangents[0])
    x = _right_solve(_solve(l, s), _h(l))      # L^{-1} S L^{-H}
    return l, _mm(l, _phi(x))


def _chol_vjp(ct, a, *, out):
    # The adjoint of the JVP is herm(L^{-H} phi(L^H C) L^{-1}); for complex input the VJP
    # (JAX's convention: the transpose) is that adjoint conjugated on both sides.
    l = out
    cplx = a.dtype.kind == "c"
    ct = fa.conj(ct) if cplx else ct
    p = _phi(_mm(_h(l), ct))
    g = _sym(_right_solve(_solve(_h(l), p), l))
    return (fa.conj(g) if cplx else g,)


def _chol_abstract(a):
    _square_check("cholesky", a)
    return a


def _chol_impl(xp, a):
    """Cholesky factor of the symmetric part; matrices that are not positive definite get a
    NaN factor (as in JAX) instead of aborting the whole batch."""
    sym = (a + xp.conj(xp.swapaxes(a, -1, -2))) / 2
    try:
        return xp.linalg.cholesky(sym)
    except np.linalg.LinAlgError:
        out = xp.full(sym.shape, xp.nan, dtype=sym.dtype)
        for idx in np.ndindex(sym.shape[:-2]):  # error path only: find the failing matrices
            try:
                out[idx] = xp.linalg.cholesky(sym[idx])
            except np.linalg.LinAlgError:
                pass
        return out


cholesky = declare(
    "cholesky", impl=_chol_impl,
    abstract=_chol_abstract, jvp=_chol_jvp, vjp=_chol_vjp, batch=None)
cholesky.batch = _batch_front(cholesky, 1)


# --- qr (reduced) -----------------------------------------------------------------------------

def _skew_lower(c):
    """``Omega = tril(c, -1) - tril(c, -1)^H`` (plus ``i Im diag(c)`` for complex ``c``, which
    keeps R's diagonal real as LAPACK's is): the skew-Hermitian part determined by ``c``."""
    low = fa.tril(c, -1)
    omega = low - _h(low)
    if c.dtype.kind == "c":
        omega = omega + _diag_embed(1j * fa.imag(_diag(c)))
    return omega


def _qr_square_jvp(q, r, da):
    """(dQ, dR) for ``A = QR`` with ``A`` of shape (m, k), m >= k."""
    b = _right_solve(da, r)                    # dA R^{-1}
    c = _mm(_h(q), b)
    omega = _skew_lower(c)
    dq = b - _mm(q, c) + _mm(q, omega)
    dr = _mm(c - omega, r)
    return dq, dr


def _qr_square_vjp(q, r, qbar, rbar):
    """The adjoint of ``_qr_square_jvp`` (conjugate transposes for complex input)."""
    m = _mm(rbar, _h(r)) - _mm(_h(q), qbar)
    n = m - fa.tril(m - _h(m), -1)
    if m.dtype.kind == "c":
        n = n - _diag_embed(1j * fa.imag(_diag(m)))
    return _right_solve(qbar + _mm(q, n), _h(r))   # (Qbar + Q N) R^{-H}


def _qr_jvp(primals, tangents):
    a, = primals
    q, r = qr.bind(a)
    da = tangents[0]
    m, n = a.shape[-2:]
    if m >= n:
        dq, dr = _qr_square_jvp(q, r, da)
        return (q, r), (dq, dr)
    # Wide: A = [X Y] with X square; R = [R_X, Q^H Y].
    dq, drx = _qr_square_jvp(q, r[..., :m], da[..., :m])
    dry = _mm(_h(dq), a[..., m:]) + _mm(_h(q), da[..., m:])
    return (q, r), (dq, fa.concatenate([drx, dry], axis=-1))


def _qr_vjp(cts, a, *, out):
    # The adjoint of the JVP; for complex input the VJP (JAX's convention: the transpose)
    # is that adjoint conjugated on both sides.
    qbar, rbar = cts
    q, r = out
    cplx = a.dtype.kind == "c"
    if cplx:
        qbar, rbar = fa.conj(qbar), fa.conj(rbar)
    m, n = a.shape[-2:]
    if m >= n:
        abar = _qr_square_vjp(q, r, qbar, rbar)
    else:
        ry = rbar[..., m:]
        xbar = _qr_square_vjp(q, r[..., :m], qbar + _mm(a[..., m:], _h(ry)), rbar[..., :m])
        abar = fa.concatenate([xbar, _mm(q, ry)], axis=-1)
    return (fa.conj(abar) if cplx else abar,)


def _qr_abstract(a):
    if a.ndim < 2:
        raise ValueError(f"qr: expected a stack of matrices (..., m, n), got shape {a.shape}")
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    return (ShapedArray(batch + (m, k), a.dtype), ShapedArray(batch + (k, n), a.dtype))


qr = declare(
    "qr", impl=lambda xp, a: tuple(xp.linalg.qr(a, mode="reduced")),
    abstract=_qr_abstract, jvp=_qr_jvp, vjp=_qr_vjp, batch=None, multiple_results=True)
qr.batch = _batch_front(qr, 2)


# --- eigh -------------------------------------------------------------------------------------

def _eigh_jvp(primals, tangents):
    a, = primals
    w, v = eigh.bind(a)
    p = _mm(_h(v), _sym(tangents[0]), v)       # V^H S V
    dw = _diag(p)
    # Complex eigenvectors: the tangent is the one with diag(V^H dV) == 0 (as JAX's);
    # the phase of each eigenvector is arbitrary, so only phase-invariant functions of V
    # (projectors v v^H, |v|) have a meaningful derivative.
    return (w, v), (fa.real(dw) if a.dtype.kind == "c" else dw, _mm(v, _gap_inverse(w) * p))


def _eigh_vjp(cts, a, *, out):
    # The adjoint is herm(V (diag(wbar) + F o (V^H vbar)) V^H); for complex input the VJP
    # (JAX's convention: the transpose) is that adjoint conjugated on both sides.
    wbar, vbar = cts
    w, v = out
    cplx = a.dtype.kind == "c"
    vbar = fa.conj(vbar) if cplx else vbar
    inner = _diag_embed(wbar) + _gap_inverse(w) * _mm(_h(v), vbar)
    g = _sym(_mm(v, inner, _h(v)))
    return (fa.conj(g) if cplx else g,)


def _eigh_abstract(a):
    _square_check("eigh", a)
    real = np.dtype(np.zeros((), a.dtype).real.dtype)
    return (ShapedArray(a.shape[:-1], real), ShapedArray(a.shape, a.dtype))


eigh = declare(
    "eigh",
    impl=lambda xp, a: tuple(xp.linalg.eigh((a + xp.conj(xp.swapaxes(a, -1, -2))) / 2)),
    abstract=_eigh_abstract, jvp=_eigh_jvp, vjp=_eigh_vjp, batch=None, multiple_results=True)
eigh.batch = _batch_front(eigh, 2)


# --- svd (reduced) ----------------------------------------------------------------------------

def _svd_parts(s):
    """``F`` (inverse gaps of the squared singular values) and ``1/s`` as a row vector."""
    return _gap_inverse(s * s), fa.expand_dims(1.0 / s, -2)


def _svd_jvp(primals, tangents):
    a, = primals
    u, s, vh = svd.bind(a)
    v = _h(vh)
    da = tangents[0]
    f, s_inv = _svd_parts(s)
    row, col = fa.expand_dims(s, -2), fa.expand_dims(s, -1)   # multiply columns / rows by s
    p = _mm(_h(u), da, v)
    omega_u = f * (p * row + col * _h(p))
    omega_v = f * (col * p + _h(p) * row)
    du = _mm(u, omega_u) + (_mm(da, v) - _mm(u, p)) * s_inv
    dv = _mm(v, omega_v) + (_mm(_h(da), u) - _mm(v, _h(p))) * s_inv
    ds = _diag(p)
    if a.dtype.kind == "c":
        # Each pair (u_i, v_i) is determined up to a common phase; as JAX, the tangent keeps
        # diag(V^H dV) == 0 and gives u_i the phase change i Im(P_ii) / s_i.
        du = du + u * (fa.expand_dims(1j * fa.imag(ds), -2) * s_inv)
        ds = fa.real(ds)
    return (u, s, vh), (du, ds, _h(dv))


def _svd_vjp(cts, a, *, out):
    # The adjoint of the JVP, written with conjugate transposes; for complex input the VJP
    # (JAX's convention: the transpose) is that adjoint conjugated on both sides.
    ubar, sbar, vhbar = cts
    u, s, vh = out
    cplx = a.dtype.kind == "c"
    if cplx:
        ubar, vhbar = fa.conj(ubar), fa.conj(vhbar)
    v, vbar = _h(vh), _h(vhbar)
    f, s_inv = _svd_parts(s)
    row, col = fa.expand_dims(s, -2), fa.expand_dims(s, -1)
    utu = _mm(_h(u), ubar)
    vtv = _mm(_h(v), vbar)
    g, h = f * utu, f * vtv
    pbar = (g + _h(g)) * row + col * (h + _h(h)) + _diag_embed(sbar)
    if cplx:  # the adjoint of the phase term of the JVP
        pbar = pbar + _diag_embed(1j * fa.imag(_diag(utu)) / s)
    abar = (_mm(u, pbar, vh)
            + _mm((ubar - _mm(u, utu)) * s_inv, vh)
            + _mm(u, _h((vbar - _mm(v, vtv)) * s_inv)))
    return (fa.conj(abar) if cplx else abar,)


def _svd_abstract(a):
    if a.ndim < 2:
        raise ValueError(f"svd: expected a stack of matrices (..., m, n), got shape {a.shape}")
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    real = np.dtype(np.zeros((), a.dtype).real.dtype)
    return (ShapedArray(batch + (m, k), a.dtype), ShapedArray(batch + (k,), real),
            ShapedArray(batch + (k, n), a.dtype))


svd = declare(
    "svd", impl=lambda xp, a: tuple(xp.linalg.svd(a, full_matrices=False)),
    abstract=_svd_abstract, jvp=_svd_jvp, vjp=_svd_vjp, batch=None, multiple_results=True)
svd.batch = _batch_front(svd, 3)


# --- solve ------------------------------------------------------------------------------------

def _solve_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    x = solve.bind(a, b)
    rhs = None if db is None else db
    if da is not None:
        rhs = -_mm(da, x) if rhs is None else rhs - _mm(da, x)
    return x, (None if rhs is None else solve.bind(a, rhs))


def _solve_vjp(ct, a, b, *, out):
    bbar = solve.bind(_t(a), ct)
    return -_mm(bbar, _t(out)), bbar


def _solve_abstract(a, b):
    _square_check("solve", a)
    if b.ndim != a.ndim or b.shape[:-1] != a.shape[:-1]:
        raise ValueError(f"solve: right-hand side of shape {b.shape} does not match the "
                         f"matrices of shape {a.shape}; expected (..., {a.shape[-1]}, k) with "
                         f"the same leading axes")
    return ShapedArray(b.shape, a.dtype)


solve = declare(
    "solve", impl=_solve_kernel,
    abstract=_solve_abstract, jvp=_solve_jvp, vjp=_solve_vjp, batch=None)
solve.batch = _batch_front(solve, 1)


# --- det and slogdet ----------------------------------------------------------------------------

def _trace_inv_prod(a, da):
    """``tr(A^{-1} dA)`` over the last two axes."""
    return fa.sum(_diag(_solve(a, da)), axis=-1)


def _inv_t(a):
    return _t(_solve(a, fa.broadcast_to(_eye_like(a, a.shape[-1]), a.shape)))


def _det_jvp(primals, tangents):
    a, = primals
    d = det.bind(a)
    return d, d * _trace_inv_prod(a, tangents[0])


def _det_vjp(ct, a, *, out):
    return (fa.expand_dims(fa.expand_dims(ct * out, -1), -1) * _inv_t(a),)


def _det_abstract(a):
    _square_check("det", a)
    return ShapedArray(a.shape[:-2], a.dtype)


det = declare("det", impl=lambda xp, a: xp.asarray(xp.linalg.det(a)),
              abstract=_det_abstract, jvp=_det_jvp, vjp=_det_vjp, batch=None)
det.batch = _batch_front(det, 1)


def _slogdet_jvp(primals, tangents):
    a, = primals
    sign, logabs = slogdet.bind(a)
    tr = _trace_inv_prod(a, tangents[0])
    if a.dtype.kind != "c":
        return (sign, logabs), (None, tr)
    # d log|det| = Re tr(A^{-1} dA); the complex sign turns by i Im tr(A^{-1} dA).
    return (sign, logabs), (sign * (1j * fa.imag(tr)), fa.real(tr))


def _slogdet_vjp(cts, a, *, out):
    ct_sign, ct = cts
    if a.dtype.kind == "c":  # Re(ct_sign sign' + ct logabs') == Re(w tr(A^{-1} dA))
        ct = ct + 1j * fa.imag(ct_sign * out[0])
    return (fa.expand_dims(fa.expand_dims(ct, -1), -1) * _inv_t(a),)


def _slogdet_abstract(a):
    _square_check("slogdet", a)
    return (ShapedArray(a.shape[:-2], a.dtype), ShapedArray(a.shape[:-2], a.dtype))


slogdet = declare(
    "slogdet", impl=lambda xp, a: tuple(xp.asarray(r) for r in xp.linalg.slogdet(a)),
    abstract=_slogdet_abstract, jvp=_slogdet_jvp, vjp=_slogdet_vjp, batch=None,
    multiple_results=True)
slogdet.batch = _batch_front(slogdet, 2)
