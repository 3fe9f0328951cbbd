"""Tensor API gaps closed for drop-in PyTorch code (issue 16).  Expected values are the
ones PyTorch's documentation gives for the same calls (PyTorch is not a dependency)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fnarray.compat as torch


def _eq(t, expected, dtype=None):
    got = np.asarray(t.detach())
    np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-4, atol=1e-4)
    if dtype is not None:
        assert t.dtype == dtype


# --- scatter family ---------------------------------------------------------------------

def test_scatter_inplace_matches_pytorch_docs():
    src = torch.arange(1, 11).reshape((2, 5))
    index = torch.tensor([[0, 1, 2, 0]])
    out = torch.zeros(3, 5, dtype=src.dtype).scatter_(0, index, src)
    _eq(out, [[1, 0, 0, 4, 0], [0, 2, 0, 0, 0], [0, 0, 3, 0, 0]])
    out = torch.full((2, 4), 2.0).scatter_(1, torch.tensor([[2], [3]]), 1.23,
                                           reduce="multiply")
    _eq(out, [[2.0, 2.0, 2.46, 2.0], [2.0, 2.0, 2.0, 2.46]])
    out = torch.full((2, 4), 2.0).scatter_(1, torch.tensor([[2], [3]]), 1.23, reduce="add")
    _eq(out, [[2.0, 2.0, 3.23, 2.0], [2.0, 2.0, 2.0, 3.23]])


def test_scatter_add_and_index_add_accumulate_duplicates():
    out = torch.zeros(3, 5).scatter_add_(0, torch.tensor([[0, 1, 2, 0, 0], [0, 1, 2, 2, 2]]),
                                         torch.ones(2, 5))
    _eq(out, [[2, 0, 0, 1, 1], [0, 2, 0, 0, 0], [0, 0, 2, 1, 1]])
    x = torch.ones(5, 3)
    t = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=torch.float)
    x.index_add_(0, torch.tensor([0, 4, 2]), t)
    _eq(x, [[2, 3, 4], [1, 1, 1], [8, 9, 10], [1, 1, 1], [5, 6, 7]])
    _eq(torch.ones(2).index_add(0, torch.tensor([0, 0]), torch.tensor([1.0, 2.0]), alpha=2),
        [7.0, 1.0])


def test_scatter_reduce_matches_pytorch_docs():
    src = torch.tensor([1., 2., 3., 4., 5., 6.])
    index = torch.tensor([0, 1, 0, 1, 2, 1])
    inp = torch.tensor([1., 2., 3., 4.])
    _eq(inp.scatter_reduce(0, index, src, reduce="sum"), [5., 14., 8., 4.])
    _eq(inp.scatter_reduce(0, index, src, reduce="sum", include_self=False),
        [4., 12., 5., 4.])
    _eq(inp.scatter_reduce(0, index, src, reduce="amax"), [3., 6., 5., 4.])
    _eq(inp.scatter_reduce(0, index, src, reduce="amax", include_self=False),
        [3., 6., 5., 4.])
    _eq(inp.scatter_reduce(0, index, src, reduce="prod"), [3., 96., 15., 4.])
    _eq(inp.scatter_reduce(0, index, src, reduce="mean"), [5 / 3, 14 / 4, 8 / 2, 4.])
    _eq(inp.scatter_reduce(0, index, src, reduce="amin", include_self=False),
        [1., 2., 5., 4.])
    x = inp.clone()
    x.scatter_reduce_(0, index, src, "sum")
    _eq(x, [5., 14., 8., 4.])


def test_scatter_reduce_gradient_like_pytorch():
    w = torch.ones(4, requires_grad=True)
    s = torch.tensor([1., 2., 3.], requires_grad=True)
    y = (w * 2).scatter_reduce(0, torch.tensor([0, 0, 1]), s, "prod")
    assert "ScatterReduceBackward0" in repr(y.grad_fn)
    y.sum().backward()
    _eq(w.grad, [4., 6., 2., 2.])  # d(2 w0 s0 s1)/dw0 = 2 s0 s1 = 4
    _eq(s.grad, [4., 2., 2.])


def test_inplace_scatter_family_is_differentiable():
    a = torch.zeros(3, requires_grad=True)
    b = torch.tensor([1., 2.], requires_grad=True)
    h = a * 1
    h.scatter_(0, torch.tensor([0, 2]), b)
    (h * torch.tensor([1., 10., 100.])).sum().backward()
    _eq(a.grad, [0., 10., 0.])  # positions 0 and 2 were overwritten
    _eq(b.grad, [1., 100.])
    a.grad = None
    h = a * 1
    h.index_fill_(0, torch.tensor([1]), -1.0)
    h.sum().backward()
    _eq(a.grad, [1., 0., 1.])


def test_index_fill_and_masked_scatter_match_pytorch_docs():
    x = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=torch.float)
    _eq(x.index_fill_(1, torch.tensor([0, 2]), -1), [[-1, 2, -1], [-1, 5, -1], [-1, 8, -1]])
    self = torch.tensor([0, 0, 0, 0, 0])
    mask = torch.tensor([[0, 0, 0, 1, 1], [1, 1, 0, 1, 1]], dtype=torch.bool)
    source = torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    _eq(self.expand(2, 5).masked_scatter(mask, source), [[0, 0, 0, 0, 1], [2, 3, 0, 4, 5]])
    y = torch.zeros(2, 2)
    y.masked_scatter_(torch.tensor([[True, False], [False, True]]), torch.tensor([7., 8.]))
    _eq(y, [[7, 0], [0, 8]])


def test_scatter_errors_name_the_op_and_sizes():
    with pytest.raises(RuntimeError, match=r"scatter\(\): index 5 is out of bounds for "
                                           r"dimension 0 with size 3"):
        torch.zeros(3).scatter_(0, torch.tensor([5]), 1.0)
    with pytest.raises(RuntimeError, match="Expected dtype int64 for index"):
        torch.zeros(3).scatter(0, torch.tensor([0.5]), 1.0)
    with pytest.raises(RuntimeError, match="reduce argument must be one of"):
        torch.zeros(3).scatter_reduce(0, torch.tensor([0]), torch.ones(1), "max")
    with pytest.raises(RuntimeError, match="mask selects 2 elements but source has only 1"):
        torch.zeros(2).masked_scatter(torch.tensor([True, True]), torch.ones(1))


# --- selection, sets, counting -----------------------------------------------------------

def test_nonzero_and_one_argument_where():
    x = torch.tensor([[0.6, 0.0, 0.0, 0.0], [0.0, 0.4, 0.0, 0.0], [0.0, 0.0, 1.2, 0.0],
                      [0.0, 0.0, 0.0, -0.4]])
    out = torch.nonzero(x)
    _eq(out, [[0, 0], [1, 1], [2, 2], [3, 3]], dtype=torch.int64)
    rows, cols = torch.nonzero(x, as_tuple=True)
    _eq(rows, [0, 1, 2, 3])
    _eq(cols, [0, 1, 2, 3])
    assert tuple(torch.nonzero(torch.tensor([1, 1, 1, 0, 1])).shape) == (4, 1)
    (idx,) = torch.where(torch.tensor([1, 0, 1]))
    _eq(idx, [0, 2])
    _eq(x.nonzero()[:, 0], [0, 1, 2, 3])


def test_unique_options():
    out, inv, counts = torch.unique(torch.tensor([1, 3, 2, 3]), sorted=True,
                                    return_inverse=True, return_counts=True)
    _eq(out, [1, 2, 3])
    _eq(inv, [0, 2, 1, 2])
    _eq(counts, [1, 1, 2])
    out, inv = torch.unique(torch.tensor([[1, 3], [2, 3]]), return_inverse=True)
    _eq(inv, [[0, 2], [1, 2]])
    rows = torch.tensor([[1, 2], [1, 2], [0, 1]]).unique(dim=0)
    _eq(rows, [[0, 1], [1, 2]])
    _eq(torch.unique_consecutive(torch.tensor([1, 1, 2, 2, 3, 1, 1, 2])), [1, 2, 3, 1, 2])


def test_isin_bincount_histc_count_nonzero():
    _eq(torch.isin(torch.tensor([[1, 2], [3, 4]]), torch.tensor([2, 3])),
        [[False, True], [True, False]])
    _eq(torch.isin(torch.tensor([1, 2]), 2, invert=True), [True, False])
    x = torch.tensor([4, 3, 6, 3, 4])
    _eq(torch.bincount(x), [0, 0, 0, 2, 2, 0, 1], dtype=torch.int64)
    w = torch.linspace(0, 1, steps=5)
    _eq(x.bincount(w), [0., 0., 0., 1., 1., 0., 0.5], dtype=torch.float32)
    _eq(torch.bincount(torch.tensor([1]), minlength=3), [0, 1, 0])
    _eq(torch.histc(torch.tensor([1., 2, 1]), bins=4, min=0, max=3), [0., 2., 1., 0.])
    assert torch.count_nonzero(torch.tensor([[0, 1, 7], [0, 0, 0]])).item() == 2
    _eq(torch.count_nonzero(torch.tensor([[0, 1, 7], [2, 0, 0]]), dim=0), [1, 1, 1])


def test_nan_to_num_and_its_gradient():
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 3.14])
    _eq(torch.nan_to_num(x), [0.0, 3.4028e38, -3.4028e38, 3.14])
    _eq(torch.nan_to_num(x, nan=2.0), [2.0, 3.4028e38, -3.4028e38, 3.14])
    _eq(x.nan_to_num(nan=2.0, posinf=1.0), [2.0, 1.0, -3.4028e38, 3.14])
    w = torch.tensor([1.0, float("nan")], requires_grad=True)
    torch.nan_to_num(w * 3).sum().backward()
    _eq(w.grad, [3.0, 0.0])


def test_diff_einsum_split_meshgrid_movedim():
    a = torch.tensor([1, 3, 2])
    _eq(torch.diff(a), [2, -1])
    _eq(torch.diff(a, append=torch.tensor([4, 5])), [2, -1, 2, 1])
    _eq(torch.diff(torch.tensor([[1, 2, 3], [3, 4, 5]]), dim=0, append=torch.tensor(
        [[4, 5, 6]])), [[2, 2, 2], [1, 1, 1]])
    _eq(torch.diff(a.float(), n=2), [-3.0])
    x, y = torch.randn(2, 3, requires_grad=True), torch.randn(3, 4)
    out = torch.einsum("ij,jk->ik", x, y)
    _eq(out, np.asarray(x.detach()) @ np.asarray(y))
    out.sum().backward()
    _eq(x.grad, np.broadcast_to(np.asarray(y).sum(1), (2, 3)))
    assert torch.einsum("ii", [torch.eye(3)]).item() == 3.0
    parts = torch.split(torch.arange(10).reshape(5, 2), [1, 4])
    assert [tuple(p.shape) for p in parts] == [(1, 2), (4, 2)]
    assert [tuple(p.shape) for p in torch.arange(10).split(3)] == [(3,), (3,), (3,), (1,)]
    gx, gy = torch.meshgrid(torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6]), indexing="ij")
    _eq(gx, [[1, 1, 1], [2, 2, 2], [3, 3, 3]])
    gx, gy = torch.meshgrid(torch.tensor([1, 2, 3]), torch.tensor([4, 5]), indexing="xy")
    _eq(gx, [[1, 2, 3], [1, 2, 3]])
    assert tuple(torch.movedim(torch.zeros(3, 2, 1), 1, 0).shape) == (2, 3, 1)
    assert tuple(torch.zeros(3, 2, 1).movedim((1, 2), (0, 1)).shape) == (2, 1, 3)


# --- order statistics ---------------------------------------------------------------------

def test_median_is_the_lower_middle_like_pytorch():
    assert torch.median(torch.tensor([1., 4., 2., 3.])).item() == 2.0
    a = torch.tensor([[0., 5, 2, 7], [1, 3, 3, 2]])
    values, indices = torch.median(a, 1)
    _eq(values, [2., 2.])
    _eq(indices, [2, 3])
    assert "median" in repr(a.median(dim=0))
    assert math.isnan(torch.median(torch.tensor([1., float("nan"), 3.])).item())
    assert torch.nanmedian(torch.tensor([1., float("nan"), 3., 2.])).item() == 2.0
    x = torch.tensor([1., 3., 2.], requires_grad=True)
    torch.median(x).backward()
    _eq(x.grad, [0., 0., 1.])


def test_quantile_interpolations_match_pytorch_docs():
    a = torch.tensor([[0.0795, -1.2117, 0.9765], [1.1707, 0.6706, 0.4884]])
    q = torch.tensor([0.25, 0.5, 0.75])
    out = torch.quantile(a, q, dim=1, keepdim=True)
    assert tuple(out.shape) == (3, 2, 1)
    _eq(out, [[[-0.5661], [0.5795]], [[0.0795], [0.6706]], [[0.5280], [0.9207]]])
    a = torch.arange(4.)
    got = [torch.quantile(a, 0.6, interpolation=m).item()
           for m in ("linear", "lower", "higher", "midpoint", "nearest")]
    np.testing.assert_allclose(got, [1.8, 1.0, 2.0, 1.5, 2.0], rtol=1e-6)
    with pytest.raises(RuntimeError, match="in the range"):
        torch.quantile(a, 1.5)


def test_mode_kthvalue_cummax_cummin():
    b = torch.tensor([[0, 0, 0, 2, 0, 0, 2], [0, 3, 0, 0, 2, 0, 1], [2, 2, 2, 0, 0, 0, 3],
                      [2, 2, 3, 0, 1, 1, 0], [1, 1, 0, 0, 2, 0, 2]])
    values, indices = torch.mode(b, 0)
    _eq(values, [0, 2, 0, 0, 0, 0, 2])
    _eq(indices, [1, 3, 4, 4, 2, 4, 4])
    values, indices = torch.kthvalue(torch.arange(1., 6.), 4)
    assert (values.item(), indices.item()) == (4.0, 3)
    x = torch.tensor([[1., 3], [2, 0], [5, 4]])
    _eq(x.kthvalue(2, 0, True).values, [[2., 3.]])
    values, indices = torch.cummax(torch.tensor([1., 3, 2, 3, 0]), dim=0)
    _eq(values, [1., 3, 3, 3, 3])
    _eq(indices, [0, 1, 1, 3, 3])  # ties take the latest index, as PyTorch
    values, indices = torch.tensor([1., 3, 2, 0, 0]).cummin(0)
    _eq(values, [1., 1, 1, 0, 0])
    _eq(indices, [0, 0, 0, 3, 4])
    w = torch.tensor([1., 3, 2], requires_grad=True)
    torch.cummax(w, 0).values.sum().backward()
    _eq(w.grad, [1., 2., 0.])


def test_cdist_and_zero_distance_gradient():
    a = torch.tensor([[0.9041, 0.0196], [-0.3108, -2.4423], [-0.4821, 1.059]])
    b = torch.tensor([[-2.1763, -0.4713], [-0.6986, 1.3702]])
    _eq(torch.cdist(a, b, p=2), [[3.1193, 2.0959], [2.7138, 3.8322], [2.2830, 0.3791]])
    _eq(torch.cdist(a, b, p=1), np.abs(np.asarray(a)[:, None] - np.asarray(b)[None]).sum(-1))
    x = torch.zeros(1, 2, requires_grad=True)
    torch.cdist(x, torch.zeros(1, 2)).sum().backward()
    _eq(x.grad, [[0., 0.]])


def test_lgamma_digamma_values_and_gradients():
    _eq(torch.lgamma(torch.arange(0.5, 2, 0.5)), [0.5724, 0.0000, -0.1208])
    _eq(torch.digamma(torch.tensor([1, 0.5])), [-0.5772, -1.9635])
    assert torch.digamma(torch.tensor([0.])).item() == -math.inf
    _eq(torch.polygamma(1, torch.tensor([1, 0.5])), [1.64493, 4.9348])
    x = torch.tensor([2.0, 3.5], requires_grad=True)
    torch.lgamma(x).sum().backward()
    _eq(x.grad, torch.digamma(x.detach()))
    assert "Lgamma" in repr(torch.lgamma(x).grad_fn)


def test_multinomial_samples_by_weight():
    torch.manual_seed(0)
    w = torch.tensor([0., 10., 3., 0.])
    draw = torch.multinomial(w, 2)
    assert sorted(draw.tolist()) == [1, 2]  # zero weights are never drawn
    many = torch.multinomial(w, 4000, replacement=True)
    assert set(many.tolist()) <= {1, 2}
    assert abs((many == 1).float().mean().item() - 10 / 13) < 0.03
    rows = torch.multinomial(torch.tensor([[1., 0.], [0., 1.]]), 1)
    _eq(rows, [[0], [1]])
    with pytest.raises(RuntimeError, match="without replacement"):
        torch.multinomial(w, 5)


def test_sort_stable_keyword():
    x = torch.tensor([2, 1, 2, 1, 0])
    values, indices = torch.sort(x, stable=True)
    _eq(values, [0, 1, 1, 2, 2])
    _eq(indices, [4, 1, 3, 0, 2])
    _eq(x.sort(descending=True, stable=True).indices, [0, 2, 1, 3, 4])
    _eq(torch.argsort(x, stable=True), [4, 1, 3, 0, 2])


# --- small methods -------------------------------------------------------------------------

def test_new_factories_keep_dtype_and_device():
    t = torch.ones(2, 3, dtype=torch.float64)
    assert t.new_zeros(2).dtype == torch.float64
    _eq(t.new_full((1, 2), 3), [[3., 3.]], dtype=torch.float64)
    _eq(t.new_tensor([1, 2]), [1., 2.], dtype=torch.float64)
    assert t.new_ones((2,)).dtype == torch.float64 and tuple(t.new_empty(4, 1).shape) == (4, 1)
    assert t.new_zeros(3, dtype=torch.int64).dtype == torch.int64
    assert t.new_ones(2, requires_grad=True).requires_grad
    assert t.is_floating_point() and not torch.is_floating_point(torch.arange(3))


def test_sum_to_size_finfo_iinfo_device_type():
    _eq(torch.ones(2, 3, 4).sum_to_size(3, 1), [[8.], [8.], [8.]])
    _eq(torch.ones(2, 3).sum_to_size(1, 3), [[2., 2., 2.]])
    with pytest.raises(RuntimeError, match="not expandable"):
        torch.ones(2, 3).sum_to_size(2, 2)
    assert torch.finfo(torch.float32).eps == pytest.approx(1.1920928955078125e-07)
    assert torch.finfo(torch.float16).max == 65504.0
    assert torch.finfo().bits == 32
    assert torch.iinfo(torch.int8).max == 127 and torch.iinfo(torch.int64).min == -2 ** 63
    assert torch.zeros(1).device.type == "cpu"


def test_equality_with_none_and_membership():
    t = torch.arange(6).reshape(2, 3)
    assert (t == None) is False  # noqa: E711  (PyTorch returns False)
    assert (t != None) is True  # noqa: E711
    assert 1.0 in t and 5 in t and 7 not in t
    assert torch.tensor(2) in t


def test_integer_division_by_zero_raises_like_pytorch():
    t = torch.tensor([1, 2])
    for f in (lambda: t // 0, lambda: t % 0, lambda: torch.floor_divide(t, torch.tensor(0)),
              lambda: torch.div(t, 0, rounding_mode="trunc"), lambda: 3 // torch.tensor([0, 1]),
              lambda: torch.remainder(t, 0)):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            f()
    assert np.isinf(np.asarray(t / 0)).all()  # true division gives inf, as PyTorch
    assert np.isinf(np.asarray(t.float() // 0)).all()
