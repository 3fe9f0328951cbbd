"""Fused elementwise loops (``transforms/fused_kernels.py``, ``backends/kernels/fusion.py``):
a jitted elementwise program's equations of one shape run as one compiled numba loop where
compiled kernels run, with NumPy's values, into the buffers the plan gives them (donated
ones included), and every optimizer steps the same on both paths."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
from fnarray import optim
from fnarray.backends import accel
from fnarray.compat import nn

OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd-momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2,
                                         dampening=0.1),
    "sgd-nesterov": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
                                         maximize=True),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2),
    "adam-amsgrad": lambda ps: optim.Adam(ps, lr=1e-2, amsgrad=True, weight_decay=1e-2),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-2),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=1e-2),
    "rmsprop-centered": lambda ps: optim.RMSprop(ps, lr=1e-2, momentum=0.5, centered=True),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=1e-3, weight_decay=1e-2),
    "adadelta": lambda ps: optim.Adadelta(ps, lr=1.0, weight_decay=1e-2),
    "adamax": lambda ps: optim.Adamax(ps, lr=2e-3),
    "nadam": lambda ps: optim.NAdam(ps, lr=2e-3),
}
SHAPES = [(0,), (1,), (37,), (5, 7), (3, 1, 4)]


def _loops(fn) -> list:
    """The fused loops of every program compiled by the jitted function ``fn``."""
    runs = [r for c in fn._cache.values() for r in (c.run, c.run_donating) if r is not None]
    return [loop for r in runs for loop in getattr(r, "loops", ())]


def _same_bits_as_numpy(f, *args) -> list:
    """Run ``fa.jit(f)`` on the NumPy path and on the current one; assert every output has
    the same dtype and bytes, and return the current path's outputs."""
    with accel.forced(False):
        want = fa.jit(f)(*args)
    got = fa.jit(f)(*args)
    for a, b in zip(want, got):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    return got


def _train(make, compiled: bool, steps: int = 3):
    rng = np.random.default_rng(0)
    params = [nn.Parameter(torch.tensor(rng.standard_normal(s).astype(np.float32)))
              for s in SHAPES]
    opt = make(params)
    values = []
    with accel.forced(compiled):
        for _ in range(steps):
            for p in params:
                g = rng.standard_normal(p.shape[::-1]).astype(np.float32).T  # not C-contiguous
                p.grad = torch.tensor(g) if p.ndim > 1 else torch.tensor(g.copy())
            opt.step()
            values.append([p.detach().numpy().copy() for p in params])
    state = [{k: np.asarray(v).copy() for k, v in opt.state_dict()["state"][i].items()}
             for i in range(len(params))]
    return values, state, opt


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_steps_identically_compiled_and_numpy(name):
    if not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    want, want_state, _ = _train(OPTIMIZERS[name], False)
    got, got_state, opt = _train(OPTIMIZERS[name], True)
    loops = [loop for j in opt._fused.programs() for loop in _loops(j)]
    assert loops and any(loop._kernel is not None for loop in loops)  # the loops ran
    for step_want, step_got in zip(want, got):
        for a, b in zip(step_want, step_got):
            assert a.tobytes() == b.tobytes()
    for a, b in zip(want_state, got_state):
        assert a.keys() == b.keys()
        assert all(a[k].tobytes() == b[k].tobytes() for k in a)


def _chain(x, y, s):
    t = fa.exp(-x * x) * s + fa.log1p(y * y)
    u = fa.where(x > 0, fa.sqrt(fa.abs(t)), fa.tanh(t))
    return (u * s - t) / (1.5 + y * y), fa.maximum(u, y) - fa.minimum(x, t)


def _arith(x, y, s):
    t = (x * s + y) / (y * y + 0.5)
    return fa.where(t > x, t - s, fa.sqrt(fa.abs(t)) * x), t


