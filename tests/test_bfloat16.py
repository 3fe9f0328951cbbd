"""bfloat16 end to end: names, promotion, kernels, gradients, compat, autocast, save/load.

bfloat16 comes from the optional ``ml_dtypes`` package (the ``bfloat16`` extra, part of
``dev``).  Reference values are JAX's and PyTorch's documented behaviour: JAX's promotion
lattice (``bfloat16 + float16 -> float32``), PyTorch's category promotion, PyTorch's
``torch.finfo(torch.bfloat16)`` text and ``torch.autocast("cpu")`` default.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnarray as fa
import fnarray.compat as torch
from fnarray.core.primitive import REGISTRY
from tests.samples import all_samples

ml_dtypes = pytest.importorskip("ml_dtypes")  # in the dev extra; skip only outside it
BF16 = np.dtype(ml_dtypes.bfloat16)
EPS = 2.0 ** -7  # bfloat16's machine epsilon (8 significand bits)


def _f64(x) -> np.ndarray:
    return np.asarray(x).astype(np.float64)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


# --- optional dependency -------------------------------------------------------------------

def test_import_fnarray_does_not_import_ml_dtypes():
    r = _run("""
        import sys
        import fnarray, fnarray.compat, fnarray.nn, fnarray.optim, fnarray.data
        fnarray.ones(3) * 2.0
        assert "ml_dtypes" not in sys.modules, "ml_dtypes imported eagerly"
        fnarray.bfloat16
        assert "ml_dtypes" in sys.modules
    """)
    assert r.returncode == 0, r.stderr


def test_missing_ml_dtypes_errors_name_the_extra(tmp_path):
    path = tmp_path / "bf16.fa"
    fa.save({"w": fa.ones(2, dtype=fa.bfloat16)}, path)
    r = _run(f"""
        import sys
        sys.modules["ml_dtypes"] = None  # as if the package were not installed
        import pytest
        import fnarray as fa, fnarray.compat as torch
        for get in (lambda: fa.bfloat16, lambda: torch.bfloat16, lambda: fa.astype(fa.ones(2), "bfloat16"),
                    lambda: torch.ones(2).bfloat16()):
            with pytest.raises(ImportError, match=r"pip install 'fnarray\\[bfloat16\\]'"):
                get()
        with pytest.raises(ImportError, match="autocast.*defaults to bfloat16.*dtype=torch.float16"):
            torch.autocast("cpu")
        with torch.autocast("cpu", dtype=torch.float16):  # float16 still works without it
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float16
        with pytest.raises(fa.SerializationError, match=r"ml_dtypes.*fnarray\\[bfloat16\\]"):
            fa.load({str(path)!r})
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


# --- the floating predicate ----------------------------------------------------------------

# Kind tests that know about bfloat16 on purpose, by (file, enclosing function).
_KIND_TESTS_ALLOWED = {
    ("api/_convert.py", "to_inexact"),  # hot path; bfloat16 takes the is_inexact path below it
    ("api/random.py", "uniform_at_least"),  # bfloat16 falls back to comparing floats
    ("compat/dispatch.py", "_probe"),  # anything else stays on the general (correct) path
    ("compat/dtypes.py", "to_complex"),  # PyTorch has no complex bfloat16: RuntimeError
    ("compat/limits.py", "__init__"),  # "fV": ml_dtypes floats
    ("distributed/collectives.py", "_wire"),  # "biufc": bfloat16 goes over MPI as float32
    ("ops/linalg.py", "_dot_into"),  # "fciu": bfloat16 takes the widened impl
}


def _kind_tests(path):
    """``(function, line)`` of each ``x.kind == "f"`` / ``x.kind in "fc"``-style test in
    ``path`` that is not in a kernel (``*impl``: kernels see widened float32) and not next
    to an ``is_float``/``is_inexact`` call in the same boolean expression."""
    tree = ast.parse(path.read_text())
    parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute)
                and node.left.attr == "kind" and isinstance(node.comparators[0], ast.Constant)
                and "f" in str(node.comparators[0].value)):
            continue
        up, function, predicate = node, "<module>", False
        while up in parents:
            up = parents[up]
            if isinstance(up, ast.BoolOp):
                predicate |= any(getattr(c.func, "id", getattr(c.func, "attr", None))
                                 in ("is_float", "is_inexact")
                                 for c in ast.walk(up) if isinstance(c, ast.Call))
            if isinstance(up, ast.FunctionDef):
                function = up.name
                break
        if not predicate and not function.endswith("impl"):
            yield function, node.lineno


