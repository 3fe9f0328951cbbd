"""Out kernels declared in place (``transforms/buffers.py``): the jit executor may hand such a
kernel one of its own operands as ``out`` where that operand dies at the equation.  The
``gate`` (relu's backward) is one: in a compiled backward pass it writes over the dying
cotangent.  Checked here: every in-place kernel gives its impl's values with ``out`` being
each operand in turn (both kernel paths), the compiled gate's in-place loops give the
fresh loop's bits, jitted backward passes write the gates over their cotangents and still
equal eager results, and no input, output or still-visible value is written."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnarray as fa
import fnarray.compat as torch
import fnarray.compat.nn.functional as F
from fnarray.backends import accel
from fnarray.core.primitive import REGISTRY
from fnarray.ops import activation
from fnarray.transforms import buffers
from tests.samples import all_samples

SAMPLES = all_samples()
IN_PLACE = sorted(p.name for p in buffers._IN_PLACE)
RNG = np.random.default_rng(5)
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 6.0, 1e-30, -1e-30])


def _values(shape, dtype):
    """Normal draws with NaN, infinities, signed zeros and the bounds mixed in."""
    x = RNG.standard_normal(shape) * 3
    return np.where(RNG.random(shape) < 0.3, RNG.choice(SPECIAL, shape), x).astype(dtype)


def _same_bits(a, b):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


def _source(jitted) -> str:
    return next(iter(jitted._cache.values())).run.source


def test_in_place_needs_an_out_kernel_and_select_is_not_in_place():
    assert IN_PLACE == ["clamp", "gate"]
    assert buffers.writes_over_operand(activation.gate, {})
    assert buffers.writes_over_operand(activation.clamp, {})
    # select's out kernel copies one operand over ``out`` before reading the other
    assert not buffers.writes_over_operand(REGISTRY["select"], {})
    assert buffers.writes_over_operand(REGISTRY["add"], {})  # a bare ufunc


@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "compiled"])
@pytest.mark.parametrize("name", IN_PLACE)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_in_place_kernel_gives_the_impl_values_over_each_operand(compiled, name, data):
    if compiled and not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    prim = REGISTRY[name]
    sample = data.draw(SAMPLES[name]())
    args = [np.asarray(a) for a in sample.args]
    with accel.forced(compiled):
        want = prim.impl(np, *args, **sample.params)
        kernel = buffers.out_kernel(prim, sample.params)
        for i, a in enumerate(args):
            if a.shape != want.shape or a.dtype != want.dtype:
                continue
            mine = [b.copy() for b in args]
            got = kernel(np, *mine, out=mine[i], **sample.params)
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5, 17), (64, 129)])
@pytest.mark.parametrize("params", [dict(lo=0.0, hi=None, inclusive=False, slope=0.0),
                                    dict(lo=-1.0, hi=6.0, inclusive=True, slope=0.0),
                                    dict(lo=0.0, hi=None, inclusive=False, slope=0.1),
                                    dict(lo=None, hi=1.0, inclusive=False, slope=0.0)])
def test_compiled_gate_over_an_operand_equals_the_fresh_loop(dtype, shape, params):
    """Bit for bit, NaN/inf/signed zeros included, over ``ct`` and over ``x``."""
    if not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    ct, x = _values(shape, dtype), _values(shape, dtype)
    with accel.forced(True):
        want = activation.gate.impl(np, ct, x, **params)
        for over in (0, 1):
            mine = [ct.copy(), x.copy()]
            got = activation._gate_into(np, *mine, out=mine[over], **params)
            assert got is mine[over]
            _same_bits(got, want)
            np.testing.assert_array_equal(mine[1 - over], (ct, x)[1 - over])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bounds", [(0.0, None, False), (0.0, 6.0, False), (-1.0, 1.0, False),
                                    (None, 1.0, False), (0.0, None, True), (-1.0, 1.0, True),
                                    (1.0, -1.0, False)])
def test_clamp_vjp_equals_the_gate_on_its_input(kernel_path, dtype, bounds):
    """On an open interval the VJP gates on the output: the same cotangents as gating on
    the input, at NaN, infinities, signed zeros and the bounds themselves (a closed
    interval still gates on the input)."""
    lo, hi, inclusive = bounds
    x = _values((9, 40), dtype)
    x[0, :6] = [0.0, -0.0, 1.0, -1.0, 6.0, np.nan]
    ct = _values(x.shape, dtype)
    _, pull = fa.vjp(lambda v: activation.clamp.bind(v, lo=lo, hi=hi, inclusive=inclusive),
                     fa.asarray(x))
    got, = pull(fa.asarray(ct))
    want = activation.gate.bind(fa.asarray(ct), fa.asarray(x), lo=lo, hi=hi,
                                inclusive=inclusive, slope=0.0)
    _same_bits(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("dtype", [np.int64, fa.bfloat16])
def test_clamp_into_other_dtypes_takes_the_impl(dtype):
    x = np.arange(-3, 4).astype(dtype)
    want = activation.clamp.impl(np, x, lo=0, hi=None, inclusive=False)
    got = activation._clamp_into(np, x, out=x, lo=0, hi=None, inclusive=False)
    assert got is not x and got.dtype == x.dtype and np.array_equal(got, want)
    np.testing.assert_array_equal(x, np.arange(-3, 4).astype(dtype))


def test_numpy_path_returns_a_new_buffer_when_out_is_an_operand():
    """Without compiled kernels the NumPy passes would read ``ct`` after writing ``out``:
    the kernel returns the impl's new result and leaves the operands alone."""
    ct, x = _values((6, 7), np.float64), _values((6, 7), np.float64)
    want = activation.gate.impl(np, ct, x, lo=0.0, hi=None, inclusive=False, slope=0.0)
    with accel.forced(False):
        keep = ct.copy()
        got = activation._gate_into(np, ct, x, out=ct, lo=0.0, hi=None, inclusive=False,
                                    slope=0.0)
    assert got is not ct
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ct, keep)


