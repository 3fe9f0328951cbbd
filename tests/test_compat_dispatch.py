"""The compat layer's fused record path (``fnarray.compat.dispatch``): every fast
operation agrees with its general path — values, dtype, grad_fn, next_functions and
gradients — for every operand signature, and the cases it must leave to the general path
(promotion, tracers, autocast, extra arguments) still behave."""

import warnings

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
from fnarray.compat.ops import METHODS
from fnarray.compat.tensor import Tensor
from fnarray.ops import elementwise as ew

FAST = {name: fn for name, fn in METHODS.items() if hasattr(fn, "general")}
UNARY = sorted(n for n, f in FAST.items() if f.__code__.co_argcount == 1)
BINARY = sorted(n for n, f in FAST.items() if f.__code__.co_argcount == 2)


def _tensor(dtype, values=(0.6, 0.9, 1.3), requires_grad=True):
    dt = np.dtype(dtype)
    t = torch.tensor(np.asarray(values if dt.kind != "c" else [v + 0.5j for v in values],
                                dtype=dt))
    return t.requires_grad_(True) if requires_grad and dt.kind in "fc" else t


def _graph(t):
    """What a recorded result looks like from the outside."""
    if not isinstance(t, Tensor):
        return t
    fn = t.grad_fn
    return (t.dtype, tuple(t.shape), t.requires_grad, None if fn is None else fn.name(),
            None if fn is None else [(type(f).__name__, None if f is None else f.name(), i)
                                     for f, i in fn.next_functions])


def _grads(out, inputs):
    wrt = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not out.requires_grad or not wrt:
        return []
    return [None if g is None else g.detach().numpy() for g in torch.autograd.grad(
        out, wrt, torch.ones_like(out), allow_unused=True)]


def _same(fast, general, args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither path may leak a NumPy warning
        try:
            want = general(*args)
        except Exception as e:  # noqa: BLE001 - then the fast op must raise the same
            with pytest.raises(type(e)):
                fast(*args)
            return
        got = fast(*args)
    assert _graph(got) == _graph(want), (args, _graph(got), _graph(want))
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    for g, w in zip(_grads(got, args), _grads(want, args)):
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_the_fast_operations_are_found():
    assert {"sin", "exp", "neg", "relu", "sigmoid", "square"} <= set(UNARY)
    assert {"__add__", "__radd__", "__mul__", "__rsub__", "__truediv__", "__pow__"} <= \
        set(BINARY)


@pytest.mark.parametrize("name", UNARY)
def test_unary_fast_path_matches_general_path(name):
    op = FAST[name]
    for dtype in (np.float32, np.float64, np.complex64, np.int64, np.bool_):
        values = (1, 0, 1) if dtype is np.bool_ else (1, 2, 3) if dtype is np.int64 \
            else (0.6, 0.9, 1.3)
        _same(op, op.general, (_tensor(dtype, values),))


@pytest.mark.parametrize("name", BINARY)
def test_binary_fast_path_matches_general_path(name):
    op = FAST[name]
    f32, f64 = _tensor(np.float32), _tensor(np.float64, (1.1, 0.7, 2.0))
    plain = _tensor(np.float32, (1.5, 0.5, 2.5), requires_grad=False)
    i64 = _tensor(np.int64, (1, 2, 3))
    c64 = _tensor(np.complex64)
    cases = [(f32, _tensor(np.float32, (0.8, 1.7, 0.4))), (f32, f32), (f32, plain),
             (plain, f32), (f64, f64), (f32, 2), (f32, 2.5), (f64, -3), (plain, 0.5),
             (f32, f64), (f32, torch.tensor(2.0, dtype=torch.float64)), (i64, i64),
             (i64, 2), (i64, 2.5), (c64, c64), (c64, 2.0), (f32, True)]
    for a, b in cases:
        _same(op, op.general, (a, b))


def test_plans_are_one_primitive_on_the_operands():
    x = _tensor(np.float32)
    torch.sin(x), x * x, x + 1, 1 - x, torch.square(x)
    f32 = np.dtype(np.float32)
    assert FAST["sin"].plans[f32] == (ew.sin, {}, False)
    assert FAST["__mul__"].plans[(f32, f32)] == (ew.mul, {}, False)
    assert FAST["__add__"].plans[(f32, int)] == (ew.add, {}, False)
    assert FAST["__rsub__"].plans[(f32, int)] == (ew.sub, {}, True)  # (1, x): flipped
    assert FAST["square"].plans[f32] == (ew.mul, {}, True)  # (x, x)
    torch.sin(_tensor(np.int64, (1, 2, 3)))  # the integer is converted first: general
    assert FAST["sin"].plans[np.dtype(np.int64)] == "general"
    _tensor(np.int32, (1, 2, 3)) + 0.5  # PyTorch promotion to float32: general
    assert FAST["__add__"].plans[(np.dtype(np.int32), float)] == "general"


def test_functions_with_neutral_keywords_take_the_fast_path_others_the_general():
    x, y = _tensor(np.float32), _tensor(np.float32, (2.0, 3.0, 4.0))
    assert torch.add(x, y).grad_fn.name() == "AddBackward0"
    np.testing.assert_allclose(torch.add(x, y, alpha=2).detach().numpy(),
                               (x + 2 * y).detach().numpy())
    np.testing.assert_allclose(torch.div(y, x, rounding_mode="floor").detach().numpy(),
                               np.floor(y.detach().numpy() / x.detach().numpy()))


def test_double_backward_hooks_and_retain_grad_through_fast_ops():
    x = torch.tensor([0.3, 1.2], requires_grad=True)
    y = torch.sin(x) * x + 1
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.detach().numpy().copy()))
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    xs = np.array([0.3, 1.2], np.float32)
    np.testing.assert_allclose(g.detach().numpy(), np.cos(xs) * xs + np.sin(xs), rtol=1e-6)
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(xs) - xs * np.sin(xs), rtol=1e-6)
    assert len(seen) == 1
    z = torch.sin(x) * x
    z.retain_grad()
    z.sum().backward()
    np.testing.assert_array_equal(z.grad.numpy(), [1.0, 1.0])


