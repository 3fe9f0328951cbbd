"""fnarray.compat tensors: the seeds' printed outputs, views and in-place updates."""

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch


def s(t):
    return str(t)  # f"{t}" formats a 0-d tensor as its number, as in PyTorch


def test_creation_prints_like_pytorch():
    assert s(torch.tensor([1, 2, 3, 4])) == "tensor([1, 2, 3, 4])"
    assert s(torch.zeros(3, 4)) == ("tensor([[0., 0., 0., 0.],\n        [0., 0., 0., 0.],\n"
                                    "        [0., 0., 0., 0.]])")
    assert s(torch.ones(2, 3)) == "tensor([[1., 1., 1.],\n        [1., 1., 1.]])"
    assert s(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float32)) == "tensor([1., 2., 3.])"
    assert s(torch.tensor([1, 2, 3], dtype=torch.int32)) == \
        "tensor([1, 2, 3], dtype=torch.int32)"
    assert s(torch.tensor([1, 2], dtype=torch.int16)) == "tensor([1, 2], dtype=torch.int16)"
    assert s(torch.tensor([True, False, True])) == "tensor([ True, False,  True])"
    assert s(torch.zeros_like(torch.tensor([1, 2, 3, 4]))) == "tensor([0, 0, 0, 0])"
    assert s(torch.arange(0, 10, step=1)) == "tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])"
    assert s(torch.linspace(0, 10, steps=11)) == \
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10.])"
    assert s(torch.eye(3)) == ("tensor([[1., 0., 0.],\n        [0., 1., 0.],\n"
                               "        [0., 0., 1.]])")
    assert s(torch.full((2, 3), 7)) == "tensor([[7, 7, 7],\n        [7, 7, 7]])"
    assert torch.tensor([1.0]).dtype == torch.float32 == np.float32


def test_from_numpy_copies_and_numpy_is_read_only():
    arr = np.array([1, 2, 3])
    t = torch.from_numpy(arr)
    arr[0] = 5
    assert s(t) == "tensor([1, 2, 3])"
    n = torch.tensor([[7, 8, 9], [10, 11, 12]]).numpy()
    with pytest.raises(ValueError):
        n[0, 0] = 1


def test_properties():
    x = torch.zeros(3, 4, 5)
    assert x.shape == (3, 4, 5) and repr(x.shape) == "torch.Size([3, 4, 5])"
    assert str(x.shape) == f"{x.shape}" == "torch.Size([3, 4, 5])"
    assert x.ndim == 3 and x.numel() == 60 and x.element_size() * x.numel() == 240
    assert x.size() == (3, 4, 5) and x.size(1) == 4 and x.dim() == 3
    assert f"{x.device}" == "cpu" and not x.requires_grad
    x.requires_grad_(True)
    assert x.requires_grad and x.is_leaf and x.grad is None and x.grad_fn is None


def test_arithmetic_prints():
    a = torch.tensor([1, 2, 3], dtype=torch.float32)
    b = torch.tensor([4, 5, 6], dtype=torch.float32)
    assert s(a + b) == s(torch.add(a, b)) == "tensor([5., 7., 9.])"
    c = a.clone()
    c.add_(b)
    assert s(c) == "tensor([5., 7., 9.])" and s(a) == "tensor([1., 2., 3.])"
    assert s(a - b) == s(torch.sub(a, b)) == "tensor([-3., -3., -3.])"
    assert s(a * b) == s(torch.mul(a, b)) == "tensor([ 4., 10., 18.])"
    assert s(a / b) == s(torch.div(a, b)) == "tensor([0.2500, 0.4000, 0.5000])"
    m1 = torch.tensor([[1, 2], [3, 4]], dtype=torch.float32)
    m2 = torch.tensor([[5, 6], [7, 8]], dtype=torch.float32)
    assert s(torch.matmul(m1, m2)) == s(m1 @ m2) == "tensor([[19., 22.],\n        [43., 50.]])"
    assert s(torch.sqrt(a)) == "tensor([1.0000, 1.4142, 1.7321])"
    assert s(torch.pow(a, 2)) == "tensor([1., 4., 9.])"
    assert s(torch.exp(a)) == "tensor([ 2.7183,  7.3891, 20.0855])"
    assert s(torch.log(a)) == "tensor([0.0000, 0.6931, 1.0986])"
    angles = torch.tensor([0, torch.pi / 4, torch.pi / 2])
    assert s(torch.sin(angles)) == "tensor([0.0000, 0.7071, 1.0000])"
    # PyTorch itself prints cos(pi/2) = -4.37e-08 in scientific notation
    assert s(torch.cos(angles)) == "tensor([ 1.0000e+00,  7.0711e-01, -4.3711e-08])"


