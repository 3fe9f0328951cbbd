"""Adversarial differential tests of the compiled CPU kernels (``fnarray/backends/accel.py``)
that primitives call: for the same inputs, the compiled path (``accel.forced(True)``, every
size) against the NumPy path (``accel.forced(False)``), values and derivatives
(``fa.vjp``/``fa.jvp``, vmap, Hessian-vector products), eager and jitted, over generated
geometries, layouts (Fortran-ordered, transposed, negative-stride and strided views), dtypes
and special values (NaN, infinities, signed zeros, ties): convolutions, transposed
convolutions, max/avg pooling, the relu/clamp/leaky_relu gates, Threefry bits and dropout.
Every run also checks that no input buffer was written and that results share no memory with
the inputs.  Tolerances and helpers: ``tests/accel_differential_util.py``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnarray as fa
from fnarray.backends import accel
from tests.accel_differential_util import (
    HUNT, LAYOUTS, SETTINGS, TOL, as_numpy, both, close, equal_up_to_zero_signs, laid_out,
    same_bits, small_buffers, special, uniform)

pytestmark = pytest.mark.skipif(not accel.available(),
                                reason="compiled kernels need the 'accel' extra (numba)")


# --- convolution -------------------------------------------------------------------------------

@st.composite
def conv_cases(draw, transposed: bool = False):
    """``(x, w, bias or None, geometry, rng, small)`` for ``fa.conv`` (or, ``transposed``,
    ``fa.conv_transpose``): 1-3 spatial axes, every padding form, operands in any layout;
    ``small``: run with ``small_buffers``."""
    nd = draw(st.integers(1, 3))
    kmax = 3 if nd < 3 else 2
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 2))
    n = draw(st.sampled_from([0, 1, 2, 3]))
    if transposed:
        padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
        out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        spatial = []
        for k, s, p, d, o in zip(kernel, stride, padding, dilation, out_pad):
            need = 1  # the output size (n-1)s - 2p + d(k-1) + o + 1 must be positive
            while (need - 1) * s - 2 * p + d * (k - 1) + o + 1 < 1:
                need += 1
            spatial.append(draw(st.integers(need, need + 3)))
        geometry = dict(stride=stride, padding=padding, output_padding=out_pad,
                        dilation=dilation, groups=groups)
    else:
        kind = draw(st.sampled_from(["int", "pairs", "same", "valid"]))
        if kind == "same":
            stride = (1,) * nd
            padding = "same"
            pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                    for k, d in zip(kernel, dilation)]
        elif kind == "valid":
            padding, pads = "valid", [(0, 0)] * nd
        elif kind == "int":
            p = draw(st.integers(0, 2))
            padding, pads = p, [(p, p)] * nd
        else:
            pads = [(draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd)]
            padding = tuple(pads)
        # every size with at least one window; kernels larger than the input where padding
        # makes them fit
        spatial = [draw(st.integers(max(1, d * (k - 1) + 1 - lo - hi),
                                    max(1, d * (k - 1) + 1 - lo - hi) + 3))
                   for k, d, (lo, hi) in zip(kernel, dilation, pads)]
        geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if transposed:
        w_shape = (cin, cout // groups, *kernel)
    else:
        w_shape = (cout, cin // groups, *kernel)
    x = laid_out(uniform(rng, (n, cin, *spatial), dtype), draw(st.sampled_from(LAYOUTS)))
    w = laid_out(uniform(rng, w_shape, dtype), draw(st.sampled_from(LAYOUTS)))
    b = (laid_out(uniform(rng, (cout,), dtype), draw(st.sampled_from(LAYOUTS)))
         if draw(st.booleans()) else None)
    return x, w, b, geometry, rng, draw(st.booleans())


def _derivatives(f, x, w, b, rng):
    """``f``'s output, its VJP at a random cotangent and its JVP at random tangents."""
    primals = (x, w) if b is None else (x, w, b)
    out, pull = fa.vjp(f, *primals)
    ct = fa.asarray(uniform(rng, out.shape, out.dtype))
    tangents = tuple(fa.asarray(uniform(rng, p.shape, p.dtype)) for p in primals)
    _, tan = fa.jvp(f, primals, tangents)
    return out, pull(ct), tan


