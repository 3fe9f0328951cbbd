"""Contractions: ``dot_general``, the one bilinear primitive behind ``matmul``, ``dot``,
``tensordot``, ``einsum`` and friends.

``dot_general(a, b, contract=((ca...), (cb...)), batch=((ba...), (bb...)))`` pairs the
listed axes; the result's axes are the batch axes, then ``a``'s free axes, then ``b``'s
free axes, each in increasing order.  Matrix factorisations live in ``ops/decompositions.py``.
"""

from __future__ import annotations

import functools
import math

from fnarray.core.array import Array
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray, is_inexact
from fnarray.ops import shape as shape_ops
from fnarray.transforms.buffers import declare_out_kernel
from fnarray.transforms.layout import declare_permuted_result


def _free(ndim, contract, batch):
    used = set(contract) | set(batch)
    return [i for i in range(ndim) if i not in used]


def _dot_impl(xp, a, b, *, contract, batch):
    a2, b2, shape = _as_matmul(xp, a, b, contract, batch)
    out = xp.matmul(a2, b2)
    return out if shape is None else out.reshape(shape)


def _dot_into(xp, a, b, *, out, contract, batch):
    """``dot_general`` written into ``out`` (the jit executor's out kernel, see
    ``transforms/buffers.py``).  Operands of another dtype than ``out`` (eager's result
    dtype must not change) and dtypes without a native kernel (bfloat16 is widened by the
    primitive's impl) take the primitive's ordinary impl."""
    if a.dtype != out.dtype or b.dtype != out.dtype or out.dtype.kind not in "fciu":
        return dot_general.impl(xp, a, b, contract=contract, batch=batch)
    a2, b2, shape = _as_matmul(xp, a, b, contract, batch)
    if shape is None:
        return xp.matmul(a2, b2, out=out)
    if not out.flags.c_contiguous:  # the matmul-shaped view below would be a copy
        return xp.matmul(a2, b2).reshape(shape)
    xp.matmul(a2, b2, out=out.reshape(a2.shape[:-1] + b2.shape[-1:]))
    return out


def _as_matmul(xp, a, b, contract, batch):
    """Operands for one ``matmul`` computing the contraction, and the result's shape (None
    when the matmul result already has it).  Axes are only permuted (views: BLAS reads
    transposed operands in place); a reshape copies only when merged axes are not adjacent
    in memory."""
    (ca, cb), (ba, bb) = contract, batch
    if a.ndim == 2 and b.ndim == 2 and len(ca) == 1 and not ba:
        # Two matrices, one contracted axis each (the forward and both cotangents of a
        # linear layer): transposed views, and the result is already (a-free, b-free).
        return (a if ca[0] == 1 else a.T), (b if cb[0] == 0 else b.T), None
    if _is_matmul(a.ndim, b.ndim, ca, cb, ba, bb):
        return a, b, None
    fa_, fb = _free(a.ndim, ca, ba), _free(b.ndim, cb, bb)
    at = xp.transpose(a, (*ba, *fa_, *ca))
    bt = xp.transpose(b, (*bb, *cb, *fb))
    bshape = at.shape[:len(ba)]
    m = 1
    for i in fa_:
        m *= a.shape[i]
    k = 1
    for i in ca:
        k *= a.shape[i]
    n = 1
    for i in fb:
        n *= b.shape[i]
    shape = bshape + tuple(a.shape[i] for i in fa_) + tuple(b.shape[i] for i in fb)
    return at.reshape(bshape + (m, k)), bt.reshape(bshape + (k, n)), shape


def _is_matmul(nda, ndb, ca, cb, ba, bb) -> bool:
    """Is this contraction exactly ``matmul`` (so the kernel can be called directly)?"""
    nb = len(ba)
    if ba != bb or ba != tuple(range(nb)) or len(ca) != 1 or ca[0] != nda - 1:
        return False
    if nb == 0:
        return nda <= 2 and ((ndb == 1 and cb == (0,)) or (ndb == 2 and cb == (0,)))
    return nda == nb + 2 and ndb == nb + 2 and cb == (nb,)


