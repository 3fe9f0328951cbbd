"""``fa.linalg.eig``/``eigvals`` and ``lstsq`` against NumPy, with their derivatives."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
from fnarray.testing import check_grads

RNG = np.random.default_rng(0)
A = RNG.normal(size=(4, 4))  # two real eigenvalues and a complex pair


def _sorted(w):
    w = np.asarray(w)
    return w[np.lexsort((w.imag, w.real))]


def test_eig_matches_numpy_up_to_phase():
    w, v = fa.linalg.eig(A)
    ew, ev = np.linalg.eig(A)
    assert w.dtype == np.complex128 and v.dtype == np.complex128
    np.testing.assert_allclose(_sorted(w), _sorted(ew), rtol=1e-12)
    w, v = np.asarray(w), np.asarray(v)
    np.testing.assert_allclose(A @ v, v * w, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(v, axis=0), 1.0, rtol=1e-12)
    lead = v[np.abs(v).argmax(axis=0), np.arange(4)]
    np.testing.assert_allclose(lead.imag, 0.0, atol=1e-15)
    assert (lead.real > 0).all()
    for k in range(4):  # NumPy's vector for the same eigenvalue, up to a phase
        j = int(np.argmin(np.abs(ew - w[k])))
        np.testing.assert_allclose(abs(np.vdot(ev[:, j], v[:, k])), 1.0, rtol=1e-10)


def test_eig_dtypes_batches_and_errors():
    w, v = fa.linalg.eig(fa.eye(3, dtype=fa.float32))
    assert w.dtype == np.complex64 and v.dtype == np.complex64
    np.testing.assert_allclose(w, [1, 1, 1])
    stack = RNG.normal(size=(2, 3, 3))
    w = fa.linalg.eigvals(stack)
    for i in range(2):
        np.testing.assert_allclose(_sorted(w[i]), _sorted(np.linalg.eigvals(stack[i])), rtol=1e-12)
    c = A + 1j * RNG.normal(size=A.shape)
    np.testing.assert_allclose(_sorted(fa.linalg.eigvals(c)), _sorted(np.linalg.eigvals(c)), rtol=1e-12)
    with pytest.raises(ValueError, match=r"eig: expected square matrices"):
        fa.linalg.eig(np.ones((2, 3)))
    batched = fa.vmap(fa.linalg.eigvals)(fa.asarray(stack))
    np.testing.assert_allclose(batched, w)
    np.testing.assert_allclose(fa.jit(fa.linalg.eigvals)(fa.asarray(stack)), w)


def test_eig_derivatives():
    check_grads(lambda a: list(fa.linalg.eig(a)), (fa.asarray(A),), order=2)
    check_grads(lambda a: list(fa.linalg.eig(a)), (fa.asarray(A + 0.5j * RNG.normal(size=A.shape)),),
                order=1)
    # d(sum of eigenvalues) / dA = I (the trace), d(prod) / dA = adj(A)^T
    g = fa.grad(lambda a: fa.real(fa.sum(fa.linalg.eigvals(a))))(A)
    np.testing.assert_allclose(g, np.eye(4), atol=1e-12)
    g = fa.grad(lambda a: fa.real(fa.prod(fa.linalg.eigvals(a))))(A)
    np.testing.assert_allclose(g, np.linalg.det(A) * np.linalg.inv(A).T, rtol=1e-10)


def test_eig_derivative_policy_at_repeated_eigenvalues():
    d = np.diag([1.0, 1.0, 3.0])
    s = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.3], [0.1, 0.0, 1.0]])
    a = s @ d @ np.linalg.inv(s)  # diagonalisable with a repeated eigenvalue
    g = fa.grad(lambda m: fa.real(fa.sum(fa.linalg.eigvals(m) ** 2)))(a)
    np.testing.assert_allclose(g, 2 * a.T, rtol=1e-10, atol=1e-12)  # d tr(A^2) = 2 A^T: finite
    _, tv = fa.jvp(lambda m: fa.linalg.eig(m).eigenvectors, (fa.asarray(a),),
                   (fa.asarray(RNG.normal(size=(3, 3))),))
    assert not np.isfinite(np.asarray(tv)).all()  # eigenvectors: not differentiable there


def test_lstsq_matches_numpy():
    a, b = RNG.normal(size=(6, 3)), RNG.normal(size=(6, 2))
    cases = [(a, b, {}), (a, b[:, 0], {}), (np.c_[a, a[:, :1]], b, {"numpy_resid": True}),
             (RNG.normal(size=(3, 6)), b[:3], {"numpy_resid": True})]
    for aa, bb, kw in cases:
        got, expect = fa.linalg.lstsq(aa, bb, **kw), np.linalg.lstsq(aa, bb)
        assert len(got) == 4
        for g, e in zip(got, expect):
            assert np.shape(g) == np.shape(e)
            np.testing.assert_allclose(g, e, rtol=1e-8, atol=1e-10)
    x, res, rank, s = fa.linalg.lstsq(np.c_[a, a[:, :1]], b)  # JAX's default: residuals kept
    assert res.shape == (2,) and int(rank) == 3
    np.testing.assert_allclose(res, np.sum((b - np.c_[a, a[:, :1]] @ np.asarray(x)) ** 2, 0))
    x_jit = fa.jit(lambda p, q: fa.linalg.lstsq(p, q)[0])(fa.asarray(a), fa.asarray(b))
    np.testing.assert_allclose(x_jit, np.linalg.lstsq(a, b)[0], rtol=1e-10)
    with pytest.raises(ValueError, match=r"b must have shape \(6,\) or \(6, K\)"):
        fa.linalg.lstsq(a, np.ones(5))
    with pytest.raises(fa.ConcretizationError, match="numpy_resid"):
        fa.jit(lambda p, q: fa.linalg.lstsq(p, q, numpy_resid=True)[1])(fa.asarray(a), fa.asarray(b))


def test_lstsq_derivatives():
    a, b = fa.asarray(RNG.normal(size=(5, 3))), fa.asarray(RNG.normal(size=(5, 2)))
    check_grads(lambda p, q: fa.linalg.lstsq(p, q)[0], (a, b), order=1)
    check_grads(lambda p, q: fa.linalg.lstsq(p, q)[1], (a, b), order=1)