def test_floating_is_asked_through_the_core_predicate():
    """bfloat16's NumPy kind is 'V': a ``dtype.kind in "fc"`` test silently treats it as
    not floating (no gradient, wrong promotion).  Ask core.shapes.is_float/is_inexact."""
    root = pathlib.Path(fa.__file__).parent
    found = [f"{path.relative_to(root)}:{line} ({function})"
             for path in sorted(root.rglob("*.py"))
             if "onnx" not in path.name and "onnx" not in path.parts and path.name != "nccl.py"
             for function, line in _kind_tests(path)
             if (path.relative_to(root).as_posix(), function) not in _KIND_TESTS_ALLOWED]
    assert not found, f"use core.shapes.is_float/is_inexact instead of kind tests: {found}"


# --- names, dtypes, promotion --------------------------------------------------------------

def test_names_and_conversions():
    assert fa.bfloat16 == BF16 and torch.bfloat16 == BF16
    assert repr(torch.bfloat16) == "torch.bfloat16" and torch.bfloat16.is_floating_point
    x = fa.asarray([1.5, 2.0]).astype("bfloat16")
    assert x.dtype == fa.bfloat16
    assert fa.asarray(np.array([1.0, 3.0], BF16)).dtype == fa.bfloat16  # an ml_dtypes array
    assert repr(x) == "Array([1.5, 2], dtype=bfloat16)"  # JAX prints the same
    assert fa.isdtype(fa.bfloat16, "real floating") and fa.isdtype(fa.bfloat16, "numeric")
    assert not fa.isdtype(fa.bfloat16, "integral")
    assert fa.astype(fa.asarray(1.0 + 1 / 256), fa.bfloat16).item() == 1.0  # rounds to 8 bits
    assert float(fa.asarray(3.0, dtype=fa.bfloat16)) == 3.0


def test_finfo():
    info = fa.finfo(fa.bfloat16)
    assert (info.bits, info.eps, info.precision) == (16, EPS, 2)
    assert info.max == pytest.approx(3.3895314e38, rel=1e-7)
    assert info.smallest_normal == pytest.approx(1.1754944e-38, rel=1e-7)
    assert repr(torch.finfo(torch.bfloat16)) == (  # PyTorch's text
        "finfo(resolution=0.01, min=-3.38953e+38, max=3.38953e+38, eps=0.0078125, "
        "smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=bfloat16)")


@pytest.mark.parametrize("other, expected", [  # JAX's lattice
    (np.float16, np.float32), (np.float32, np.float32), (np.float64, np.float64),
    (np.int8, BF16), (np.int64, BF16), (np.uint32, BF16), (np.bool_, BF16),
    (np.complex64, np.complex64), (np.complex128, np.complex128)])
def test_core_promotion(other, expected):
    a, b = fa.ones(2, dtype=fa.bfloat16), fa.ones(2, dtype=other)
    assert fa.result_type(fa.bfloat16, other) == expected
    assert (a + b).dtype == expected and (b * a).dtype == expected


def test_weak_scalars_keep_bfloat16():
    x = fa.ones(3, dtype=fa.bfloat16)
    assert (x * 2.0).dtype == fa.bfloat16 and (1 + x).dtype == fa.bfloat16
    assert (x * np.float64(2)).dtype == fa.bfloat16
    assert (x * 1j).dtype == fa.complex64


def test_compat_promotion():  # PyTorch's category rules
    b = torch.ones(2, dtype=torch.bfloat16)
    assert (b + torch.ones(2, dtype=torch.float16)).dtype == torch.float32
    assert (b + torch.ones(2)).dtype == torch.float32
    assert (b * 2.5).dtype == torch.bfloat16
    assert (b * torch.tensor(2.0)).dtype == torch.bfloat16  # a 0-d float32 does not widen
    assert (torch.ones(2) * torch.tensor(2.0, dtype=torch.bfloat16)).dtype == torch.float32
    assert (torch.arange(2) * torch.tensor(2.0, dtype=torch.bfloat16)).dtype == torch.bfloat16
    assert (torch.arange(2) + b).dtype == torch.bfloat16


# --- kernels -------------------------------------------------------------------------------

