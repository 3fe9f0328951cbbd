"""More of ``fa.random``: PRNGKey, split shapes, independent permutations, complex normals
and the gamma family, Laplace, multivariate normal, Rademacher and orthogonal samples.

Statistical checks use fixed keys, so they are deterministic: a Kolmogorov-Smirnov
distance against the exact CDF (below the 0.1% critical value ``1.95 / sqrt(n)``) and
moments within a few standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fnarray as fa
import fnarray.random as fr
from fnarray.testing import check_grads

N = 20_000
KS_LIMIT = 1.95 / math.sqrt(N)
K = fr.PRNGKey(42)


def ks_distance(samples, cdf) -> float:
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    f = np.array([cdf(v) for v in x])
    n = x.size
    return float(max((np.arange(1, n + 1) / n - f).max(), (f - np.arange(n) / n).max()))


def normal_cdf(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_prngkey_and_split_shapes():
    np.testing.assert_array_equal(fr.PRNGKey(7), fr.key(7))
    keys = fr.split(K, (2, 3))
    assert keys.shape == (2, 3, 2) and keys.dtype == fa.uint32
    np.testing.assert_array_equal(np.asarray(keys).reshape(6, 2), fr.split(K, 6))
    assert fr.split(K, 4).shape == (4, 2) and fr.split(K, ()).shape == (2,)
    assert len({tuple(k) for k in np.asarray(keys).reshape(6, 2).tolist()}) == 6


def test_permutation_independent():
    x = fa.arange(200).reshape(4, 50)
    p = np.asarray(fr.permutation(K, x, axis=1, independent=True))
    for row, orig in zip(p, np.asarray(x)):
        assert sorted(row.tolist()) == orig.tolist()
    assert len({tuple(r - r.min()) for r in p}) == 4  # each row its own permutation
    cols = np.asarray(fr.permutation(K, x, axis=0, independent=True))
    assert (np.sort(cols, axis=0) == np.asarray(x)).all()
    with pytest.raises(TypeError, match="independent=True needs an array"):
        fr.permutation(K, 5, independent=True)


@pytest.mark.parametrize("dtype", [fa.complex64, fa.complex128])
def test_complex_normal(dtype):
    z = np.asarray(fr.normal(K, (N,), dtype))
    assert z.dtype == dtype
    assert abs(np.mean(np.abs(z) ** 2) - 1) < 0.03
    assert abs(np.mean(z.real * z.imag)) < 0.02  # independent parts
    assert ks_distance(z.real, lambda v: normal_cdf(v * math.sqrt(2))) < KS_LIMIT
    assert ks_distance(z.imag, lambda v: normal_cdf(v * math.sqrt(2))) < KS_LIMIT


def gamma_cdf_int(k):
    return lambda x: 1 - math.exp(-x) * sum(x ** i / math.factorial(i) for i in range(k)) if x > 0 else 0.0


@pytest.mark.parametrize("a, cdf", [
    (0.5, lambda x: math.erf(math.sqrt(max(x, 0.0)))),  # Gamma(1/2) = Z**2 / 2
    (1.0, gamma_cdf_int(1)),
    (3.0, gamma_cdf_int(3)),
])
def test_gamma_ks(a, cdf):
    g = fr.gamma(K, a, (N,), fa.float64)
    assert g.dtype == fa.float64 and float(fa.min(g)) > 0
    assert ks_distance(g, cdf) < KS_LIMIT


def test_gamma_moments_broadcast_small_shape_and_jit():
    a = fa.asarray([0.05, 0.7, 2.5, 40.0])
    g = np.asarray(fr.gamma(K, a, (N, 4)))
    assert g.dtype == np.float32
    shape = np.asarray(a, dtype=np.float64)
    # within 4 standard errors (mean: sqrt(a/N); variance: a*sqrt((2 + 6/a)/N))
    assert (np.abs(g.mean(0) - shape) < 4 * np.sqrt(shape / N)).all()
    assert (np.abs(g.var(0) - shape) < 4 * shape * np.sqrt((2 + 6 / shape) / N)).all()
    lg = np.asarray(fr.loggamma(K, 1e-3, (N,), fa.float64))
    assert np.isfinite(lg).all() and lg.min() < -700  # exp(lg) would underflow
    jitted = fa.jit(lambda k: fr.gamma(k, a, (5, 4)))(K)
    np.testing.assert_array_equal(jitted, fr.gamma(K, a, (5, 4)))
    batched = fa.vmap(lambda k: fr.gamma(k, 2.0, (3,)))(fr.split(K, 2))
    np.testing.assert_array_equal(batched[1], fr.gamma(fr.split(K, 2)[1], 2.0, (3,)))


def _reg_lower_gamma(a, x, terms=20000):
    """Reference P(a, x) in float64: series below a + 1, continued fraction above."""
    if x < a + 1:
        term = total = 1.0
        for n in range(1, terms):
            term *= x / (a + n)
            total += term
            if term < 1e-18 * total:
                break
        return math.exp(a * math.log(x) - x - math.lgamma(a + 1)) * total
    b, c, d = x + 1 - a, 1e300, 1 / (x + 1 - a)
    h = d
    for i in range(1, terms):
        an = -i * (i - a)
        b += 2
        d = 1 / (an * d + b)
        c = b + an / c
        h *= d * c
        if abs(d * c - 1) < 1e-16:
            break
    return 1 - math.exp(a * math.log(x) - x - math.lgamma(a)) * h


@pytest.mark.parametrize("a", [0.05, 0.7, 3.0, 40.0, 400.0])
def test_gamma_implicit_gradient_matches_the_inverse_cdf(a):
    # dz/da at fixed u = F(z; a) is -(dF/da) / density (F differentiated numerically here)
    z = np.asarray(fr.gamma(K, a, (4,), fa.float64))
    got = np.asarray(fa.jacfwd(lambda s: fr.gamma(K, s, (4,), fa.float64))(fa.asarray(a, dtype=fa.float64)))
    h = 1e-6 * a
    for zi, gi in zip(z, got):
        dfda = (_reg_lower_gamma(a + h, zi) - _reg_lower_gamma(a - h, zi)) / (2 * h)
        density = math.exp((a - 1) * math.log(zi) - zi - math.lgamma(a))
        np.testing.assert_allclose(gi, -dfda / density, rtol=2e-5)


def test_gamma_second_derivative_follows_the_inverse_cdf():
    def dz_da(a, z):  # the implicit first derivative, from the reference CDF
        h = 1e-6 * a
        dfda = (_reg_lower_gamma(a + h, z) - _reg_lower_gamma(a - h, z)) / (2 * h)
        return -dfda / math.exp((a - 1) * math.log(z) - z - math.lgamma(a))

    a = 2.0
    z = np.asarray(fr.gamma(K, a, (3,), fa.float64))
    second = fa.jacfwd(fa.jacfwd(lambda s: fr.gamma(K, s, (3,), fa.float64)))
    got = np.asarray(second(fa.asarray(a, dtype=fa.float64)))
    h = 1e-4
    expect = [(dz_da(a + h, zi + h * dz_da(a, zi)) - dz_da(a - h, zi - h * dz_da(a, zi))) / (2 * h)
              for zi in z]  # d/da of dz/da along the quantile path z(a) = F^-1(u; a)
    np.testing.assert_allclose(got, expect, rtol=1e-3)


def test_gamma_family_gradients_are_unbiased():
    n = N
    for a in (0.3, 4.0):  # E[z] = a and E[z**2] = a**2 + a: within 4 standard errors
        z = np.asarray(fr.gamma(K, a, (n,), fa.float64))
        dz = np.asarray(fa.jacfwd(lambda s: fr.gamma(K, s, (n,), fa.float64))(
            fa.asarray(a, dtype=fa.float64)))
        for per_sample, exact in ((dz, 1.0), (2 * z * dz, 2 * a + 1)):
            assert abs(per_sample.mean() - exact) < 4 * per_sample.std() / math.sqrt(n)
        g1 = fa.grad(lambda s: fa.mean(fr.gamma(K, s, (n,), fa.float64)))(a)
        np.testing.assert_allclose(float(g1), dz.mean(), rtol=1e-5)  # grad == mean of jacfwd
    gb = fa.grad(lambda s: fa.mean(fr.beta(K, s, 3.0, (n,), fa.float64)))(2.0)
    assert abs(float(gb) - 3.0 / 25.0) < 0.004  # d/da a/(a+b)
    gd = fa.grad(lambda al: fa.mean(fr.dirichlet(K, al, (n,), fa.float64)[:, 0]))(
        fa.asarray([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(gd, [5 / 36, -1 / 36, -1 / 36], atol=0.003)
    chi_mean = lambda s: fa.mean(fr.chisquare(K, s, (500,), fa.float64))  # noqa: E731
    np.testing.assert_allclose(fa.jit(fa.grad(chi_mean))(3.0), fa.grad(chi_mean)(3.0), rtol=1e-6)
    lg = fa.grad(lambda s: fa.sum(fr.loggamma(K, s, (3,), fa.float64)))(1e-3)
    assert np.isfinite(float(lg))


def beta_cdf_int(a, b):
    n = a + b - 1
    return lambda x: sum(math.comb(n, j) * x ** j * (1 - x) ** (n - j) for j in range(a, n + 1))


def test_beta_dirichlet_chisquare_t():
    b = fr.beta(K, 2.0, 5.0, (N,), fa.float64)
    assert ks_distance(b, beta_cdf_int(2, 5)) < KS_LIMIT
    tiny = np.asarray(fr.beta(K, 1e-3, 1e-3, (1000,)))
    assert np.isfinite(tiny).all() and ((tiny >= 0) & (tiny <= 1)).all()
    d = np.asarray(fr.dirichlet(K, fa.asarray([1.0, 2.0, 3.0]), (N,), fa.float64))
    assert d.shape == (N, 3)
    np.testing.assert_allclose(d.sum(1), 1.0, rtol=1e-12)
    assert ks_distance(d[:, 0], beta_cdf_int(1, 5)) < KS_LIMIT  # marginal Beta(1, 5)
    np.testing.assert_allclose(d.mean(0), [1 / 6, 2 / 6, 3 / 6], atol=0.01)
    assert fr.dirichlet(K, fa.ones((2, 4))).shape == (2, 4)
    c = fr.chisquare(K, 4.0, (N,), fa.float64)  # chi2(4) = 2 * Gamma(2)
    assert ks_distance(c, lambda x: gamma_cdf_int(2)(x / 2)) < KS_LIMIT
    t1 = fr.t(K, 1.0, (N,), fa.float64)  # t(1) is Cauchy
    assert ks_distance(t1, lambda x: 0.5 + math.atan(x) / math.pi) < KS_LIMIT


def test_location_scale_families():
    lap = fr.laplace(K, (N,), fa.float64)
    assert ks_distance(lap, lambda x: 0.5 * math.exp(x) if x < 0 else 1 - 0.5 * math.exp(-x)) < KS_LIMIT
    lo = fr.logistic(K, (N,), fa.float64)
    assert ks_distance(lo, lambda x: 1 / (1 + math.exp(-x))) < KS_LIMIT
    ca = fr.cauchy(K, (N,), fa.float64)
    assert ks_distance(ca, lambda x: 0.5 + math.atan(x) / math.pi) < KS_LIMIT


@pytest.mark.parametrize("method", ["cholesky", "eigh", "svd"])
def test_multivariate_normal(method):
    mean = fa.asarray([1.0, -1.0, 0.5])
    cov = fa.asarray([[2.0, 0.5, 0.1], [0.5, 1.0, -0.3], [0.1, -0.3, 0.7]])
    s = np.asarray(fr.multivariate_normal(K, mean, cov, (N,), method=method))
    assert s.shape == (N, 3) and s.dtype == np.float32
    np.testing.assert_allclose(s.mean(0), np.asarray(mean), atol=0.04)
    np.testing.assert_allclose(np.cov(s.T), np.asarray(cov), atol=0.05)
    proj = s @ np.array([1.0, 2.0, -1.0])  # a projection is normal with known moments
    m = float(np.asarray(mean) @ [1, 2, -1])
    sd = math.sqrt(float(np.array([1, 2, -1]) @ np.asarray(cov) @ [1, 2, -1]))
    assert ks_distance(proj, lambda x: normal_cdf((x - m) / sd)) < KS_LIMIT


def test_multivariate_normal_batch_and_grads():
    means = fa.zeros((4, 2))
    assert fr.multivariate_normal(K, means, fa.eye(2)).shape == (4, 2)
    with pytest.raises(ValueError, match=r"mean must be \(..., n\) and cov"):
        fr.multivariate_normal(K, fa.zeros(3), fa.eye(2))
    m0 = fa.asarray([0.3, -0.2], dtype=fa.float64)
    c0 = fa.asarray([[1.5, 0.2], [0.2, 0.8]], dtype=fa.float64)

    def sample(m, c):
        c = (c + c.T) / 2
        return fr.multivariate_normal(K, m, c, (3,), dtype=fa.float64)
    check_grads(sample, (m0, c0), order=1)


def test_rademacher_and_orthogonal():
    r = np.asarray(fr.rademacher(K, (N,)))
    assert set(np.unique(r).tolist()) == {-1, 1} and abs(r.mean()) < 0.03
    assert fr.rademacher(K, (3,), dtype=fa.float32).dtype == np.float32
    q = np.asarray(fr.orthogonal(K, 4, (500,), fa.float64))
    np.testing.assert_allclose(q @ np.swapaxes(q, -1, -2), np.broadcast_to(np.eye(4), q.shape), atol=1e-12)
    dets = np.linalg.det(q)
    assert 0.4 < (dets > 0).mean() < 0.6  # both components of O(n)
    np.testing.assert_allclose(q.mean(0), 0.0, atol=0.1)  # Haar: E[Q] = 0
    # Haar-uniform: the first column is uniform on the sphere, so q00**2 ~ Beta(1/2, 3/2)
    assert abs((q[:, 0, 0] ** 2).mean() - 0.25) < 0.03


def test_existing_names_still_work():
    idx = fr.categorical(K, fa.log(fa.asarray([0.2, 0.3, 0.5])), shape=(N,))
    np.testing.assert_allclose(np.bincount(np.asarray(idx), minlength=3) / N, [0.2, 0.3, 0.5], atol=0.015)
    tn = np.asarray(fr.truncated_normal(K, -1.0, 2.0, (N,), fa.float64))
    assert tn.min() > -1 and tn.max() < 2
    z = normal_cdf(2) - normal_cdf(-1)
    assert ks_distance(tn, lambda x: (normal_cdf(x) - normal_cdf(-1)) / z) < KS_LIMIT


def test_float64_parameters_are_not_rounded_through_float32():
    # fa.astype(0.3, float64) used to go through the default float32 (0.30000001).
    assert float(fa.astype(0.3, fa.float64)) == 0.3
    u = np.asarray(fr.uniform(K, (N,), fa.float64, minval=0.3, maxval=0.3 + 1e-9))
    assert u.min() >= 0.3 and u.max() < 0.3 + 1e-9
