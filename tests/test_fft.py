"""``fa.fft`` against ``numpy.fft``, and derivatives of the transforms (with padding,
truncation and every normalisation) against finite differences and the dot-product
identity (complex values pair as ``Re sum(conj(ct) * t)``)."""

import numpy as np
import pytest

import fnarray as fa
from fnarray.testing import check_grads

F = fa.fft
RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 6))
Z = X + 1j * RNG.standard_normal((3, 6))
NORMS = ["backward", "ortho", "forward"]


def close(got, expected):
    got = np.asarray(got)
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("n", [None, 4, 5, 8])
def test_one_axis_transforms_match_numpy(norm, n):
    close(F.fft(Z, n, norm=norm), np.fft.fft(Z, n, norm=norm))
    close(F.ifft(Z, n, axis=0, norm=norm), np.fft.ifft(Z, n, axis=0, norm=norm))
    close(F.rfft(X, n, norm=norm), np.fft.rfft(X, n, norm=norm))
    close(F.irfft(Z, n, norm=norm), np.fft.irfft(Z, n, norm=norm))
    close(F.hfft(Z, n, norm=norm), np.fft.hfft(Z, n, norm=norm))
    close(F.ihfft(X, n, norm=norm), np.fft.ihfft(X, n, norm=norm))


@pytest.mark.parametrize("norm", NORMS)
def test_n_dimensional_transforms_match_numpy(norm):
    close(F.fftn(Z, norm=norm), np.fft.fftn(Z, norm=norm))
    close(F.ifftn(Z, s=(4, 5), axes=(0, 1), norm=norm), np.fft.ifftn(Z, (4, 5), (0, 1), norm=norm))
    close(F.rfftn(X, s=(2, 7), axes=(0, 1), norm=norm), np.fft.rfftn(X, (2, 7), (0, 1), norm=norm))
    close(F.irfftn(Z, norm=norm), np.fft.irfftn(Z, norm=norm))
    close(F.irfftn(Z, s=(5, 5), axes=(1, 0), norm=norm),
          np.fft.irfftn(Z, (5, 5), axes=(1, 0), norm=norm))


def test_helpers_and_dtypes():
    close(F.fftfreq(5, 0.1), np.fft.fftfreq(5, 0.1))
    close(F.rfftfreq(6, dtype=fa.float64), np.fft.rfftfreq(6))
    close(F.fftshift(X), np.fft.fftshift(X))
    close(F.ifftshift(X, axes=1), np.fft.ifftshift(X, axes=1))
    assert F.fftfreq(4).dtype == fa.float32
    assert F.fft(fa.ones(4, dtype=fa.float32)).dtype == fa.complex64
    assert F.rfft(fa.ones(4, dtype=fa.float64)).dtype == fa.complex128
    assert F.irfft(fa.ones(3, dtype=fa.complex64)).dtype == fa.float32


DERIVATIVES = {
    "fft_padded": (lambda z: F.fft(z, 8, norm="ortho"), Z),
    "ifft_truncated": (lambda z: F.ifft(z, 4, axis=0), Z),
    "fftn": (lambda z: F.fftn(z, norm="forward"), Z),
    "rfft_odd": (lambda x: F.rfft(x, 5), X),
    "rfftn": (lambda x: F.rfftn(x, norm="ortho"), X),
    "irfft_even": (lambda z: F.irfft(z, 6), Z[:, :4]),
    "irfftn": (lambda z: F.irfftn(z, s=(3, 7)), Z),
    "hfft": (lambda z: F.hfft(z, 7, norm="ortho"), Z),
    "ihfft": (lambda x: F.ihfft(x), X),
    "roundtrip": (lambda x: F.irfft(F.rfft(x) * 2.0, 6), X),
    "fftshift": (lambda z: F.fftshift(F.fft(z)), Z),
}


@pytest.mark.parametrize("name", sorted(DERIVATIVES))
def test_derivatives(name):
    f, x = DERIVATIVES[name]
    check_grads(f, [fa.asarray(x)], order=2)


def test_real_loss_gradient_and_vmap():
    w = RNG.standard_normal(6)
    g = fa.grad(lambda x: fa.sum(F.irfft(F.rfft(x), 6) * w))(fa.asarray(X[0]))
    close(g, w)
    batched = fa.vmap(lambda x: F.rfft(x, 4))(fa.asarray(X))
    close(batched, np.fft.rfft(X, 4))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: F.fft(Z, norm="unit"), ValueError, "norm must be"),
    (lambda: F.rfft(Z), TypeError, "rfftn: expected a real input"),
    (lambda: F.fft(Z, 0), ValueError, "at least 1"),
    (lambda: F.fftn(Z, s=(2, 2), axes=(0,)), ValueError, "same length"),
    (lambda: F.fftn(Z, axes=(0, 0)), ValueError, "repeated axis"),
    (lambda: F.irfft(np.ones(1, complex)), ValueError, "explicit output length"),
    (lambda: F.fft(Z, axis=2), ValueError, "out of bounds"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
