"""Complex numbers under differentiation follow JAX's convention.

Every expected value below is what JAX 0.10 (x64 enabled) returns for the same program.
For a real-valued ``f`` of ``z = x + iy``, ``grad(f)(z) = df/dx - i df/dy``; with
``holomorphic=True`` it is ``f'(z)``; VJPs are transposes (no conjugation).
"""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa

Z = fa.asarray(1 + 2j, dtype=fa.complex128)


def c128(v):
    return fa.asarray(v, dtype=fa.complex128)


def f64(v):
    return fa.asarray(v, dtype=fa.float64)


def close(got, expected, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(got), expected, rtol=rtol, atol=rtol)


# --- the examples of issue 15 -------------------------------------------------------------

def test_issue_examples_match_jax():
    close(fa.grad(lambda x: fa.imag(x * (2 + 3j)))(f64(2.0)), 3.0)
    close(fa.grad(lambda x: fa.abs(x * (1 + 1j)) ** 2)(f64(2.0)), 8.0)
    close(fa.grad(lambda z: fa.abs(z) ** 2)(Z), 2 - 4j)
    with pytest.raises(TypeError, match="holomorphic=True"):
        fa.grad(lambda z: z * z)(Z)


def test_float32_examples():
    assert float(fa.grad(lambda x: fa.imag(x * (2 + 3j)))(2.0)) == 3.0
    assert complex(fa.grad(lambda z: fa.abs(z) ** 2)(1 + 2j)) == 2 - 4j


@pytest.mark.parametrize("f, expected", [
    (lambda z: fa.angle(z), -0.4 - 0.2j),
    (lambda z: fa.real(z) * fa.imag(z), 2 - 1j),
    (lambda z: fa.abs(fa.conj(z) * (2 + 1j)), 1 - 2j),
    (lambda z: fa.real(fa.log(z)), 0.2 - 0.4j),
    (lambda z: fa.abs(fa.sqrt(z)), 0.14953487812212207 - 0.29906975624424414j),
    (lambda z: fa.imag(fa.tanh(z)), 0.56810302089208 + 0.3020015982359609j),
])
def test_grad_of_real_functions_of_complex_input(f, expected):
    close(fa.grad(f)(Z), expected)
    close(fa.jit(fa.grad(f))(Z), expected)


def test_angle_of_real_input_has_zero_gradient():
    close(fa.grad(fa.angle)(f64(2.0)), 0.0)
    close(fa.angle(c128([1 + 1j, -1, 2j])), np.angle([1 + 1j, -1, 2j]))
    close(fa.angle(c128([1j]), deg=True), [90.0])


# --- holomorphic= ----------------------------------------------------------------------------

def test_holomorphic_grad_is_the_complex_derivative():
    close(fa.grad(fa.sin, holomorphic=True)(Z), 2.0327230070196656 - 3.0518977991518j)
    close(fa.grad(lambda z: fa.exp(z) * z, holomorphic=True)(Z),
          -7.205862111523265 + 2.681044576496011j)
    v, g = fa.value_and_grad(lambda z: z * z, holomorphic=True)(Z)
    close(v, (1 + 2j) ** 2)
    close(g, 2 + 4j)
    close(fa.hessian(lambda z: z * z * z, holomorphic=True)(Z), 6 * (1 + 2j))


def test_holomorphic_jacobians():
    z = c128([1 + 2j, 3j])
    expected = np.diag([2 + 4j, 6j])
    close(fa.jacrev(lambda z: z * z, holomorphic=True)(z), expected)
    close(fa.jacfwd(lambda z: z * z, holomorphic=True)(z), expected)


def test_jacobians_without_holomorphic():
    close(fa.jacfwd(lambda x: x * 1j)(f64([1.0, 1.0])), np.diag([1j, 1j]))
    close(fa.jacrev(lambda z: fa.abs(z))(c128([1.0, 1.0])), np.eye(2))
    close(fa.jacrev(lambda z: fa.real(z * z))(c128([1 + 2j, 3j])), np.diag([2 + 4j, 6j]))


