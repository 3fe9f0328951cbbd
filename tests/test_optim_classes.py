"""fnarray.optim: stateful optimizers (trajectories, groups, state_dict), LBFGS, schedulers."""

import math

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
from fnarray import nn, optim
from fnarray.optim import functional as of
from fnarray.optim import lr_scheduler as sched

rng = np.random.default_rng(0)
X = rng.normal(size=(16, 3))
Y = rng.normal(size=(16, 2))


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def train(model, opt, steps):
    x, y = torch.tensor(X), torch.tensor(Y)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("cls,fn,kw", [
    (optim.SGD, of.sgd, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (optim.Adam, of.adam, dict(lr=0.05, amsgrad=True)),
    (optim.AdamW, of.adamw, dict(lr=0.05)),
    (optim.RMSprop, of.rmsprop, dict(centered=True, momentum=0.5)),
    (optim.Adagrad, of.adagrad, dict(lr=0.1)),
    (optim.Adadelta, of.adadelta, dict()),
    (optim.Adamax, of.adamax, dict()),
    (optim.NAdam, of.nadam, dict(weight_decay=0.1)),
])
def test_class_matches_functional_and_state_dict_round_trip(cls, fn, kw):
    model = make_model()
    params = {k: v.detach().array for k, v in model.named_parameters()}
    opt_fn = fn(**kw)
    state = opt_fn.init(params)

    def loss(p):
        return nn.functional.mse_loss(nn.functional_call(model, p, (fa.asarray(X),)), fa.asarray(Y))

    opt = cls(model.parameters(), **kw)
    train(model, opt, 10)
    for _ in range(10):
        params, state = opt_fn.update(fa.grad(loss)(params), state, params)
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), np.asarray(params[k]), rtol=1e-10, atol=1e-12)

    # round trip mid-training: a fresh model + optimizer continues identically
    other = make_model()
    other.load_state_dict(model.state_dict())
    other_opt = cls(other.parameters(), **kw)
    other_opt.load_state_dict(opt.state_dict())
    train(model, opt, 5)
    train(other, other_opt, 5)
    for p, q in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_param_groups_and_defaults():
    model = make_model()
    opt = optim.SGD([{"params": model[0].parameters()},
                     {"params": model[2].parameters(), "lr": 0.5}], lr=0.01, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": model[0].weight})
    before = model[0].weight.detach().numpy().copy()
    x = torch.tensor(X)
    model(x).sum().backward()
    g = model[0].weight.grad.numpy().copy()
    opt.step()
    np.testing.assert_allclose(model[0].weight.detach().numpy(), before - 0.01 * g)
    opt.zero_grad()
    assert model[0].weight.grad is None
    with pytest.raises(ValueError, match="invalid nesterov"):
        optim.SGD(model.parameters(), lr=0.1, nesterov=True)


def test_lbfgs_minimises_a_quadratic():
    a = np.array([[3.0, 0.5], [0.5, 1.0]])
    b = np.array([1.0, -2.0])
    x = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = optim.LBFGS([x], lr=1, max_iter=50)
    A, B = torch.tensor(a), torch.tensor(b)

    def closure():
        opt.zero_grad()
        loss = 0.5 * (x @ (A @ x)) - B @ x
        loss.backward()
        return loss

    opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), np.linalg.solve(a, b), rtol=1e-4)


def lrs(scheduler_factory, steps, lr=1.0, opt_cls=optim.SGD):
    p = nn.Parameter(torch.zeros(1))
    opt = opt_cls([p], lr=lr)
    s = scheduler_factory(opt)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        s.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def test_schedulers_match_hand_computed_values():
    np.testing.assert_allclose(lrs(lambda o: sched.StepLR(o, 2, gamma=0.5), 5),
                               [1, 1, 0.5, 0.5, 0.25, 0.25])
    np.testing.assert_allclose(lrs(lambda o: sched.MultiStepLR(o, [1, 3], gamma=0.1), 4),
                               [1, 0.1, 0.1, 0.01, 0.01])
    np.testing.assert_allclose(lrs(lambda o: sched.ExponentialLR(o, 0.9), 3), [1, 0.9, 0.81, 0.729])
    np.testing.assert_allclose(lrs(lambda o: sched.CosineAnnealingLR(o, 4, eta_min=0.2), 4),
                               [0.2 + 0.8 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)])
    np.testing.assert_allclose(lrs(lambda o: sched.LambdaLR(o, lambda e: 1 / (e + 1)), 3),
                               [1, 1 / 2, 1 / 3, 1 / 4])
    np.testing.assert_allclose(lrs(lambda o: sched.LinearLR(o, 0.5, 1.0, total_iters=2), 3),
                               [0.5, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(
        lrs(lambda o: sched.SequentialLR(o, [sched.LinearLR(o, 0.5, 1.0, 2),
                                             sched.ExponentialLR(o, 0.5)], milestones=[2]), 4),
        [0.5, 0.75, 1.0, 0.5, 0.25])
    # OneCycle: total 10, pct 0.3 -> warm-up over steps 0..2 (end step 2), cosine to the end
    got = lrs(lambda o: sched.OneCycleLR(o, max_lr=1.0, total_steps=10), 9)
    cos = lambda s, e, pct: e + (s - e) / 2 * (math.cos(math.pi * pct) + 1)
    want = [cos(0.04, 1.0, t / 2) for t in range(3)] + [cos(1.0, 0.04 / 1e4, (t - 2) / 7)
                                                       for t in range(3, 10)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_reduce_on_plateau_and_scheduler_state_dict():
    p = nn.Parameter(torch.zeros(1))
    opt = optim.SGD([p], lr=1.0)
    s = sched.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    for metric in [1.0, 0.9, 0.9, 0.9, 0.9, 0.9]:
        s.step(metric)
    assert opt.param_groups[0]["lr"] == 0.25
    step = sched.StepLR(opt, 3)
    state = step.state_dict()
    assert state["last_epoch"] == 0 and "optimizer" not in state