@pytest.mark.parametrize("shape", [(), (0,), (1,), (1, 1), (5, 7), (4, 3, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_programs_equal_numpy(kernel_path, shape, dtype):
    rng = np.random.default_rng(len(shape))
    x, y = (fa.asarray(rng.standard_normal(shape).astype(dtype)) for _ in range(2))
    s = fa.asarray(dtype(0.75))
    with accel.forced(False):
        want = fa.jit(_chain)(x, y, s), fa.jit(_arith)(x, y, s)
    chain, arith = fa.jit(_chain), fa.jit(_arith)
    got = chain(x, y, s), arith(x, y, s)
    ran = any(loop._kernel is not None for loop in _loops(chain))
    assert ran == (kernel_path == "compiled" and shape != ())
    eps = np.finfo(dtype).eps
    for a, b in zip(want[0], got[0]):  # exp, log1p, tanh: NumPy's SIMD vs libm, a few ulp
        assert np.asarray(b).dtype == dtype  # (of O(1) terms, some of which cancel)
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=4 * eps, atol=8 * eps)
    for a, b in zip(want[1], got[1]):  # + - * / sqrt round identically
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_non_contiguous_inputs_and_nan_propagation(kernel_path):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((6, 9)).astype(np.float32)
    base[1, 2], base[4, 5] = np.nan, np.inf
    x = fa.asarray(base.T)  # Fortran-ordered view
    y = fa.asarray(base[:, ::-1].T * 2)  # negative strides
    y_before = np.asarray(y).copy()
    s = fa.asarray(np.float32(-1.5))

    def f(x, y, s):
        return fa.maximum(x, y) * s, fa.minimum(y, x) + fa.maximum(y, s)

    got = _same_bits_as_numpy(f, x, y, s)
    assert np.isnan(np.asarray(got[0])).any()
    assert np.asarray(y).tobytes() == y_before.tobytes()  # inputs are never written


def test_donated_buffers_receive_the_loop_results(kernel_path):
    rng = np.random.default_rng(4)
    m_np, g_np = (rng.standard_normal((64, 33)).astype(np.float32) for _ in range(2))

    def update(m, g, beta):
        new_m = beta * m + (1 - beta) * g
        return new_m, g - new_m / (fa.sqrt(new_m * new_m) + 1e-3)

    beta = fa.asarray(np.float32(0.9))
    with accel.forced(False):
        want = fa.jit(update)(fa.asarray(m_np), fa.asarray(g_np), beta)
    f = fa.jit(update, donate_argnums=(0,))
    m = fa.asarray(m_np.copy())
    address = np.asarray(m).__array_interface__["data"][0]
    got = f(m, fa.asarray(g_np), beta)
    assert np.asarray(got[0]).__array_interface__["data"][0] == address  # written in place
    with pytest.raises(RuntimeError, match="donated"):
        m + 1
    for a, b in zip(want, got):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_integer_bool_and_cast_equations_follow_numpy(kernel_path):
    big = np.iinfo(np.int32).max
    i = fa.asarray(np.array([0, 1, -7, big, -big - 1, 12345], np.int32))
    j = fa.asarray(np.array([3, -2, 5, 2, -1, 99], np.int32))
    u = fa.asarray(np.array([0, 1, 200, 255, 17, 128], np.uint8))

    def f(i, j, u):
        wrapped = i * j + i  # int32 overflow wraps
        flag = (i > j) ^ (u >= 128)
        picked = fa.where(flag, wrapped, fa.maximum(i, j) - fa.minimum(i, j))
        as_float = fa.astype(picked, fa.float32) * 0.5 + fa.astype(flag, fa.float32)
        return picked, as_float, (u + u) * u, ~(i & j) | j

    _same_bits_as_numpy(f, i, j, u)


def test_equations_without_a_scalar_form_keep_the_numpy_path():
    if not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    x = fa.asarray(np.arange(-6.0, 6.0, dtype=np.float32))

    def f(x):  # float -> int casts and integer floor division stay on NumPy
        return fa.astype(x * 2.5, fa.int32) // 3 + 1

    with accel.forced(False):
        want = fa.jit(f)(x)
    with accel.forced(True):
        g = fa.jit(f)
        got = g(x)
    assert not _loops(g)
    assert np.asarray(want).tobytes() == np.asarray(got).tobytes()


def test_loops_are_cached_as_module_files(tmp_path, monkeypatch):
    if not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    from fnarray.backends.kernels import fusion
    monkeypatch.setenv("FNARRAY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fusion, "_folder", None)
    monkeypatch.setattr(fusion, "_loops", {})
    source = "def kernel(i0, o0):\n    for j in range(i0.shape[0]):\n        o0[j] = i0[j] + i0[j]\n"
    kernel = fusion.loop(source)
    assert fusion.loop(source) is kernel
    files = list((tmp_path / "fused").glob("fused_*.py"))
    assert len(files) == 1 and source in files[0].read_text()
    out = np.empty(3)
    kernel(np.array([1.0, 2.0, 3.0]), out)
    assert out.tolist() == [2.0, 4.0, 6.0]


def test_small_loops_run_compiled_once_their_source_is(monkeypatch):
    """Unforced, a loop below the size threshold stays on NumPy (compiling and loading
    nothing) until a larger loop of the same source has been compiled; from then on it runs
    that compiled loop, with the same bits; never with compiled kernels off."""
    if not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    from fnarray.backends.kernels import fusion
    monkeypatch.setattr(accel, "_mode", "auto")
    monkeypatch.setattr(accel, "_min_size", accel.MIN_SIZE)
    monkeypatch.setattr(fusion, "_loops", {})

    def f(x, y):
        return x * 1.5 + fa.sqrt(y) / (x - 7.0)

    small = [fa.asarray(np.linspace(0.5, 3.0, 40, dtype=np.float32)) for _ in range(2)]
    big = [fa.asarray(np.linspace(0.5, 3.0, accel.MIN_SIZE, dtype=np.float32))
           for _ in range(2)]
    g = fa.jit(f)
    with accel.forced(False):
        want = np.asarray(fa.jit(f)(*small))
    np.testing.assert_array_equal(np.asarray(g(*small)), want)
    loop, = _loops(g)
    assert loop.kernel(np) is None and fusion._loops == {}
    fa.jit(f)(*big)  # compiles the loop's source
    assert loop.kernel(np) is fusion.loaded_loop(loop.source) is not None
    assert np.asarray(g(*small)).tobytes() == want.tobytes()
    with accel.forced(False):
        assert loop.kernel(np) is None


def _random_program(rng, n_ops: int):
    """A random straight-line function of two (n, n) arrays: elementwise chains (fusion
    trees) between GEMMs, transposes (strided operands), views and reductions."""
    ops = [(rng.integers(0, 8), rng.integers(0, 1 << 30), rng.integers(0, 1 << 30))
           for _ in range(n_ops)]
    outs = rng.choice(n_ops, size=min(3, n_ops), replace=False)

    def f(x, w):
        vals = [x, w]
        for kind, i, j in ops:
            a, b = vals[i % len(vals)], vals[j % len(vals)]
            v = [lambda: a @ b, lambda: fa.tanh(a) + b, lambda: a.T, lambda: a * 0.5 - b,
                 lambda: fa.where(a > b, a, b * 2.0), lambda: fa.sqrt(fa.abs(a)) * b + 1.0,
                 lambda: fa.maximum(a, b) - fa.sum(b, axis=0, keepdims=True),
                 lambda: fa.reshape(a, (-1,))[::-1].reshape(a.shape)][kind]()
            vals.append(v)
        return [vals[2 + k] for k in outs]
    return f


@pytest.mark.parametrize("seed", range(12))
def test_random_programs_with_fusion_trees_equal_numpy(kernel_path, seed):
    rng = np.random.default_rng(seed)
    f = _random_program(rng, int(rng.integers(4, 14)))
    x_np, w_np = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    with accel.forced(False):
        want = fa.jit(f)(fa.asarray(x_np), fa.asarray(w_np))
    for donate in ((), (0,)):
        g = fa.jit(f, donate_argnums=donate)
        x, w = fa.asarray(x_np.copy()), fa.asarray(w_np.copy())
        got = g(x, w)
        for a, b in zip(got, want):  # tanh: NumPy's SIMD vs libm
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(np.asarray(w), w_np)
        if not donate:
            np.testing.assert_array_equal(np.asarray(x), x_np)


def test_fusion_tree_between_gemms_runs_as_one_loop_in_place(kernel_path):
    rng = np.random.default_rng(5)
    x_np = rng.standard_normal((48, 40)).astype(np.float32)
    w_np = rng.standard_normal((40, 40)).astype(np.float32)
    mask = fa.asarray(rng.random((48, 40)) < 0.7)

    def step(x, w, mask):
        h = x @ w
        a = fa.where(mask, fa.maximum(h, 0.0) * 2.0, fa.zeros((), fa.float32))  # dropout
        return (a - x) @ w.T, fa.sum(a, axis=0)

    with accel.forced(False):
        want = fa.jit(step)(fa.asarray(x_np), fa.asarray(w_np), mask)
    g = fa.jit(step, donate_argnums=(0,))
    got = g(fa.asarray(x_np.copy()), fa.asarray(w_np.T.copy()).T, mask)  # w: strided
    ran = any(loop._kernel is not None for loop in _loops(g))
    assert ran == (kernel_path == "compiled")
    for a, b in zip(want, got):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-5)


def _operands(kind: str, rng, n: int = 64) -> list:
    """Operand arrays of one dtype kind, specials included (NaN, infinities, signed zeros,
    integer extremes)."""
    if kind == "b":
        return [rng.random(n) < 0.5]
    if kind == "f":
        special = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1.0, 0.5]
        return [np.concatenate([special, rng.standard_normal(n - 8) * 3]).astype(t)
                for t in (np.float32, np.float64)]
    ints = []
    for t in (np.int32, np.uint8, np.int64):
        info = np.iinfo(t)
        ints.append(np.concatenate([[info.min, info.max, 0, 1],
                                    rng.integers(info.min, info.max, n - 4, dtype=t)]).astype(t))
    return ints


def _ufunc_cases():
    from fnarray.core.primitive import REGISTRY
    from fnarray.transforms.fused_kernels import _UFUNCS
    return sorted((p.name, p) for p in REGISTRY.values() if p.ufunc in _UFUNCS)


@pytest.mark.parametrize("name,prim", _ufunc_cases())
def test_every_scalar_form_follows_its_ufunc(name, prim):
    """Each primitive the loops compute, on every dtype kind its scalar form accepts, gives
    NumPy's results: the same bits for exact operations, a few ulp for transcendentals,
    NaN wherever NumPy gives NaN."""
    if not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    from fnarray.transforms.fused_kernels import _UFUNCS
    rng = np.random.default_rng(7)
    arity = getattr(np, prim.ufunc).nin
    for kind in _UFUNCS[prim.ufunc][1]:
        for base in _operands(kind, rng):
            args = [fa.asarray(base)] + [fa.asarray(rng.permutation(base))
                                         for _ in range(arity - 1)]

            def f(*xs):  # a second equation, so that the shape's equations form a loop
                out = prim.bind(*xs)
                return out, fa.logical_not(xs[0] == xs[0])

            with accel.forced(False):
                want = np.asarray(fa.jit(f)(*args)[0])
            with accel.forced(True):
                g = fa.jit(f)
                got = np.asarray(g(*args)[0])
            assert any(loop._kernel is not None for loop in _loops(g)), (name, base.dtype)
            assert got.dtype == want.dtype
            if want.dtype.kind != "f":
                assert got.tobytes() == want.tobytes(), (name, base.dtype)
                continue
            assert np.array_equal(np.isnan(got), np.isnan(want)), (name, base.dtype)
            np.testing.assert_array_max_ulp(got[~np.isnan(want)], want[~np.isnan(want)],
                                            maxulp=4)


def test_casts_round_overflow_and_widen_as_numpy(kernel_path):
    x = fa.asarray(np.array([0.1, -1e39, 1e39, np.nan, -0.0, 3.5, 1 / 3, 2.0**-140]))
    i = fa.asarray(np.array([2**53 + 1, -(2**62), 7, 0, -1, 3, 2**24 + 1, 255]))
    u = fa.asarray(np.array([0, 255, 128, 1, 2, 3, 4, 5], np.uint8))

    def f(x, i, u):
        return (fa.astype(x, fa.float32) * 2.0, fa.astype(i, fa.float32) + 0.0,
                fa.astype(x, fa.bool_) | (i > 0), fa.astype(u, fa.int16) - 1,
                fa.astype(fa.astype(u, fa.bool_), fa.int32) * 3)

    _same_bits_as_numpy(f, x, i, u)


def test_declared_scalar_forms_join_the_loop():
    """``select`` and ``convert_element_type`` are not bare ufuncs: they reach a compiled
    loop through the scalar forms they declare (one loop for the whole program)."""
    if not accel.available():
        pytest.skip("needs numba")
    rng = np.random.default_rng(5)
    x = fa.asarray(rng.standard_normal(50).astype(np.float32))
    y = fa.asarray(rng.integers(-9, 9, 50).astype(np.int32))

    def f(x, y):
        wide = fa.astype(y, fa.float32)
        return fa.where(x > wide, x * 2.0, wide) + 1.0

    with accel.forced(True):
        g = fa.jit(f)
        got = g(x, y)
        loops = _loops(g)
    assert len(loops) == 1 and loops[0]._kernel is not None
    with accel.forced(False):
        want = fa.jit(f)(x, y)
    assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
