"""The direct paths of ``F.linear`` (2-D compat tensors of one float dtype), ``F.relu`` and
``F.log_softmax`` (a concrete float tensor) record the very nodes the general path records: same values and
gradients bit for bit, same ``grad_fn`` names and ``next_functions``, same in-place checks;
anything else takes the general path."""

import numpy as np
import pytest

import fnarray.compat as torch
import fnarray.nn.functional as F
from tests.graph_util import grad_fn_tree

rng = np.random.default_rng(5)


def _run(x_np, w_np, b_np, general, monkeypatch, dtype=np.float32):
    if general:
        monkeypatch.setattr(F, "_linear_direct", lambda *a: None)
    x = torch.tensor(x_np.astype(dtype), requires_grad=True)
    w = torch.tensor(w_np.astype(dtype), requires_grad=True)
    b = None if b_np is None else torch.tensor(b_np.astype(dtype), requires_grad=True)
    h = x * 2  # a non-leaf input
    out = F.linear(h, w, b)
    names = grad_fn_tree(out.grad_fn)
    (out * out).sum().backward()
    monkeypatch.undo()
    grads = [t.grad.numpy() for t in (x, w, b) if t is not None]
    return out.detach().numpy(), grads, names


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_path_equals_general_path(bias, dtype, monkeypatch):
    x_np, w_np = rng.standard_normal((5, 7)), rng.standard_normal((3, 7))
    b_np = rng.standard_normal(3) if bias else None
    fast = _run(x_np, w_np, b_np, False, monkeypatch, dtype)
    slow = _run(x_np, w_np, b_np, True, monkeypatch, dtype)
    np.testing.assert_array_equal(fast[0], slow[0])
    assert fast[0].dtype == dtype
    for a, b in zip(fast[1], slow[1]):
        np.testing.assert_array_equal(a, b)
    assert fast[2] == slow[2]
    assert fast[2][0] == ("AddmmBackward0" if bias else "MmBackward0")


def test_direct_path_reports_in_place_changes_of_its_operands():
    x = torch.ones(2, 4, requires_grad=True)
    w = torch.ones(3, 4, requires_grad=True)
    h = x * 1
    out = F.linear(h, w)
    h.add_(1)  # the product's backward reads h
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_other_operands_take_the_general_path():
    x3 = torch.ones(2, 3, 4)
    w = torch.ones(5, 4)
    assert tuple(F.linear(x3, w).shape) == (2, 3, 5)
    with pytest.raises(RuntimeError, match="same dtype"):
        F.linear(torch.ones(2, 4, dtype=torch.float64), w)
    with pytest.raises(ValueError, match="features"):
        F.linear(torch.ones(2, 3), w)
    assert F._linear_direct(torch.ones(2, 4), w, torch.ones(4)) is None  # wrong bias size
    ints = torch.ones(2, 4, dtype=torch.int64)
    assert F._linear_direct(ints, torch.ones(5, 4, dtype=torch.int64), None) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_direct_path_equals_general_path(dtype, monkeypatch):
    x_np = rng.standard_normal((4, 6)).astype(dtype)
    x_np[0, 0] = 0.0  # the derivative at 0 is 0

    def run(general):
        if general:
            monkeypatch.setattr(F, "_tape", lambda: type("NoTensor", (), {
                "TENSOR": type(None), "_op": None}))
        x = torch.tensor(x_np, requires_grad=True)
        out = F.relu(x * 3)
        names = grad_fn_tree(out.grad_fn)
        (out * out).sum().backward()
        monkeypatch.undo()
        return out.detach().numpy(), x.grad.numpy(), names

    fast, slow = run(False), run(True)
    for a, b in zip(fast[:2], slow[:2]):
        np.testing.assert_array_equal(a, b)
    assert fast[2] == slow[2] and fast[2][0] == "ReluBackward0"
    assert fast[1][0, 0] == 0
    ints = torch.tensor(np.array([-1, 2]))
    np.testing.assert_array_equal(F.relu(ints).numpy(), [0, 2])


@pytest.mark.parametrize("dim", [1, -1, 0])
def test_log_softmax_direct_path_equals_general_path(dim, monkeypatch):
    x_np = rng.standard_normal((3, 5)).astype(np.float32)
    w_np = rng.standard_normal((3, 5)).astype(np.float32)

    def run(general):
        if general:
            monkeypatch.setattr(F, "_tape", lambda: type("NoTensor", (), {
                "TENSOR": type(None), "_op": None}))
        x = torch.tensor(x_np, requires_grad=True)
        out = F.log_softmax(x * 2, dim)
        names = grad_fn_tree(out.grad_fn)
        (out * torch.tensor(w_np)).sum().backward()
        monkeypatch.undo()
        return out.detach().numpy(), x.grad.numpy(), names

    fast, slow = run(False), run(True)
    for a, b in zip(fast[:2], slow[:2]):
        np.testing.assert_array_equal(a, b)
    assert fast[2] == slow[2] and fast[2][0] == "LogSoftmaxBackward0"
    with pytest.raises(IndexError, match="out of range"):
        F.log_softmax(torch.ones(2, 3), 2)
    assert tuple(F.log_softmax(torch.ones(0, 3), 1).shape) == (0, 3)