@pytest.mark.parametrize("call, message", [
    (lambda: fa.grad(lambda z: z * z)(Z), "grad requires real-valued outputs, but got "
                                          "complex128"),
    (lambda: fa.grad(lambda z: z * z, holomorphic=True)(f64(1.0)),
     "grad with holomorphic=True requires inputs with complex dtype, but got float64"),
    (lambda: fa.grad(lambda z: fa.abs(z), holomorphic=True)(Z),
     "grad with holomorphic=True requires outputs with complex dtype"),
    (lambda: fa.jacfwd(lambda z: z * z)(c128([1.0])),
     "jacfwd requires real-valued inputs, but got complex128"),
    (lambda: fa.jacrev(lambda z: z * z)(c128([1.0])),
     "jacrev requires real-valued outputs, but got complex128"),
    (lambda: fa.jacfwd(lambda z: fa.abs(z), holomorphic=True)(c128([1.0])),
     "jacfwd with holomorphic=True requires outputs with complex dtype"),
])
def test_dtype_errors_match_jax(call, message):
    with pytest.raises(TypeError, match=message):
        call()


# --- primitive rules, one at a time -----------------------------------------------------------

def test_vjps_are_transposes_without_conjugation():
    ct = c128(1 + 1j)
    close(fa.vjp(lambda z: z * (2 + 3j), Z)[1](ct)[0], -1 + 5j)
    close(fa.vjp(fa.conj, Z)[1](ct)[0], 1 - 1j)
    close(fa.vjp(fa.real, Z)[1](f64(2.0))[0], 2 + 0j)
    close(fa.vjp(fa.imag, Z)[1](f64(2.0))[0], -2j)


def test_jvps_of_non_holomorphic_ops():
    out, t = fa.jvp(fa.abs, (Z,), (c128(1j),))
    close(out, np.sqrt(5.0))
    close(t, 0.8944271909999159)
    assert t.dtype == fa.float64
    close(fa.jvp(fa.real, (Z,), (c128(1 + 1j),))[1], 1.0)
    close(fa.jvp(fa.imag, (Z,), (c128(1 + 1j),))[1], 1.0)
    close(fa.jvp(fa.conj, (Z,), (c128(1 + 1j),))[1], 1 - 1j)


def test_abs_at_zero_has_zero_derivative():
    close(fa.grad(fa.abs)(c128(0.0)), 0.0)
    close(fa.jvp(fa.abs, (c128(0.0),), (c128(1 + 1j),))[1], 0.0)


def test_matmul_gradient():
    b = c128([[1 + 1j], [2j]])
    g = fa.grad(lambda a: fa.real(fa.sum(a @ b)))(c128([[1.0, 2j]]))
    close(g, [[1 + 1j, 2j]])


def test_real_to_complex_conversion_takes_the_real_part_without_warning():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = fa.grad(lambda x: fa.imag(fa.astype(x, fa.complex128) * (2 + 3j)))(f64(2.0))
    close(g, 3.0)


# --- fft ------------------------------------------------------------------------------------

def test_fft_gradients_match_jax():
    x = f64([1.0, 2.0, -0.5, 3.0])
    close(fa.grad(lambda x: fa.abs(fa.fft.fft(x)[1]) ** 2)(x), [3.0, -2.0, -3.0, 2.0])
    close(fa.grad(lambda x: fa.abs(fa.fft.rfft(x)[1]) ** 2 + fa.real(fa.fft.rfft(x)[2]))(x),
          [4.0, -3.0, -2.0, 1.0])
    c = c128([1 + 1j, 2 - 1j, 0.5j])
    w = f64([1.0, 2.0, 3.0, 4.0])
    close(fa.grad(lambda c: fa.sum(fa.fft.irfft(c, n=4) * w))(c), [2.5, -1 - 1j, -0.5])
    close(fa.grad(lambda c: fa.real(fa.fft.ifft(c)[1] * (1 + 2j)))(c),
          [0.33333333333333333 + 0.6666666666666666j, -0.7440169358562924 - 0.0446581987385206j,
           0.41068360252295905 - 0.6220084679281462j])


# --- linear algebra ----------------------------------------------------------------------------

HERMITIAN = np.array([[4.0, 1 - 2j], [1 + 2j, 6.0]])


def test_cholesky_and_slogdet_gradients_match_jax():
    a = c128(HERMITIAN)
    c = c128([[1.0, 2j], [0.5, -1 + 1j]])
    close(fa.grad(lambda a: fa.real(fa.sum(fa.linalg.cholesky(a) * c)))(a),
          [[0.14705758 + 0j, 0.18235393 + 0.11470787j],
           [0.18235393 - 0.11470787j, -0.22941573 + 0j]], rtol=1e-7)
    b = c128(HERMITIAN + 0.3j)
    close(fa.grad(lambda a: fa.linalg.slogdet(a)[1])(b),
          [[0.31279311 - 0.02372123j, -0.06685571 - 0.1126077j],
           [-0.04068055 + 0.09461228j, 0.20918312 - 0.01063366j]], rtol=1e-7)
    close(fa.grad(lambda a: fa.imag(fa.linalg.slogdet(a)[0]))(b),
          [[-0.02353423 - 0.31032716j, -0.11171994 + 0.06632864j],
           [0.09386639 + 0.04035984j, -0.01054983 - 0.207534j]], rtol=1e-7)


