"""The negative log-likelihood of class-index targets as two linear primitives.

``nll_loss`` without class weights reads one log-probability per sample:
``loss[n, d...] = -logp[n, target[n, d...], d...]``, 0 where the target is ``ignore_index``,
then sums the losses (``'sum'``), averages them over the non-ignored targets (``'mean'``) or
keeps them (``'none'``).  Composed from general operations that is nine kernels forward
(compare, select, gather, cast, negate, multiply, two sums, divide) and six backward (a
broadcast, two products and a scatter-add into zeros), each a dispatch on arrays of a
hundred elements.  Here each direction is one primitive:

* ``class_nll(logp, target; ignore_index, reduction, class_dim)``: the loss.  ``logp`` is
  (N, C, d...) with ``class_dim`` 1, or (C,) with ``class_dim`` 0 and a 0-d target.
* ``class_nll_grad(ct, target; ignore_index, reduction, class_dim, n_classes)``: its
  transpose, zeros of the log-probabilities' shape with ``-ct`` (``'mean'``: ``-ct / count``)
  at each non-ignored target.

Both are linear in their float operand and each is the other's transpose, so their JVPs and
VJPs are each other (second derivatives are zero and come for free); the integer target
has no derivative.  Batching merges the batch axis into the sample axis and reduces per
batch element with fnarray operations.

Out-of-range targets (other than ``ignore_index``) raise an ``IndexError`` naming the
target and the class count, as PyTorch does.  The values are the composition's bits: the
sum is NumPy's over the per-sample losses, the count of non-ignored targets is exact, and
the gradient entries are ``-(ct / count)``.  With the ``accel`` extra, C-ordered
float32/float64 operands run the one-loop kernels of :mod:`fnarray.backends.kernels.loss`
(same bits: the loop writes the per-sample losses, NumPy sums them).
"""

from __future__ import annotations

import math

import numpy as np

from fnarray import api as fa
from fnarray.backends import accel
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray
from fnarray.ops._util import batch_size, bdim_to_front, linear_jvp
from fnarray.transforms.buffers import declare_fresh

