"""More of PyTorch's behaviour under ``import fnarray.compat as torch`` (issue 16): error
types, BCE's gradient at 0 and 1, optimizers on complex parameters, finfo/iinfo, dtype
serialisation, CUDA autocast on a CPU-only machine.

Expected values are what PyTorch 2.x gives for the same code (its documented formulas,
checked once against a PyTorch install; PyTorch is never imported here).
"""

import numpy as np
import pytest

import fnarray.compat as torch
from fnarray.compat import nn
from fnarray.compat.nn import functional as F


# --- layer size mismatches raise RuntimeError (as PyTorch) and keep fnarray's message ---------

@pytest.mark.parametrize("run, message", [
    (lambda: nn.LSTM(10, 20)(torch.randn(5, 3, 7)),
     r"LSTM\(10, 20\): expected input with 10 features .* shape \(5, 3, 7\)"),
    (lambda: nn.LSTM(10, 20)(torch.randn(5, 3, 10), (torch.randn(1, 2, 20), torch.randn(1, 3, 20))),
     r"LSTM\(10, 20\): expected h_0 of shape \(1, 3, 20\), got shape \(1, 2, 20\)"),
    (lambda: nn.GRU(10, 20)(torch.randn(5, 3, 10), torch.randn(1, 3, 21)),
     r"GRU\(10, 20\): expected hx of shape \(1, 3, 20\), got shape \(1, 3, 21\)"),
    (lambda: nn.RNN(4, 3, batch_first=True)(torch.randn(2, 5, 3)),
     r"RNN\(4, 3, batch_first=True\): expected input with 4 features"),
    (lambda: nn.LSTMCell(10, 20)(torch.randn(3, 7)), r"LSTMCell\(10, 20\): expected input"),
    (lambda: nn.GRUCell(10, 20)(torch.randn(3, 10), torch.randn(3, 19)),
     r"GRUCell\(10, 20\): expected hx of shape \(3, 20\)"),
    (lambda: nn.Linear(10, 20)(torch.randn(3, 7)), r"Linear\(in_features=10.*\(3, 7\)"),
    (lambda: nn.Conv2d(3, 4, 3)(torch.randn(1, 2, 8, 8)), r"expected input with 3 channels"),
    (lambda: nn.BatchNorm1d(3)(torch.randn(4, 2)), r"expected input with 3 channels"),
    (lambda: nn.LayerNorm(3)(torch.randn(4, 2)), r"expected input with trailing shape \(3,\)"),
])
def test_layer_size_mismatch_is_a_runtime_error(run, message):
    with pytest.raises(RuntimeError, match=message) as info:
        run()
    assert isinstance(info.value, ValueError)  # fnarray's own convention still holds


def test_rnn_input_of_wrong_rank_stays_a_value_error():
    with pytest.raises(ValueError, match="2-D \\(unbatched\\) or 3-D input") as info:
        nn.RNN(10, 20)(torch.randn(5, 3, 10, 1))
    assert not isinstance(info.value, RuntimeError)  # PyTorch: ValueError here too


# --- binary_cross_entropy: PyTorch's gradient (x - y) / max((1 - x) x, 1e-12) ----------------

def test_bce_gradient_at_exactly_zero_and_one_is_pytorchs():
    x = torch.tensor([0.0, 1.0, 0.5, 1e-20, 0.3], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.2])
    loss = F.binary_cross_entropy(x, y, reduction="none")
    assert loss.grad_fn.name() == "BinaryCrossEntropyBackward0"
    assert np.allclose(loss.tolist(), [100.0, 100.0, 0.6931472, 46.0517, 0.5261345], rtol=1e-6)
    loss.sum().backward()
    # x = 0 / 1 / below 1e-12: the clamped denominator (PyTorch: -1e12, 1e12, -1e12)
    assert np.allclose(x.grad.tolist(), [-1e12, 1e12, -2.0, -1e12, 0.1 / 0.21], rtol=1e-6)


def test_bce_weighted_mean_and_module_gradients():
    x = torch.tensor([0.0, 1.0, 0.5, 1e-20, 0.3], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.2])
    w = torch.tensor([2.0, 1.0, 1.0, 1.0, 3.0])
    (g,) = torch.autograd.grad(nn.BCELoss(weight=w)(x, y), (x,))
    assert np.allclose(g.tolist(), [-4e11, 2e11, -0.4, -2e11, 0.2857143], rtol=1e-6)


def test_bce_second_derivative_and_target_gradient():
    x = torch.tensor([0.0, 0.5, 0.3], requires_grad=True)
    y = torch.tensor([1.0, 1.0, 0.2], requires_grad=True)
    loss = F.binary_cross_entropy(x, y, reduction="sum")
    gx, gy = torch.autograd.grad(loss, (x, y), create_graph=True)
    # d loss / dy = log(1 - x) - log(x) (clamped at -100: PyTorch gives +inf at x = 0)
    assert np.allclose(gy.tolist(), [100.0, 0.0, 0.8472979], rtol=1e-6)
    gxx, gxy = torch.autograd.grad(gx.sum(), (x, y))
    # PyTorch's double backward: (x^2 - 2xy + y) / max((1-x)x, eps)^2 and -1 / max(...)
    assert np.allclose(gxx.tolist(), [1e24, 4.0, 0.17 / 0.21 ** 2], rtol=1e-5)
    assert np.allclose(gxy.tolist(), [-1e12, -4.0, -1 / 0.21], rtol=1e-6)
