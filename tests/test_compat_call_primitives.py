"""Call primitives (custom_jvp, custom_vjp, checkpoint) applied to compat tensors record on
the tape: ``loss.backward()`` goes through the user's rule instead of silently dropping the
branch (a Tensor flattens to its value as a pytree, which used to detach it)."""

import numpy as np

import fnarray as fa
import fnarray.compat as torch


def _leaf():
    return torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)


def test_checkpoint_on_a_tensor_is_recorded_and_differentiated():
    t = _leaf()
    y = fa.checkpoint(lambda x: fa.sin(x) * 2)(t)
    assert y.grad_fn is not None
    (y.sum() + t.sum()).backward()
    np.testing.assert_allclose(t.grad.numpy(), 2 * np.cos([1.0, 2.0]) + 1)


def test_custom_jvp_rule_drives_backward_on_tensors():
    @fa.custom_jvp
    def f(x):
        return fa.sin(x)

    f.defjvp(lambda p, t: (fa.sin(p[0]), 3 * fa.cos(p[0]) * t[0]))
    t = _leaf()
    (f(t).sum() + t.sum()).backward()
    np.testing.assert_allclose(t.grad.numpy(), 3 * np.cos([1.0, 2.0]) + 1)


def test_custom_vjp_bwd_drives_backward_on_tensors():
    @fa.custom_vjp
    def g(x):
        return fa.sin(x)

    g.defvjp(lambda x: (fa.sin(x), None), lambda _, ct: (5 * ct,))
    t = _leaf()
    g(t).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), [5.0, 5.0])


def test_tensors_without_grad_still_give_plain_results():
    y = fa.checkpoint(lambda x: fa.sin(x))(torch.tensor([0.5]))
    assert y.grad_fn is None
    np.testing.assert_allclose(np.asarray(y.numpy()), np.sin([0.5]), rtol=1e-6)
