"""The two kernels of the ``conv_transpose`` primitive (``fnarray/ops/conv_transpose.py``):
the stride-1 shifted products equal the general products + col2im on every geometry, and
the recycled scratch buffer never shows through a result.  (Its rules are checked by
``tests/test_registry.py`` on the samples of ``tests/samples/conv.py``.)"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fnarray as fa
from fnarray.ops import conv_transpose as ct_ops
from fnarray.ops.conv import out_spatial


@st.composite
def _geometry(draw, max_stride=1):
    """``(ct, w, params)`` of a geometry with strides up to ``max_stride``: 1-3 spatial
    axes, padding, dilation, groups, empty batches, size-1 axes, and inputs one row longer
    than the cotangent reaches."""
    nd = draw(st.integers(1, 3))
    strides = tuple(draw(st.integers(1, max_stride)) for _ in range(nd))
    n, groups = draw(st.integers(0, 3)), draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    spatial = tuple(max(1, d * (k - 1) + draw(st.integers(1, 4)) - lo - hi)
                    for k, d, (lo, hi) in zip(kernel, dilation, padding))
    out = out_spatial(spatial, kernel, strides, padding, dilation)
    grow = tuple(draw(st.integers(0, 1)) for _ in range(nd))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    ct = rng.normal(size=(n, groups * og, *out))
    w = rng.normal(size=(groups * og, cg, *kernel))
    params = dict(in_spatial=tuple(s + e for s, e in zip(spatial, grow)), strides=strides,
                  padding=padding, dilation=dilation, groups=groups)
    return ct, w, params


@settings(max_examples=60)
@given(_geometry())
def test_shifted_kernel_equals_products_and_col2im(case):
    ct, w, params = case
    general = ct_ops._columns_kernel(np, ct, w, **params)
    del params["strides"]
    shifted = ct_ops._shifted_kernel(np, ct, w, **params)
    assert shifted.shape == general.shape == (ct.shape[0], w.shape[1] * params["groups"],
                                              *params["in_spatial"])
    assert shifted.flags.c_contiguous
    np.testing.assert_allclose(shifted, general, rtol=1e-12, atol=1e-12)


def test_convnet_sized_float32_matches_and_results_never_share_the_scratch():
    """conv2 of the tutorial ConvNet (N=64 in the benchmark; 8 here): float32 results of
    the two kernels agree, and a held result stays unchanged while later calls reuse the
    kernels' scratch buffer."""
    rng = np.random.default_rng(0)
    w = fa.asarray(rng.normal(size=(64, 32, 3, 3)).astype(np.float32))
    cts = [fa.asarray(rng.normal(size=(8, 64, 24, 24)).astype(np.float32)) for _ in range(3)]
    f = lambda c: fa.conv_transpose(c, w)  # stride 1, no padding: (8, 32, 26, 26)
    first = f(cts[0])
    kept = np.array(first)
    for c in cts[1:]:
        f(c)
    np.testing.assert_array_equal(np.asarray(first), kept)
    general = ct_ops._columns_kernel(np, np.asarray(cts[0]), np.asarray(w), in_spatial=(26, 26),
                                     strides=(1, 1), padding=((0, 0), (0, 0)),
                                     dilation=(1, 1), groups=1)
    np.testing.assert_allclose(kept, general, rtol=1e-4, atol=1e-4)


def test_conv_input_gradient_runs_the_primitive_and_matches_conv_transpose():
    """``conv``'s input cotangent is ``conv_transpose`` with the same geometry, under
    ``grad`` and under ``jit``."""
    rng = np.random.default_rng(1)
    x = fa.asarray(rng.normal(size=(3, 4, 7, 6)))
    w = fa.asarray(rng.normal(size=(6, 2, 3, 2)))
    kw = dict(padding=((1, 2), (0, 1)), dilation=(2, 1), groups=2)
    conv = lambda a: fa.conv(a, w, padding=kw["padding"], dilation=(2, 1), groups=2)
    ct = fa.asarray(rng.normal(size=conv(x).shape))
    grad = fa.grad(lambda a, c: fa.sum(conv(a) * c))
    want = ct_ops.conv_transpose.bind(ct, w, in_spatial=(7, 6), strides=(1, 1), **kw)
    np.testing.assert_allclose(np.asarray(grad(x, ct)), np.asarray(want), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(fa.jit(grad)(x, ct)), np.asarray(want), rtol=1e-12)
    prog = fa.make_ir(grad)(x, ct)
    assert [e.prim for e in prog.eqns if e.prim.name.startswith("conv")] == [
        ct_ops.conv_transpose]


def test_kernel_choice():
    """The shifted kernel multiplies over the whole padded grid: it serves stride-1
    convolutions with few channels or long rows, not many channels over a small map or a
    large kernel over a few window positions."""
    assert ct_ops._shifted_pays((26, 26), (24, 24), 64)  # conv2 of the tutorial ConvNet
    assert ct_ops._shifted_pays((16, 16), (14, 14), 128)
    assert not ct_ops._shifted_pays((9, 9), (7, 7), 256)
    assert not ct_ops._shifted_pays((12, 12), (4, 4), 32)  # 5x5, dilation 2
    assert not ct_ops._shifted_pays((100,), (2,), 8)