def _mlp_loss(x, w1, w2, w3):
    h = fa.relu(x @ w1)
    return fa.sum(fa.relu6(h @ w2) @ w3)


def _over_operand(jitted) -> list[str]:
    """The primitives whose kernel (not a ufunc) writes over one of its own operands in the
    generated code of ``jitted``."""
    entry = next(iter(jitted._cache.values()))
    names = []
    for line in entry.run.source.splitlines():
        m = re.search(r"= k(\d+)\(xp, (.*), out=(v\d+)\)", line)
        if m and m.group(3) in m.group(2).split(", "):
            names.append(entry.program.eqns[int(m.group(1))].prim.name)
    return names


@pytest.mark.parametrize("shape", [(3, 5), (33, 70)])
def test_jitted_backward_writes_gates_over_their_cotangents(kernel_path, shape):
    n, m = shape
    arrays = [RNG.standard_normal(s) for s in ((n, m), (m, m + 3), (m + 3, m), (m, 2))]
    grad = fa.grad(_mlp_loss, argnums=(0, 1, 2, 3))
    want = grad(*[fa.asarray(a) for a in arrays])
    args = [fa.asarray(a.copy()) for a in arrays]
    g = fa.jit(grad)
    for _ in range(2):  # a second call writes nothing the first returned
        got = g(*args)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(args, arrays):
        np.testing.assert_array_equal(np.asarray(a), b)  # inputs not written
    # relu and relu6 clip their pre-activations in place (their VJPs gate on the outputs),
    # and both gates write over their cotangents
    assert sorted(_over_operand(g)) == ["clamp", "clamp", "gate", "gate"], _source(g)


def test_gate_never_writes_over_a_value_still_read():
    """The pre-activation ``x`` is read by the gate and again afterwards; the cotangent is
    an input: neither may receive the gate's result."""
    x_np, c_np = _values((40, 30), np.float64), RNG.standard_normal((40, 30))

    def f(x, c):
        _, pull = fa.vjp(fa.relu, x)
        g, = pull(c)
        return g, x * 2.0, c + 1.0

    want = f(fa.asarray(x_np), fa.asarray(c_np))
    x, c = fa.asarray(x_np.copy()), fa.asarray(c_np.copy())
    got = fa.jit(f)(x, c)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(x), x_np)
    np.testing.assert_array_equal(np.asarray(c), c_np)


def test_compiled_convnet_step_matches_eager():
    """``compat.compile`` of a conv-relu-pool-relu-linear net (the gates land over dying
    cotangents in its backward program): gradients equal the eager tape's to rounding."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 6, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(6 * 5 * 5, 7), torch.nn.ReLU(),
                              torch.nn.Linear(7, 3))
    x = torch.randn(5, 1, 14, 14)
    y = torch.tensor([0, 2, 1, 1, 0])
    grads = []
    for model in (net, torch.compile(net)):
        net.zero_grad()
        F.cross_entropy(model(x), y).backward()
        grads.append([p.grad.numpy().copy() for p in net.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
