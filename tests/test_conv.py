"""Convolution, pooling, softmax and activations against direct NumPy references, plus
derivative and batching checks through the public functions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import fnarray as fa
from fnarray.testing import check_grads, check_vjp

RNG = np.random.default_rng(0)


def _conv_ref(x, w, stride, pad, dil, groups):
    """Direct cross-correlation, one output channel and window offset at a time."""
    nd = x.ndim - 2
    x = np.pad(x, ((0, 0), (0, 0), *pad))
    cg, og = x.shape[1] // groups, w.shape[0] // groups
    k = w.shape[2:]
    out = [(x.shape[2 + i] - dil[i] * (k[i] - 1) - 1) // stride[i] + 1 for i in range(nd)]
    y = np.zeros((x.shape[0], w.shape[0], *out))
    for oc in range(w.shape[0]):
        g = oc // og
        for off in itertools.product(*map(range, k)):
            src = tuple(slice(o * d, o * d + (m - 1) * s + 1, s)
                        for o, d, m, s in zip(off, dil, out, stride))
            patch = x[(slice(None), slice(g * cg, (g + 1) * cg), *src)]
            y[:, oc] += np.tensordot(w[(oc, slice(None), *off)], patch, axes=([0], [1]))
    return y


CONFIGS = [  # (x shape, w shape, stride, padding pairs, dilation, groups)
    ((2, 3, 9), (4, 3, 3), (2,), ((1, 2),), (1,), 1),
    ((2, 4, 7, 6), (6, 2, 3, 2), (2, 1), ((1, 0), (2, 1)), (1, 2), 2),
    ((1, 2, 4, 3, 5), (4, 1, 2, 2, 3), (1, 2, 1), ((0, 1), (1, 0), (1, 1)), (1, 1, 2), 2),
    ((3, 1, 28, 28), (5, 1, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
]


@pytest.mark.parametrize("xs, ws, stride, pad, dil, groups", CONFIGS)
def test_conv_matches_reference(xs, ws, stride, pad, dil, groups):
    x, w = RNG.normal(size=xs), RNG.normal(size=ws)
    y = fa.conv(fa.asarray(x), fa.asarray(w), stride=stride, padding=pad, dilation=dil,
                groups=groups)
    np.testing.assert_allclose(np.asarray(y), _conv_ref(x, w, stride, pad, dil, groups),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("xs, ws, stride, pad, dil, groups", CONFIGS[:3])
def test_conv_reverse_mode_matches_finite_differences(xs, ws, stride, pad, dil, groups):
    """Reverse mode (the ``fwd`` rule keeps the forward's patches for the weight cotangent)
    against central differences in float64, on odd strides, paddings, dilations, groups."""
    x, w = fa.asarray(RNG.normal(size=xs)), fa.asarray(RNG.normal(size=ws))
    f = lambda a, b: fa.conv(a, b, stride=stride, padding=pad, dilation=dil, groups=groups)
    check_vjp(f, (x, w), numerical=True)
    # the compat tape takes the same fwd path; its gradients equal fa.grad's
    import fnarray.compat as torch
    tx, tw = torch.tensor(np.asarray(x), requires_grad=True), torch.tensor(
        np.asarray(w), requires_grad=True)
    ct = RNG.normal(size=f(x, w).shape)
    (f(tx, tw) * torch.tensor(ct)).sum().backward()
    gx, gw = fa.grad(lambda a, b: fa.sum(f(a, b) * ct), argnums=(0, 1))(x, w)
    np.testing.assert_allclose(tx.grad.numpy(), np.asarray(gx), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tw.grad.numpy(), np.asarray(gw), rtol=1e-12, atol=1e-12)



@pytest.mark.parametrize("xs, ws", [
    ((2, 1, 6, 6), (8, 1, 2, 2)),    # O >= C*K: (O, N*out) @ (N*out, C*K)
    ((1, 4, 4, 4), (2, 4, 3, 3)),    # contraction N*out < C*K: the same order
    ((4, 3, 8, 8), (2, 3, 3, 3)),    # C*K > O, long contraction: the patches' side first
])
def test_weight_cotangent_in_either_product_order(xs, ws):
    """The weight cotangent's matrix product runs in whichever order is faster for its
    shape (``ops/conv.py`` ``_weight_cotangent``); both orders against central
    differences in float64, and float32 against float64."""
    x, w = RNG.normal(size=xs), RNG.normal(size=ws)
    f = lambda a, b: fa.conv(a, b)
    check_vjp(f, (fa.asarray(x), fa.asarray(w)), numerical=True)
    ct = RNG.normal(size=f(fa.asarray(x), fa.asarray(w)).shape)
    grads = [fa.grad(lambda b: fa.sum(f(fa.asarray(x, dtype=dt), b) * fa.asarray(ct, dtype=dt)))(
        fa.asarray(w, dtype=dt)) for dt in (fa.float64, fa.float32)]
    assert grads[1].dtype == fa.float32 and grads[1].shape == ws
    np.testing.assert_allclose(np.asarray(grads[1]), np.asarray(grads[0]), rtol=1e-4, atol=1e-4)

def test_patch_buffer_is_reused_only_when_nothing_reads_it():
    """``conv_patches`` hands its large buffer out again only once every array reading it is
    gone: held patches never change."""
    from fnarray.ops.conv import conv_patches
    params = dict(kernel=(3, 3), strides=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1))
    xs = [fa.asarray(RNG.normal(size=(16, 32, 26, 26)).astype(np.float32)) for _ in range(3)]
    first = conv_patches.bind(xs[0], **params)  # 10.6 MB: above the recycling threshold
    kept = np.array(first)
    second = conv_patches.bind(xs[1], **params)
    address = np.asarray(second).__array_interface__["data"][0]
    np.testing.assert_array_equal(np.asarray(first), kept)
    del second
    third = conv_patches.bind(xs[2], **params)
    assert np.asarray(third).__array_interface__["data"][0] == address  # recycled
    np.testing.assert_array_equal(np.asarray(first), kept)
    np.testing.assert_array_equal(np.asarray(third), np.asarray(conv_patches.bind(
        fa.asarray(np.asarray(xs[2])), **params)))


def test_conv_padding_forms_bias_and_unbatched_input():
    x, w, b = RNG.normal(size=(3, 6, 5)), RNG.normal(size=(4, 3, 3, 2)), RNG.normal(size=4)
    same = fa.conv(fa.asarray(x), fa.asarray(w), bias=fa.asarray(b), padding="same")
    assert same.shape == (4, 6, 5)
    ref = _conv_ref(x[None], w, (1, 1), ((1, 1), (0, 1)), (1, 1), 1)[0] + b[:, None, None]
    np.testing.assert_allclose(np.asarray(same), ref, rtol=1e-10, atol=1e-10)
    valid = fa.conv(fa.asarray(x[None]), fa.asarray(w), padding="valid")
    assert valid.shape == (1, 4, 4, 4)
    assert fa.conv(fa.asarray(x[None]), fa.asarray(w), padding=(1, 2)).shape == (1, 4, 6, 8)


def test_conv_float32_stays_float32():
    x = fa.ones((1, 2, 4, 4), dtype=fa.float32)
    w = fa.ones((3, 2, 2, 2), dtype=fa.float32)
    assert fa.conv(x, w).dtype == fa.float32


def test_conv_derivatives_second_order():
    x, w = RNG.normal(size=(2, 4, 5, 4)), RNG.normal(size=(4, 2, 2, 3))
    f = lambda a, b: fa.conv(a, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    check_grads(f, (fa.asarray(x), fa.asarray(w)), order=2)


@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (0, 0), (1, 2)])
def test_vmap_conv_matches_loop(in_axes):
    x, w = RNG.normal(size=(2, 4, 6)), RNG.normal(size=(6, 2, 3))
    xb = np.stack([x * (i + 1) for i in range(3)], in_axes[0] or 0)
    wb = np.stack([w - i for i in range(3)], in_axes[1] or 0)
    args = [xb if in_axes[0] is not None else x, wb if in_axes[1] is not None else w]
    f = lambda a, b: fa.conv(a, b, stride=2, padding=1, groups=2)
    got = fa.vmap(f, in_axes=in_axes)(*map(fa.asarray, args))
    loop = [f(fa.asarray(np.take(args[0], i, in_axes[0]) if in_axes[0] is not None else x),
              fa.asarray(np.take(args[1], i, in_axes[1]) if in_axes[1] is not None else w))
            for i in range(3)]
    np.testing.assert_allclose(np.asarray(got), np.stack([np.asarray(v) for v in loop]),
                               rtol=1e-12, atol=1e-12)


def test_per_example_gradients_of_a_conv_net():
    x, w = RNG.normal(size=(4, 1, 6, 6)), RNG.normal(size=(3, 1, 3, 3))
    loss = lambda w, xi: fa.sum(fa.relu(fa.conv(xi[None], w)) ** 2)
    per_ex = fa.vmap(fa.grad(loss), in_axes=(None, 0))(fa.asarray(w), fa.asarray(x))
    loop = np.stack([np.asarray(fa.grad(loss)(fa.asarray(w), fa.asarray(x[i])))
                     for i in range(4)])
    np.testing.assert_allclose(np.asarray(per_ex), loop, rtol=1e-12, atol=1e-12)


def _conv_transpose_ref(x, w, stride, pad, out_pad, dil, groups):
    """Scatter every input element times the kernel onto the output grid, then crop."""
    n, c_in = x.shape[:2]
    k = w.shape[2:]
    og, cg = w.shape[1], c_in // groups
    full = [(m - 1) * s + d * (kk - 1) + 1 + op for m, s, d, kk, op
            in zip(x.shape[2:], stride, dil, k, out_pad)]
    y = np.zeros((n, og * groups, *full))
    for ci in range(c_in):
        g = ci // cg
        for pos in itertools.product(*map(range, x.shape[2:])):
            for off in itertools.product(*map(range, k)):
                at = tuple(p * s + o * d for p, s, o, d in zip(pos, stride, off, dil))
                y[(slice(None), slice(g * og, (g + 1) * og), *at)] += (
                    x[(slice(None), ci, *pos)][:, None] * w[(ci, slice(None), *off)])
    crop = tuple(slice(p, f - p) for p, f in zip(pad, full))
    return y[(slice(None), slice(None), *crop)]


@pytest.mark.parametrize("xs, ws, stride, pad, out_pad, dil, groups", [
    ((2, 4, 5), (4, 3, 3), (2,), (1,), (1,), (1,), 2),
    ((1, 2, 3, 4), (2, 3, 2, 3), (2, 3), (0, 1), (1, 2), (1, 1), 1),
    ((2, 2, 4, 3), (2, 1, 3, 2), (1, 2), (1, 0), (0, 1), (2, 1), 2),
    ((2, 4, 5, 4), (4, 3, 3, 2), (1, 1), (1, 0), (0, 1), (1, 2), 2),  # stride 1: shifted GEMM
])
def test_conv_transpose_matches_reference(xs, ws, stride, pad, out_pad, dil, groups):
    x, w = RNG.normal(size=xs), RNG.normal(size=ws)
    f = lambda a, b: fa.conv_transpose(a, b, stride=stride, padding=pad,
                                       output_padding=out_pad, groups=groups, dilation=dil)
    y = f(fa.asarray(x), fa.asarray(w))
    ref = _conv_transpose_ref(x, w, stride, pad, out_pad, dil, groups)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-10, atol=1e-10)
    check_grads(f, (fa.asarray(x), fa.asarray(w)), order=1)


def test_conv_transpose_is_the_adjoint_of_conv():
    x, w = RNG.normal(size=(2, 4, 7, 7)), RNG.normal(size=(6, 2, 3, 2))
    kw = dict(stride=2, padding=1, groups=2)
    y = fa.conv(fa.asarray(x), fa.asarray(w), **kw)
    ct = RNG.normal(size=y.shape)
    xt = fa.conv_transpose(fa.asarray(ct), fa.asarray(w), output_padding=(0, 1), **kw)
    assert xt.shape == x.shape
    assert np.isclose(np.vdot(np.asarray(y), ct), np.vdot(x, np.asarray(xt)))


# --- pooling ----------------------------------------------------------------------------------

def _pool_ref(x, k, s, p, d, ceil, reduce, count_include_pad=True):
    """2-d pooling by explicit windows, with PyTorch's output size and divisor rules."""
    h, w = x.shape[-2:]
    outs = []
    for n, kk, ss, pp, dd in zip((h, w), k, s, p, d):
        span = n + 2 * pp - dd * (kk - 1) - 1
        o = (-(-span // ss) if ceil else span // ss) + 1
        if ceil and (o - 1) * ss >= n + pp:
            o -= 1
        outs.append(o)
    y = np.zeros(x.shape[:-2] + tuple(outs))
    for i, j in itertools.product(range(outs[0]), range(outs[1])):
        rows = [i * s[0] - p[0] + a * d[0] for a in range(k[0])]
        cols = [j * s[1] - p[1] + b * d[1] for b in range(k[1])]
        inside = [(r, c) for r in rows for c in cols if 0 <= r < h and 0 <= c < w]
        vals = np.stack([x[..., r, c] for r, c in inside], -1)
        if reduce == "max":
            y[..., i, j] = vals.max(-1)
        else:
            padded = [(r, c) for r in rows for c in cols
                      if -p[0] <= r < h + p[0] and -p[1] <= c < w + p[1]]
            y[..., i, j] = vals.sum(-1) / (len(padded) if count_include_pad else len(inside))
    return y


@pytest.mark.parametrize("k, s, p, d, ceil", [
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 2), (2, 1), (1, 1), (1, 1), True),
    ((3, 3), (2, 2), (1, 0), (2, 1), False),
    ((2, 3), (3, 2), (1, 1), (1, 1), True),
])
def test_max_pool_matches_reference(k, s, p, d, ceil):
    x = RNG.normal(size=(2, 3, 7, 8))
    y = fa.max_pool(fa.asarray(x), k, s, p, d, ceil_mode=ceil)
    np.testing.assert_allclose(np.asarray(y), _pool_ref(x, k, s, p, d, ceil, "max"))
    check_grads(lambda a: fa.max_pool(a, k, s, p, d, ceil_mode=ceil), (fa.asarray(x),),
                order=1)


@pytest.mark.parametrize("k, s, p, ceil, include", [
    ((2, 2), None, (0, 0), False, True),
    ((3, 2), (2, 1), (1, 1), True, True),
    ((3, 3), (2, 2), (1, 0), True, False),
    ((2, 3), (3, 2), (1, 1), False, False),
])
def test_avg_pool_matches_reference(k, s, p, ceil, include):
    x = RNG.normal(size=(2, 3, 7, 8))
    y = fa.avg_pool(fa.asarray(x), k, s, p, ceil_mode=ceil, count_include_pad=include)
    ref = _pool_ref(x, k, s or k, p, (1, 1), ceil, "avg", include)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-12)
    check_grads(lambda a: fa.avg_pool(a, k, s, p, ceil_mode=ceil,
                                      count_include_pad=include), (fa.asarray(x),), order=2)


