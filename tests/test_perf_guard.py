"""A cheap guard against per-op overhead blow-ups (timing as ratios, never absolute).

Each check times an fnarray call and the equivalent NumPy call in the same process, on the
same tiny inputs, and bounds the ratio generously: measured ratios are ~3x for the core
(the eager fast path: one and two ``Array`` operands straight to the kernel, cached weak
scalar constants), ~5-7x for recorded compat ops and ~25x for a jitted call of three ops;
the bounds catch an accidental regression of several times (say, a transformation stack
rebuilt per op, or the eager path losing its fast path), not normal noise on a busy machine.
Recorded compat ops are also bounded against the core: ~1.9x through the fused record path
(``compat/dispatch.py``), ~4.8x when they fall back to the general path, so that bound
notices the fast path being lost.
"""

import timeit

import numpy as np

import fnarray as fa
import fnarray.compat as torch


def _best(fn, number=300, repeat=7) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def _ratio(fa_fn, np_fn) -> float:
    fa_fn(), np_fn()  # warm caches (dispatch tables, jit compilation)
    return _best(fa_fn) / _best(np_fn)


A_NP = np.linspace(0.1, 1.6, 16, dtype=np.float32)
A = fa.asarray(A_NP)


def test_core_eager_op_overhead_is_bounded():
    assert _ratio(lambda: fa.sin(A) * A + 1, lambda: np.sin(A_NP) * A_NP + 1) < 15


def test_compat_recorded_op_overhead_is_bounded():
    t = torch.tensor(A_NP, requires_grad=True)
    assert _ratio(lambda: torch.sin(t) * t + 1, lambda: np.sin(A_NP) * A_NP + 1) < 40


def test_compat_recording_costs_at_most_a_few_core_ops():
    t = torch.tensor(A_NP, requires_grad=True)
    assert _ratio(lambda: torch.sin(t) * t + 1, lambda: fa.sin(A) * A + 1) < 4


def test_jitted_call_overhead_is_bounded():
    f = fa.jit(lambda x: fa.sin(x) * x + 1)
    assert _ratio(lambda: f(A), lambda: np.sin(A_NP) * A_NP + 1) < 100