def test_reductions_print():
    m = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.float32)
    assert s(torch.sum(m)) == "tensor(21.)"
    assert s(torch.sum(m, dim=1)) == "tensor([ 6., 15.])"
    assert s(torch.sum(m, dim=0)) == "tensor([5., 7., 9.])"
    assert s(torch.mean(m)) == "tensor(3.5000)"
    assert s(torch.mean(m, dim=1)) == "tensor([2., 5.])"
    values, idx = torch.max(m, dim=1)
    assert s(values) == "tensor([3., 6.])" and s(idx) == "tensor([2, 2])"
    assert s(torch.min(m)) == "tensor(1.)"
    assert s(torch.std(m)) == "tensor(1.8708)"  # Bessel-corrected, as PyTorch
    assert s(torch.var(m)) == "tensor(3.5000)"
    std, mean = torch.std_mean(m)
    assert s(std) == "tensor(1.8708)" and s(mean) == "tensor(3.5000)"
    assert s(m.sum(dim=1, keepdim=True)) == "tensor([[ 6.],\n        [15.]])"
    assert torch.argmax(m).item() == 5


def test_indexing_prints():
    x = torch.arange(12).reshape(3, 4)
    assert s(x) == ("tensor([[ 0,  1,  2,  3],\n        [ 4,  5,  6,  7],\n"
                    "        [ 8,  9, 10, 11]])")
    assert s(x[1, 2]) == "tensor(6)"
    assert s(x[1]) == "tensor([4, 5, 6, 7])"
    assert s(x[:, 2]) == "tensor([ 2,  6, 10])"
    assert s(x[0:2, 1:3]) == "tensor([[1, 2],\n        [5, 6]])"
    assert s(x[-1]) == "tensor([ 8,  9, 10, 11])"
    assert s(x[::2, ::2]) == "tensor([[ 0,  2],\n        [ 8, 10]])"
    assert s(x[torch.tensor([0, 2])]) == ("tensor([[ 0,  1,  2,  3],\n"
                                          "        [ 8,  9, 10, 11]])")
    mask = x > 5
    assert s(mask) == ("tensor([[False, False, False, False],\n"
                       "        [False, False,  True,  True],\n"
                       "        [ True,  True,  True,  True]])")
    assert s(x[mask]) == "tensor([ 6,  7,  8,  9, 10, 11])"
    r, c = torch.tensor([0, 2]), torch.tensor([1, 3])
    assert s(x[r[:, None], c]) == "tensor([[ 1,  3],\n        [ 9, 11]])"
    xc = x.clone()
    xc[0, 0] = 99
    xc[1:3, 2:4] = 50
    assert s(xc) == ("tensor([[99,  1,  2,  3],\n        [ 4,  5, 50, 50],\n"
                     "        [ 8,  9, 50, 50]])")
    xc[xc > 10] = 0
    assert s(xc) == ("tensor([[0, 1, 2, 3],\n        [4, 5, 0, 0],\n"
                     "        [8, 9, 0, 0]])")
    assert s(x[0, 0]) == "tensor(0)"  # the clone was written, not x