def test_pooling_1d_3d_and_max_pool_tie_gradient():
    x = fa.asarray(RNG.normal(size=(2, 3, 9)))
    assert fa.max_pool(x, (3,)).shape == (2, 3, 3)
    assert fa.avg_pool(fa.ones((1, 1, 4, 4, 4)), 2).shape == (1, 1, 2, 2, 2)
    # ties: the whole cotangent goes to the first maximum in row-major window order
    g = fa.grad(lambda a: fa.sum(fa.max_pool(a, (2,))))(fa.asarray([[[1.0, 1.0, 0.0, 2.0]]]))
    np.testing.assert_allclose(np.asarray(g), [[[1.0, 0.0, 0.0, 1.0]]])
    tied = fa.asarray([[[[3.0, 1.0, 2.0, 2.0], [3.0, 3.0, 2.0, 2.0]]]])
    g = fa.grad(lambda a: fa.sum(fa.max_pool(a, 2) * fa.asarray([[[[5.0, 7.0]]]])))(tied)
    np.testing.assert_allclose(np.asarray(g), [[[[5.0, 0, 7.0, 0], [0, 0, 0, 0]]]])
    # overlapping windows (stride 1) add up on a shared maximum
    g = fa.grad(lambda a: fa.sum(fa.max_pool(a, (2,), stride=1)))(fa.asarray([[[0.0, 4.0, 1.0]]]))
    np.testing.assert_allclose(np.asarray(g), [[[0.0, 2.0, 0.0]]])
    # NaN: the maximum is NaN and its cotangent goes to the window's last NaN (PyTorch)
    nan = fa.asarray([[[np.nan, 1.0, np.nan, 0.0, 5.0, 6.0]]])
    y, pull = fa.vjp(lambda a: fa.max_pool(a, (3,)), nan)
    assert np.isnan(np.asarray(y)[0, 0, 0]) and np.asarray(y)[0, 0, 1] == 6.0
    np.testing.assert_allclose(np.asarray(pull(fa.ones_like(y))[0]),
                               [[[0.0, 0.0, 1.0, 0.0, 0.0, 1.0]]])