def _dot_abstract(a, b, *, contract, batch):
    (ca, cb), (ba, bb) = contract, batch
    for i, j in zip(ca, cb):
        if a.shape[i] != b.shape[j]:
            raise ValueError(f"dot_general: contracting axis {i} of {a.shape} does not match "
                             f"axis {j} of {b.shape}")
    shape = (tuple(a.shape[i] for i in ba) + tuple(a.shape[i] for i in _free(a.ndim, ca, ba))
             + tuple(b.shape[i] for i in _free(b.ndim, cb, bb)))
    return ShapedArray(shape, a.dtype, a.weak_type and b.weak_type)


def _dot_jvp(primals, tangents, *, contract, batch):
    a, b = primals
    ta, tb = tangents
    out = dot_general.bind(a, b, contract=contract, batch=batch)
    t = None
    if ta is not None:
        t = dot_general.bind(ta, b, contract=contract, batch=batch)
    if tb is not None:
        tb_out = dot_general.bind(a, tb, contract=contract, batch=batch)
        t = tb_out if t is None else t + tb_out
    return out, t


def _memory_order(x, candidates) -> list:
    """The axis order (outermost first) in which the concrete operand ``x`` (an ``Array``,
    or a compat tensor or forward/reverse-mode tracer wrapping one) lies densely in memory,
    when it is one of ``candidates``; else row-major.  The tracers of a staged program (jit)
    carry no layout: row-major."""
    while x is not None and type(x) is not Array:
        inner = getattr(x, "_value", None)
        x = getattr(x, "primal", None) if inner is None else inner
    ndim = len(candidates[0])
    if x is None or x._value.flags.c_contiguous:
        return list(range(ndim))
    shape, strides = x._value.shape, x._value.strides
    for order in candidates:
        step = x._value.itemsize
        for i in reversed(order):
            if shape[i] != 1 and strides[i] != step:
                break
            step *= shape[i]
        else:
            return order
    return list(range(ndim))


def _grad_operand(ct, other, x, x_contract, x_batch, other_contract, other_batch, x_first):
    """Cotangent of the operand ``x``: contract ``ct`` with the other operand's free axes,
    then put the axes back into the operand's order.

    The contraction can be written with ``ct`` first (giving x's free axes, then its
    contracting axes) or with ``other`` first (contracting axes, then free axes).  Both
    give a dense result; the one whose axis order is x's memory layout is used, so the
    cotangent comes out laid out like ``x`` without a copy: a concrete ``x``'s actual
    layout (the weight cotangent of ``x @ w.T``, ``w`` row-major, is computed as
    ``(ct.T @ x).T``, so the transpose's cotangent is row-major like ``w``, as in PyTorch's
    mm backward), a tracer's row-major (no transpose in the common matmul cases, e.g. the
    weight cotangent of ``x @ w``)."""
    ct_first, other_first = _grad_plans(x.ndim, other.ndim, ct.ndim, x_contract, x_batch,
                                        other_contract, other_batch, x_first)
    if ct_first[0] != other_first[0] and \
            _memory_order(x, (ct_first[0], other_first[0])) == other_first[0]:
        order, params, perm = other_first
        g = dot_general.bind(other, ct, **params)
    else:
        order, params, perm = ct_first
        g = dot_general.bind(ct, other, **params)
    # ``perm`` is a valid non-identity permutation: bound directly (``permute_dims``'s checks
    # and normalisation would only repeat what the plan established)
    return g if perm is None else shape_ops.transpose.bind(g, perm=perm)


@functools.lru_cache(maxsize=4096)
def _grad_plans(x_ndim, o_ndim, ct_ndim, x_contract, x_batch, other_contract, other_batch,
                x_first):
    """``_grad_operand``'s two contraction orders, each ``(axis order of its result in x's
    axes, dot_general parameters, permutation back to x's order or None)``: a function of
    the static parameters only, so it is computed once per signature."""
    nb = len(x_batch)
    x_free = _free(x_ndim, x_contract, x_batch)
    o_free = _free(o_ndim, other_contract, other_batch)
    # ct axes: batch, a-free, b-free.  The other operand's free axes sit in one block.
    o_block = range(nb + len(x_free), ct_ndim) if x_first else range(nb, nb + len(o_free))
    x_block = range(nb, nb + len(x_free)) if x_first else range(nb + len(o_free), ct_ndim)
    ct_x_free = [x_free[i - x_block.start] for i in x_block]
    # The other operand's contracting axes, in increasing order, stand for their partners.
    partners = [x_contract[other_contract.index(j)] for j in sorted(other_contract)]

    def plan(order, params):
        perm = tuple(order.index(i) for i in range(x_ndim))
        return order, params, None if perm == tuple(range(x_ndim)) else perm

    return (plan(list(x_batch) + ct_x_free + partners,
                 dict(contract=(tuple(o_block), tuple(o_free)),
                      batch=(tuple(range(nb)), tuple(other_batch)))),
            plan(list(x_batch) + partners + ct_x_free,
                 dict(contract=(tuple(o_free), tuple(o_block)),
                      batch=(tuple(other_batch), tuple(range(nb))))))


