"""Adversarial differential tests of the compiled CPU kernels (``fnarray/backends/accel.py``):
for the same inputs, the compiled path (``accel.forced(True)``, every size) against the NumPy
path (``accel.forced(False)``), values and derivatives (``fa.vjp``/``fa.jvp``), eager and
jitted, over generated geometries, layouts (Fortran-ordered, transposed, negative-stride
views), dtypes and special values (NaN, infinities, signed zeros, ties).  Every run also
checks that no input buffer was written and that results share no memory with the inputs.

Tolerances: kernels documented as exact (im2col/col2im, the conv output swap, pooling,
Threefry, fused loops of ``+ - * /``, comparisons, casts) are compared bit for bit
(``_same_bits``); the compiled ``conv_transpose`` adds in another order, so results built on
it (convolution input gradients, transposed convolutions) are compared with ``rtol = atol =
1e-4`` in float32 and ``1e-11`` in float64, for operands in [-1, 1] and at most a few
hundred terms per sum (float32's eps is 1.2e-7, so a sum of n terms may differ by ~n eps
relative to the sum of the terms' magnitudes); fused ``exp``/``log``/trigonometric loops by
``rtol = 4e-7`` (float32, one or two ulps of libm vs NumPy's SIMD functions) and ``1e-15``
(float64).  The gate's documented signed-zero freedom (``backends/kernels/activation.py``)
is allowed where it applies: ``numpy.array_equal`` there, bits elsewhere.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnarray as fa
from fnarray.backends import accel

pytestmark = pytest.mark.skipif(not accel.available(),
                                reason="compiled kernels need the 'accel' extra (numba)")

# ACCEL_FUZZ_EXAMPLES=N hunts with N fresh random examples per test (CI: 25, derandomized)
_HUNT = int(os.environ.get("ACCEL_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(deadline=None, max_examples=_HUNT or 25, derandomize=not _HUNT,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-11}


# --- comparison helpers --------------------------------------------------------------------------

def _np(a) -> np.ndarray:
    return np.asarray(a)


def _leaves(tree) -> list:
    return [x for x in fa.tree_util.tree_leaves(tree) if x is not None]


def _snapshot(args) -> list:
    return [(_np(a), _np(a).copy()) for a in _leaves(args) if hasattr(a, "shape")]


def _unwritten(snap, what: str) -> None:
    for live, before in snap:
        assert live.tobytes() == before.tobytes(), f"{what}: an input buffer was written"


def _unaliased(outs, args, what: str) -> None:
    ins = [_np(a) for a in _leaves(args) if hasattr(a, "shape")]
    for o in _leaves(outs):
        o = _np(o)
        for a in ins:
            if o.size and a.size:
                assert not np.shares_memory(o, a), f"{what}: a result shares memory with an input"


def _both(fn, *args):
    """``fn(*args)`` on the NumPy path and on the compiled one (every size), checking on both
    that no input is written and no result aliases an input, and that a second compiled call
    gives the same bits and leaves the earlier results untouched (recycled scratch buffers):
    ``(numpy, compiled)``."""
    res, kept = [], []
    for on in (False, True, True):
        snap = _snapshot(args)
        with accel.forced(on), np.errstate(all="ignore"):
            out = fn(*args)
        what = f"{getattr(fn, '__name__', fn)} ({'compiled' if on else 'numpy'})"
        _unwritten(snap, what)
        _unaliased(out, args, what)
        res.append(out)
        kept.append(_snapshot(out))
    for snap in kept:
        _unwritten(snap, "a later call")
    _same_bits(res[1], res[2], "a second compiled call")
    return res[:2]


@contextlib.contextmanager
def _small_buffers():
    """Chunk, block and recycling thresholds at their smallest, so that small operands take
    the code paths of large ones (chunk boundaries, recycled scratch and patch buffers)."""
    from fnarray.ops import conv_patches, conv_transpose, pooling
    saved = (conv_transpose._CHUNK_BYTES, conv_patches._PATCH_BUFFERS.MIN_BYTES,
             conv_transpose._SCRATCH.MIN_BYTES, pooling.BLOCK_BYTES)
    conv_transpose._CHUNK_BYTES = 1
    conv_patches._PATCH_BUFFERS.MIN_BYTES = conv_transpose._SCRATCH.MIN_BYTES = 0
    pooling.BLOCK_BYTES = 64
    try:
        yield
    finally:
        (conv_transpose._CHUNK_BYTES, conv_patches._PATCH_BUFFERS.MIN_BYTES,
         conv_transpose._SCRATCH.MIN_BYTES, pooling.BLOCK_BYTES) = saved


def _same_bits(a, b, what="") -> None:
    la, lb = _leaves(a), _leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        x, y = _np(x), _np(y)
        assert x.dtype == y.dtype and x.shape == y.shape, (what, x.dtype, y.dtype, x.shape, y.shape)
        if x.tobytes() != y.tobytes():
            bad = np.flatnonzero(x.view(np.uint8).reshape(x.size, -1) != y.view(np.uint8).reshape(
                y.size, -1)) if x.size else []
            raise AssertionError(f"{what}: bits differ ({len(bad)} bytes), numpy {x.ravel()[:8]} "
                                 f"compiled {y.ravel()[:8]}")


def _close(a, b, what="", tol=None) -> None:
    la, lb = _leaves(a), _leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        x, y = _np(x), _np(y)
        assert x.dtype == y.dtype and x.shape == y.shape, (what, x.dtype, y.dtype, x.shape, y.shape)
        t = TOL.get(x.dtype, 0) if tol is None else tol
        np.testing.assert_allclose(y, x, rtol=t, atol=t, equal_nan=True, err_msg=what)


# --- operands ------------------------------------------------------------------------------------

LAYOUTS = ("c", "fortran", "negative", "strided", "transposed")


def _laid_out(values: np.ndarray, layout: str):
    """``values`` as an fnarray array held in the memory layout ``layout`` (a view where the
    layout is not C order: the kernels see it as is)."""
    if layout == "fortran" and values.ndim:
        held = np.asfortranarray(values)
    elif layout == "negative" and values.ndim:
        held = np.ascontiguousarray(values[::-1])[::-1]
    elif layout == "strided" and values.ndim:
        held = np.repeat(values, 2, axis=-1)[..., ::2]
    elif layout == "transposed" and values.ndim > 1:
        held = np.moveaxis(np.ascontiguousarray(np.moveaxis(values, -1, 0)), 0, -1)
    else:
        held = np.array(values, order="C")
    assert np.array_equal(held, values, equal_nan=True)
    return fa.asarray(held)


def _uniform(rng, shape, dtype):
    return np.asarray(rng.uniform(-1, 1, shape)).astype(dtype)


# --- convolution -------------------------------------------------------------------------------

@st.composite
def conv_cases(draw, transposed: bool = False):
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
    x = _laid_out(_uniform(rng, (n, cin, *spatial), dtype), draw(st.sampled_from(LAYOUTS)))
    w = _laid_out(_uniform(rng, w_shape, dtype), draw(st.sampled_from(LAYOUTS)))
    n_bias = cout
    b = (_laid_out(_uniform(rng, (n_bias,), dtype), draw(st.sampled_from(LAYOUTS)))
         if draw(st.booleans()) else None)
    return x, w, b, geometry, rng, draw(st.booleans())


def _derivatives(f, x, w, b, rng):
    """``f``'s output, its VJP at a random cotangent and its JVP at random tangents."""
    primals = (x, w) if b is None else (x, w, b)
    out, pull = fa.vjp(f, *primals)
    ct = fa.asarray(_uniform(rng, out.shape, out.dtype))
    tangents = tuple(fa.asarray(_uniform(rng, p.shape, p.dtype)) for p in primals)
    _, tan = fa.jvp(f, primals, tangents)
    return out, pull(ct), tan


