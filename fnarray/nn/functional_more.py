"""More of ``torch.nn.functional`` (split from ``functional`` by size; importable from there):
distances (``pairwise_distance``), metric-learning and ranking losses (``triplet_margin_loss``,
``margin_ranking_loss``, ``hinge_embedding_loss``, ``soft_margin_loss``,
``multilabel_soft_margin_loss``), likelihood losses (``poisson_nll_loss``,
``gaussian_nll_loss``) and activations (``prelu``, ``threshold``, ``glu``, ``softshrink``,
``hardshrink``) and ``embedding_bag``.  Formulas and defaults are PyTorch's; all are compositions of recorded
fnarray operations.
"""

from __future__ import annotations

import math

import fnarray as fa
from fnarray.nn.functional import (_legacy_reduction, _reduce, log_softmax, logsigmoid,
                                   one_hot)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """``||x1 - x2 + eps||_p`` over the last dimension."""
    d = fa.abs(x1 - x2 + eps)
    if p == math.inf:
        return fa.max(d, axis=-1, keepdims=keepdim)
    return fa.sum(d ** p, axis=-1, keepdims=keepdim) ** (1.0 / p)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean"):
    """``max(d(a, p) - d(a, n) + margin, 0)``; ``swap`` uses ``min(d(a, n), d(p, n))``."""
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = fa.minimum(d_an, pairwise_distance(positive, negative, p, eps))
    loss = fa.maximum(margin + d_ap - d_an, 0.0)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction),
                   "triplet_margin_loss")


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                        reduce=None, reduction: str = "mean"):
    """``max(0, -y * (x1 - x2) + margin)`` with ``y`` in {1, -1}."""
    loss = fa.maximum(-target * (input1 - input2) + margin, 0.0)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction),
                   "margin_ranking_loss")


def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean"):
    """``x`` where ``y == 1``, ``max(0, margin - x)`` where ``y == -1``."""
    hinge = fa.where(target != 1, fa.maximum(margin - input, 0.0), 0.0)
    loss = hinge + fa.where(target != -1, input, 0.0)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction),
                   "hinge_embedding_loss")


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):
    """``log(1 + exp(-y x))``."""
    loss = -logsigmoid(target * input)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "soft_margin_loss")


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction: str = "mean"):
    """Per-class binary cross entropy on logits, averaged over the classes of each sample."""
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = fa.sum(loss, axis=input.ndim - 1) / input.shape[-1]
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction),
                   "multilabel_soft_margin_loss")


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean"):
    """``exp(x) - y x`` (``log_input``) or ``x - y log(x + eps)``; ``full`` adds Stirling's
    approximation of ``log(y!)`` where ``y > 1``."""
    if log_input:
        loss = fa.exp(input) - target * input
    else:
        loss = input - target * fa.log(input + eps)
    if full:
        safe = fa.where(target > 1, target, 1.0)
        stirling = safe * fa.log(safe) - safe + 0.5 * fa.log(2 * math.pi * safe)
        loss = loss + fa.where(target > 1, stirling, 0.0)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "poisson_nll_loss")


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean"):
    """``0.5 (log(max(var, eps)) + (x - y)^2 / max(var, eps))`` (+ ``0.5 log(2 pi)`` with
    ``full``); the clamp passes gradients to ``var`` unchanged, as PyTorch's in-place clamp
    under ``no_grad`` does.  A ``var`` with one dimension fewer (or a trailing 1) is one
    variance per sample."""
    if getattr(var, "ndim", 0) == input.ndim - 1 and input.ndim:
        var = fa.expand_dims(var, -1)
    clamped = var + fa.stop_gradient(fa.maximum(var, eps) - var)
    loss = 0.5 * (fa.log(clamped) + (input - target) ** 2 / clamped)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, "gaussian_nll_loss")


def prelu(input, weight):
    """``max(0, x) + weight * min(0, x)``, one weight per channel (dimension 1) or shared."""
    if weight.size > 1 and input.ndim >= 2:
        weight = fa.reshape(weight, (-1,) + (1,) * (input.ndim - 2))
    return fa.where(input >= 0, input, weight * input)


