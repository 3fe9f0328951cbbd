"""fnarray.compat.compile: compiled forward and backward match eager execution.

Trajectories (forward values, gradients, optimizer steps) of an MLP and of the tutorial
ConvNet (with dropout, so the random stream is threaded through the compiled program) must
equal the eager ones; untraceable code falls back to eager with one warning naming it.
"""

import warnings

import numpy as np
import pytest

import fnarray.compat as torch
import fnarray.nn.functional as F
from fnarray import nn, optim
from fnarray.examples.mnist import Net

rng = np.random.default_rng(0)


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(),
                         nn.Linear(8, 3))


def _train(model, opt, batches, loss_fn):
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _params(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def test_mlp_forward_backward_and_sgd_trajectory_match_eager():
    batches = [(torch.tensor(rng.standard_normal((5, 12)).astype(np.float32)),
                torch.tensor(rng.integers(0, 3, 5))) for _ in range(4)]
    eager, compiled_src = _mlp(), _mlp()
    compiled = torch.compile(compiled_src)
    x = batches[0][0]
    np.testing.assert_array_equal(compiled(x).detach().numpy(), eager(x).detach().numpy())
    le = _train(eager, optim.SGD(eager.parameters(), lr=0.1, momentum=0.9), batches,
                F.cross_entropy)
    lc = _train(compiled, optim.SGD(compiled.parameters(), lr=0.1, momentum=0.9), batches,
                F.cross_entropy)
    assert le == lc
    for a, b in zip(_params(eager), _params(compiled_src)):
        np.testing.assert_array_equal(a, b)


def test_convnet_adam_trajectory_with_dropout_matches_eager():
    batches = [(torch.tensor(rng.standard_normal((4, 1, 28, 28)).astype(np.float32)),
                torch.tensor(rng.integers(0, 10, 4))) for _ in range(2)]
    results = []
    for compile_it in (False, True):
        torch.manual_seed(1)
        net = Net()
        model = torch.compile(net) if compile_it else net
        losses = _train(model, optim.Adam(model.parameters(), lr=1e-3), batches, F.nll_loss)
        results.append((losses, _params(net)))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


def test_one_tape_node_and_gradients_of_inputs():
    model = torch.compile(_mlp())
    x = torch.tensor(rng.standard_normal((3, 12)).astype(np.float32), requires_grad=True)
    out = model(x)
    assert out.grad_fn is not None
    out.sum().backward()
    reference = _mlp()
    x2 = torch.tensor(x.detach().numpy(), requires_grad=True)
    reference(x2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_recompiles_per_signature_and_respects_modes():
    model = torch.compile(_mlp())
    compiler = model._compiler
    model(torch.tensor(np.ones((2, 12), np.float32)))
    model(torch.tensor(np.ones((2, 12), np.float32)))
    assert len(compiler.cache) == 1
    model(torch.tensor(np.ones((7, 12), np.float32)))
    assert len(compiler.cache) == 2
    with torch.no_grad():
        out = model(torch.tensor(np.ones((7, 12), np.float32)))
    assert out.grad_fn is None and len(compiler.cache) == 3
    model.eval()
    model(torch.tensor(np.ones((7, 12), np.float32)))
    assert len(compiler.cache) == 4


def test_compiled_function_of_tensors():
    @torch.compile
    def f(a, b):
        return (torch.sin(a) * b).sum()

    a = torch.tensor(rng.standard_normal(5), requires_grad=True)
    b = torch.tensor(rng.standard_normal(5))
    f(a, b).backward()
    np.testing.assert_allclose(a.grad.numpy(), np.cos(a.detach().numpy()) * b.numpy())


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        y = self.lin(x)
        if y.sum() > 0:  # data-dependent Python control flow
            return y * 2
        return -y


def test_untraceable_forward_falls_back_to_eager_with_one_warning():
    torch.manual_seed(0)
    eager = _Branchy()
    torch.manual_seed(0)
    compiled = torch.compile(_Branchy())
    x = torch.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    with pytest.warns(UserWarning, match=r"_Branchy\.forward cannot be compiled.*if y\.sum\(\) > 0"):
        out = compiled(x)
    np.testing.assert_array_equal(out.detach().numpy(), eager(x).detach().numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled(x)  # warned once only


def test_compile_options_and_disable():
    model = _mlp()
    assert torch.compile(model, disable=True) is model
    assert isinstance(torch.compile(mode="max-autotune")(model), nn.Module)
    with pytest.raises(TypeError, match="Module or a function"):
        torch.compile(3)


def test_batchnorm_running_statistics_are_written_back_as_in_eager():
    def make():
        torch.manual_seed(3)
        return nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                             nn.Linear(4 * 4 * 4, 3))

    batches = [(torch.tensor(rng.standard_normal((5, 2, 6, 6)).astype(np.float32)),
                torch.tensor(rng.integers(0, 3, 5))) for _ in range(3)]
    eager, source = make(), make()
    compiled = torch.compile(source)
    le = _train(eager, optim.SGD(eager.parameters(), lr=0.1), batches, F.cross_entropy)
    lc = _train(compiled, optim.SGD(compiled.parameters(), lr=0.1), batches, F.cross_entropy)
    assert le == lc
    for (name, a), (_, b) in zip(eager.state_dict().items(), source.state_dict().items()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    assert int(source[1].num_batches_tracked) == 3
    eager.eval()
    compiled.eval()
    x = batches[0][0]
    np.testing.assert_array_equal(compiled(x).detach().numpy(), eager(x).detach().numpy())



def test_tensors_made_inside_a_compiled_function_run_eagerly_with_a_warning():
    f = torch.compile(lambda x: x * 2 + torch.zeros(3) + torch.arange(3.0))
    x = torch.tensor([1.0, 2.0, 3.0])
    with pytest.warns(UserWarning, match="does not take as an argument"):
        np.testing.assert_array_equal(f(x).numpy(), [2.0, 5.0, 8.0])


def test_a_closed_over_tensor_is_never_frozen_into_a_compiled_program():
    table = torch.tensor([1.0, 10.0])
    f = torch.compile(lambda x: x * table)
    with pytest.warns(UserWarning, match="does not take as an argument"):
        np.testing.assert_array_equal(f(torch.ones(2)).numpy(), [1.0, 10.0])
    table.add_(1)  # PyTorch's compiled function sees the new value
    np.testing.assert_array_equal(f(torch.ones(2)).numpy(), [2.0, 11.0])


def test_a_closed_over_tensor_that_requires_grad_keeps_its_gradient():
    w = torch.tensor([2.0, 3.0], requires_grad=True)
    f = torch.compile(lambda x: (x * w).sum())
    with pytest.warns(UserWarning, match="does not take as an argument"):
        y = f(torch.tensor([1.0, 4.0]))
    y.backward()
    assert float(y) == 14.0
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 4.0])
