"""optim.fused: the stateful optimizers' jit-compiled multi-tensor step.

The fused step must give bit-identical trajectories to the plain functional update, never
retrace when only the learning rate changes, reuse (donate) the moment buffers once the
optimizer is their only holder, and never touch a state array someone else still sees.
"""

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
from fnarray import optim
from fnarray.optim import functional as of

SHAPES = [(6, 5), (5,), (3, 2, 2)]

CASES = [
    (optim.SGD, of.sgd, dict(lr=0.1, momentum=0.9)),
    (optim.SGD, of.sgd, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (optim.Adam, of.adam, dict(lr=0.05)),
    (optim.Adam, of.adam, dict(lr=0.05, amsgrad=True, maximize=True)),
    (optim.AdamW, of.adamw, dict(lr=0.05)),
    (optim.RMSprop, of.rmsprop, dict(lr=0.01, centered=True, momentum=0.5)),
    (optim.Adagrad, of.adagrad, dict(lr=0.1)),
]


def _grads(step):
    rng = np.random.default_rng(step)
    return [rng.standard_normal(s).astype(np.float32) for s in SHAPES]


def _params():
    rng = np.random.default_rng(100)
    return [rng.standard_normal(s).astype(np.float32) for s in SHAPES]


def _run(cls, kw, steps, lrs=None):
    ps = [torch.tensor(p, requires_grad=True) for p in _params()]
    opt = cls(ps, **kw)
    for i in range(steps):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[i]
        for p, g in zip(ps, _grads(i)):
            p.grad = torch.tensor(g)
        opt.step()
    return opt, ps


@pytest.mark.parametrize("cls,fn,kw", CASES)
def test_fused_step_equals_functional_update_bitwise(cls, fn, kw):
    lrs = [kw["lr"] * (0.5 ** i) for i in range(5)]
    _, ps = _run(cls, kw, 5, lrs)
    params = [fa.asarray(p) for p in _params()]
    state = None
    for i in range(5):
        opt_fn = fn(**dict(kw, lr=lrs[i]))
        state = opt_fn.init(params) if state is None else state
        params, state = opt_fn.update([fa.asarray(g) for g in _grads(i)], state, params)
    for got, want in zip(ps, params):
        np.testing.assert_array_equal(got.detach().numpy(), np.asarray(want))


def test_learning_rate_changes_do_not_retrace():
    opt, _ = _run(optim.Adam, dict(lr=0.1), 6, lrs=[0.1, 0.05, 0.02, 0.01, 0.005, 0.001])
    assert sum(j.trace_count for j in opt._fused.programs()) == 1


def test_moment_buffers_are_reused_in_steady_state():
    opt, ps = _run(optim.Adam, dict(lr=0.1), 3)
    before = {id(p): np.asarray(opt.state[p].exp_avg).__array_interface__["data"][0]
              for p in ps if p.ndim > 1}
    for p, g in zip(ps, _grads(7)):
        p.grad = torch.tensor(g)
    opt.step()
    after = {id(p): np.asarray(opt.state[p].exp_avg).__array_interface__["data"][0]
             for p in ps if p.ndim > 1}
    assert before == after


def test_state_held_elsewhere_is_never_overwritten():
    opt, ps = _run(optim.Adam, dict(lr=0.1), 3)
    held = opt.state[ps[0]].exp_avg
    snapshot = np.array(held)
    whole_state = opt.state[ps[1]]
    snapshot_state = np.array(whole_state.exp_avg_sq)
    for i in range(3):
        for p, g in zip(ps, _grads(10 + i)):
            p.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_array_equal(np.asarray(held), snapshot)
    np.testing.assert_array_equal(np.asarray(whole_state.exp_avg_sq), snapshot_state)
    assert not np.array_equal(np.asarray(opt.state[ps[0]].exp_avg), snapshot)


def test_old_parameter_arrays_stay_intact():
    """The parameters' previous arrays (immutable values a user may hold) never change."""
    ps = [torch.tensor(p, requires_grad=True) for p in _params()]
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)
    for i in range(4):
        kept = [p.array for p in ps]
        snapshots = [np.array(a) for a in kept]
        for p, g in zip(ps, _grads(i)):
            p.grad = torch.tensor(g)
        opt.step()
        for k, o in zip(kept, snapshots):
            np.testing.assert_array_equal(np.asarray(k), o)
