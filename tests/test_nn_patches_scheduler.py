"""F.unfold/F.fold/F.pixel_shuffle/F.pixel_unshuffle with nn.Unfold/Fold/PixelShuffle/
PixelUnshuffle, and optim.lr_scheduler.CosineAnnealingWarmRestarts (issue 16); expected
values follow PyTorch's documentation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
from fnarray import nn, optim
from fnarray.nn import functional as F


def _np(t):
    return np.asarray(t.detach() if isinstance(t, torch.Tensor) else t)


def test_unfold_shapes_and_values_as_documented():
    assert tuple(nn.Unfold(kernel_size=(2, 3))(torch.randn(2, 5, 3, 4)).shape) == (2, 30, 4)
    x = torch.arange(16.).reshape(1, 1, 4, 4)
    cols = F.unfold(x, kernel_size=2, stride=2)
    np.testing.assert_array_equal(_np(cols)[0], [[0, 2, 8, 10], [1, 3, 9, 11],
                                                 [4, 6, 12, 14], [5, 7, 13, 15]])
    padded = F.unfold(torch.ones(1, 2, 3, 3), 3, padding=1)
    assert tuple(padded.shape) == (1, 18, 9)
    assert _np(padded)[0, :, 4].sum() == 18  # the centre block sees no padding
    dilated = F.unfold(x, 2, dilation=2)
    np.testing.assert_array_equal(_np(dilated)[0, :, 0], [0, 2, 8, 10])
    assert tuple(F.unfold(torch.randn(3, 4, 4), 2).shape) == (12, 9)  # unbatched


def test_unfold_matches_conv2d_as_a_matmul():
    torch.manual_seed(0)
    x, w = torch.randn(2, 3, 6, 5), torch.randn(4, 3, 3, 2)
    cols = F.unfold(x, (3, 2), padding=1, stride=(2, 1))
    out = (w.reshape(4, -1) @ cols).reshape(2, 4, 3, 6)
    np.testing.assert_allclose(_np(out), _np(F.conv2d(x, w, padding=1, stride=(2, 1))),
                               atol=1e-5)


def test_fold_sums_overlaps_and_is_unfolds_adjoint():
    assert tuple(nn.Fold(output_size=(4, 5), kernel_size=(2, 2))(
        torch.randn(1, 3 * 2 * 2, 12)).shape) == (1, 3, 4, 5)
    ones = torch.ones(1, 1, 3, 3)
    counts = F.fold(F.unfold(ones, 2), (3, 3), 2)
    np.testing.assert_array_equal(_np(counts)[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    x = torch.randn(2, 3, 5, 4, requires_grad=True)
    cols = F.unfold(x, (2, 3), padding=(1, 0), stride=(1, 2))
    y = torch.randn(*cols.shape)
    (cols * y).sum().backward()
    folded = F.fold(y, (5, 4), (2, 3), padding=(1, 0), stride=(1, 2))
    np.testing.assert_allclose(_np(x.grad), _np(folded), atol=1e-5)
    with pytest.raises(RuntimeError, match="divisible by the product of kernel_size"):
        F.fold(torch.randn(1, 5, 12), (4, 5), 2)


def test_pixel_shuffle_round_trip_and_layout():
    inp = torch.randn(1, 9, 4, 4)
    out = nn.PixelShuffle(3)(inp)
    assert tuple(out.shape) == (1, 1, 12, 12)
    np.testing.assert_array_equal(_np(nn.PixelUnshuffle(3)(out)), _np(inp))
    x = torch.arange(8.).reshape(1, 8, 1, 1)
    np.testing.assert_array_equal(_np(F.pixel_shuffle(x, 2))[0],
                                  [[[0, 1], [2, 3]], [[4, 5], [6, 7]]])
    assert tuple(F.pixel_unshuffle(torch.randn(2, 1, 12, 12), 3).shape) == (2, 9, 4, 4)
    assert tuple(F.pixel_shuffle(fa.ones((4, 1, 1)), 2).shape) == (1, 2, 2)  # unbatched
    with pytest.raises(RuntimeError, match="divisible by the square of upscale_factor"):
        F.pixel_shuffle(torch.randn(1, 5, 2, 2), 2)


def _sgdr(base, eta_min, t_cur, t_i):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def test_cosine_annealing_warm_restarts_per_epoch():
    opt = optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.001)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # periods 3, 6, 12: restarts at epochs 3 and 9
    expected = [_sgdr(0.1, 0.001, t, 3) for t in range(3)] + \
        [_sgdr(0.1, 0.001, t, 6) for t in range(6)] + [0.1]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_cosine_annealing_warm_restarts_fractional_epochs_and_resume():
    opt = optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2)
    sched.step(2.5)  # second period (length 4), 0.5 into it
    assert opt.param_groups[0]["lr"] == pytest.approx(_sgdr(1.0, 0.0, 0.5, 4))
    sched.step(1.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(_sgdr(1.0, 0.0, 1.5, 2))
    state = sched.state_dict()
    assert "optimizer" not in state and state["T_i"] == 2
    other = optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), T_0=2, T_mult=2)
    other.load_state_dict(state)
    sched.step()
    other.step()
    assert other.get_last_lr() == sched.get_last_lr()
    with pytest.raises(ValueError, match="positive integer T_0"):
        optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="non-negative epoch"):
        sched.step(-1)
