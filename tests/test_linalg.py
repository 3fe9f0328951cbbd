"""``fa.linalg`` against ``numpy.linalg``, and derivatives of the factorisations through
gauge-invariant functions (the primitives' own rules are also checked by the registry test
through ``tests/samples/decompositions.py``)."""

import numpy as np
import pytest

import fnarray as fa
from fnarray.testing import check_grads

L = fa.linalg
RNG = np.random.default_rng(0)
A = RNG.standard_normal((2, 4, 4))
TALL = RNG.standard_normal((5, 3))
VEC = RNG.standard_normal(4)


def _spd(n=4):
    w = RNG.standard_normal((n, n))
    return w @ w.T + n * np.eye(n)


def _symmetric(n=4):
    q, _ = np.linalg.qr(RNG.standard_normal((n, n)))
    return (q * (1.0 + 1.5 * np.arange(n))) @ q.T


def close(got, expected, tol=1e-10):
    np.testing.assert_allclose(np.asarray(got), expected, rtol=tol, atol=tol)


def test_values_match_numpy():
    close(L.det(A), np.linalg.det(A))
    sign, logabs = L.slogdet(A)
    close(sign, np.linalg.slogdet(A)[0])
    close(logabs, np.linalg.slogdet(A)[1])
    close(L.inv(A), np.linalg.inv(A))
    close(L.solve(A[0], VEC), np.linalg.solve(A[0], VEC))
    close(L.solve(A, TALL[:4]), np.linalg.solve(A, TALL[:4]))
    s = _symmetric()
    close(L.eigvalsh(s), np.linalg.eigvalsh(s))
    close(L.svdvals(TALL), np.linalg.svd(TALL, compute_uv=False))
    close(L.pinv(TALL), np.linalg.pinv(TALL))
    close(L.matrix_power(A, 5), np.linalg.matrix_power(A, 5))
    close(L.matrix_power(A, -3), np.linalg.matrix_power(A, -3), 1e-8)
    close(L.matrix_power(A, 0), np.linalg.matrix_power(A, 0))
    assert int(L.matrix_rank(np.outer(VEC, VEC))) == 1
    close(L.trace(A, offset=1), np.trace(A, 1, -2, -1))
    close(L.diagonal(A), np.diagonal(A, 0, -2, -1))
    x, y = RNG.standard_normal((2, 3)), RNG.standard_normal(3)
    close(L.cross(x, y), np.cross(x, y))
    close(L.outer(VEC, VEC), np.outer(VEC, VEC))
    assert isinstance(L.eigh(s), L.EighResult) and isinstance(L.slogdet(A), L.SlogdetResult)


def test_cholesky_upper_and_not_positive_definite():
    s = _spd()
    close(L.cholesky(s), np.linalg.cholesky(s))
    close(L.cholesky(s, upper=True), np.linalg.cholesky(s).T)
    bad = np.stack([s, -s])
    out = np.asarray(L.cholesky(bad))
    close(out[0], np.linalg.cholesky(s))
    assert np.isnan(out[1]).all()


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (2, 5, 3)])
def test_factorisations_reconstruct(shape):
    x = RNG.standard_normal(shape)
    for full in (False, True):
        u, s, vh = L.svd(x, full_matrices=full)
        k = s.shape[-1]
        close(np.asarray(u)[..., :k] * np.asarray(s)[..., None, :] @ np.asarray(vh)[..., :k, :], x)
        uu = np.asarray(u)
        close(np.swapaxes(uu, -1, -2) @ uu, np.broadcast_to(np.eye(k if not full else uu.shape[-1]),
                                                           uu.shape[:-2] + (uu.shape[-1],) * 2))
    for mode in ("reduced", "complete"):
        q, r = L.qr(x, mode=mode)
        close(np.asarray(q) @ np.asarray(r), x)
        close(np.asarray(r), np.triu(np.asarray(r)))


@pytest.mark.parametrize("ord", [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf])
def test_matrix_norms(ord):
    close(L.norm(TALL, ord=ord), np.linalg.norm(TALL, ord=ord))
    close(L.norm(A, ord=ord, axis=(2, 0), keepdims=True),
          np.linalg.norm(A, ord=ord, axis=(2, 0), keepdims=True))