def _check_conv(f, derivs, x, w, b, geometry):
    """conv: values bit for bit (eager and jitted), the input cotangent (through the
    compiled conv_transpose) to tolerance, weight and bias cotangents bit for bit, the JVP."""
    want, got = both(lambda x, w, b: f(x, w, b), x, w, b)
    same_bits(want, got, f"conv {geometry}")  # im2col, one GEMM, the output swap: exact
    jit_want, jit_got = both(fa.jit(lambda x, w, b: f(x, w, b)), x, w, b)
    same_bits(jit_want, jit_got, "jit(conv)")
    close(want, jit_got, "jit vs eager conv")
    (out0, g0, t0), (out1, g1, t1) = both(derivs, x, w, b)
    same_bits(out0, out1, "conv in vjp")
    close(g0[0], g1[0], "conv input cotangent")  # conv_transpose: another summation order
    same_bits(g0[1:], g1[1:], "conv weight/bias cotangents")
    same_bits(t0, t1, "conv tangent")


def _check_conv_transpose(f, derivs, x, w, b, geometry):
    """conv_transpose (output_padding included): values, eager and jitted, VJP and JVP, to
    tolerance."""
    want, got = both(lambda x, w, b: f(x, w, b), x, w, b)
    close(want, got, f"conv_transpose {geometry}")
    jit_want, jit_got = both(fa.jit(lambda x, w, b: f(x, w, b)), x, w, b)
    close(jit_want, jit_got, "jit(conv_transpose)")
    close(want, jit_got, "jit vs eager conv_transpose")
    d0, d1 = both(derivs, x, w, b)
    close(d0, d1, "conv_transpose derivatives")


_CONVS = {"conv": (fa.conv, False, _check_conv),
          "conv_transpose": (fa.conv_transpose, True, _check_conv_transpose)}


@pytest.mark.parametrize("name", list(_CONVS))
@SETTINGS
@given(data=st.data())
def test_conv_values_and_derivatives(name, data):
    """``fa.conv`` and ``fa.conv_transpose`` on both paths (see ``_check_conv`` and
    ``_check_conv_transpose``)."""
    op, transposed, check = _CONVS[name]
    x, w, b, geometry, rng, small = data.draw(conv_cases(transposed=transposed))
    seed = int(rng.integers(2**31))

    def f(x, w, b=None):
        return op(x, w, b, **geometry)

    def derivs(x, w, b):
        return _derivatives(f, x, w, b, np.random.default_rng(seed))

    with small_buffers() if small else contextlib.nullcontext():
        check(f, derivs, x, w, b, geometry)


@SETTINGS
@given(conv_cases(), st.sampled_from(["x", "w", "both"]))
def test_conv_batched_and_second_order(case, batched):
    """vmap over the input, the weight or both (the batching rules fold the batch into
    samples, output channels or groups), and a Hessian-vector product (the derivatives of
    conv_transpose and conv_channel_major)."""
    x, w, b, geometry, rng, small = case
    xs = fa.stack([x, x * 0.5]) if batched in ("x", "both") else x
    ws = fa.stack([w, -w]) if batched in ("w", "both") else w
    axes = (0 if batched in ("x", "both") else None, 0 if batched in ("w", "both") else None)
    v = (fa.asarray(uniform(rng, x.shape, as_numpy(x).dtype)),
         fa.asarray(uniform(rng, w.shape, as_numpy(w).dtype)))

    def batched_conv(xs, ws):
        return fa.vmap(lambda x, w: fa.conv(x, w, b, **geometry), in_axes=axes)(xs, ws)

    def hvp(x, w):
        def loss(x, w):
            y = fa.conv(x, w, b, **geometry)
            return fa.sum(y * y * y)
        return fa.jvp(fa.grad(loss, argnums=(0, 1)), (x, w), v)[1]

    with small_buffers() if small else contextlib.nullcontext():
        want, got = both(batched_conv, xs, ws)
        same_bits(want, got, f"vmap({batched}) conv {geometry}")
        want, got = both(hvp, x, w)
        close(want, got, f"conv Hessian-vector product {geometry}", tol=TOL[as_numpy(x).dtype] * 10)