def threshold(input, threshold: float, value: float, inplace: bool = False):  # noqa: A002
    """``x`` where ``x > threshold``, else ``value``."""
    return fa.where(input > threshold, input, value)


def glu(input, dim: int = -1):
    """``a * sigmoid(b)`` for the two halves ``a, b`` of ``dim``."""
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim} is size {n}")
    a, b = fa.split(input, 2, axis=dim)
    return a * fa.sigmoid(b)


def softshrink(input, lambd: float = 0.5):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0."""
    return fa.where(input > lambd, input - lambd, fa.where(input < -lambd, input + lambd, 0.0))


def hardshrink(input, lambd: float = 0.5):
    """``x`` where ``|x| > lambd``, else 0."""
    return fa.where(fa.abs(input) > lambd, input, 0.0)


def gumbel_softmax(logits, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1, *, key=None):
    """A sample from the Gumbel-softmax distribution (``softmax((logits + g) / tau)`` with
    Gumbel noise ``g``); ``hard`` returns one-hot samples whose gradient is the soft one's
    (straight-through).  ``key``: an explicit PRNG key, else the global generator."""
    shape = tuple(logits.shape)
    if key is None:
        from fnarray.compat import random as global_rng
        u = global_rng.uniform(shape, logits.dtype)
    else:
        u = fa.random.uniform(key, shape, dtype=logits.dtype)
    gumbels = -fa.log(-fa.log(u + eps) + eps)
    soft = fa.exp(log_softmax((logits + gumbels) / tau, dim))
    if not hard:
        return soft
    n = logits.shape[dim]
    hot = fa.astype(one_hot(fa.argmax(soft, axis=dim), n), soft.dtype)
    return fa.moveaxis(hot, -1, dim) - fa.stop_gradient(soft) + soft


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights=None, include_last_offset: bool = False,
                  padding_idx: int | None = None):
    """Sums, means or maxima of bags of embedding rows without materialising each bag: a
    2-D ``input`` holds one bag per row; a 1-D ``input`` is cut into bags at ``offsets``.
    ``padding_idx`` entries are left out (and not counted in a mean); an empty bag gives
    zeros; ``per_sample_weights`` scale the rows (mode 'sum' only), as in PyTorch."""
    import numpy as np
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode has to be one of sum, mean or max, got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise ValueError(f"embedding_bag: per_sample_weights is only supported for "
                         f"mode='sum' (got mode='{mode}')")
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: if input is 2-D, then offsets has to be None")
        n_bags, width = input.shape
        starts = np.arange(n_bags) * width
        input = fa.reshape(input, (-1,))
        if per_sample_weights is not None:
            per_sample_weights = fa.reshape(per_sample_weights, (-1,))
    else:
        if offsets is None:
            raise ValueError("embedding_bag: offsets has to be a 1-D tensor but got None")
        starts = np.asarray(getattr(offsets, "array", offsets)).astype(np.int64)
        if include_last_offset:
            starts = starts[:-1]
    n = input.shape[0]
    ends = np.append(starts[1:], n)
    bag_of = np.searchsorted(ends, np.arange(n), side="right")  # each index's bag
    members = (bag_of[None, :] == np.arange(len(starts))[:, None])  # (bags, n)
    if padding_idx is not None:
        pad = padding_idx % weight.shape[0]
        members = members & (np.asarray(getattr(input, "array", input)) != pad)[None, :]
    rows = fa.take(weight, input, axis=0)
    if per_sample_weights is not None:
        rows = rows * fa.expand_dims(per_sample_weights, -1)
    if mode == "max":
        stacked = fa.where(fa.asarray(members[:, :, None]), fa.expand_dims(rows, 0), -math.inf)
        return fa.where(fa.asarray(members.any(axis=1)[:, None]), fa.max(stacked, axis=1), 0.0)
    matrix = members.astype(np.float64)
    if mode == "mean":
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    return fa.matmul(fa.asarray(matrix, dtype=rows.dtype, device=fa.device_of(rows)), rows)
