"""Winograd F(2x2, 3x3) (``fnarray/ops/conv_winograd.py`` and its compiled transforms in
``fnarray/backends/kernels/winograd.py``): the correlation against a float64 direct
reference over odd and even sizes, padding (negative included), samples and channels, with
and without a bias, several chunks of samples; ``conv_transpose``'s impl, which takes it
for 3x3 stride-1 ungrouped 2-d operands, against the general NumPy kernel and against the
NumPy path (``accel`` off); the weight cotangent (``conv_weight_cotangent``, Winograd's
adjoint) against a float64 reference and the patches product, with its derivatives;
gradients eager and under ``fa.jit`` (the same values, bit for bit: both run the same
impls), and the dispatch rule.

The transforms add, subtract and halve, so results agree with a direct correlation to float
rounding (float64: ~1e-15 relative to the output's scale; float32: ~1e-7)."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
from fnarray.backends import accel
from fnarray.ops import conv_transpose as ct_ops
from fnarray.ops import conv_winograd
from fnarray.ops.conv_weight import conv_weight_cotangent
from fnarray.testing import check_grads

pytestmark = pytest.mark.skipif(not accel.available(),
                                reason="Winograd runs on the compiled transforms (numba)")

_TOL = {np.float32: 2e-6, np.float64: 1e-13}  # relative to the result's largest magnitude


@pytest.fixture(autouse=True)
def few_channels(monkeypatch):
    """Winograd for any number of channels (the tests' operands are small)."""
    monkeypatch.setattr(conv_winograd, "_MIN_CHANNELS", 1)


@pytest.fixture
def compiled():
    with accel.forced(True):
        yield


def _direct(x, w, low, out, bias=None):
    """``y[n, o, i, j] = sum x[n, c, i + a - low[0], j + b - low[1]] w[o, c, a, b]`` in
    float64, reading zero off ``x``."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    pad = 4 + max(abs(p) for p in low) + max(out)
    grid = np.zeros((*x.shape[:2], x.shape[2] + 2 * pad, x.shape[3] + 2 * pad))
    grid[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]] = x
    y = np.zeros((x.shape[0], w.shape[0], *out))
    for a in range(3):
        for b in range(3):
            r, c = pad + a - low[0], pad + b - low[1]
            y += np.einsum("nchw,oc->nohw", grid[:, :, r:r + out[0], c:c + out[1]], w[:, :, a, b])
    return y if bias is None else y + bias.astype(np.float64)[:, None, None]


def _close(got, want, dtype, fresh=True):
    """``got`` (of ``dtype``; with ``fresh`` a C-ordered kernel result) equals ``want`` to
    float rounding relative to its scale."""
    assert got.dtype == dtype and got.shape == want.shape
    assert got.flags.c_contiguous or not fresh
    scale = max(np.abs(want).max(initial=0.0), 1.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=_TOL[dtype] * scale)


# (N, C, O, H, W, low padding, high padding): 3x3 -> 1x1, odd and even sizes, negative low
# padding (cells skipped), outputs reaching past the input
_SHAPES = [(1, 1, 1, 3, 3, (0, 0), (0, 0)), (2, 3, 4, 4, 5, (1, 1), (1, 1)),
           (3, 2, 5, 26, 26, (0, 2), (0, 2)), (2, 3, 2, 7, 6, (2, 2), (2, 2)),
           (2, 3, 2, 7, 6, (3, -1), (0, 1)), (5, 4, 3, 9, 11, (1, 0), (2, 1)),
           (1, 2, 1, 5, 2, (0, 1), (0, 1))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", _SHAPES)
@pytest.mark.parametrize("bias", [False, True])
def test_correlation_equals_direct(compiled, dtype, shape, bias):
    n, c, o, h, w_, low, high = shape
    rng = np.random.default_rng(hash(shape) % 1000)
    x = rng.normal(size=(n, c, h, w_)).astype(dtype)
    w = rng.normal(size=(o, c, 3, 3)).astype(dtype)
    b = rng.normal(size=o).astype(dtype) if bias else None
    out = (h + low[0] + high[0] - 2, w_ + low[1] + high[1] - 2)
    k = conv_winograd.kernels(np, x, w, (1, 1), (1, 1), 1)
    got = conv_winograd.correlate(k, np, x, w, low, out, b)
    _close(got, _direct(x, w, low, out, b), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunks_of_samples_and_held_results(compiled, monkeypatch, dtype):
    """One sample per chunk, uneven chunks, one chunk: the same values; a result held
    across later calls (which reuse the scratch) is unchanged; non-contiguous operands."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 4, 13, 10)).astype(dtype)
    w = np.asfortranarray(rng.normal(size=(6, 4, 3, 3)).astype(dtype))
    want = _direct(x, w, (1, 1), (13, 10))
    k = conv_winograd.kernels(np, x, w, (1, 1), (1, 1), 1)
    results = []
    for chunk_bytes in (1, 60_000, 1 << 30):
        monkeypatch.setattr(conv_winograd, "_CHUNK_BYTES", chunk_bytes)
        results.append(conv_winograd.correlate(k, np, x[:, ::-1][:, ::-1], w, (1, 1), (13, 10)))
    kept = results[0].copy()
    conv_winograd.correlate(k, np, x * 2, w, (1, 1), (13, 10))
    np.testing.assert_array_equal(results[0], kept)
    for got in results:
        _close(got, want, dtype)
    sliced = x[:, :, ::2, 1:]  # a strided view
    _close(conv_winograd.correlate(k, np, sliced, w, (0, 0), (5, 7)),
           _direct(sliced, w, (0, 0), (5, 7)), dtype)


def test_empty_operands(compiled):
    k = conv_winograd.kernels(np, np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), (1, 1),
                              (1, 1), 1)
    assert conv_winograd.correlate(k, np, np.zeros((0, 2, 5, 5)), np.ones((3, 2, 3, 3)),
                                   (0, 0), (3, 3)).shape == (0, 3, 3, 3)
    got = conv_winograd.correlate(k, np, np.zeros((2, 0, 5, 5)), np.ones((3, 0, 3, 3)),
                                  (0, 0), (3, 3), np.arange(3.0))
    np.testing.assert_array_equal(got, np.broadcast_to(np.arange(3.0)[:, None, None],
                                                       (2, 3, 3, 3)))


