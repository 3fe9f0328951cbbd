"""optim.fused: the per-call program lookup (``FusedStep._by_call``).

A step finds its jitted update by the options other than lr in the caller's order, the
state types, the state layout and the donated positions, without sorting the options; a
miss goes through ``_program``, so options given in another order, a changed lr or a changed
static option behave exactly as before: one program per static options, no retrace for lr.
"""

import numpy as np

import fnarray as fa
from fnarray.optim import functional as of
from fnarray.optim.fused import FusedStep


def _arrays(seed):
    rng = np.random.default_rng(seed)
    return [fa.asarray(rng.standard_normal(s).astype(np.float32)) for s in ((4, 3), (3,))]


def _run(fused, options, params, grads, states):
    new_params, _ = fused(options, grads, states, params)
    return [np.asarray(p) for p in new_params]


def _states(options, params):
    return of.sgd(**options).init(params)


def test_option_order_lr_and_static_changes_share_or_build_programs():
    fused = FusedStep(of.sgd)
    params, grads = _arrays(0), _arrays(1)
    a = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False,
             maximize=False)
    b = dict(reversed(list(a.items())))  # the same options in another order
    out_a = _run(fused, a, params, grads, _states(a, params))
    out_b = _run(fused, b, params, grads, _states(b, params))
    assert [x.tobytes() for x in out_a] == [x.tobytes() for x in out_b]
    assert len(fused.programs()) == 1  # one program for both orders
    assert len(fused._by_call) == 2  # each order found without sorting next time
    jitted = fused.programs()[0]
    traces = jitted.trace_count
    out_lr = _run(fused, {**a, "lr": 0.05}, params, grads, _states(a, params))
    assert len(fused.programs()) == 1 and jitted.trace_count == traces  # lr: no retrace
    ref = of.sgd(**{**a, "lr": 0.05}).update(grads, _states(a, params), params)[0]
    assert [x.tobytes() for x in out_lr] == [np.asarray(r).tobytes() for r in ref]
    _run(fused, {**a, "momentum": 0.5}, params, grads, _states(a, params))
    assert len(fused.programs()) == 2  # a static option: a program of its own


def test_repeated_calls_reuse_the_looked_up_program():
    fused = FusedStep(of.sgd)
    opts = dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                maximize=False)
    params = _arrays(0)
    states = _states(opts, params)
    for seed in range(3):
        grads = _arrays(seed + 10)
        ref = of.sgd(**opts).update(grads, states, params)
        params, states = fused(opts, grads, states, params)
        assert [np.asarray(p).tobytes() for p in params] == \
            [np.asarray(r).tobytes() for r in ref[0]]
    assert len(fused.programs()) == 1 and len(fused._by_call) == 1
    assert fused.programs()[0].trace_count == 1
