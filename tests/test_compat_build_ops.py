"""``compat/ops_build.py``: searchsorted, bucketize, cross (PyTorch's default dim),
block_diag, cartesian_prod, combinations, vander -- against PyTorch 2.x's values."""

import warnings

import numpy as np
import pytest

import fnarray.compat as torch

seq = torch.tensor([1, 3, 5, 7, 9])
seq2 = torch.tensor([[1, 3, 5, 7, 9], [2, 4, 6, 8, 10]])

CASES = {
    "searchsorted": lambda: torch.searchsorted(seq, torch.tensor([3, 6, 9])).tolist(),
    "searchsorted_right": lambda: torch.searchsorted(seq, torch.tensor([3, 6, 9]), right=True).tolist(),
    "searchsorted_2d": lambda: torch.searchsorted(seq2, torch.tensor([[3, 6, 9], [3, 6, 9]])).tolist(),
    "searchsorted_side": lambda: torch.searchsorted(seq, torch.tensor([[1, 9]]), side="right").tolist(),
    "bucketize": lambda: torch.bucketize(
        torch.tensor([[3, 6], [9, 0]]), torch.tensor([1, 3, 5, 7, 9])
    ).tolist(),
    "bucketize_right": lambda: torch.bucketize(
        torch.tensor([3, 6, 9]), torch.tensor([1, 3, 5, 7, 9]), right=True
    ).tolist(),
    "cross": lambda: torch.cross(
        torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    ).tolist(),
    "cross_dim0": lambda: torch.cross(
        torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ).tolist(),
    "block_diag": lambda: torch.block_diag(
        torch.tensor([[1, 2], [3, 4]]), torch.tensor(5), torch.tensor([6, 7])
    ).tolist(),
    "cartesian_prod": lambda: torch.cartesian_prod(torch.tensor([1, 2]), torch.tensor([3, 4, 5])).tolist(),
    "combinations": lambda: torch.combinations(torch.tensor([1, 2, 3])).tolist(),
    "combinations_r3": lambda: torch.combinations(torch.tensor([1, 2, 3, 4]), 3).tolist(),
    "combinations_wr": lambda: torch.combinations(torch.tensor([1, 2]), with_replacement=True).tolist(),
    "vander": lambda: torch.vander(torch.tensor([1, 2, 3])).tolist(),
    "vander_inc": lambda: torch.vander(torch.tensor([1.0, 2.0, 3.0]), N=4, increasing=True).tolist(),
}

EXPECTED = {
    "searchsorted": [1, 3, 4],
    "searchsorted_right": [2, 3, 5],
    "searchsorted_2d": [[1, 3, 4], [1, 2, 4]],
    "searchsorted_side": [[1, 5]],
    "bucketize": [[1, 3], [4, 0]],
    "bucketize_right": [2, 3, 5],
    "cross": [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
    "cross_dim0": [[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]],
    "block_diag": [[1, 2, 0, 0, 0], [3, 4, 0, 0, 0], [0, 0, 5, 0, 0], [0, 0, 0, 6, 7]],
    "cartesian_prod": [[1, 3], [1, 4], [1, 5], [2, 3], [2, 4], [2, 5]],
    "combinations": [[1, 2], [1, 3], [2, 3]],
    "combinations_r3": [[1, 2, 3], [1, 2, 4], [1, 3, 4], [2, 3, 4]],
    "combinations_wr": [[1, 1], [1, 2], [2, 2]],
    "vander": [[1, 1, 1], [4, 2, 1], [9, 3, 1]],
    "vander_inc": [[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 4.0, 8.0], [1.0, 3.0, 9.0, 27.0]],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_pytorch(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cross without dim warns, as in PyTorch
        got = CASES[name]()
    assert np.allclose(np.asarray(got, dtype=float), np.asarray(EXPECTED[name], dtype=float))


def test_cross_without_dim_warns_and_block_diag_carries_gradients():
    with pytest.warns(UserWarning, match="Using torch.cross without specifying the dim arg"):
        torch.cross(torch.ones(3), torch.ones(3))
    a = torch.ones(2, 2, requires_grad=True)
    torch.block_diag(a, torch.tensor(3.0)).sum().backward()
    assert a.grad.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert torch.searchsorted(seq, torch.tensor([4]), out_int32=True).dtype == torch.int32