def test_reductions_and_products_accumulate_in_float32():
    # bfloat16 cannot count past 256 by ones: a bfloat16 accumulator would stop there
    assert fa.sum(fa.ones(4096, dtype=fa.bfloat16)).item() == 4096.0
    assert fa.mean(fa.ones(1000, dtype=fa.bfloat16)).dtype == fa.bfloat16
    a = fa.ones((1, 1024), dtype=fa.bfloat16)
    out = a @ fa.ones((1024, 1), dtype=fa.bfloat16)
    assert out.dtype == fa.bfloat16 and out.item() == 1024.0


def test_random_samplers_and_creation_in_bfloat16():
    key = fa.random.key(0)
    u = fa.random.uniform(key, (20000,), fa.bfloat16)
    assert u.dtype == fa.bfloat16  # 7 random mantissa bits: 128 values in [0, 1), as JAX
    assert len(np.unique(np.asarray(u))) == 128 and 0 <= float(fa.min(u)) < float(fa.max(u)) < 1
    n = fa.random.normal(key, (20000,), fa.bfloat16)
    assert n.dtype == fa.bfloat16 and abs(float(fa.mean(n))) < 0.05
    assert abs(float(fa.std(n.astype(fa.float32))) - 1) < 0.05
    assert fa.arange(3, dtype=fa.bfloat16).tolist() == [0, 1, 2]
    assert fa.linspace(0, 1, 5, dtype=fa.bfloat16).tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert fa.full((2,), 3.5, dtype=fa.bfloat16).dtype == fa.bfloat16


def test_linalg_runs_in_float32_and_rounds_back():
    rng = np.random.default_rng(0)
    m = (rng.normal(size=(4, 4)) + 4 * np.eye(4)).astype(BF16)
    exact = np.linalg.inv(m.astype(np.float32))
    got = fa.linalg.inv(fa.asarray(m))
    assert got.dtype == fa.bfloat16
    np.testing.assert_array_equal(_f64(got), _f64(exact.astype(BF16)))
    s = fa.linalg.svd(fa.asarray(m), compute_uv=False)
    assert s.dtype == fa.bfloat16
    eye = fa.eye(3, dtype=fa.bfloat16)  # tolerances read bfloat16's machine epsilon
    assert fa.linalg.pinv(eye).dtype == fa.bfloat16 and int(fa.linalg.matrix_rank(eye)) == 3
    assert fa.linalg.lstsq(eye, fa.ones(3, fa.bfloat16))[0].tolist() == [1, 1, 1]


FLOAT_SAMPLES = all_samples()
KERNELS = sorted(n for n, p in REGISTRY.items() if p.widen_bfloat16 and n in FLOAT_SAMPLES)


def _draw_float_sample(name, data):
    sample = data.draw(FLOAT_SAMPLES[name](), label=name)
    return sample if any(np.asarray(a).dtype == np.float64 for a in sample.args) else None


def _operands(sample, dtype):
    """The sample's float operands as ``dtype``, holding exactly bfloat16 values."""
    def conv(a):
        a = np.asarray(a)
        return a.astype(BF16).astype(dtype) if a.dtype == np.float64 else a
    return [fa.asarray(conv(a)) for a in sample.args]


def _outs(prim, args, params):
    out = prim.bind(*args, **params)
    return list(out) if prim.multiple_results else [out]


@pytest.mark.parametrize("name", KERNELS)
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_kernel_on_bfloat16_is_its_float32_kernel_rounded(name, data):
    """Each primitive on bfloat16 operands: the dtypes its abstract rule states, values
    equal to the float32 kernel's on the same numbers rounded to bfloat16, jit == eager."""
    sample = _draw_float_sample(name, data)
    if sample is None:
        return
    prim = REGISTRY[name]
    bf, f32 = _operands(sample, BF16), _operands(sample, np.float32)
    ref = _outs(prim, f32, sample.params)
    try:
        got = _outs(prim, bf, sample.params)
    except TypeError:  # a kernel refusing half precision refuses float16 alike (eig)
        with pytest.raises(TypeError):
            _outs(prim, _operands(sample, np.float16), sample.params)
        return
    for g, r in zip(got, ref):
        want = BF16 if r.dtype == np.float32 else r.dtype
        assert g.dtype == want, f"{name}: {g.dtype} (float32 gives {r.dtype})"
        np.testing.assert_array_equal(np.asarray(g), np.asarray(r).astype(want), err_msg=name)
    jitted = fa.jit(lambda *a: prim.bind(*a, **sample.params))(*bf)
    for j, g in zip(jitted if prim.multiple_results else [jitted], got):
        assert j.dtype == g.dtype
        np.testing.assert_allclose(_f64(j), _f64(g), rtol=EPS, atol=EPS, err_msg=name)