def _adaptive_ref(x, out, reduce):
    h, w = x.shape[-2:]
    y = np.zeros(x.shape[:-2] + out)
    for i, j in itertools.product(range(out[0]), range(out[1])):
        r0, r1 = (i * h) // out[0], math.ceil((i + 1) * h / out[0])
        c0, c1 = (j * w) // out[1], math.ceil((j + 1) * w / out[1])
        y[..., i, j] = reduce(x[..., r0:r1, c0:c1], axis=(-2, -1))
    return y


@pytest.mark.parametrize("out", [(3, 2), (5, 7), (1, 1), (2, 4)])
def test_adaptive_pools_match_reference(out):
    x = RNG.normal(size=(2, 3, 5, 7))
    avg = fa.adaptive_avg_pool(fa.asarray(x), out)
    mx = fa.adaptive_max_pool(fa.asarray(x), out)
    np.testing.assert_allclose(np.asarray(avg), _adaptive_ref(x, out, np.mean), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(mx), _adaptive_ref(x, out, np.max))
    check_grads(lambda a: fa.adaptive_avg_pool(a, out), (fa.asarray(x),), order=1)
    check_grads(lambda a: fa.adaptive_max_pool(a, out), (fa.asarray(x),), order=1)


# --- softmax and activations --------------------------------------------------------------