# --- pooling -------------------------------------------------------------------------------------

@st.composite
def pool_cases(draw):
    """``(nd, x, F geometry, dilation, rng, small)``: windows over 1-3 axes, lead axes
    including an empty one, values with NaN/inf/signed zeros/ties in any share."""
    nd = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4 if nd < 3 else 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)  # PyTorch's limit
    spatial = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 5))
                    for k, d, p in zip(kernel, dilation, padding))
    lead = draw(st.sampled_from([(0, 2), (1, 1), (2, 3), (3,)]))
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    share = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    x = laid_out(special(rng, (*lead, *spatial), dtype, share), draw(st.sampled_from(LAYOUTS)))
    geometry = dict(kernel_size=kernel, stride=stride, padding=padding,
                    ceil_mode=draw(st.booleans()))
    return nd, x, geometry, dilation, rng, draw(st.booleans())


@settings(SETTINGS, max_examples=HUNT or 12)  # each window geometry compiles (~1 s cold)
@given(pool_cases())
def test_max_pool_values_indices_and_derivatives(case):
    """F.max_pool{1,2,3}d with return_indices: values, indices, VJP (NaN and infinite
    cotangents included) and JVP, eager and jitted, bit for bit."""
    import fnarray.nn.functional as F
    nd, x, geometry, dilation, rng, small = case
    pool = getattr(F, f"max_pool{nd}d")
    ct = None

    def f(x):
        return pool(x, dilation=dilation, return_indices=True, **geometry)

    def derivs(x):
        out, pull = fa.vjp(lambda x: f(x)[0], x)
        tangent = fa.asarray(special(np.random.default_rng(1), x.shape, x.dtype, 0.2))
        return out, pull(ct), fa.jvp(lambda x: f(x)[0], (x,), (tangent,))[1]

    with small_buffers() if small else contextlib.nullcontext():
        want, got = both(f, x)
        same_bits(want, got, f"max_pool{nd}d {geometry} dilation {dilation}")
        ct = fa.asarray(special(rng, want[0].shape, x.dtype, 0.2))  # NaN/inf cotangents too
        want, got = both(derivs, x)
        same_bits(want, got, f"max_pool{nd}d derivatives")
        jit_want, jit_got = both(fa.jit(f), x)
        same_bits(jit_want, jit_got, "jit(max_pool)")
        same_bits(want[0], jit_got[0], "jit vs eager max_pool")


@SETTINGS
@given(pool_cases(), st.booleans(), st.sampled_from([None, 1, 3]))
def test_avg_pool_values_and_derivatives(case, count_include_pad, divisor_override):
    """F.avg_pool{1,2,3}d (im2col and a sum): values, VJP (col2im) and JVP, bit for bit."""
    import fnarray.nn.functional as F
    nd, x, geometry, _, rng, small = case
    pool = getattr(F, f"avg_pool{nd}d")
    seed = int(rng.integers(2**31))

    def f(x):
        return pool(x, count_include_pad=count_include_pad, divisor_override=divisor_override,
                    **geometry)

    def derivs(x):
        r = np.random.default_rng(seed)
        out, pull = fa.vjp(f, x)
        tangent = fa.asarray(uniform(r, x.shape, x.dtype))
        return out, pull(fa.asarray(uniform(r, out.shape, out.dtype))), fa.jvp(
            f, (x,), (tangent,))[1]

    with small_buffers() if small else contextlib.nullcontext():
        want, got = both(f, x)
        same_bits(want, got, f"avg_pool{nd}d {geometry}")
        want, got = both(derivs, x)
        same_bits(want, got, f"avg_pool{nd}d derivatives")
        jit_want, jit_got = both(fa.jit(f), x)
        same_bits(jit_want, jit_got, "jit(avg_pool)")


# --- gates: relu, relu6, hardtanh, clamp, leaky_relu -----------------------------------------------

