"""The schedulers added for tutorial programs (ConstantLR, PolynomialLR, MultiplicativeLR,
CyclicLR with its momentum cycle, ChainedScheduler) and PyTorch's exact step-decay values.
Expected values are PyTorch 2.x's for the same calls (lr, then momentum or Adam's beta1)."""

import pytest

import fnarray.compat as torch
from fnarray.compat import nn
from fnarray.optim import lr_scheduler as L


def _run(make, n=6, opt="sgd"):
    p = [nn.Parameter(torch.ones(1))]
    o = torch.optim.SGD(p, lr=0.1, momentum=0.9) if opt == "sgd" else \
        torch.optim.Adam(p, lr=0.1)
    s = make(o)
    out = []
    for _ in range(n):
        o.step()
        s.step()
        g = o.param_groups[0]
        out.append((s.get_last_lr()[0], g["momentum"] if opt == "sgd" else g["betas"][0]))
    return out


CASES = {
    "cyclic": (lambda o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2), "sgd", 6,
               [(0.055, 0.85), (0.1, 0.8), (0.055, 0.85), (0.01, 0.9), (0.055, 0.85),
                (0.1, 0.8)]),
    "cyclic_exp_range_adam": (
        lambda o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2, step_size_down=3,
                             mode="exp_range", gamma=0.9), "adam", 6,
        [(0.0505, 0.855), (0.0829, 0.819), (0.05374, 0.8514), (0.029683, 0.87813),
         (0.01, 0.9), (0.033914845, 0.87342795)]),
    "cyclic_triangular2": (
        lambda o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2, mode="triangular2",
                             cycle_momentum=False), "sgd", 9,
        [(0.055, 0.9), (0.1, 0.9), (0.055, 0.9), (0.01, 0.9), (0.0325, 0.9), (0.055, 0.9),
         (0.0325, 0.9), (0.01, 0.9), (0.02125, 0.9)]),
    "chained": (lambda o: L.ChainedScheduler([L.ConstantLR(o, factor=0.5, total_iters=2),
                                              L.ExponentialLR(o, gamma=0.9)]), "sgd", 6,
                [(0.045, 0.9), (0.081, 0.9), (0.0729, 0.9), (0.06561, 0.9), (0.059049, 0.9),
                 (0.0531441, 0.9)]),
    "multiplicative": (lambda o: L.MultiplicativeLR(o, lambda e: 0.95), "sgd", 6,
                       [(0.095, 0.9), (0.09025, 0.9), (0.0857375, 0.9), (0.081450625, 0.9),
                        (0.07737809375, 0.9), (0.0735091890625, 0.9)]),
    "polynomial": (lambda o: L.PolynomialLR(o, total_iters=4, power=2.0), "sgd", 6,
                   [(0.05625, 0.9), (0.025, 0.9), (0.00625, 0.9), (0.0, 0.9), (0.0, 0.9),
                    (0.0, 0.9)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_schedule_matches_pytorch(name):
    make, opt, n, expected = CASES[name]
    got = [value for pair in _run(make, n, opt) for value in pair]
    assert got == pytest.approx([v for pair in expected for v in pair], rel=1e-9, abs=1e-12)


def test_step_decay_multiplies_as_pytorch_does():
    # PyTorch multiplies the current rate by gamma at each decay: 0.01 * 0.1 * 0.1 == 1e-4
    # exactly, where 0.01 * 0.1 ** 2 would be 1.0000000000000002e-4
    got = [lr for lr, _ in _run(lambda o: L.StepLR(o, step_size=2))]
    assert got == [0.1, 0.010000000000000002, 0.010000000000000002, 0.0010000000000000002,
                   0.0010000000000000002, 0.00010000000000000003]
    p = [nn.Parameter(torch.ones(1))]
    o = torch.optim.SGD(p, lr=0.01)
    s = L.StepLR(o, step_size=1)
    for _ in range(2):
        o.step()
        s.step()
    assert s.get_last_lr() == [0.0001]
    e = L.ExponentialLR(torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.01), gamma=0.1)
    e.step()
    e.step()
    assert e.get_last_lr() == [0.0001]


def test_cyclic_lr_needs_momentum_and_constant_lr_checks_its_factor():
    o = torch.optim.Adagrad([nn.Parameter(torch.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        L.CyclicLR(o, base_lr=0.01, max_lr=0.1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        L.ConstantLR(o, factor=1.5)
    assert torch.optim.lr_scheduler.CyclicLR is L.CyclicLR
