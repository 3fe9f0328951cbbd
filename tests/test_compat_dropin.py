"""PyTorch idioms that must run unchanged under ``import fnarray.compat as torch``.

Each expected value is what PyTorch (2.x) gives for the same code, written down from its
documented behaviour.
"""

import numpy as np
import pytest

import fnarray.compat as torch
from fnarray import nn


# --- views: a second identity view of one base -------------------------------------------

def test_views_of_one_base_index_and_reshape():
    x = torch.arange(12).reshape(3, 4)
    assert x[1, 2].item() == 6
    assert x[:, 2].tolist() == [2, 6, 10]
    assert x.reshape(-1, 4).tolist() == x.tolist()


@pytest.mark.parametrize("make", [
    lambda t: t.view(-1), lambda t: t.reshape(t.shape), lambda t: t[:], lambda t: t[...],
    lambda t: t.flatten(), lambda t: t.squeeze(), lambda t: t.permute(0),
])
def test_second_identity_view_shares_the_base(make):
    t = torch.arange(4.0)
    a, b = make(t), make(t)
    b.mul_(2)  # PyTorch: both views and the base see the change
    assert a.tolist() == [0.0, 2.0, 4.0, 6.0] and t.tolist() == a.tolist()


# --- in-place initialisation through .data / .detach() -------------------------------------

def test_inplace_init_through_data_and_detach_reaches_the_parameter():
    torch.manual_seed(0)
    lin = nn.Linear(2, 3)
    lin.bias.data.fill_(0.01)
    assert np.allclose(lin.bias.tolist(), [0.01] * 3)
    lin.weight.data.normal_()
    lin.weight.detach().zero_()
    assert lin.weight.tolist() == [[0.0, 0.0]] * 3
    lin.weight.data[0] = 1
    assert lin.weight.tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    lin.state_dict()["bias"].add_(1)
    assert np.allclose(lin.bias.tolist(), [1.01] * 3)
    # still leaves that require grad, and training works on the new values
    assert lin.weight.is_leaf and lin.weight.requires_grad and lin.weight.grad_fn is None
    lin(torch.ones(1, 2)).sum().backward()
    assert lin.weight.grad.tolist() == [[1.0, 1.0]] * 3


def test_inplace_on_a_leaf_itself_still_raises():
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        w[:1].add_(1)


def test_detach_write_into_a_computed_tensor_keeps_its_graph():
    w = torch.ones(2, requires_grad=True)
    h = w * 3
    h.detach().zero_()
    assert h.tolist() == [0.0, 0.0] and h.grad_fn is not None
    h.sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]


# --- version checks only for what a backward rule saved ------------------------------------

def test_inplace_on_a_tensor_no_backward_saved_is_allowed():
    w = torch.ones(2, requires_grad=True)
    h = w * 1
    y = h + 10
    h.add_(1)
    y.sum().backward()  # PyTorch: fine, AddBackward0 saves nothing
    assert w.grad.tolist() == [1.0, 1.0]


def test_inplace_on_a_saved_tensor_still_raises():
    w = torch.ones(2, requires_grad=True)
    h = w * 1
    y = h * w  # MulBackward0 saves h
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
