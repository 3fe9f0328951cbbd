"""``Tensor.register_post_accumulate_grad_hook``: the tape fills a leaf's ``.grad`` as soon
as every consumer of the leaf has been processed and calls the hook right then, which is
what lets DistributedDataParallel start a bucket's all-reduce while backward goes on."""

import numpy as np
import pytest

import fnarray.compat as torch


def test_hook_runs_after_accumulation_and_before_the_walk_ends():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0], requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(
        lambda t: seen.append(("w", t.grad.tolist(), b.grad)))
    b.register_post_accumulate_grad_hook(lambda t: seen.append(("b", t.grad.tolist())))
    u = b * 3
    v = (w * 2).sum()
    (u * v).sum().backward()
    # the walk follows the reverse of the forward order: w's consumers (recorded after
    # b's) are done first, so w's hook runs while b.grad is still unset
    assert seen == [("w", [18.0, 18.0], None), ("b", [18.0])]


def test_hook_sees_the_accumulated_sum_and_can_be_removed():
    w = torch.tensor([1.0, -1.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (w * 3).sum().backward()
    (w * w).sum().backward()
    assert seen == [[3.0, 3.0], [5.0, 1.0]]
    handle.remove()
    (w * 1).sum().backward()
    assert len(seen) == 2
    np.testing.assert_allclose(w.grad.numpy(), [6.0, 2.0])


def test_hook_runs_for_backward_with_inputs_but_not_for_autograd_grad():
    w = torch.tensor([2.0], requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.item()))
    torch.autograd.grad((w * w).sum(), (w,))
    assert seen == [] and w.grad is None
    (w * w).sum().backward(inputs=[w])
    assert seen == [4.0]


def test_hook_on_non_leaf_or_constant_is_refused():
    w = torch.tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        torch.tensor([1.0]).register_post_accumulate_grad_hook(print)