@SETTINGS
@given(conv_cases())
def test_conv_values_and_derivatives(case):
    x, w, b, geometry, rng, small = case
    seed = int(rng.integers(2**31))

    def f(x, w, b=None):
        return fa.conv(x, w, b, **geometry)

    def derivs(x, w, b):
        return _derivatives(f, x, w, b, np.random.default_rng(seed))

    with _small_buffers() if small else contextlib.nullcontext():
        _check_conv(f, derivs, x, w, b, geometry)


def _check_conv(f, derivs, x, w, b, geometry):
    want, got = _both(lambda x, w, b: f(x, w, b), x, w, b)
    _same_bits(want, got, f"conv {geometry}")  # im2col, one GEMM, the output swap: exact
    jit_want, jit_got = _both(fa.jit(lambda x, w, b: f(x, w, b)), x, w, b)
    _same_bits(jit_want, jit_got, "jit(conv)")
    _close(want, jit_got, "jit vs eager conv")
    (out0, g0, t0), (out1, g1, t1) = _both(derivs, x, w, b)
    _same_bits(out0, out1, "conv in vjp")
    _close(g0[0], g1[0], "conv input cotangent")  # conv_transpose: another summation order
    _same_bits(g0[1:], g1[1:], "conv weight/bias cotangents")
    _same_bits(t0, t1, "conv tangent")


@SETTINGS
@given(conv_cases(transposed=True))
def test_conv_transpose_values_and_derivatives(case):
    x, w, b, geometry, rng, small = case
    seed = int(rng.integers(2**31))

    def f(x, w, b=None):
        return fa.conv_transpose(x, w, b, **geometry)

    def derivs(x, w, b):
        return _derivatives(f, x, w, b, np.random.default_rng(seed))

    with _small_buffers() if small else contextlib.nullcontext():
        _check_conv_transpose(f, derivs, x, w, b, geometry)


def _check_conv_transpose(f, derivs, x, w, b, geometry):
    want, got = _both(lambda x, w, b: f(x, w, b), x, w, b)
    _close(want, got, f"conv_transpose {geometry}")
    jit_want, jit_got = _both(fa.jit(lambda x, w, b: f(x, w, b)), x, w, b)
    _close(jit_want, jit_got, "jit(conv_transpose)")
    _close(want, jit_got, "jit vs eager conv_transpose")
    d0, d1 = _both(derivs, x, w, b)
    _close(d0, d1, "conv_transpose derivatives")


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
    v = (fa.asarray(_uniform(rng, x.shape, _np(x).dtype)),
         fa.asarray(_uniform(rng, w.shape, _np(w).dtype)))

    def batched_conv(xs, ws):
        return fa.vmap(lambda x, w: fa.conv(x, w, b, **geometry), in_axes=axes)(xs, ws)

    def hvp(x, w):
        def loss(x, w):
            y = fa.conv(x, w, b, **geometry)
            return fa.sum(y * y * y)
        return fa.jvp(fa.grad(loss, argnums=(0, 1)), (x, w), v)[1]

    with _small_buffers() if small else contextlib.nullcontext():
        want, got = _both(batched_conv, xs, ws)
        _same_bits(want, got, f"vmap({batched}) conv {geometry}")
        want, got = _both(hvp, x, w)
        _close(want, got, f"conv Hessian-vector product {geometry}", tol=TOL[_np(x).dtype] * 10)


