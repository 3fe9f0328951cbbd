"""Compiled loops of ``class_nll`` and ``class_nll_grad`` (:mod:`fnarray.ops.loss`).

The NumPy kernels take about eight calls each (a range check, a mask, a select, a gather or
a put, a negation), each ~1 us on a classifier's hundred samples; these loops check, pick
and count (or scatter) in one pass.  Log-probabilities are viewed as (N, C, D) blocks
(samples, classes, trailing positions) and targets as (N, D), all C-ordered; results go into
arrays the caller allocated.  A target outside ``[0, C)`` that is not ``ignore_index`` stops
the loop, which then returns -1 for the caller to raise its ``IndexError``.
"""

from __future__ import annotations

from fnarray.backends.kernels import compiled


@compiled
def pick(logp, target, ignore_index, losses):
    """``losses[n, d] = -logp[n, target[n, d], d]`` (0 for ``ignore_index``); returns the
    number of non-ignored targets, or -1 at an out-of-range one."""
    n, c, d = logp.shape
    count = 0
    for i in range(n):
        for j in range(d):
            t = target[i, j]
            if t == ignore_index:
                losses[i, j] = 0
            elif t < 0 or t >= c:
                return -1
            else:
                losses[i, j] = -logp[i, t, j]
                count += 1
    return count


@compiled
def count(target, ignore_index):
    """The number of entries of the 1-d ``target`` other than ``ignore_index``."""
    total = 0
    for i in range(target.size):
        if target[i] != ignore_index:
            total += 1
    return total


@compiled
def scatter(scale, target, ignore_index, out):
    """``out[n, target[n, d], d] = -scale[n, d]`` (``-scale[0, 0]`` for every sample when
    ``scale`` has one entry) for each non-ignored target, into zeros; 0, or -1 at an
    out-of-range target."""
    n, c, d = out.shape
    one = scale.size == 1
    for i in range(n):
        for j in range(d):
            t = target[i, j]
            if t == ignore_index:
                continue
            if t < 0 or t >= c:
                return -1
            out[i, t, j] = -(scale[0, 0] if one else scale[i, j])
    return 0