def test_dispatch_rule(monkeypatch):
    """Winograd takes 3x3, stride-1, dilation-1, ungrouped 2-d float32/float64 operands
    of one dtype with at least ``_MIN_CHANNELS`` channels on both sides of the weight,
    only when compiled kernels run (``accel``)."""
    monkeypatch.setattr(conv_winograd, "_MIN_CHANNELS", 4)
    x, w = np.zeros((2, 4, 8, 8), np.float32), np.zeros((5, 4, 3, 3), np.float32)
    with accel.forced(True):
        assert conv_winograd.kernels(np, x, w, (1, 1), (1, 1), 1) is not None
        assert conv_winograd.kernels(np, x.astype(np.float64), w.astype(np.float64), (1, 1),
                                     (1, 1), 1) is not None
        for args in [(x, w, (2, 1), (1, 1), 1), (x, w, (1, 1), (1, 2), 1),
                     (x, np.zeros((4, 2, 3, 3), np.float32), (1, 1), (1, 1), 2),
                     (x, np.zeros((5, 4, 5, 5), np.float32), (1, 1), (1, 1), 1),
                     (x, np.zeros((5, 4, 3, 2), np.float32), (1, 1), (1, 1), 1),
                     (x[..., 0], w[..., 0], (1,), (1,), 1),
                     (x.astype(np.float16), w.astype(np.float16), (1, 1), (1, 1), 1),
                     (x, w.astype(np.float64), (1, 1), (1, 1), 1),
                     (x.astype(np.complex64), w.astype(np.complex64), (1, 1), (1, 1), 1),
                     (x, np.zeros((3, 4, 3, 3), np.float32), (1, 1), (1, 1), 1),
                     (x[:, :3], w[:, :3], (1, 1), (1, 1), 1)]:
            assert conv_winograd.kernels(np, *args) is None
    with accel.forced(False):
        assert conv_winograd.kernels(np, x, w, (1, 1), (1, 1), 1) is None


# --- conv_transpose (the input cotangent) ------------------------------------------------

def _transpose_params(in_spatial, padding):
    return dict(in_spatial=in_spatial, strides=(1, 1), padding=padding, dilation=(1, 1),
                groups=1)