GRADIENT_PRIMITIVES = ["exp", "tanh", "logistic", "sqrt", "mul", "div", "max", "pow",
                       "dot_general", "reduce_sum", "reduce_max", "cumsum", "log_softmax",
                       "conv", "select", "gather", "concatenate", "solve"]


@pytest.mark.parametrize("name", GRADIENT_PRIMITIVES)
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_gradients_are_bfloat16_and_match_float32(name, data):
    sample = _draw_float_sample(name, data)
    if sample is None or not sample.diff:
        return
    prim = REGISTRY[name]

    def grads(dtype):
        args = _operands(sample, dtype)

        def f(*diff):
            full = list(args)
            for i, x in zip(sample.diff, diff):
                full[i] = x
            return sum(fa.sum(fa.astype(o, np.float32)) for o in _outs(prim, full, sample.params))
        return fa.grad(f, argnums=tuple(range(len(sample.diff))))(*[args[i] for i in sample.diff])

    for g, r in zip(grads(BF16), grads(np.float32)):
        assert g.dtype == fa.bfloat16, f"{name}: gradient of a bfloat16 operand is {g.dtype}"
        scale = max(1.0, float(np.max(np.abs(_f64(r))))) if r.size else 1.0
        np.testing.assert_allclose(_f64(g), _f64(r), rtol=4 * EPS, atol=4 * EPS * scale,
                                   err_msg=name)


def test_grad_of_a_bfloat16_function_under_transformations():
    x = fa.asarray(np.linspace(-1, 1, 6).reshape(2, 3)).astype(fa.bfloat16)
    w = fa.asarray(np.linspace(0.5, -0.5, 12).reshape(3, 4)).astype(fa.bfloat16)

    def loss(w, x):
        return fa.sum(fa.tanh(x @ w) ** 2)

    g = fa.grad(loss)(w, x)
    ref = fa.grad(loss)(w.astype(fa.float32), x.astype(fa.float32))
    assert g.dtype == fa.bfloat16
    np.testing.assert_allclose(_f64(g), _f64(ref), rtol=4 * EPS, atol=4 * EPS)
    for transformed in (fa.jit(fa.grad(loss)), fa.grad(fa.jit(loss)),
                        lambda w, x: fa.vmap(fa.grad(loss), in_axes=(None, 0))(w, x[None])[0]):
        np.testing.assert_allclose(_f64(transformed(w, x)), _f64(g), rtol=EPS, atol=EPS)
    out, tangent = fa.jvp(lambda v: fa.tanh(v @ w), (x,), (fa.ones_like(x),))
    assert out.dtype == tangent.dtype == fa.bfloat16
    ref_t = fa.jvp(lambda v: fa.tanh(v @ w.astype(fa.float32)), (x.astype(fa.float32),),
                   (fa.ones(x.shape),))[1]
    np.testing.assert_allclose(_f64(tangent), _f64(ref_t), rtol=4 * EPS, atol=4 * EPS)
    hess = fa.hessian(lambda v: fa.sum(v ** 3))(x[0])
    assert hess.dtype == fa.bfloat16
    np.testing.assert_allclose(_f64(hess), np.diag(6 * _f64(x[0])), atol=EPS)
    # scan/cond/custom rules see bfloat16 values as they are
    total = fa.scan(lambda c, v: (c + v, c), fa.zeros(3, fa.bfloat16), x)[0]
    assert total.dtype == fa.bfloat16
    np.testing.assert_array_equal(_f64(total), _f64(x).sum(0).astype(BF16).astype(np.float64))


# --- compat --------------------------------------------------------------------------------