@pytest.mark.parametrize("ord", [None, 1, 2, 3, 0, 0.5, -1, np.inf, -np.inf])
def test_vector_norms(ord):
    close(L.norm(VEC, ord=ord), np.linalg.norm(VEC, ord=ord))
    close(L.norm(A, ord=ord, axis=1), np.linalg.norm(A, ord=ord, axis=1))
    close(L.vector_norm(A, axis=(0, 2), ord=2 if ord is None else ord, keepdims=True),
          np.linalg.norm(A.transpose(1, 0, 2).reshape(4, -1), ord=ord, axis=1)[None, :, None])
    close(L.matrix_norm(A, ord="fro"), np.linalg.norm(A, axis=(-2, -1)))


@pytest.mark.parametrize("ord", [None, 1, 3, np.inf])
def test_norm_gradient_at_zero_is_a_subgradient(ord):
    g = fa.grad(lambda x: L.norm(x, ord=ord))(fa.zeros(3, dtype=fa.float64))
    close(g, np.zeros(3))
    g = fa.grad(lambda x: L.norm(x, ord=ord))(fa.asarray(VEC))
    expected = {None: VEC / np.linalg.norm(VEC), 1: np.sign(VEC),
                3: np.sign(VEC) * VEC ** 2 / np.linalg.norm(VEC, 3) ** 2,
                np.inf: (np.abs(VEC) == np.abs(VEC).max()) * np.sign(VEC)}[ord]
    # 1e-6: the engine's pow derivative evaluates ``y - 1`` of a weak scalar exponent in
    # float32 (see the report), which limits p-norm gradients to ~1e-7 relative accuracy.
    close(g, expected, 1e-6)


GAUGE_INVARIANT = {
    "det": (lambda x: L.det(x), A),
    "slogdet": (lambda x: L.slogdet(x).logabsdet, A),
    "inv": (lambda x: L.inv(x), A),
    "solve": (lambda x: L.solve(x, VEC), A[0]),
    "cholesky": (lambda x: L.cholesky(x), _spd()),
    "eigvalsh_sum": (lambda x: fa.sum(L.eigvalsh(x)), _symmetric()),
    "eigh_projector": (lambda x: fa.abs(L.eigh(x).eigenvectors[:, 0]) ** 2, _symmetric()),
    "svd_reconstruct": (lambda x: (lambda u, s, vh: (u * s) @ vh)(*L.svd(x, full_matrices=False)),
                        TALL),
    "svd_abs_vectors": (lambda x: fa.abs(L.svd(x, full_matrices=False).U * L.svd(
        x, full_matrices=False).Vh[:, :1].T), TALL),
    "svdvals_wide": (lambda x: L.svdvals(x), TALL.T),
    "qr_reconstruct": (lambda x: (lambda q, r: q @ r)(*L.qr(x)), TALL.T),
    "pinv": (lambda x: L.pinv(x), TALL),
    "norm_nuc": (lambda x: L.norm(x, "nuc"), TALL),
    "norm_2": (lambda x: L.norm(x, 2), TALL),
    "matrix_power": (lambda x: L.matrix_power(x, -2), A[1]),
}


@pytest.mark.parametrize("name", sorted(GAUGE_INVARIANT))
def test_derivatives_of_compositions(name):
    f, x = GAUGE_INVARIANT[name]
    check_grads(f, [fa.asarray(x)], order=2 if name in ("det", "eigvalsh_sum", "solve") else 1)


def test_vmap_of_grad():
    xs = fa.asarray(A)
    got = fa.vmap(fa.grad(lambda x: L.slogdet(x).logabsdet))(xs)
    close(got, np.swapaxes(np.linalg.inv(A), -1, -2))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: L.det(np.ones((2, 3))), ValueError, r"det: expected square .* \(2, 3\)"),
    (lambda: L.inv(np.ones(3)), ValueError, "inv: expected a matrix"),
    (lambda: L.solve(np.eye(3), np.ones(4)), ValueError, r"solve: .*\(4,\)"),
    (lambda: L.solve(np.zeros((2, 2)), np.ones(2)), np.linalg.LinAlgError, "singular"),
    (lambda: L.eigh(np.ones((2, 2), np.float16)), TypeError, "float16"),
    (lambda: L.norm(np.ones(3), ord="fro"), ValueError, "matrix norm"),
    (lambda: L.matrix_norm(np.ones((2, 2)), ord=3), ValueError, "ord must be"),
    (lambda: L.qr(np.ones((2, 2)), mode="r"), ValueError, "mode"),
    (lambda: L.cross(np.ones(2), np.ones(2)), ValueError, "size 3"),
    (lambda: L.matrix_power(np.eye(2), 1.5), TypeError, "integer"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