def test_reshaping_and_views_share_the_base():
    x = torch.arange(12)
    assert s(x.reshape(4, -1)) == ("tensor([[ 0,  1,  2],\n        [ 3,  4,  5],\n"
                                   "        [ 6,  7,  8],\n        [ 9, 10, 11]])")
    assert s(x.reshape(4, -1).flatten()) == \
        "tensor([ 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11])"
    original = torch.tensor([[1, 2], [3, 4]])
    view = original.view(4)
    view[0] = 9
    assert s(view) == "tensor([9, 2, 3, 4])"
    assert s(original) == "tensor([[9, 2],\n        [3, 4]])"
    original.add_(1)  # a write to the base is seen by the view
    assert s(view) == "tensor([10,  3,  4,  5])"
    row = original[1]
    row.mul_(10)
    assert s(original) == "tensor([[10,  3],\n        [40, 50]])" and s(view).endswith("40, 50])")
    nc = torch.tensor([[1, 2], [3, 4]]).transpose(0, 1)
    assert s(nc) == "tensor([[1, 3],\n        [2, 4]])" and not nc.is_contiguous()
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        nc.view(4)
    assert s(nc.reshape(4)) == "tensor([1, 3, 2, 4])"
    assert torch.arange(24).reshape(2, 3, 4).permute(1, 0, 2).shape == (3, 2, 4)
    assert s(torch.tensor([[1, 2, 3], [4, 5, 6]]).t()) == \
        "tensor([[1, 4],\n        [2, 5],\n        [3, 6]])"
    y = torch.zeros(1, 3, 1, 4)
    assert y.squeeze().shape == (3, 4) and y.squeeze(0).shape == (3, 1, 4)
    assert torch.zeros(3, 4).unsqueeze(0).shape == (1, 3, 4)
    assert torch.zeros(3, 4).unsqueeze(-1).shape == (3, 4, 1)
    d = original.detach()
    d.zero_()
    assert s(original) == "tensor([[0, 0],\n        [0, 0]])"


def test_joining_prints():
    a = torch.tensor([[1, 2, 3], [4, 5, 6]])
    b = torch.tensor([[7, 8, 9], [10, 11, 12]])
    assert s(torch.cat([a, b], dim=0)) == ("tensor([[ 1,  2,  3],\n        [ 4,  5,  6],\n"
                                           "        [ 7,  8,  9],\n        [10, 11, 12]])")
    assert s(torch.cat([a, b], dim=1)) == ("tensor([[ 1,  2,  3,  7,  8,  9],\n"
                                           "        [ 4,  5,  6, 10, 11, 12]])")
    assert s(torch.stack([a, b], dim=0)) == (
        "tensor([[[ 1,  2,  3],\n         [ 4,  5,  6]],\n\n"
        "        [[ 7,  8,  9],\n         [10, 11, 12]]])")
    assert s(torch.stack([a, b], dim=2)) == (
        "tensor([[[ 1,  7],\n         [ 2,  8],\n         [ 3,  9]],\n\n"
        "        [[ 4, 10],\n         [ 5, 11],\n         [ 6, 12]]])")
    assert s(torch.hstack([a, b])) == s(torch.cat([a, b], dim=1))
    assert s(torch.vstack([a, b])) == s(torch.cat([a, b], dim=0))
    assert torch.dstack([a, b]).shape == (2, 3, 2)


def test_long_and_scientific_formatting():
    t = torch.arange(2000)
    assert s(t) == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"
    assert s(torch.tensor([1e-5, 1.0])) == "tensor([1.0000e-05, 1.0000e+00])"
    assert s(torch.tensor(2.5, dtype=torch.float64)) == "tensor(2.5000, dtype=torch.float64)"


def test_core_functions_accept_tensors():
    t = torch.tensor([0.5, 1.0], requires_grad=True)
    y = fa.sin(t)
    assert isinstance(y, torch.Tensor) and y.grad_fn.name() == "SinBackward0"
    y.sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), np.cos([0.5, 1.0]), rtol=1e-6)
    assert isinstance(t.array, fa.Array)


def test_errors():
    with pytest.raises(RuntimeError, match="only Tensors of floating point"):
        torch.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="mm: expected 2-D"):
        torch.mm(torch.zeros(3), torch.zeros(3, 3))