_REDUCTIONS = ("mean", "sum", "none")
_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Each compiled call replaces about eight NumPy calls (the range check's four among them) of
# ~1 us, the time of a pass over ~4,096 elements each: asked for with that much work plus
# the elements', the kernels run at every size (once numba is installed).
_NUMPY_CALLS_WORK = 8 * 4096


def _blocks(shape: tuple, class_dim: int) -> tuple[int, int, int]:
    """(N, C, D): the sample count, classes and trailing positions of a logp shape."""
    if class_dim == 0:
        return 1, shape[0], 1
    return shape[0], shape[1], math.prod(shape[2:])


def _out_of_range(xp, target, ignore_index, n_classes, op):
    """The ``IndexError`` for the first target outside ``[0, n_classes)`` (ignoring
    ``ignore_index``), or None."""
    bad = (target != ignore_index) & ((target < 0) | (target >= n_classes))
    if not bad.any():
        return None
    value = int(target[bad].reshape(-1)[0])
    return IndexError(f"{op}: target {value} is out of bounds for {n_classes} classes "
                      f"(targets must lie in [0, {n_classes}) or equal ignore_index="
                      f"{ignore_index})")


def _compiled(xp, x, target):
    """The compiled loss kernels for these operands (C-ordered float32/float64 values and
    integer targets on NumPy, numba available), else None."""
    if (x.dtype not in _COMPILED_DTYPES or target.dtype.kind not in "iu"
            or not (x.flags.c_contiguous and target.flags.c_contiguous)):
        return None
    return accel.kernels("loss", xp, _NUMPY_CALLS_WORK + x.size)


def _reduce(xp, losses, valid_count, reduction):
    """The per-sample ``losses`` reduced: kept, summed, or summed and divided by the count of
    non-ignored targets (in the losses' dtype, as the composition's ``sum(w)`` was)."""
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return xp.asarray(total)
    return xp.asarray(total / losses.dtype.type(valid_count))


# --- class_nll --------------------------------------------------------------------------------

def _class_nll_impl(xp, logp, target, *, ignore_index, reduction, class_dim):
    n, c, d = _blocks(logp.shape, class_dim)
    k = _compiled(xp, logp, target)
    if k is not None:
        losses = xp.empty(target.shape, logp.dtype)
        count = k.pick(logp.reshape(n, c, d), target.reshape(n, d), ignore_index,
                       losses.reshape(n, d))
        if count < 0:
            raise _out_of_range(xp, target, ignore_index, c, "nll_loss")
        return _reduce(xp, losses, count, reduction)
    error = _out_of_range(xp, target, ignore_index, c, "nll_loss")
    if error is not None:
        raise error
    valid = target != ignore_index
    picked = logp.reshape(n, c, d)[_block_index(xp, target, valid, n, d)].reshape(target.shape)
    losses = xp.where(valid, -picked, logp.dtype.type(0))
    return _reduce(xp, losses, valid.sum(), reduction)


def _block_index(xp, target, valid, n, d):
    """The advanced index of each sample's target entry in the (N, C, D) view (ignored
    samples point at class 0)."""
    safe = xp.where(valid, target, 0).reshape(n, d)
    return xp.arange(n)[:, None], safe, xp.arange(d)[None, :]


def _class_nll_abstract(logp, target, *, ignore_index, reduction, class_dim):
    expected = logp.shape[:class_dim] + logp.shape[class_dim + 1:]
    if target.shape != expected or target.dtype.kind not in "iu" or reduction not in _REDUCTIONS:
        raise TypeError(f"class_nll: log-probabilities {logp.dtype}{list(logp.shape)} need "
                        f"integer targets of shape {list(expected)} and a reduction in "
                        f"{_REDUCTIONS}, got {target.dtype}{list(target.shape)}, {reduction!r}")
    shape = target.shape if reduction == "none" else ()
    return ShapedArray(shape, logp.dtype, False)


def _class_nll_vjp(ct, logp, target, *, out, **params):
    n_classes = logp.shape[params["class_dim"]]
    return class_nll_grad.bind(ct, target, n_classes=n_classes, **params), None


def _merged(x, size):
    """``x`` with its leading batch axis merged into the sample axis after it."""
    return fa.reshape(x, (size * x.shape[1],) + tuple(x.shape[2:]))


def _counts(target, ignore_index, dtype):
    """Non-ignored targets per batch element (axis 0)."""
    return fa.sum(fa.astype(target != ignore_index, dtype), axis=tuple(range(1, target.ndim)))


def _class_nll_batch(vals, dims, *, ignore_index, reduction, class_dim):
    size = batch_size(vals, dims)
    logp, target = (bdim_to_front(v, d, size) for v, d in zip(vals, dims))
    if class_dim == 1:  # (B, N, C, d...): B*N samples
        logp, flat = _merged(logp, size), _merged(target, size)
    else:  # (B, C): B samples of one class axis
        flat = target
    losses = fa.reshape(class_nll.bind(logp, flat, ignore_index=ignore_index, reduction="none",
                                       class_dim=1), target.shape)
    if reduction == "none":
        return losses, 0
    total = fa.sum(losses, axis=tuple(range(1, target.ndim)))
    if reduction == "sum":
        return total, 0
    return total / _counts(target, ignore_index, losses.dtype), 0


class_nll = declare("class_nll", impl=_class_nll_impl, abstract=_class_nll_abstract,
                    jvp=lambda pr, tg, **p: linear_jvp(class_nll, pr, tg, **p),
                    vjp=_class_nll_vjp, batch=_class_nll_batch)


# --- class_nll_grad ---------------------------------------------------------------------------

def _class_nll_grad_impl(xp, ct, target, *, ignore_index, reduction, class_dim, n_classes):
    shape = target.shape[:class_dim] + (n_classes,) + target.shape[class_dim:]
    n, c, d = _blocks(shape, class_dim)
    out = xp.zeros(shape, ct.dtype)
    k = _compiled(xp, out, target)
    if k is not None and (reduction != "none" or ct.flags.c_contiguous):
        if reduction == "none":
            scale = ct.reshape(n, d)
        else:  # one scale for every sample: the compiled loop reads its first entry
            count = k.count(target.reshape(-1), ignore_index) if reduction == "mean" else 1
            scale = (ct if reduction == "sum" else ct / ct.dtype.type(count)).reshape(1, 1)
        if k.scatter(scale, target.reshape(n, d), ignore_index, out.reshape(n, c, d)) < 0:
            raise _out_of_range(xp, target, ignore_index, c, "nll_loss backward")
        return out
    error = _out_of_range(xp, target, ignore_index, c, "nll_loss backward")
    if error is not None:
        raise error
    valid = target != ignore_index
    if reduction == "mean":
        ct = ct / ct.dtype.type(valid.sum())
    values = xp.broadcast_to(xp.where(valid, -ct, ct.dtype.type(0)), target.shape)
    out.reshape(n, c, d)[_block_index(xp, target, valid, n, d)] = values.reshape(n, d)
    return out


def _class_nll_grad_abstract(ct, target, *, ignore_index, reduction, class_dim, n_classes):
    expected = target.shape if reduction == "none" else ()
    if ct.shape != expected or target.dtype.kind not in "iu" or reduction not in _REDUCTIONS:
        raise TypeError(f"class_nll_grad: targets {target.dtype}{list(target.shape)} with "
                        f"reduction {reduction!r} need a cotangent of shape {list(expected)}, "
                        f"got {ct.dtype}{list(ct.shape)}")
    shape = target.shape[:class_dim] + (n_classes,) + target.shape[class_dim:]
    return ShapedArray(shape, ct.dtype, False)


def _class_nll_grad_vjp(u, ct, target, *, out, n_classes, **params):
    return class_nll.bind(u, target, **params), None


def _class_nll_grad_batch(vals, dims, *, ignore_index, reduction, class_dim, n_classes):
    size = batch_size(vals, dims)
    ct, target = (bdim_to_front(v, d, size) for v, d in zip(vals, dims))
    if reduction != "none":  # every sample's cotangent: ct (sum) or ct / count (mean)
        if reduction == "mean":
            ct = ct / _counts(target, ignore_index, ct.dtype)
        ct = fa.broadcast_to(fa.reshape(ct, (size,) + (1,) * (target.ndim - 1)), target.shape)
    if class_dim == 1:
        ct, flat = _merged(ct, size), _merged(target, size)
        shape = (size, target.shape[1], n_classes) + tuple(target.shape[2:])
    else:
        flat, shape = target, (size, n_classes)
    grad = class_nll_grad.bind(ct, flat, ignore_index=ignore_index, reduction="none",
                               class_dim=1, n_classes=n_classes)
    return fa.reshape(grad, shape), 0


class_nll_grad = declare("class_nll_grad", impl=_class_nll_grad_impl,
                         abstract=_class_nll_grad_abstract,
                         jvp=lambda pr, tg, **p: linear_jvp(class_nll_grad, pr, tg, **p),
                         vjp=_class_nll_grad_vjp, batch=_class_nll_grad_batch)

# Both kernels allocate their results: the jit executor may hand those buffers on.
declare_fresh(class_nll, class_nll_grad)