def test_complex_eigh():
    w, _ = fa.linalg.eigh(c128(HERMITIAN))
    close(w, np.linalg.eigvalsh(HERMITIAN))  # the Hermitian part, real eigenvalues
    assert fa.jit(fa.linalg.eigh)(c128(HERMITIAN))[0].dtype == fa.float64
    close(fa.grad(lambda a: fa.linalg.eigh(a)[0][0])(c128(HERMITIAN)),  # JAX's values
          [[0.70412415 + 0j, -0.20412415 - 0.40824829j],
           [-0.20412415 + 0.40824829j, 0.29587585 + 0j]], rtol=1e-7)


def test_complex_svd_gradients_match_jax():
    a = c128([[1 + 1j, 2, 0.5j], [0.3, -1j, 2]])
    w = c128([[1.0, 2j, 0.5], [1 - 1j, 0.2, 3.0]])
    close(fa.grad(lambda a: fa.linalg.svd(a, full_matrices=False)[1][0])(a),
          [[0.19948512 - 0.24399114j, 0.55325775 + 0.01483534j, 0.02967067 - 0.42389467j],
           [0.21932541 + 0.14835337j, 0.02967067 + 0.46404863j, 0.3569368 - 0.00741767j]],
          rtol=1e-7)

    def first_pair(a):  # u_0 v_0^H: invariant under the pair's common phase
        u, _, vh = fa.linalg.svd(a, full_matrices=False)
        return fa.real(fa.sum((u[:, :1] * vh[:1, :]) * w))

    close(fa.grad(first_pair)(a),
          [[-0.23371493 + 0.19939133j, -0.77310229 + 0.62773242j, 0.68262549 - 0.20262985j],
           [0.43194132 - 0.29788016j, 0.24175905 + 0.13091156j, 0.80875098 - 0.0535562j]],
          rtol=1e-7)


def test_complex_qr_gradients_match_jax():
    w = c128(np.arange(12).reshape(4, 3) * (1 + 0.5j))
    tall = c128([[1 + 1j, 2, 0.5j], [0.3, -1j, 2], [1, 1, 1j], [0.2j, 2, -1]])
    close(fa.grad(lambda a: fa.real(fa.sum(fa.linalg.qr(a)[0] * w))
                  + fa.imag(fa.sum(fa.linalg.qr(a)[1] * w[:3])))(tall),
          [[0.29743261 - 4.98504087j, -0.89051754 + 1.76397857j, 3.05030228 + 0.77125578j],
           [-6.33996583 - 4.99726809j, 5.15795594 + 5.00140314j, -4.21699995 + 1.80925377j],
           [-3.31872418 + 2.94624904j, 0.62925183 - 0.72554124j, -3.85192945 - 1.10330342j],
           [-12.34158942 + 0.30879774j, 0.60419932 + 2.03366402j, 1.38665218 - 5.3440117j]],
          rtol=1e-7)
    wide = tall[:2]
    close(fa.grad(lambda a: fa.real(fa.sum(fa.linalg.qr(a)[0] * w[:2, :2]))
                  + fa.imag(fa.sum(fa.linalg.qr(a)[1] * w[:2])))(wide),
          [[2.19403249 - 5.59168199j, -2.90764586 + 1.89197336j, -0.4643189 + 1.97880728j],
           [-25.95238158 - 0.89479053j, 13.58925868 + 8.20451907j, 3.32480982 + 4.5895936j]],
          rtol=1e-7)


def test_complex_pinv_and_upper_cholesky_use_conjugate_transposes():
    a = np.array([[1 + 1j, 2, 0.5j], [0.3, -1j, 2]])
    close(fa.linalg.pinv(c128(a)), np.linalg.pinv(a), rtol=1e-10)
    close(fa.linalg.cholesky(c128(HERMITIAN), upper=True),
          np.linalg.cholesky(HERMITIAN, upper=True))