# --- pooling -------------------------------------------------------------------------------------

SPECIAL = (np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0, 0.5)


def _special(rng, shape, dtype, share: float):
    """Uniform values with a fraction ``share`` replaced by NaN, infinities, signed zeros
    and repeated values (ties)."""
    values = _uniform(rng, shape, dtype)
    pick = rng.random(shape) < share
    values[pick] = rng.choice(np.array(SPECIAL, dtype), size=int(pick.sum()))
    return values


@st.composite
def pool_cases(draw):
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
    x = _laid_out(_special(rng, (*lead, *spatial), dtype, share), draw(st.sampled_from(LAYOUTS)))
    geometry = dict(kernel_size=kernel, stride=stride, padding=padding,
                    ceil_mode=draw(st.booleans()))
    return nd, x, geometry, dilation, rng, draw(st.booleans())


@settings(SETTINGS, max_examples=_HUNT or 12)  # each window geometry compiles (~1 s cold)
@given(pool_cases())
def test_max_pool_values_indices_and_derivatives(case):
    import fnarray.nn.functional as F
    nd, x, geometry, dilation, rng, small = case
    pool = getattr(F, f"max_pool{nd}d")
    ct = None

    def f(x):
        return pool(x, dilation=dilation, return_indices=True, **geometry)

    def derivs(x):
        out, pull = fa.vjp(lambda x: f(x)[0], x)
        tangent = fa.asarray(_special(np.random.default_rng(1), x.shape, x.dtype, 0.2))
        return out, pull(ct), fa.jvp(lambda x: f(x)[0], (x,), (tangent,))[1]

    with _small_buffers() if small else contextlib.nullcontext():
        want, got = _both(f, x)
        _same_bits(want, got, f"max_pool{nd}d {geometry} dilation {dilation}")
        ct = fa.asarray(_special(rng, want[0].shape, x.dtype, 0.2))  # NaN/inf cotangents too
        want, got = _both(derivs, x)
        _same_bits(want, got, f"max_pool{nd}d derivatives")
        jit_want, jit_got = _both(fa.jit(f), x)
        _same_bits(jit_want, jit_got, "jit(max_pool)")
        _same_bits(want[0], jit_got[0], "jit vs eager max_pool")


@SETTINGS
@given(pool_cases(), st.booleans(), st.sampled_from([None, 1, 3]))
def test_avg_pool_values_and_derivatives(case, count_include_pad, divisor_override):
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
        tangent = fa.asarray(_uniform(r, x.shape, x.dtype))
        return out, pull(fa.asarray(_uniform(r, out.shape, out.dtype))), fa.jvp(
            f, (x,), (tangent,))[1]

    with _small_buffers() if small else contextlib.nullcontext():
        want, got = _both(f, x)
        _same_bits(want, got, f"avg_pool{nd}d {geometry}")
        want, got = _both(derivs, x)
        _same_bits(want, got, f"avg_pool{nd}d derivatives")
        jit_want, jit_got = _both(fa.jit(f), x)
        _same_bits(jit_want, jit_got, "jit(avg_pool)")


# --- gates: relu, relu6, hardtanh, clamp, leaky_relu -----------------------------------------------

def _equal_up_to_zero_signs(a, b, exact: bool, what: str) -> None:
    """Equal values (NaN where NaN); bit for bit as well where ``exact``."""
    for x, y in zip(_leaves(a), _leaves(b)):
        x, y = _np(x), _np(y)
        assert x.dtype == y.dtype and x.shape == y.shape, what
        assert np.array_equal(x, y, equal_nan=True), f"{what}: numpy {x} compiled {y}"
    if exact:
        _same_bits(a, b, what)