# (N, C_out, C_in, in_spatial, padding, extra window positions beyond ct (output_padding))
_TRANSPOSED = [(1, 1, 1, (3, 3), ((0, 0), (0, 0)), (0, 0)),
               (2, 4, 3, (4, 5), ((1, 1), (1, 1)), (0, 0)),
               (3, 5, 2, (26, 26), ((0, 0), (0, 0)), (0, 0)),
               (2, 3, 4, (7, 6), ((0, 2), (1, 0)), (0, 0)),
               (2, 2, 3, (9, 8), ((1, 1), (0, 0)), (1, 2)),
               (1, 3, 2, (5, 4), ((3, 0), (0, 3)), (0, 0))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", _TRANSPOSED)
def test_transpose_impl_takes_winograd_and_equals_numpy(dtype, case, monkeypatch):
    n, o, c, in_spatial, padding, extra = case
    params = _transpose_params(in_spatial, padding)
    out = [s + lo + hi - 2 - e for s, (lo, hi), e in zip(in_spatial, padding, extra)]
    rng = np.random.default_rng(7)
    ct = rng.normal(size=(n, o, *out)).astype(dtype)
    w = rng.normal(size=(o, c, 3, 3)).astype(dtype)
    want = ct_ops._columns_kernel(np, ct.astype(np.float64), w.astype(np.float64), **params)
    calls = []
    real = conv_winograd.correlate
    monkeypatch.setattr(conv_winograd, "correlate", lambda *a, **k: calls.append(1) or real(*a, **k))
    with accel.forced(True):
        got = ct_ops._transpose_impl(np, ct, w, **params)
        got_view = ct_ops._transpose_impl(np, np.swapaxes(np.swapaxes(ct, 0, 1).copy(), 0, 1),
                                          np.asfortranarray(w), **params)
    assert len(calls) == 2
    with accel.forced(False):
        numpy_path = ct_ops._transpose_impl(np, ct, w, **params)
    for result in (got, got_view, numpy_path):
        _close(result, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", [0, 1, ((0, 2), (1, 1))])
def test_gradients_eager_jit_and_numpy_path(dtype, padding):
    """conv's input and weight gradients through the public API: eager and jitted runs
    give the same bits (one impl), and agree with the NumPy path (``accel`` off)."""
    rng = np.random.default_rng(11)
    x = fa.asarray(rng.normal(size=(3, 4, 9, 8)).astype(dtype))
    w = fa.asarray(rng.normal(size=(5, 4, 3, 3)).astype(dtype))
    b = fa.asarray(rng.normal(size=5).astype(dtype))

    def loss(x, w, b):
        return fa.sum(fa.conv(x, w, b, padding=padding) ** 2)

    grad = fa.grad(loss, argnums=(0, 1, 2))
    with accel.forced(True):
        eager = grad(x, w, b)
        jitted = fa.jit(grad)(x, w, b)
    with accel.forced(False):
        reference = grad(x, w, b)
    for e, j, r in zip(eager, jitted, reference):
        np.testing.assert_array_equal(np.asarray(e), np.asarray(j))
        _close(np.asarray(e), np.asarray(r), dtype, fresh=False)


# --- the weight cotangent (conv_weight_cotangent) ----------------------------------------

def _direct_weight_cotangent(x, ct, low):
    """``dW[o, c, a, b] = sum x[n, c, i + a - low[0], j + b - low[1]] ct[n, o, i, j]`` in
    float64."""
    out = ct.shape[2:]
    pad = 4 + max(abs(p) for p in low) + max(out)
    grid = np.zeros((*x.shape[:2], x.shape[2] + 2 * pad, x.shape[3] + 2 * pad))
    grid[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]] = x
    dw = np.zeros((ct.shape[1], x.shape[1], 3, 3))
    for a in range(3):
        for b in range(3):
            r, c = pad + a - low[0], pad + b - low[1]
            dw[:, :, a, b] = np.einsum("nchw,nohw->oc", grid[:, :, r:r + out[0], c:c + out[1]],
                                       ct.astype(np.float64))
    return dw


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [s for s in _SHAPES if min(s[5]) >= 0])  # conv's padding
def test_weight_cotangent_equals_direct(dtype, shape, monkeypatch):
    """The primitive on Winograd (several chunks) and on the patches product (``accel``
    off) against the float64 reference."""
    n, c, o, h, w_, low, high = shape
    rng = np.random.default_rng(hash(shape) % 1000 + 1)
    x = rng.normal(size=(n, c, h, w_)).astype(dtype)
    ct = rng.normal(size=(n, o, h + low[0] + high[0] - 2, w_ + low[1] + high[1] - 2)).astype(dtype)
    params = dict(kernel=(3, 3), strides=(1, 1), padding=tuple(zip(low, high)), dilation=(1, 1),
                  groups=1)
    want = _direct_weight_cotangent(x, ct, low)
    monkeypatch.setattr(conv_winograd, "_CHUNK_BYTES", 1)  # one sample per chunk
    calls = []
    real = conv_winograd.weight_cotangent
    monkeypatch.setattr(conv_winograd, "weight_cotangent",
                        lambda *a: calls.append(1) or real(*a))
    for on in (True, False):
        with accel.forced(on):
            got = conv_weight_cotangent.bind(fa.asarray(x), fa.asarray(ct), **params)
        scale = max(np.abs(want).max(initial=0.0), 1.0)
        np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=_TOL[dtype] * scale * 4)
        assert np.asarray(got).dtype == dtype
    assert calls == [1]