def test_softmax_and_log_softmax_are_stable_and_differentiable():
    x = np.array([[1000.0, 1001.0, 999.0], [-5.0, 0.0, 5.0]])
    e = np.exp(x - x.max(-1, keepdims=True))
    ref = e / e.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(fa.softmax(fa.asarray(x))), ref, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(fa.log_softmax(fa.asarray(x), axis=1)), np.log(ref),
                               rtol=1e-12)
    np.testing.assert_allclose(np.asarray(fa.softmax(fa.asarray(x), axis=0)).sum(0), 1.0)
    xs = fa.asarray(RNG.normal(size=(3, 4)))
    check_grads(lambda a: fa.softmax(a, axis=0), (xs,), order=2)
    check_grads(fa.log_softmax, (xs,), order=2)


ACTIVATIONS = {
    "relu": (fa.relu, lambda x: np.maximum(x, 0)),
    "relu6": (fa.relu6, lambda x: np.clip(x, 0, 6)),
    "leaky_relu": (lambda x: fa.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "elu": (fa.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    "selu": (fa.selu, lambda x: 1.0507009873554805 * np.where(
        x > 0, x, 1.6732632423543772 * np.expm1(x))),
    "gelu": (lambda x: fa.gelu(x, approximate=False),
             lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))),
    "gelu_tanh": (lambda x: fa.gelu(x, approximate="tanh"), lambda x: 0.5 * x * (
        1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    "silu": (fa.silu, lambda x: x / (1 + np.exp(-x))),
    "softplus": (lambda x: fa.softplus(x, beta=2.0, threshold=5.0),
                 lambda x: np.where(2 * x > 5, x, np.log1p(np.exp(2 * x)) / 2)),
    "mish": (fa.mish, lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    "hardtanh": (lambda x: fa.hardtanh(x, -0.5, 2.0), lambda x: np.clip(x, -0.5, 2.0)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values_and_derivatives(name):
    f, ref = ACTIVATIONS[name]
    x = np.linspace(-7.3, 7.1, 41)
    np.testing.assert_allclose(np.asarray(f(fa.asarray(x))), ref(x), rtol=1e-12, atol=1e-12)
    check_grads(f, (fa.asarray(x),), order=2)


def test_activations_at_kinks_and_extremes():
    g = fa.grad(lambda x: fa.sum(fa.relu(x)))(fa.asarray([0.0, 1.0, -1.0]))
    np.testing.assert_array_equal(np.asarray(g), [0.0, 1.0, 0.0])
    g6 = fa.grad(lambda x: fa.sum(fa.relu6(x)))(fa.asarray([0.0, 6.0, 3.0]))
    np.testing.assert_array_equal(np.asarray(g6), [0.0, 0.0, 1.0])
    big = fa.asarray([-1000.0, 1000.0])
    for f in (fa.softplus, fa.elu, fa.mish, fa.silu):
        assert np.all(np.isfinite(np.asarray(fa.grad(lambda x: fa.sum(f(x)))(big))))
    assert np.asarray(fa.grad(lambda x: fa.softplus(x))(fa.asarray(0.0))) == 0.5


def test_one_hot():
    y = fa.one_hot(fa.asarray([2, 0, 5]), 4)
    np.testing.assert_array_equal(np.asarray(y), [[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    assert y.dtype == fa.float32
    assert fa.one_hot(fa.asarray([[1, 2]]), dtype=fa.int64, axis=0).shape == (3, 1, 2)
    with pytest.raises(TypeError, match="one_hot.*integers"):
        fa.one_hot(fa.asarray([1.0]), 3)


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: fa.conv(fa.ones((1, 3, 5, 5)), fa.ones((4, 2, 3, 3))), r"conv:.*groups=1"),
    (lambda: fa.conv(fa.ones((1, 4, 5, 5)), fa.ones((3, 2, 3, 3)), groups=2),
     r"C_out divisible"),
    (lambda: fa.conv(fa.ones((1, 1, 2, 2)), fa.ones((1, 1, 3, 3))), r"larger than the padded"),
    (lambda: fa.conv(fa.ones((1, 1, 1, 5, 5)), fa.ones((1, 1, 3, 3))), r"spatial axes"),
    (lambda: fa.conv(fa.ones((1, 1, 5, 5)), fa.ones((1, 1, 3, 3)), stride=2, padding="same"),
     r"'same' needs stride 1"),
    (lambda: fa.conv(fa.ones((1, 1, 5, 5)), fa.ones((1, 1, 3, 3)), stride=(1, 1, 1)),
     r"stride must be an int or 2 ints"),
    (lambda: fa.conv_transpose(fa.ones((1, 2, 5)), fa.ones((2, 1, 3)), stride=2,
                               output_padding=2), r"output_padding"),
    (lambda: fa.conv_transpose(fa.ones((1, 3, 5)), fa.ones((2, 1, 3))), r"3 channels"),
    (lambda: fa.max_pool(fa.ones((1, 1, 4, 4)), 2, padding=2), r"at most half"),
    (lambda: fa.gelu(fa.ones(3), approximate="fast"), r"gelu: approximate"),
])
def test_errors_name_the_op_and_the_fix(call, match):
    with pytest.raises(ValueError, match=match):
        call()