def _dot_vjp(ct, a, b, *, out, contract, batch, needed=(True, True)):
    (ca, cb), (ba, bb) = contract, batch
    ga = (_grad_operand(ct, b, a, ca, ba, cb, bb, True)
          if needed[0] and is_inexact(a.dtype) else None)
    gb = (_grad_operand(ct, a, b, cb, bb, ca, ba, False)
          if needed[1] and is_inexact(b.dtype) else None)
    return ga, gb


def _dot_batch(vals, dims, *, contract, batch):
    a, b = vals
    da, db = dims
    (ca, cb), (ba, bb) = contract, batch

    def shift(axes, d):
        return tuple(i + (i >= d) for i in axes)

    if da is not None and db is not None:
        new_contract = (shift(ca, da), shift(cb, db))
        new_batch = ((da, *shift(ba, da)), (db, *shift(bb, db)))
        return dot_general.bind(a, b, contract=new_contract, batch=new_batch), 0
    if da is not None:
        new = dict(contract=(shift(ca, da), cb), batch=(shift(ba, da), bb))
        free = _free(a.ndim, *(new["contract"][0], new["batch"][0]))
        return dot_general.bind(a, b, **new), len(ba) + free.index(da)
    new = dict(contract=(ca, shift(cb, db)), batch=(ba, shift(bb, db)))
    free = _free(b.ndim, new["contract"][1], new["batch"][1])
    n_a_free = len(_free(a.ndim, ca, ba))
    return dot_general.bind(a, b, **new), len(ba) + n_a_free + free.index(db)


dot_general = declare("dot_general", impl=_dot_impl, abstract=_dot_abstract, jvp=_dot_jvp,
                      vjp=_dot_vjp, batch=_dot_batch, vjp_selective=True)
declare_out_kernel(dot_general, _dot_into)


def shorter_rows_first(rows: int, cols: int, contraction: int) -> bool:
    """Is a ``(rows, contraction) @ (contraction, cols)`` product one that BLAS runs faster
    the other way round, as ``((cols, contraction) @ (contraction, rows)).T``?  It blocks
    and threads over the result's rows, and with the shorter side as rows and a contraction
    at least as long as the columns, the swapped product measured 0.58-0.86x the time
    (OpenBLAS, 2 threads, convolution weight cotangents; ``benchmarks/conv_weight_grad.py``)
    and never slower on the shapes tried."""
    return cols > rows and contraction >= cols


def _dot_permuted(a, b, perm, *, contract, batch):
    """The result with its ``a``-free and ``b``-free axis blocks swapped is the contraction
    with the operands swapped (a weight cotangent computed as ``ct.T @ x`` in the weight's
    own layout, instead of ``(x.T @ ct).T``); other permutations are not absorbed, nor this
    one where the swapped product is the slower order (``shorter_rows_first``: the small
    transposed result is cheaper to copy)."""
    (ca, cb), (ba, bb) = contract, batch
    nb = len(ba)
    na, nf = a.ndim - len(ca) - nb, b.ndim - len(cb) - nb
    if tuple(perm) != (*range(nb), *range(nb + na, nb + na + nf), *range(nb, nb + na)):
        return None
    size = lambda x, axes: math.prod(x.shape[i] for i in axes)  # noqa: E731
    if shorter_rows_first(size(b, _free(b.ndim, cb, bb)), size(a, _free(a.ndim, ca, ba)),
                          size(a, ca)):
        return None
    return (1, 0), dict(contract=(cb, ca), batch=(bb, ba))


declare_permuted_result(dot_general, _dot_permuted)
