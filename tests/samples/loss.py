"""Samples for the class-index negative log-likelihood primitives (``fnarray/ops/loss.py``).

Log-probabilities are (N, C), (N, C, d) or (C,) (``class_dim`` 0, a 0-d target); targets lie
in the class range or equal the ignore index, which is sometimes a class itself."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import fnarray.ops.loss  # noqa: F401  (declares the primitives before the registry is read)
from tests.samples import Sample, floats

_REDUCTIONS = st.sampled_from(["mean", "sum", "none"])


@st.composite
def _layout(draw):
    """(logp shape, class_dim, target shape, ignore_index, targets)."""
    c = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["2d", "3d", "1d"]))
    n = draw(st.integers(1, 3))
    shape, class_dim = {"2d": ((n, c), 1), "3d": ((n, c, draw(st.integers(1, 3))), 1),
                        "1d": ((c,), 0)}[kind]
    tshape = shape[:class_dim] + shape[class_dim + 1:]
    ignore = draw(st.sampled_from([-100, 0])) if c > 1 else -100
    size = int(np.prod(tshape))
    # at least one target counts, so 'mean' divides by a positive count
    first = draw(st.integers(1 if ignore == 0 else 0, c - 1))
    rest = draw(st.lists(st.sampled_from(list(range(c)) + [ignore]), min_size=size - 1,
                         max_size=size - 1))
    targets = np.array([first] + rest, np.int64).reshape(tshape)
    return shape, class_dim, tshape, ignore, targets


@st.composite
def _class_nll(draw):
    shape, class_dim, _, ignore, targets = draw(_layout())
    return Sample((draw(floats(shape, -3.0, 0.0)), targets),
                  dict(ignore_index=ignore, reduction=draw(_REDUCTIONS), class_dim=class_dim))


@st.composite
def _class_nll_grad(draw):
    shape, class_dim, tshape, ignore, targets = draw(_layout())
    reduction = draw(_REDUCTIONS)
    ct = draw(floats(tshape if reduction == "none" else ()))
    return Sample((ct, targets), dict(ignore_index=ignore, reduction=reduction,
                                      class_dim=class_dim, n_classes=shape[class_dim]))


SAMPLES = {"class_nll": _class_nll, "class_nll_grad": _class_nll_grad}


def _nll_reference(logp, target, *, ignore_index, reduction, class_dim):
    valid = target != ignore_index
    safe = np.expand_dims(np.where(valid, target, 0), class_dim)
    losses = np.where(valid, -np.take_along_axis(logp, safe, class_dim).squeeze(class_dim), 0.0)
    if reduction == "none":
        return losses
    return losses.sum() / (valid.sum() if reduction == "mean" else 1)


def _nll_grad_reference(ct, target, *, ignore_index, reduction, class_dim, n_classes):
    valid = target != ignore_index
    scale = ct / valid.sum() if reduction == "mean" else ct
    out = np.zeros(target.shape[:class_dim] + (n_classes,) + target.shape[class_dim:])
    index = np.expand_dims(np.where(valid, target, 0), class_dim)
    np.put_along_axis(out, index, np.expand_dims(np.where(valid, -scale, 0.0), class_dim),
                      class_dim)
    return out


REFERENCES = {"class_nll": _nll_reference, "class_nll_grad": _nll_grad_reference}