@st.composite
def gate_cases(draw):
    """``(x, ct, lo, hi, kind, slope)`` with awkward values, bounds and slopes."""
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    shape = draw(st.sampled_from([(0,), (1,), (7,), (3, 5), (2, 3, 4)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = special(rng, shape, dtype, draw(st.sampled_from([0.0, 0.3, 1.0])))
    # bounds: None, special, values of x itself (x on a bound), or not representable in float32
    pool = [None, 0.0, -0.0, 6.0, -1.0, 0.1, 1e-45, float(np.finfo(np.float32).max) * 2]
    pool += [float(v) for v in x.ravel()[:3] if not np.isnan(v)]
    lo, hi = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
    kind = draw(st.sampled_from(["clamp", "clamp_inclusive", "leaky_relu"]))
    slope = draw(st.sampled_from([0.0, 0.01, -0.5, 1.0, 3.0, -0.0]))
    ct = special(rng, shape, dtype, draw(st.sampled_from([0.0, 0.3])))
    layout = draw(st.sampled_from(LAYOUTS))
    return laid_out(x, layout), laid_out(ct, layout), lo, hi, kind, slope


@SETTINGS
@given(gate_cases())
def test_gates_values_and_derivatives(case):
    """clamp (open or closed interval: relu, relu6, hardtanh, torch.clamp) and leaky_relu:
    values, VJP and JVP (both the gate), eager and jitted; equal values everywhere, equal
    bits where ``backends/kernels/activation.py`` promises them."""
    from fnarray.ops import activation
    x, ct, lo, hi, kind, slope = case
    if kind == "leaky_relu":
        def f(x):
            return activation.leaky_relu.bind(x, slope=slope)
        # the documented exact case: a slope without its sign bit (-0.0 gives +0 * x
        # compiled, as PyTorch, where NumPy's masked product keeps x's sign)
        sign_clear = not np.signbit(slope)
    else:
        if lo is None and hi is None:
            lo = 0.0

        def f(x):
            return activation.clamp.bind(x, lo=lo, hi=hi, inclusive=kind == "clamp_inclusive")
        sign_clear = True

    def derivs(x, ct):
        out, pull = fa.vjp(f, x)
        return out, pull(ct), fa.jvp(f, (x,), (ct,))[1]

    want, got = both(derivs, x, ct)
    cotangent_finite = bool(np.isfinite(as_numpy(ct)).all())
    values_finite = bool(np.isfinite(as_numpy(x)).all())
    what = f"{kind} lo={lo} hi={hi} slope={slope}"
    equal_up_to_zero_signs(want[0], got[0], kind != "leaky_relu" or (
        values_finite and sign_clear), what)
    equal_up_to_zero_signs(want[1:], got[1:], cotangent_finite and sign_clear, what)
    jit_want, jit_got = both(fa.jit(derivs), x, ct)
    equal_up_to_zero_signs(jit_want, jit_got, cotangent_finite and values_finite and sign_clear,
                           f"jit: {what}")


@SETTINGS
@given(gate_cases(), st.sampled_from([(1,), (), (1, 1)]))
def test_gate_broadcast_cotangent(case, lead):
    """``gate`` with a cotangent that broadcasts against ``x`` (the grad of a sum)."""
    from fnarray.ops import activation
    x, _, lo, hi, _, slope = case
    ct = fa.asarray(np.full(lead, 2.5, as_numpy(x).dtype))
    params = dict(lo=lo if lo is not None or hi is not None else 0.0, hi=hi, inclusive=False,
                  slope=slope)
    want, got = both(lambda ct, x: activation.gate.bind(ct, x, **params), ct, x)
    equal_up_to_zero_signs(want, got, not np.signbit(slope), f"gate {params}")


# --- random bits, dropout ------------------------------------------------------------------------

@SETTINGS
@given(st.integers(0, 2**32 - 1), st.sampled_from([(), (0,), (1,), (3,), (2, 5), (7, 3, 1)]),
       st.integers(1, 4), st.sampled_from(LAYOUTS))
def test_random_same_bits_on_both_paths(seed, shape, count, layout):
    """The same key gives the same words on both paths: raw bits, split and folded keys,
    batches of keys (vmap), the distributions built on them, and dropout masks."""
    import fnarray.nn.functional as F
    key = fa.random.key(seed)
    keys = laid_out(as_numpy(fa.random.split(key, count)), layout)  # (count, 2) uint32

    def draws(key, keys):
        sub = fa.random.split(key, 3)
        x = fa.ones((*shape, 2), dtype=fa.float32)
        return [fa.random.bits(key, shape, fa.uint64),
                fa.random.bits(sub[1], (*shape, 3), fa.uint8),
                fa.random.fold_in(key, 7), fa.vmap(lambda k: fa.random.bits(k, shape))(keys),
                fa.vmap(lambda k: fa.random.split(k, 2))(keys),
                fa.random.uniform(sub[2], shape), fa.random.normal(sub[0], shape, fa.float64),
                F.dropout(x, 0.3, key=sub[2]), F.dropout(x * 3, 0.5, key=key),
                fa.vmap(fa.vmap(lambda k: fa.random.bits(k, shape, fa.uint16)))(
                    fa.stack([keys, keys[::-1]], axis=1))]

    want, got = both(draws, key, keys)
    same_bits(want, got, f"random draws, shape {shape}")
    jit_want, jit_got = both(fa.jit(draws), key, keys)
    # the normal draw's Box-Muller (log1p, sqrt, cos) may run as a fused loop: libm's log1p
    # and cos against NumPy's SIMD ones, an ulp apart
    normal = 6
    same_bits(jit_want[:normal] + jit_want[normal + 1:], jit_got[:normal] + jit_got[normal + 1:],
              "jit(random draws)")
    close(jit_want[normal], jit_got[normal], "jit(normal)", tol=1e-15)
    same_bits(want[:normal] + want[normal + 1:], jit_got[:normal] + jit_got[normal + 1:],
              "jit vs eager random draws")


def test_random_bits_words_past_one_block_row():
    """Odd word counts and a batch of keys: the compiled kernel's last half block."""
    from fnarray.ops.random_bits import random_bits, threefry2x32
    keys = fa.asarray(np.arange(10, dtype=np.uint32).reshape(5, 2)[::-1])
    for n in (1, 2, 3, 33):
        want, got = both(lambda k: random_bits.bind(k, shape=(n,)), keys)
        same_bits(want, got, f"random_bits n={n}")
    words = [fa.asarray(np.array(v, np.uint32)) for v in ([1, 2, 3], [7], [[0], [4]], 5)]
    want, got = both(lambda *w: threefry2x32.bind(*w), *words)  # broadcasting operands
    same_bits(want, got, "threefry2x32 broadcast")


# --- fixed cases ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_with_more_than_256_taps(dtype):
    """A 7x7x7 window has 343 kernel offsets: int32 taps (uint8 below 257), same bits and
    the same gradient on both paths, including vmap of the scatter with unbatched taps."""
    from fnarray.ops.pooling import max_pool, max_pool_scatter
    rng = np.random.default_rng(7)
    x = fa.asarray(special(rng, (2, 1, 8, 9, 7), dtype, 0.2))
    geometry = dict(kernel=(7, 7, 7), strides=(1, 2, 1), dilation=(1, 1, 1))

    def f(x):
        values, taps = max_pool.bind(x, **geometry)
        cts = fa.stack([values, values * 2])
        spread = fa.vmap(lambda c: max_pool_scatter.bind(c, taps, spatial=(8, 9, 7),
                                                         **geometry))(cts)
        return values, taps, spread

    want, got = both(f, x)
    assert as_numpy(want[1]).dtype == np.int32
    same_bits(want, got, "343-tap max_pool")
    jit_want, jit_got = both(fa.jit(f), x)
    same_bits(want, jit_got, "jit 343-tap max_pool")


def test_leaky_relu_with_a_negative_zero_slope_differs_only_in_zero_signs():
    """The documented signed-zero freedom of the compiled gate
    (``backends/kernels/activation.py``): ``leaky_relu(x, -0.0)`` of a negative ``x`` is
    ``+0.0`` compiled (``x * -0.0``, PyTorch's value) and ``-0.0`` on NumPy (its masked
    product ``x * 0``); the values are equal."""
    from fnarray.ops import activation
    x = fa.asarray(np.array([-0.307, 2.0, -0.0], np.float32))
    want, got = both(lambda x: activation.leaky_relu.bind(x, slope=-0.0), x)
    equal_up_to_zero_signs(want, got, False, "leaky_relu slope -0.0")
    assert np.signbit(as_numpy(want)[0]) and not np.signbit(as_numpy(got)[0])