@pytest.mark.parametrize("padding", [((1, 1), (1, 1)), ((0, 2), (1, 0))])
def test_weight_cotangent_derivatives_on_winograd(padding):
    """JVP, VJP (conv_transpose for x, conv for ct) and second order, float64, with
    every kernel compiled (Winograd in all three contractions)."""
    rng = np.random.default_rng(5)
    x = fa.asarray(rng.normal(size=(2, 3, 5, 6)))
    out = (5 + sum(padding[0]) - 2, 6 + sum(padding[1]) - 2)
    ct = fa.asarray(rng.normal(size=(2, 4, *out)))
    params = dict(kernel=(3, 3), strides=(1, 1), padding=padding, dilation=(1, 1), groups=1)
    with accel.forced(True):
        check_grads(lambda a, c: conv_weight_cotangent.bind(a, c, **params), [x, ct], order=2)


def test_weight_cotangent_vmap():
    """vmap over either operand or both equals a loop (the batch becomes extra groups)."""
    rng = np.random.default_rng(6)
    xs = rng.normal(size=(3, 2, 4, 6, 5))
    cts = rng.normal(size=(3, 2, 5, 4, 3))
    params = dict(kernel=(3, 3), strides=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1),
                  groups=1)

    def f(a, c):
        return conv_weight_cotangent.bind(a, c, **params)
    with accel.forced(True):
        for axes in [(0, 0), (0, None), (None, 0)]:
            xa = fa.asarray(xs if axes[0] == 0 else xs[0])
            ca = fa.asarray(cts if axes[1] == 0 else cts[0])
            got = np.asarray(fa.vmap(f, in_axes=axes)(xa, ca))
            for i in range(3):
                want = np.asarray(f(fa.asarray(xs[i] if axes[0] == 0 else xs[0]),
                                    fa.asarray(cts[i] if axes[1] == 0 else cts[0])))
                np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-12)


def test_reverse_mode_keeps_no_patches_on_winograd():
    """conv's fwd rule keeps no residual where Winograd runs the forward pass (and the
    im2col patches where it does not), and the gradients agree."""
    from fnarray.ops import conv as conv_ops
    rng = np.random.default_rng(8)
    x = fa.asarray(rng.normal(size=(2, 3, 6, 6)))
    w = fa.asarray(rng.normal(size=(4, 3, 3, 3)))
    p = dict(strides=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)
    with accel.forced(True):
        assert conv_ops._conv_fwd(x, w, **p)[1] is None
        fast = fa.grad(lambda a, b: fa.sum(fa.conv(a, b, padding=1) ** 2), argnums=(0, 1))(x, w)
    with accel.forced(False):
        assert conv_ops._conv_fwd(x, w, **p)[1] is not None
        slow = fa.grad(lambda a, b: fa.sum(fa.conv(a, b, padding=1) ** 2), argnums=(0, 1))(x, w)
    for f, s in zip(fast, slow):
        np.testing.assert_allclose(np.asarray(f), np.asarray(s), rtol=1e-12, atol=1e-12)
