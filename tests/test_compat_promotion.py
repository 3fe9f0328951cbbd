"""PyTorch's category-based type promotion in the compat layer, and fmod vs remainder.

Expected dtypes are PyTorch's (``torch.result_type`` documentation and its
``promote_types`` table)."""

import numpy as np
import pytest

import fnarray.compat as torch
from fnarray.compat.promotion import result_type

t = torch.tensor
f32, f64, f16 = torch.float32, torch.float64, torch.float16


@pytest.mark.parametrize("make, want", [
    # dimensioned tensors of different categories: the higher category's dtype
    (lambda: torch.ones(2) * t([1, 2]), f32),
    (lambda: t([1.0], dtype=f16) + t([1]), f16),
    (lambda: torch.ones(2) + torch.ones(2, dtype=f64), f64),
    (lambda: t([1], dtype=torch.uint8) + t([1], dtype=torch.int8), torch.int16),
    (lambda: t([1], dtype=torch.int32) + t([1]), torch.int64),
    (lambda: t([1j]) + torch.ones(1, dtype=f64), torch.complex128),
    # a 0-d tensor of the same category does not widen a dimensioned one
    (lambda: torch.ones(2) * t(2.0, dtype=f64), f32),
    (lambda: t([1, 2], dtype=torch.int32) * t(5), torch.int32),
    (lambda: t([1.0], dtype=f16) * t(2.0), f16),
    # ... but a higher category wins, keeping the 0-d tensor's dtype
    (lambda: t([1, 2]) * t(2.0, dtype=f64), f64),
    (lambda: t([1, 2], dtype=torch.int32) * t(2.0), f32),
    # scalars: the default dtype of their category
    (lambda: t([1, 2]) * 2.5, f32),
    (lambda: 2.5 * t([1, 2]), f32),
    (lambda: torch.ones(2) * np.float64(2), f32),
    (lambda: np.float64(2.5) * t([1, 2]), f32),
    (lambda: t([True]) + 1, torch.int64),
    (lambda: t([1], dtype=torch.uint8) + 1, torch.uint8),
    (lambda: torch.ones(1) * 1j, torch.complex64),
    (lambda: torch.ones(1, dtype=f64) * 1j, torch.complex128),
    # only 0-d operands: ordinary promotion among them
    (lambda: t(1.0, dtype=f64) * t(2.0), f64),
    (lambda: t([1, 2]) / t([2, 2]), f32),  # true division of integers: default float
    (lambda: torch.mul(torch.ones(2), t([1, 2])), f32),
    (lambda: torch.add(t([1, 2]), t(1.5, dtype=f64)), f64),
])
def test_result_dtypes_match_pytorch(make, want):
    assert make().dtype == want


def test_result_type_function():
    assert result_type(torch.ones(2), t([1, 2])) == f32
    assert result_type(t([1, 2]), 2.5) == f32
    assert result_type(t([True]), True) == torch.bool
    assert result_type(t(1), t(2.0, dtype=f64)) == f64


def test_gradient_flows_through_a_promoting_product():
    w = torch.ones(2, requires_grad=True)
    y = w * t([1, 2])
    assert y.dtype == f32 and y.grad_fn.name() == "MulBackward0"
    y.sum().backward()
    assert w.grad.tolist() == [1.0, 2.0] and w.grad.dtype == f32


def test_fmod_is_c_fmod_and_remainder_is_python_style():
    x = t([-3.0, -5.5, 3.0, 5.5])
    assert torch.fmod(x, 2).tolist() == [-1.0, -1.5, 1.0, 1.5]  # sign of the dividend
    assert torch.remainder(x, 2).tolist() == [1.0, 0.5, 1.0, 1.5]  # sign of the divisor
    assert (x % 2).tolist() == [1.0, 0.5, 1.0, 1.5]
    assert torch.fmod(t([-3, 5]), -2).tolist() == [-1, 1]
    assert x.fmod(-2).tolist() == [-1.0, -1.5, 1.0, 1.5]
    a = t([-3.0, 5.5], requires_grad=True)
    b = t([2.0, -2.0], requires_grad=True)
    torch.fmod(a, b).sum().backward()
    assert a.grad.tolist() == [1.0, 1.0]
    assert b.grad.tolist() == [1.0, 2.0]  # -trunc(a / b)


def test_matmul_of_mixed_float_dtypes_raises_as_pytorch():
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype, but "
                                           "got: float != double"):
        torch.ones(1, 2) @ torch.ones(2, 1, dtype=f64)
    with pytest.raises(RuntimeError, match="same dtype"):
        torch.matmul(torch.ones(2, dtype=f64), torch.ones(2))
    assert (t([[1, 2]]) @ t([[1], [2]])).dtype == torch.int64
    with torch.autocast("cpu", dtype=f16):  # autocast casts both: no mismatch
        assert (torch.ones(1, 2) @ torch.ones(2, 1, dtype=f64)).dtype == f16


def test_inplace_arithmetic_refuses_results_the_tensor_cannot_hold():
    x = torch.arange(5)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired "
                                           "output type Long"):
        x += 0.5
    with pytest.raises(RuntimeError, match="result type Long can't be cast to the desired "
                                           "output type Bool"):
        t([True]).add_(1)
    y = torch.ones(2)
    y += t([1, 2])  # int into float: fine
    assert y.tolist() == [2.0, 3.0] and y.dtype == f32
    z = torch.arange(3)
    z.add_(1)
    z[0] = 2.7  # item assignment and copy_ cast silently, as in PyTorch
    z.copy_(t([1.5, 2.5, 3.5]))
    assert z.tolist() == [1, 2, 3] and z.dtype == torch.int64