def test_tensor_conversions_repr_numpy():
    t = torch.tensor([1.5, -2.0, 0.1])
    b = t.bfloat16()
    assert b.dtype is torch.bfloat16 and t.to(torch.bfloat16).dtype is torch.bfloat16
    assert repr(b) == "tensor([ 1.5000, -2.0000,  0.1001], dtype=torch.bfloat16)"  # PyTorch's
    assert b.is_floating_point() and b.float().dtype is torch.float32
    assert b.tolist() == [1.5, -2.0, 0.10009765625] and b[0].item() == 1.5
    # PyTorch refuses numpy() on bfloat16; here it is the ml_dtypes array (no copy needed)
    assert b.numpy().dtype == BF16
    assert torch.zeros(2, dtype=torch.bfloat16).dtype is torch.bfloat16
    assert torch.randn(3, 3, dtype=torch.bfloat16).dtype is torch.bfloat16
    fixed = torch.nan_to_num(torch.tensor([float("nan"), float("inf"), 1.0]).bfloat16())
    assert fixed.tolist() == [0.0, float(torch.finfo(torch.bfloat16).max), 1.0]
    pooled = torch.nn.functional.max_pool2d(-torch.ones(1, 1, 2, 2).bfloat16(), 2, padding=1)
    assert pooled.dtype is torch.bfloat16 and pooled.tolist() == [[[[-1, -1], [-1, -1]]]]


def test_module_training_in_bfloat16():
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).bfloat16()
    assert all(p.dtype is torch.bfloat16 for p in model.parameters())
    assert nn.Linear(2, 2).to(torch.bfloat16).weight.dtype is torch.bfloat16
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(16, 4).bfloat16()
    y = torch.randint(0, 3, (16,))
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        assert model[0].weight.grad.dtype is torch.bfloat16
        opt.step()
        losses.append(loss.item())
    assert loss.dtype is torch.bfloat16 and model[0].weight.dtype is torch.bfloat16
    assert losses[-1] < 0.8 * losses[0]


def test_dataloader_batches_bfloat16_samples():
    data = torch.utils.data.TensorDataset(torch.arange(6.0).bfloat16().reshape(3, 2),
                                          torch.arange(3))
    (x, y), = list(torch.utils.data.DataLoader(data, batch_size=3))
    assert x.dtype is torch.bfloat16 and x.tolist() == [[0, 1], [2, 3], [4, 5]]
    samples = [(torch.full((2,), float(i), dtype=torch.bfloat16), i) for i in range(3)]
    (x, y), = list(torch.utils.data.DataLoader(samples, batch_size=3))  # default_collate
    assert x.dtype is torch.bfloat16 and x.tolist() == [[0, 0], [1, 1], [2, 2]]


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).bfloat16()
    path = tmp_path / "m.pt"
    torch.save({"state": model.state_dict(), "dtype": torch.bfloat16,
                "array": fa.asarray([1.5, 2.25]).astype(fa.bfloat16),
                "numpy": np.array([0.1, 3.0], BF16)}, path)
    back = torch.load(path, weights_only=True)
    assert back["dtype"] is torch.bfloat16
    for k, v in model.state_dict().items():
        assert back["state"][k].dtype is torch.bfloat16
        np.testing.assert_array_equal(back["state"][k].numpy(), v.numpy())
    assert back["array"].dtype == fa.bfloat16 and back["array"].tolist() == [1.5, 2.25]
    assert back["numpy"].dtype == BF16
    fresh = torch.nn.Linear(3, 2).bfloat16()
    fresh.load_state_dict(back["state"])
    np.testing.assert_array_equal(fresh.weight.detach().numpy(), model.weight.detach().numpy())


def test_cpu_autocast_bfloat16_casts_matmul_and_conv_inputs():
    torch.manual_seed(0)
    lin, conv = torch.nn.Linear(3, 2), torch.nn.Conv2d(1, 2, 3)
    x = torch.randn(4, 3)
    with torch.autocast("cpu"):  # PyTorch's CPU default dtype is bfloat16
        y = lin(x)
        z = conv(torch.randn(1, 1, 5, 5))
        s = torch.exp(x)  # not on the lower-precision list: stays float32
    assert y.dtype is torch.bfloat16 and z.dtype is torch.bfloat16 and s.dtype is torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lin(x)
    ref = (x.bfloat16().float() @ lin.weight.detach().bfloat16().float().T
           + lin.bias.detach().bfloat16().float())
    np.testing.assert_allclose(y.float().detach().numpy(), ref.numpy(), rtol=EPS, atol=EPS)
    y.float().sum().backward()  # gradients reach the float32 parameters in float32
    assert lin.weight.grad.dtype is torch.float32
    np.testing.assert_allclose(lin.weight.grad.numpy(),
                               np.tile(x.bfloat16().float().numpy().sum(0), (2, 1)),
                               rtol=EPS, atol=EPS)