@st.composite
def gate_cases(draw):
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    shape = draw(st.sampled_from([(0,), (1,), (7,), (3, 5), (2, 3, 4)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _special(rng, shape, dtype, draw(st.sampled_from([0.0, 0.3, 1.0])))
    # bounds: None, special, values of x itself (x on a bound), or not representable in float32
    pool = [None, 0.0, -0.0, 6.0, -1.0, 0.1, 1e-45, float(np.finfo(np.float32).max) * 2]
    pool += [float(v) for v in x.ravel()[:3] if not np.isnan(v)]
    lo, hi = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
    kind = draw(st.sampled_from(["clamp", "clamp_inclusive", "leaky_relu"]))
    slope = draw(st.sampled_from([0.0, 0.01, -0.5, 1.0, 3.0, -0.0]))
    ct = _special(rng, shape, dtype, draw(st.sampled_from([0.0, 0.3])))
    layout = draw(st.sampled_from(LAYOUTS))
    return _laid_out(x, layout), _laid_out(ct, layout), lo, hi, kind, slope


@SETTINGS
@given(gate_cases())
def test_gates_values_and_derivatives(case):
    from fnarray.ops import activation
    x, ct, lo, hi, kind, slope = case
    if kind == "leaky_relu":
        def f(x):
            return activation.leaky_relu.bind(x, slope=slope)
        # the documented exact case: a slope without its sign bit (-0.0 gives +0 * x
        # compiled, as PyTorch, where NumPy's masked product keeps x's sign)
        finite_slope = not np.signbit(slope)
    else:
        if lo is None and hi is None:
            lo = 0.0

        def f(x):
            return activation.clamp.bind(x, lo=lo, hi=hi, inclusive=kind == "clamp_inclusive")
        finite_slope = True

    def derivs(x, ct):
        out, pull = fa.vjp(f, x)
        return out, pull(ct), fa.jvp(f, (x,), (ct,))[1]

    want, got = _both(derivs, x, ct)
    cotangent_finite = bool(np.isfinite(_np(ct)).all())
    values_finite = bool(np.isfinite(_np(x)).all())
    what = f"{kind} lo={lo} hi={hi} slope={slope}"
    _equal_up_to_zero_signs(want[0], got[0], kind != "leaky_relu" or (
        values_finite and finite_slope), what)
    _equal_up_to_zero_signs(want[1:], got[1:], cotangent_finite and finite_slope, what)
    jit_want, jit_got = _both(fa.jit(derivs), x, ct)
    _same_bits(jit_want, jit_got, f"jit: {what}") if cotangent_finite and values_finite and \
        finite_slope else _equal_up_to_zero_signs(jit_want, jit_got, False, f"jit: {what}")


@SETTINGS
@given(gate_cases(), st.sampled_from([(1,), (), (1, 1)]))
def test_gate_broadcast_cotangent(case, lead):
    """``gate`` with a cotangent that broadcasts against ``x`` (the grad of a sum)."""
    from fnarray.ops import activation
    x, _, lo, hi, _, slope = case
    ct = fa.asarray(np.full(lead, 2.5, _np(x).dtype))
    params = dict(lo=lo if lo is not None or hi is not None else 0.0, hi=hi, inclusive=False,
                  slope=slope)
    want, got = _both(lambda ct, x: activation.gate.bind(ct, x, **params), ct, x)
    _equal_up_to_zero_signs(want, got, not np.signbit(slope), f"gate {params}")


# --- random bits, dropout ------------------------------------------------------------------------

@SETTINGS
@given(st.integers(0, 2**32 - 1), st.sampled_from([(), (0,), (1,), (3,), (2, 5), (7, 3, 1)]),
       st.integers(1, 4), st.sampled_from(LAYOUTS))
def test_random_same_bits_on_both_paths(seed, shape, count, layout):
    """The same key gives the same words on both paths: raw bits, split and folded keys,
    batches of keys (vmap), the distributions built on them, and dropout masks."""
    import fnarray.nn.functional as F
    key = fa.random.key(seed)
    keys = _laid_out(_np(fa.random.split(key, count)), layout)  # (count, 2) uint32

    def draws(key, keys):
        sub = fa.random.split(key, 3)
        x = fa.ones((*shape, 2), dtype=fa.float32)
        return [fa.random.bits(key, shape, fa.uint64), fa.random.bits(sub[1], (*shape, 3), fa.uint8),
                fa.random.fold_in(key, 7), fa.vmap(lambda k: fa.random.bits(k, shape))(keys),
                fa.vmap(lambda k: fa.random.split(k, 2))(keys),
                fa.random.uniform(sub[2], shape), fa.random.normal(sub[0], shape, fa.float64),
                F.dropout(x, 0.3, key=sub[2]), F.dropout(x * 3, 0.5, key=key),
                fa.vmap(fa.vmap(lambda k: fa.random.bits(k, shape, fa.uint16)))(
                    fa.stack([keys, keys[::-1]], axis=1))]

    want, got = _both(draws, key, keys)
    _same_bits(want, got, f"random draws, shape {shape}")
    jit_want, jit_got = _both(fa.jit(draws), key, keys)
    # the normal draw's Box-Muller (log1p, sqrt, cos) may run as a fused loop: libm's log1p
    # and cos against NumPy's SIMD ones, an ulp apart
    normal = 6
    _same_bits(jit_want[:normal] + jit_want[normal + 1:], jit_got[:normal] + jit_got[normal + 1:],
               "jit(random draws)")
    _close(jit_want[normal], jit_got[normal], "jit(normal)", tol=1e-15)
    _same_bits(want[:normal] + want[normal + 1:], jit_got[:normal] + jit_got[normal + 1:],
               "jit vs eager random draws")


def test_random_bits_words_past_one_block_row():
    """Odd word counts and a batch of keys: the compiled kernel's last half block."""
    from fnarray.ops.random_bits import random_bits, threefry2x32
    keys = fa.asarray(np.arange(10, dtype=np.uint32).reshape(5, 2)[::-1])
    for n in (1, 2, 3, 33):
        want, got = _both(lambda k: random_bits.bind(k, shape=(n,)), keys)
        _same_bits(want, got, f"random_bits n={n}")
    words = [fa.asarray(np.array(v, np.uint32)) for v in ([1, 2, 3], [7], [[0], [4]], 5)]
    want, got = _both(lambda *w: threefry2x32.bind(*w), *words)  # broadcasting operands
    _same_bits(want, got, "threefry2x32 broadcast")


# --- jitted elementwise programs (fused loops) -----------------------------------------------------

FUSED_DTYPES = ("float32", "float64", "int8", "int32", "int64", "uint8", "uint32", "bool")
_INEXACT = ("exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "arctan", "power")


def _values(rng, shape, dtype: str) -> np.ndarray:
    """Operand values with the awkward ones over-represented: NaN, infinities, signed
    zeros for floats; the extremes (overflow) and zero (division) for integers."""
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.startswith("float"):
        return np.asarray(_special(rng, shape, np.dtype(dtype), 0.6) * 3)
    info = np.iinfo(dtype)
    values = np.asarray(rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True))
    pick = rng.random(shape) < 0.4
    values[pick] = rng.choice(np.array([info.min, info.max, 0, 1, -1 if info.min else 2],
                                       dtype=np.int64).astype(dtype), size=int(pick.sum()))
    return values


def _unary_ops(d):
    kind = np.dtype(d).kind
    ops = []
    if kind in "iuf":
        ops += [("neg", fa.negative), ("abs", fa.abs), ("square", lambda a: a * a)]
    if kind == "f":
        ops += [(n, getattr(fa, n)) for n in ("sqrt", "floor", "ceil", "trunc", "isnan",
                                              "isfinite", "sign") + _INEXACT[:-1]]
    if kind in "iub":
        ops += [("invert", fa.bitwise_invert)]
    if kind == "b":
        ops += [("not", fa.logical_not)]
    ops += [(f"as_{t}", lambda a, t=t: fa.astype(a, getattr(fa, t))) for t in FUSED_DTYPES
            if t != d]
    return ops


def _binary_ops(d):
    kind = np.dtype(d).kind
    ops = [("eq", fa.equal), ("ne", fa.not_equal)]
    if kind in "iuf":
        ops += [("add", fa.add), ("sub", fa.subtract), ("mul", fa.multiply),
                ("max", fa.maximum), ("min", fa.minimum), ("lt", fa.less), ("ge", fa.greater_equal),
                ("where", lambda a, b: fa.where(a > b, a, b))]
    if kind == "f":
        ops += [("div", fa.divide), ("power", fa.pow)]
    if kind in "iub":
        ops += [("and", fa.bitwise_and), ("or", fa.bitwise_or), ("xor", fa.bitwise_xor)]
    if kind == "b":
        ops += [("land", fa.logical_and), ("lor", fa.logical_or)]
    return ops


@st.composite
def programs(draw):
    """A random elementwise program: a few inputs of one shape (and of a broadcasting shape,
    0-d arrays, Python scalars), each step one operation on earlier values of one dtype."""
    shape = draw(st.sampled_from([(1,), (6,), (3, 4), (2, 3, 5)]))
    dtypes = draw(st.lists(st.sampled_from(FUSED_DTYPES), min_size=1, max_size=3))
    specs = [(shape, d) for d in dtypes]
    specs += [((), draw(st.sampled_from(dtypes)))]
    if draw(st.booleans()):
        specs.append(((1,) * (len(shape) - 1) + shape[-1:], draw(st.sampled_from(dtypes))))
    steps = []
    types = [d for _, d in specs]
    for _ in range(draw(st.integers(2, 9))):
        i = draw(st.integers(0, len(types) - 1))
        same = [j for j, t in enumerate(types) if t == types[i]]
        if types[i] != "bool" and not draw(st.integers(0, 5)):  # a reduction between trees
            steps.append(("reduce", draw(st.sampled_from(["sum", "max"])), i,
                          draw(st.integers(0, len(shape) - 1))))
        elif draw(st.booleans()):
            name, _ = draw(st.sampled_from(_unary_ops(types[i])))
            steps.append(("unary", name, i, None))
        elif draw(st.booleans()):
            name, _ = draw(st.sampled_from(_binary_ops(types[i])))
            steps.append(("binary", name, i, draw(st.sampled_from(same))))
        else:  # with a Python scalar (weak type)
            name, _ = draw(st.sampled_from([o for o in _binary_ops(types[i])
                                            if o[0] in ("add", "mul", "max", "div", "lt")]
                                           or _binary_ops(types[i])))
            steps.append(("scalar", name, i, draw(st.sampled_from([0, 1, 2, -1, 0.5, -0.0]))))
        types.append(None)  # filled in by tracing
        types[-1] = _result_type(specs, steps)
    outs = draw(st.lists(st.integers(len(specs), len(types) - 1), min_size=1, max_size=3,
                         unique=True))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = [_values(rng, s, d) for s, d in specs]
    layouts = [draw(st.sampled_from(LAYOUTS)) for _ in specs]
    return steps, outs, values, layouts


def _run_program(steps, outs, *args):
    vals = list(args)
    for kind, name, i, j in steps:
        d = str(_np_dtype(vals[i]))
        if kind == "reduce":
            vals.append(getattr(fa, name)(vals[i], axis=min(j, vals[i].ndim - 1), keepdims=True)
                        if vals[i].ndim else vals[i] * 1)
        elif kind == "unary":
            vals.append(dict(_unary_ops(d))[name](vals[i]))
        elif kind == "binary":
            vals.append(dict(_binary_ops(d))[name](vals[i], vals[j]))
        else:
            op = dict(_binary_ops(d))[name]
            scalar = j if np.dtype(d).kind == "f" else (
                bool(j) if d == "bool" else int(abs(j)) if np.dtype(d).kind == "u" else int(j))
            vals.append(op(vals[i], scalar))
    return [vals[k] for k in outs]


def _np_dtype(v):
    return np.dtype(str(v.dtype))


def _result_type(specs, steps):
    args = [fa.asarray(np.zeros(s, d)) for s, d in specs]
    with np.errstate(all="ignore"):
        return str(_np_dtype(_run_program(steps, [len(specs) + len(steps) - 1], *args)[0]))


def _inexact(steps) -> bool:
    return any(name in _INEXACT for _, name, _, _ in steps)


@SETTINGS
@given(programs())
def test_fused_programs_match_numpy(case):
    steps, outs, values, layouts = case
    args = [_laid_out(v, lay) for v, lay in zip(values, layouts)]

    def prog(*args):
        return _run_program(steps, outs, *args)

    eager, _ = _both(prog, *args)
    want, got = _both(fa.jit(prog), *args)
    compare = (lambda a, b, w: _close(a, b, w, tol=4e-7)) if _inexact(steps) else _same_bits
    compare(want, got, f"jit program {steps} -> {outs}")
    compare(eager, got, f"jit vs eager {steps} -> {outs}")
    # compiled kernels from the full shape up only: smaller trees of the same program take
    # their NumPy lines inside the compiled program
    with accel.forced(True), np.errstate(all="ignore"):
        accel._min_size = max(int(np.prod(_np(a).shape)) for a in args)
        mixed = fa.jit(prog)(*args)
    compare(want, mixed, f"jit program, mixed sizes {steps} -> {outs}")


@SETTINGS
@given(programs(), st.data())
def test_fused_programs_with_donated_inputs(case, data):
    """Donated inputs may receive results; the other inputs are never written, and no
    result shares memory with an input that was not donated."""
    steps, outs, values, layouts = case
    donate = tuple(sorted(data.draw(st.sets(st.integers(0, len(values) - 1), min_size=1))))

    def prog(*args):
        return _run_program(steps, outs, *args)

    results = []
    for on in (False, True):
        args = [_laid_out(v, lay) for v, lay in zip(values, layouts)]
        kept = [(k, a, _np(a).copy()) for k, a in enumerate(args) if k not in donate]
        with accel.forced(on), np.errstate(all="ignore"):
            out = fa.jit(prog, donate_argnums=donate)(*args)
        for k, a, before in kept:
            assert _np(a).tobytes() == before.tobytes(), f"input {k} (not donated) was written"
            for o in out:
                assert not (_np(o).size and np.shares_memory(_np(o), _np(a))), \
                    f"a result shares memory with input {k}, which was not donated"
        results.append(out)
    compare = (lambda a, b, w: _close(a, b, w, tol=4e-7)) if _inexact(steps) else _same_bits
    compare(results[0], results[1], f"donated {donate}: {steps} -> {outs}")


# --- regressions: minimised cases the fuzzing above found -----------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_maximum_minimum_of_signed_zeros_keep_numpys_operand(dtype):
    """NumPy's ``maximum``/``minimum`` return the second operand of two equal ones
    (``maximum(-0.0, 0.0)`` is ``+0.0``); the fused loop returned the first, so a jitted
    ``maximum(-x, 0.0)`` (relu written with maximum) gave ``-0.0`` compiled, ``+0.0`` on
    NumPy, and ``1 / result`` then ``-inf`` against ``inf``."""
    x = fa.asarray(np.array([0.0, -0.0, 1.0, np.nan], dtype))
    zero = fa.asarray(np.array([-0.0, 0.0, 0.0, 0.0], dtype))

    def f(x, z):
        return [1 / fa.maximum(-x, 0.0), 1 / fa.minimum(x * 1, -0.0), fa.maximum(z, x + 0),
                fa.minimum(x + 0, z), fa.maximum(x * 1, z), fa.minimum(z, x * 1)]

    want, got = _both(fa.jit(f), x, zero)
    _same_bits(want, got, "maximum/minimum ties")
    with np.errstate(divide="ignore"):
        _same_bits(want, f(x, zero), "jit vs eager")


# --- fused optimizer steps -------------------------------------------------------------------------

_OPTIMIZERS = {  # class name, functional name, option draws
    "SGD": ("sgd", dict(momentum=[0.0, 0.9], dampening=[0.0], weight_decay=[0.0, 1e-2],
                        nesterov=[False, True], maximize=[False, True])),
    "Adam": ("adam", dict(weight_decay=[0.0, 1e-2], amsgrad=[False, True],
                          maximize=[False, True], eps=[1e-8, 0.0])),
    "AdamW": ("adamw", dict(weight_decay=[0.0, 1e-2], amsgrad=[False, True])),
    "RMSprop": ("rmsprop", dict(momentum=[0.0, 0.5], centered=[False, True],
                                weight_decay=[0.0, 1e-2], eps=[1e-8, 0.0])),
}


@st.composite
def optimizer_cases(draw):
    name = draw(st.sampled_from(sorted(_OPTIMIZERS)))
    options = {k: draw(st.sampled_from(v)) for k, v in _OPTIMIZERS[name][1].items()}
    if options.get("nesterov") and not options.get("momentum"):
        options["nesterov"] = False
    options["lr"] = draw(st.sampled_from([0.1, 1e-3, 0.0]))
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    shapes = draw(st.lists(st.sampled_from([(1,), (5,), (3, 4), (2, 1, 3), (0,), ()]),
                           min_size=1, max_size=3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = [_uniform(rng, s, dtype) for s in shapes]
    # gradients: zeros (0/0 in the denominators with eps 0), tiny, huge, ties, any layout
    grads = [[_laid_out(np.asarray(rng.choice(np.array([0.0, -0.0, 1e-30, 1e3, 0.5, -2.0], dtype),
                                              size=s) if draw(st.booleans())
                                   else _uniform(rng, s, dtype)), draw(st.sampled_from(LAYOUTS)))
              for s in shapes] for _ in range(draw(st.integers(1, 3)))]
    return name, options, params, grads


def _class_steps(name, options, params, grads, compiled: bool):
    import fnarray.compat as torch
    from fnarray import optim
    from fnarray.compat import nn
    ps = [nn.Parameter(torch.tensor(p.copy())) for p in params]
    opt = getattr(optim, name)(ps, **options)
    seen = []
    with accel.forced(compiled), np.errstate(all="ignore"):
        for step in grads:
            views = [(p.detach().numpy(), p.detach().numpy().copy()) for p in ps]
            held = [v for st_ in opt.state_dict()["state"].values() for v in st_.values()
                    if hasattr(v, "numpy")]  # state tensors a user reads keep their values
            views += [(_np(v.numpy()), _np(v.numpy()).copy()) for v in held]
            tensors = [torch.tensor(_np(g)) for g in step]
            before = [_np(g).copy() for g in step]
            for p, g in zip(ps, tensors):
                p.grad = g
            opt.step()
            for (view, copy) in views:  # a NumPy view taken before the step keeps its values
                assert view.tobytes() == copy.tobytes(), "opt.step() wrote a visible buffer"
            for t, b in zip(tensors, before):
                assert t.numpy().tobytes() == b.tobytes(), "opt.step() wrote a gradient"
            seen.append([p.detach().numpy().copy() for p in ps])
    return seen


def _functional_steps(name, options, params, grads):
    from fnarray.optim import functional
    opt = getattr(functional, _OPTIMIZERS[name][0])(**options)
    ps = [fa.asarray(p.copy()) for p in params]
    state = opt.init(ps)
    seen = []
    with accel.forced(False), np.errstate(all="ignore"):
        for step in grads:
            ps, state = opt.update([fa.asarray(_np(g)) for g in step], state, ps)
            seen.append([_np(p).copy() for p in ps])
    return seen


@SETTINGS
@given(optimizer_cases())
def test_fused_optimizers_match_numpy_and_the_eager_update(case):
    name, options, params, grads = case
    want = _class_steps(name, options, params, grads, False)
    got = _class_steps(name, options, params, grads, True)
    eager = _functional_steps(name, options, params, grads)
    for k, (a, b, c) in enumerate(zip(want, got, eager)):
        _same_bits(a, b, f"{name}{options} step {k}: compiled vs numpy")
        _same_bits(c, b, f"{name}{options} step {k}: fused vs the eager functional update")


# --- compat fast paths: direct recording against the general path ---------------------------------

def _graph(fn, depth: int = 4):
    """A compat ``grad_fn``'s name and its inputs' graphs, ``depth`` levels deep."""
    if fn is None:
        return None
    if depth == 0:
        return fn.name()
    return (fn.name(), tuple(_graph(f, depth - 1) for f, _ in fn.next_functions))


@contextlib.contextmanager
def _general_paths():
    """``F.linear``/``F.relu``/``F.log_softmax``/``F.cross_entropy`` without their direct
    recording: their tests for a compat tensor see none, and cross_entropy's says None."""
    import types

    import fnarray.nn.functional as F
    saved = F._tape, F._ce_direct
    F._tape = lambda: types.SimpleNamespace(TENSOR=type("NoTensor", (), {}))
    F._ce_direct = lambda *a: None
    try:
        yield
    finally:
        F._tape, F._ce_direct = saved


@st.composite
def compat_cases(draw):
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    n, c, k = draw(st.integers(0, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    share = draw(st.sampled_from([0.0, 0.2]))
    x = _special(rng, (n, k), dtype, share)
    w = _special(rng, (c, k), dtype, share)
    b = _uniform(rng, (c,), dtype) if draw(st.booleans()) else None
    labels = rng.integers(0, c, n)
    if n and draw(st.booleans()):
        labels[0] = -100  # ignored
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return x, w, b, labels, reduction, draw(st.booleans())


def _compat_step(x, w, b, labels, reduction, transposed_weight):
    """F.linear, F.relu, F.log_softmax and F.cross_entropy on compat tensors, and the
    backward pass: values, gradients and the recorded graph."""
    import fnarray.compat as torch
    import fnarray.nn.functional as F
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(np.ascontiguousarray(w.T), requires_grad=True) if transposed_weight \
        else torch.tensor(w, requires_grad=True)
    weight = wt.t() if transposed_weight else wt
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    h = F.linear(xt, weight, bt)
    r = F.relu(h)
    lp = F.log_softmax(r, 1)
    loss = F.cross_entropy(h, torch.tensor(labels), reduction=reduction)
    total = (loss.sum() if reduction == "none" else loss) + lp.sum() + r.sum()
    total.backward()
    grads = [t.grad for t in (xt, wt, bt) if t is not None]
    values = [v.detach().numpy().copy() for v in (h, r, lp, loss, total)]
    return (values, [g.numpy().copy() if g is not None else None for g in grads],
            [_graph(v.grad_fn) for v in (h, r, lp, loss, total)])


@SETTINGS
@given(compat_cases())
def test_compat_fast_paths_match_the_general_path(case):
    x, w, b, labels, reduction, transposed = case
    results = {}
    for on in (False, True):
        for general in (False, True):
            with accel.forced(on), np.errstate(all="ignore"), (
                    _general_paths() if general else contextlib.nullcontext()):
                results[on, general] = _compat_step(x, w, b, labels, reduction, transposed)
    want = results[False, True]
    for key, got in results.items():
        what = f"compiled={key[0]} general={key[1]}"
        _same_bits([v for v in want[0]], [v for v in got[0]], f"values, {what}")
        _same_bits([g for g in want[1] if g is not None], [g for g in got[1] if g is not None],
                   f"gradients, {what}")
        assert want[2] == got[2], f"graphs differ, {what}: {want[2]} vs {got[2]}"


# --- a whole jitted training step ------------------------------------------------------------------

@settings(SETTINGS, max_examples=_HUNT or 6)
@given(st.integers(0, 2**32 - 1), st.sampled_from([np.float32, np.float64]), st.integers(1, 3),
       st.booleans())
def test_jitted_training_step_with_donated_parameters(seed, dtype, n, ceil_mode):
    """conv -> relu -> max_pool -> dropout -> linear -> log_softmax -> nll, its gradient
    and an SGD update, jitted with the parameters donated: every compiled kernel of a
    training step in one program, whose buffers the executor reuses."""
    rng = np.random.default_rng(seed)
    x = fa.asarray(_special(rng, (n, 2, 7, 6), dtype, 0.05))
    labels = fa.asarray(rng.integers(0, 3, n))
    key = fa.random.key(seed % 1000)

    def fresh():
        r = np.random.default_rng(seed + 1)
        return {"w": fa.asarray(_uniform(r, (4, 2, 3, 3), dtype)),
                "b": fa.asarray(_uniform(r, (4,), dtype)),
                "fc": fa.asarray(_uniform(r, (3, 4 * 3 * 2 if not ceil_mode else 4 * 3 * 3),
                                          dtype))}

    def loss(params, x, labels, key):
        import fnarray.nn.functional as F
        h = fa.relu(fa.conv(x, params["w"], params["b"], padding=((1, 0), (0, 1))))
        h = F.max_pool2d(h, 2, ceil_mode=ceil_mode)
        h = F.dropout(fa.reshape(h, (h.shape[0], -1)), 0.25, key=key)
        logp = fa.log_softmax(h @ fa.permute_dims(params["fc"], (1, 0)), axis=1)
        return -fa.mean(fa.take_along_axis(logp, labels[:, None], axis=1))

    def step(params, x, labels, key):
        value, grads = fa.value_and_grad(loss)(params, x, labels, key)
        return fa.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads), value

    runs = []
    for on in (False, True):
        params = fresh()
        jitted = fa.jit(step, donate_argnums=(0,))
        snap = _snapshot((x, labels, key))
        with accel.forced(on), np.errstate(all="ignore"):
            for _ in range(2):
                params, value = jitted(params, x, labels, key)
        _unwritten(snap, f"training step (compiled={on})")
        runs.append((params, value))
    _close(runs[0], runs[1], "jitted training step", tol=TOL[np.dtype(dtype)] * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_with_more_than_256_taps(dtype):
    """A 7x7x7 window has 343 kernel offsets: int32 taps (uint8 below 257), same bits and
    the same gradient on both paths, including vmap of the scatter with unbatched taps."""
    from fnarray.ops.pooling import max_pool, max_pool_scatter
    rng = np.random.default_rng(7)
    x = fa.asarray(_special(rng, (2, 1, 8, 9, 7), dtype, 0.2))
    geometry = dict(kernel=(7, 7, 7), strides=(1, 2, 1), dilation=(1, 1, 1))

    def f(x):
        values, taps = max_pool.bind(x, **geometry)
        cts = fa.stack([values, values * 2])
        spread = fa.vmap(lambda c: max_pool_scatter.bind(c, taps, spatial=(8, 9, 7),
                                                         **geometry))(cts)
        return values, taps, spread

    want, got = _both(f, x)
    assert _np(want[1]).dtype == np.int32
    _same_bits(want, got, "343-tap max_pool")
    jit_want, jit_got = _both(fa.jit(f), x)
    _same_bits(want, jit_got, "jit 343-tap max_pool")


def test_leaky_relu_with_a_negative_zero_slope_differs_only_in_zero_signs():
    """The documented signed-zero freedom of the compiled gate
    (``backends/kernels/activation.py``): ``leaky_relu(x, -0.0)`` of a negative ``x`` is
    ``+0.0`` compiled (``x * -0.0``, PyTorch's value) and ``-0.0`` on NumPy (its masked
    product ``x * 0``); the values are equal."""
    from fnarray.ops import activation
    x = fa.asarray(np.array([-0.307, 2.0, -0.0], np.float32))
    want, got = _both(lambda x: activation.leaky_relu.bind(x, slope=-0.0), x)
    _equal_up_to_zero_signs(want, got, False, "leaky_relu slope -0.0")
    assert np.signbit(_np(want)[0]) and not np.signbit(_np(got)[0])
