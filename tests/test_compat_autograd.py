"""fnarray.compat autograd: backward() on the shared engine, its errors and its memory."""

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch


def test_seed_autograd_outputs():
    x = torch.tensor([2.0], requires_grad=True)
    assert f"{x}" == "tensor([2.], requires_grad=True)"
    y = x**2 + 3 * x + 1
    assert f"{y}" == "tensor([11.], grad_fn=<AddBackward0>)"
    y.backward()
    assert f"{x.grad}" == "tensor([7.])"
    x = torch.tensor([2.0, 3.0], requires_grad=True)
    (x**2).sum().backward()
    assert f"{x.grad}" == "tensor([4., 6.])"
    a = torch.tensor([3.0], requires_grad=True)
    b = torch.tensor([2.0], requires_grad=True)
    c, d = a + b, a * b
    e = c * d
    assert f"{e}" == "tensor([30.], grad_fn=<MulBackward0>)"
    assert f"{c}" == "tensor([5.], grad_fn=<AddBackward0>)"
    e.backward()
    assert f"{a.grad}" == "tensor([16.])" and f"{b.grad}" == "tensor([21.])"  # PyTorch's values
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x**2).backward(torch.tensor([2.0, 4.0, 6.0]))
    assert f"{x.grad}" == "tensor([ 4., 16., 36.])"


def test_grad_fn_names_and_next_functions():
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    v = torch.tensor([1.0, 1.0])
    names = {
        "MmBackward0": w @ w, "SumBackward0": w.sum(), "MeanBackward0": w.mean(),
        "PowBackward0": w**2, "SinBackward0": torch.sin(w), "ViewBackward0": w.view(4),
        "MulBackward0": 2 * w, "SubBackward0": w - v, "DivBackward0": w / 2,
        "TBackward0": w.t(), "SumBackward1": w.sum(dim=0), "MvBackward0": w @ v,
        "ReluBackward0": w.relu(), "SigmoidBackward0": w.sigmoid(),
    }
    for name, t in names.items():
        assert t.grad_fn.name() == name, (name, t.grad_fn)
    m = w.mean()
    (fn, _), = m.grad_fn.next_functions
    assert type(fn).__name__ == "AccumulateGrad" and fn.variable is w
    z = (w * 2).sum()
    assert z.grad_fn.next_functions[0][0].name() == "MulBackward0"
    assert w.is_leaf and not z.is_leaf and z.requires_grad


def test_no_grad_and_detach():
    x = torch.tensor([2.0, 3.0], requires_grad=True)
    with torch.no_grad():
        y = x * 2
    assert not y.requires_grad
    assert (x * 2).requires_grad and not (x * 2).detach().requires_grad
    with torch.no_grad():
        out = x.sum()
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad "
                                           "and does not have a grad_fn"):
        out.backward()

    @torch.no_grad()
    def f(t):
        return t * 3
    assert not f(x).requires_grad and torch.is_grad_enabled()
    with torch.set_grad_enabled(False):
        assert not (x + 1).requires_grad
    with torch.inference_mode():
        assert not (x + 1).requires_grad
    with torch.no_grad(), torch.enable_grad():
        assert (x + 1).requires_grad


def test_second_backward_needs_retain_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (np.exp([1, 2]) * np.array([2, 3])),
                               rtol=1e-6)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_saved_values_are_released():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h._value)
    node_ref = weakref.ref(h._node)
    y = (h * 3).sum()
    del h
    gc.collect()
    assert ref() is not None  # saved by the multiplication's node
    y.backward()
    gc.collect()
    assert ref() is None and node_ref() is None


def test_inplace_change_of_saved_tensor_is_caught():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    s = x.sigmoid()
    out = (s * s).sum()
    s.mul_(2)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: "
                                           r"\[fnarray.Tensor of shape \[3\].*version 1"):
        out.backward()
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    with torch.no_grad():
        x.add_(1)  # allowed, and x stays a leaf
    assert x.is_leaf and x.requires_grad


