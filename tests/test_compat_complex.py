"""Complex gradients through the compat layer follow PyTorch's convention.

PyTorch's ``.grad`` of a real loss ``L`` at a complex leaf ``z = x + iy`` is
``∂L/∂x + i ∂L/∂y`` (twice the conjugate Wirtinger derivative; "Autograd for Complex
Numbers" in PyTorch's docs) — the conjugate of what the engine's JAX-convention rules give.
Each expected value below is PyTorch's, derived from that definition and, where a formula
is less obvious, checked against central finite differences of ``L`` in ``x`` and ``y``.
"""

import numpy as np
import pytest

import fnarray.compat as torch

Z = 1 + 2j
C = np.array([0.5 - 1.0j, 2.0 + 3.0j, -1.5 + 0.25j])
W = np.array([1 + 2j, 3 - 1j, -0.5 + 0.5j])


def _close(t, expected):
    np.testing.assert_allclose(np.asarray(t.detach().numpy()), expected, rtol=1e-5, atol=1e-5)


def _fd_grad(loss, z, eps=1e-6):
    """``∂L/∂x + i ∂L/∂y`` of a NumPy function ``loss`` at ``z``, by central differences."""
    z = np.asarray(z, np.complex128)
    out = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        for step, unit in ((eps, 1.0), (eps * 1j, 1j)):
            hi, lo = z.copy(), z.copy()
            hi[idx] += step
            lo[idx] -= step
            out[idx] += unit * (loss(hi) - loss(lo)) / (2 * eps)
    return out


def test_abs_squared_gives_2z():
    z = torch.tensor(Z, requires_grad=True)
    (z.abs() ** 2).backward()
    assert z.grad.dtype == torch.complex64
    _close(z.grad, 2 + 4j)


def test_real_part_of_product_gives_conjugate_of_other_factor():
    w = torch.tensor(W, requires_grad=True)
    x = torch.tensor(C, requires_grad=True)
    (w * x).real.sum().backward()
    _close(w.grad, np.conj(C))
    _close(x.grad, np.conj(W))
    _close(w.grad, _fd_grad(lambda a: np.sum((a * C).real), W))


def test_linear_like_matrix_product_matches_finite_differences():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(2, 3)) + 1j * rng.normal(size=(2, 3))
    w = torch.tensor(m, requires_grad=True)
    v = torch.tensor(C)
    (w @ v).abs().pow(2).sum().backward()
    y = m @ C
    _close(w.grad, 2 * np.outer(y, np.conj(C)))  # 2 ∂L/∂conj(W)
    _close(w.grad, _fd_grad(lambda a: np.sum(np.abs(a @ C) ** 2), m))


def test_complex_grad_output_in_backward_and_autograd_grad():
    # y = c z is holomorphic; PyTorch's vector-Jacobian product is v * conj(c).
    z = torch.tensor(W, requires_grad=True)
    v = torch.tensor(np.array([1 - 1j, 0.5j, 2.0]))
    (g,) = torch.autograd.grad(z * torch.tensor(C), z, v)
    _close(g, v.numpy() * np.conj(C))
    (z * torch.tensor(C)).backward(v)
    _close(z.grad, v.numpy() * np.conj(C))


def test_tensor_hooks_see_and_return_pytorch_gradients():
    z = torch.tensor(W, requires_grad=True)
    y = z * torch.tensor(C)
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy()) or g * 1j)
    y.retain_grad()
    (y.abs() ** 2).sum().backward()
    _close(torch.tensor(seen[0]), 2 * W * C)  # PyTorch: d|y|^2 -> 2y
    # the hook's replacement (2y * 1j) flows on through mul's PyTorch rule: grad * conj(c)
    _close(z.grad, 2 * W * C * 1j * np.conj(C))
    _close(y.grad, 2 * W * C * 1j)


def test_leaf_grad_accumulates_across_backward_calls():
    z = torch.tensor(Z, requires_grad=True)
    (z.abs() ** 2).backward()
    (z * torch.tensor(1j)).real.backward()  # Re(i z) = -y  ->  0 - 1j
    _close(z.grad, 2 + 3j)


def test_double_backward_through_complex_gradient():
    z = torch.tensor(Z, requires_grad=True)
    (g,) = torch.autograd.grad(z.abs() ** 2, z, create_graph=True)
    _close(g, 2 + 4j)
    (g.abs() ** 2).backward()  # |2z|^2 = 4|z|^2  ->  8z
    _close(z.grad, 8 + 16j)


class _MulConst(torch.autograd.Function):
    """y = c x, with its backward written the PyTorch way: grad_x = grad_y * conj(c)."""

    seen: list = []

    @staticmethod
    def forward(ctx, x, c):
        ctx.save_for_backward(c)
        return x * c

    @staticmethod
    def backward(ctx, grad):
        (c,) = ctx.saved_tensors
        _MulConst.seen.append(grad.detach().numpy())
        return grad * c.conj(), None


def test_autograd_function_backward_uses_pytorch_convention():
    _MulConst.seen.clear()
    z = torch.tensor(W, requires_grad=True)
    c = torch.tensor(C)
    (_MulConst.apply(z, c).abs() ** 2).sum().backward()
    _close(torch.tensor(_MulConst.seen[0]), 2 * W * C)
    _close(z.grad, 2 * np.abs(C) ** 2 * W)


def test_checkpoint_matches_plain_backward():
    c = torch.tensor(C)
    z1 = torch.tensor(W, requires_grad=True)
    (torch.sin(z1 * c).abs() ** 2).sum().backward()
    z2 = torch.tensor(W, requires_grad=True)
    out = torch.utils.checkpoint.checkpoint(lambda a: torch.sin(a * c), z2, use_reentrant=False)
    (out.abs() ** 2).sum().backward()
    _close(z2.grad, z1.grad.numpy())
    _close(z1.grad, _fd_grad(lambda a: np.sum(np.abs(np.sin(a * C)) ** 2), W))


def test_sgd_step_on_complex_parameter_descends():
    # PyTorch's gradient is the steepest-ascent direction, so SGD decreases |z|^2.
    z = torch.nn.Parameter(torch.tensor(Z))
    opt = torch.optim.SGD([z], lr=0.1)
    opt.zero_grad()
    (z.abs() ** 2).backward()
    opt.step()
    _close(z, 0.8 * Z)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_real_gradients_unchanged(dtype):
    x = torch.tensor([1.0, -2.0, 3.0], dtype=dtype, requires_grad=True)
    (x ** 2).sum().backward()
    assert x.grad.dtype == dtype
    _close(x.grad, [2.0, -4.0, 6.0])