def test_in_place_change_of_a_saved_operand_is_caught_and_of_an_unsaved_one_is_not():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0])
    y = x * w  # mul saves both operands
    w.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*MulBackward0"):
        y.sum().backward()
    h = x * 1.0
    out = h + 10  # add saves nothing
    h.add_(1)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_in_place_updates_record_under_their_own_name():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    y.mul_(3)
    assert y.grad_fn.name() == "MulBackward0"
    y.sub_(1)
    assert y.grad_fn.name() == "SubBackward0"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_no_grad_records_nothing():
    x = _tensor(np.float32)
    with torch.no_grad():
        y = torch.sin(x) * x + 1
    assert not y.requires_grad and y.grad_fn is None


def test_intended_inf_and_nan_stay_quiet_and_errors_name_the_op():
    x = torch.tensor([0.0, -1.0], requires_grad=True)
    for strict in (False, True):
        with warnings.catch_warnings(record=True) as shown:
            if strict:
                warnings.simplefilter("error")
            out = torch.log(x)
            q = 1.0 / x
        assert not shown
        assert np.isneginf(out.detach().numpy()[0]) and np.isnan(out.detach().numpy()[1])
        assert np.isposinf(q.detach().numpy()[0])
    with pytest.raises(ValueError, match="mul"):
        _tensor(np.float32) * torch.ones(4)


def test_tracers_and_autocast_take_the_general_path():
    def loss(w):
        t = Tensor._make(w, None, 0)  # a tensor holding a tracer of fa.grad
        return (torch.sin(t) * t + 1).sum()._value

    w = np.array([0.3, 1.2], np.float32)
    np.testing.assert_allclose(np.asarray(fa.grad(loss)(fa.asarray(w))),
                               np.cos(w) * w + np.sin(w), rtol=1e-6)
    a, b = torch.ones(2, 2), torch.ones(2, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ b).dtype == torch.bfloat16
        assert (torch.sin(a) * b).dtype == torch.float32