def test_double_backward_equals_hessian():
    def f(v):
        return (fa.sin(v) * v**3).sum()
    x0 = np.array([0.5, 1.5, -0.7])
    x = torch.tensor(x0, requires_grad=True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    rows = [torch.autograd.grad(g[i], x, retain_graph=True)[0].numpy() for i in range(3)]
    np.testing.assert_allclose(np.stack(rows), np.asarray(fa.hessian(f)(fa.asarray(x0))),
                               rtol=1e-10)
    x.grad = None
    y = f(x)
    y.backward(create_graph=True)
    x.grad.sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(),
                               np.asarray(fa.grad(f)(fa.asarray(x0)))
                               + np.asarray(fa.hessian(f)(fa.asarray(x0))).sum(0), rtol=1e-10)


CATALOGUE = {
    "poly": lambda x: (x**3 - 2 * x + 1).sum(),
    "matmul": lambda x: (x.reshape(2, 3) @ x.reshape(3, 2)).tanh().sum(),
    "softmax": lambda x: (torch.softmax(x.reshape(2, 3), dim=1) * x.reshape(2, 3)).sum(),
    "indexing": lambda x: (x[1:4] * x[torch.tensor([0, 0, 5])]).sum(),
    "reductions": lambda x: x.std() + x.max() - x.reshape(2, 3).mean(dim=0).prod(),
    "views": lambda x: x.view(2, 3).t().contiguous().flatten()[::2].exp().sum(),
    "joining": lambda x: torch.cat([x, x * 2]).relu().log1p().sum() + torch.stack([x, x]).var(),
    "clamp_where": lambda x: torch.where(x > 0, x.clamp(max=0.9), x**2).sum(),
}


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_backward_matches_fa_grad(name):
    f = CATALOGUE[name]
    x0 = np.array([0.3, -1.2, 0.8, 1.7, -0.4, 0.6])
    x = torch.tensor(x0, requires_grad=True)
    f(x).backward()
    expected = fa.grad(lambda a: f(torch.as_tensor(a)))(fa.asarray(x0))
    np.testing.assert_allclose(x.grad.numpy(), np.asarray(expected), rtol=1e-10)


def test_inplace_in_graph_and_through_views_is_differentiated():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    y[0] = 10.0 * x[2]
    y.mul_(x)
    y.sum().backward()
    assert x.grad.tolist() == [30.0, 4.0, 16.0]  # d sum([10 x2 x0, x1^2, x2^2])


def test_hooks_and_autograd_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    seen = []
    y.register_hook(lambda g: seen.append(g.tolist()) or g * 2)
    y.retain_grad()
    y.sum().backward()
    assert seen == [[1.0, 1.0]] and x.grad.tolist() == [6.0, 6.0]
    z = torch.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        torch.autograd.grad((x * 2).sum(), [x, z])
    gx, gz = torch.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gx.tolist() == [2.0, 2.0] and gz is None


def test_detect_anomaly_names_the_forward_op():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    y = torch.sqrt(x) * 0.0
    with torch.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match="SqrtBackward0"):
            y.sum().backward()


def test_transforms_accept_tensor_functions():
    x0 = fa.asarray([0.5, 1.5])
    g = fa.grad(lambda v: (torch.as_tensor(v).sin() * 2).sum())(x0)
    np.testing.assert_allclose(np.asarray(g), 2 * np.cos([0.5, 1.5]), rtol=1e-6)
    g2 = fa.grad(lambda t: (t.exp() * t).sum())(torch.tensor([0.1, 0.2]))
    assert isinstance(g2, torch.Tensor)
    out = fa.vmap(lambda v: torch.as_tensor(v).exp().sum())(fa.ones((3, 2)))
    np.testing.assert_allclose(np.asarray(out), [2 * np.e] * 3, rtol=1e-6)


def test_training_loop_memory_is_flat():
    w = torch.tensor(np.linspace(-1, 1, 8).reshape(4, 2), dtype=torch.float32,
                     requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    xs = torch.tensor(np.linspace(0, 1, 12).reshape(3, 4), dtype=torch.float32)
    ys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])

    def step():
        loss = ((torch.tanh(xs @ w + b) - ys) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w.sub_(0.1 * w.grad)
            b.sub_(0.1 * b.grad)
        w.grad = None
        b.grad = None
        return loss

    first = step().item()
    for _ in range(500):
        step()
    tracemalloc.start()
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(9500):
        last = step()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 200_000, grown
    assert last.item() < first
