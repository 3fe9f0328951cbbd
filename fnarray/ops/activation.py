"""Activation primitives with lean derivatives: ``clamp``, ``leaky_relu``, ``log_softmax``
and their shared backward kernel ``gate``.

Written as compositions (``where(x > 0, x, 0)``, ``maximum(x, 0)``), these activations cost
several full passes over the activations in their backward pass (a comparison, an equality
test for tie splitting, two selects and a product).  PyTorch and JAX use one pass
(``threshold_backward``), and so do these primitives:

* ``clamp(x; lo, hi, inclusive)`` clips into ``[lo, hi]`` (either bound may be None); its
  derivative passes the cotangent where ``lo < x < hi`` (``<=`` when ``inclusive``, which is
  ``torch.clamp``'s convention; ``relu``/``hardtanh`` use the open interval) and is 0
  elsewhere.  ``relu`` is ``clamp(x; 0, None)``, ``relu6`` ``clamp(x; 0, 6)``.
* ``leaky_relu(x; slope)``: ``x`` for ``x > 0`` else ``slope * x``.
* ``gate(ct, x; lo, hi, inclusive, slope)``: ``ct`` where ``x`` is inside the interval, else
  ``slope * ct`` — the derivative of both, applied to a (co)tangent.  It is linear in ``ct``
  and constant in ``x`` (whose derivative is zero almost everywhere), so its own derivatives
  are ``gate`` again: ``grad(grad(relu))`` works.
* ``log_softmax(x; axis)``: ``x - logsumexp(x)`` with the VJP ``ct - exp(out) * sum(ct)``
  instead of the chain through ``exp``, ``sum``, ``log`` and the max shift.  That VJP is
  itself a primitive, ``log_softmax_grad(ct, y; axis)``, so a backward pass runs it as one
  kernel (not four dispatches); it is linear in ``ct`` and smooth in ``y``, and its own
  rules are fnarray operations, so second derivatives go through it.

Kernels avoid ``where`` on data-dependent masks: on NumPy a select with an unpredictable
mask is ~10x slower than a product with the mask, so ``gate`` multiplies by the mask and
only falls back to an exact select when the result holds infinities or NaNs.  With the
``accel`` extra, large C-ordered float32/float64 operands of ``gate`` and ``leaky_relu`` run
the one-loop kernel of :mod:`fnarray.backends.kernels.activation` instead (same values; see
there for the sign of zeros, and for why ``clamp`` stays on ``numpy.clip``); a short last
axis of ``log_softmax`` and ``log_softmax_grad`` runs the row loops of
:mod:`fnarray.backends.kernels.softmax`.
"""

from __future__ import annotations

import math

import numpy as np

from fnarray import api as fa
from fnarray.backends import accel
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray, broadcast_shapes
from fnarray.ops._util import (bdim_to_front, batch_size, move_bdim, same_aval,
                              unbroadcast)
from fnarray.ops.elementwise import batch_elementwise
from fnarray.transforms.buffers import declare_fresh, declare_in_place, declare_out_kernel


def _inside(xp, x, lo, hi, inclusive):
    """Boolean mask of ``lo < x < hi`` (``<=`` when inclusive); a None bound is open."""
    above = xp.greater_equal if inclusive else xp.greater
    below = xp.less_equal if inclusive else xp.less
    mask = None if lo is None else above(x, lo)
    if hi is not None:
        upper = below(x, hi)
        mask = upper if mask is None else xp.logical_and(mask, upper)
    return mask


_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# The compiled gate is asked for with the size of the NumPy work it replaces: the NumPy
# gate makes about four passes (compare, cast, product, finiteness sum), so it pays from a
# quarter of ``accel.MIN_SIZE`` (measured, warm: 7.5 -> 4.7 us on 8,192 float32 elements,
# the ConvNet's fc1 activations).
_GATE_PASSES = 4


def _compiled_gate(xp, ct, x, lo, hi, slope):
    """The compiled activation kernels when they take this ``gate`` (operands of one
    float32/float64 dtype and one shape, both C-ordered; a bound given, a finite slope;
    ``accel.kernels``' size and backend choice), else None: NumPy runs it."""
    # first: small arrays stop here at once
    k = accel.kernels("activation", xp, _GATE_PASSES * ct.size)
    if (k is None or ct.dtype not in _COMPILED_DTYPES or x.dtype != ct.dtype
            or x.shape != ct.shape or not (ct.flags.c_contiguous and x.flags.c_contiguous)
            or (lo is None and hi is None) or not math.isfinite(slope)):
        return None
    return k


def _run_compiled_gate(k, ct, x, out, lo, hi, inclusive, slope):
    """The compiled gate into ``out``: a buffer overlapping neither operand, or one of the
    operands ``ct``, ``x`` itself (then written over, element by element)."""
    t = ct.dtype.type
    # A missing bound is an infinite inclusive one: every non-NaN x is inside it.
    args = (ct.reshape(-1), x.reshape(-1), t(-math.inf if lo is None else lo),
            inclusive or lo is None, t(math.inf if hi is None else hi),
            inclusive or hi is None, t(slope))
    if out is ct or out is x:
        k.gate_in_place(*args, out is ct)
    else:
        k.gate(*args, out.reshape(-1))
    return out


def _gate_impl(xp, ct, x, *, lo, hi, inclusive, slope):
    k = _compiled_gate(xp, ct, x, lo, hi, slope)
    if k is not None:
        return _run_compiled_gate(k, ct, x, xp.empty_like(ct), lo, hi, inclusive, slope)
    mask = _inside(xp, x, lo, hi, inclusive)
    # Masks are cast before the product: NumPy's mixed bool-float multiply runs a buffered
    # casting loop ~2x slower than the cast plus a same-dtype product.
    out = ct * mask.astype(ct.dtype)
    if slope:
        # ct * mask + (slope * ct) * ~mask: branch-free, and exact in both branches while
        # the cotangent is finite.
        out = out + (ct * ct.dtype.type(slope)) * xp.logical_not(mask).astype(ct.dtype)
    if not xp.isfinite(out.sum()):
        # inf * 0 is NaN: only then pay for the exact (branchy) select.
        out = xp.where(mask, ct, ct * ct.dtype.type(slope) if slope else ct.dtype.type(0))
    return out


def _gate_into(xp, ct, x, *, out, lo, hi, inclusive, slope):
    """``gate`` written into ``out`` (the jit executor's out kernel).  Declared in place:
    ``out`` may be ``ct`` or ``x`` itself where that operand dies at the gate, as the
    cotangent does in a backward pass, so the result fills no new buffer: the compiled
    ConvNet step's two large relu gates measured 0.97 -> 0.67 and 0.53 -> 0.34 ms so
    (their writes land on cache lines just read instead of lines fetched for a fresh
    buffer).  Where the compiled kernel does not take the operands, the NumPy kernel's
    new result is returned instead (its passes would read ``ct`` after writing ``out``)."""
    k = _compiled_gate(xp, ct, x, lo, hi, slope)
    if (k is None or out.dtype != ct.dtype or out.shape != ct.shape
            or not out.flags.c_contiguous):
        return _gate_impl(xp, ct, x, lo=lo, hi=hi, inclusive=inclusive, slope=slope)
    return _run_compiled_gate(k, ct, x, out, lo, hi, inclusive, slope)


def _gate_jvp(primals, tangents, **params):
    ct, x = primals
    out = gate.bind(ct, x, **params)
    t = tangents[0]
    return out, (None if t is None else gate.bind(t, x, **params))


def _gate_vjp(ct_out, ct, x, *, out, **params):
    return unbroadcast(gate.bind(ct_out, x, **params), ct.shape), None


def _gate_abstract(ct, x, **_):
    return ShapedArray(broadcast_shapes(ct.shape, x.shape), ct.dtype, ct.weak_type)


gate = declare("gate", impl=_gate_impl, abstract=_gate_abstract, jvp=_gate_jvp,
               vjp=_gate_vjp, batch=None)
gate.batch = batch_elementwise(gate)
declare_out_kernel(gate, _gate_into)
declare_in_place(gate)  # its out may be a dying operand (jit executor)


def _unary_gated(name, impl, gate_params, gate_on_output=lambda params: False):
    """A unary primitive whose derivative is ``gate`` with parameters from its own.  Its VJP
    gates on the primitive's output instead of its input where ``gate_on_output(params)``
    says that gives the same mask: a backward pass then keeps the output, which it holds
    anyway, and the input dies at the primitive (see ``_clamp_into``)."""
    def jvp(primals, tangents, **params):
        x, = primals
        return p.bind(x, **params), gate.bind(tangents[0], x, **gate_params(params))

    def vjp(ct, x, *, out, **params):
        return (gate.bind(ct, out if gate_on_output(params) else x, **gate_params(params)),)

    p = declare(name, impl=impl, abstract=same_aval, jvp=jvp, vjp=vjp, batch=None)
    p.batch = lambda vals, dims, **params: (p.bind(vals[0], **params), dims[0])
    return p


def _clamp_impl(xp, x, *, lo, hi, inclusive):
    # A missing float bound is passed as an infinite one: NumPy's clip with a None bound
    # falls back to maximum/minimum, ~4x slower than its vectorised two-sided loop (on
    # relu's 1.4M activations: 1.5 vs 0.3-0.4 ms).  Same values (-0.0 stays -0.0).
    if x.dtype.kind == "f":
        lo = -xp.inf if lo is None else lo
        hi = xp.inf if hi is None else hi
    return xp.clip(x, lo, hi)


_CLIP_INTO = tuple(np.dtype(t) for t in (np.float16, np.float32, np.float64))


def _clamp_into(xp, x, *, out, lo, hi, inclusive):
    """``clamp`` written into ``out`` (the jit executor's out kernel), which may be ``x``
    itself: ``numpy.clip`` reads each element before writing it.  With the VJP of an open
    interval gating on the output, a compiled forward pass clips a layer's pre-activation
    in place (ConvNet relus: 0.48 -> 0.29 and 0.28 -> 0.18 ms, the writes landing on lines
    just read).  Other dtypes (integers, bfloat16, another than ``out``'s) take the impl."""
    if x.dtype not in _CLIP_INTO or x.dtype != out.dtype:
        return _clamp_impl(xp, x, lo=lo, hi=hi, inclusive=inclusive)
    return xp.clip(x, -xp.inf if lo is None else lo, xp.inf if hi is None else hi, out=out)


# On an open interval the output is inside exactly where the input is (outside, it is a
# bound, or NaN), so the VJP may gate on it; a closed interval holds every clipped output.
clamp = _unary_gated("clamp", _clamp_impl, lambda params: dict(params, slope=0.0),
                     lambda params: not params["inclusive"])
declare_out_kernel(clamp, _clamp_into)
declare_in_place(clamp)
leaky_relu = _unary_gated(
    "leaky_relu",
    lambda xp, x, *, slope: _gate_impl(xp, x, x, lo=0.0, hi=None, inclusive=False, slope=slope),
    lambda params: dict(lo=0.0, hi=None, inclusive=False, slope=params["slope"]))


# --- log_softmax --------------------------------------------------------------------------

# NumPy reduces a short last axis row by row (~0.05 us a row: 6.6 us for the (128, 10)
# logits of a classifier), while the maxima of a transposed copy's columns run as a few
# vectorised passes (2.4 us); the crossover is near 64 rows and 32 columns (float32).
_SHORT_AXIS, _MANY_ROWS = 32, 64


def _max_keepdims(x, axis):
    """``x.max(axis=axis, keepdims=True)``: the same maxima (the order in which maxima are
    taken does not change them; of a tie between -0.0 and +0.0 either zero may come out,
    which changes no log_softmax output: ``x - m`` is then -0.0 or +0.0 for the tied
    entries, and ``lse >= log 2`` is subtracted from both)."""
    n = x.shape[-1] if x.ndim else 0
    if (axis == x.ndim - 1 and 0 < n <= _SHORT_AXIS and x.size >= _MANY_ROWS * n
            and x.flags.c_contiguous):
        rows = x.reshape(-1, n)
        return rows.T.copy().max(axis=0).reshape(x.shape[:-1] + (1,))
    return x.max(axis=axis, keepdims=True)


# With the ``accel`` extra, a short last axis of a C-ordered float32/float64 array runs the
# row loops of :mod:`fnarray.backends.kernels.softmax` (five calls instead of nine, the same
# bits; (128, 10) float32, warm: forward 13 -> 5 us, backward 6.7 -> 2.4 us).  They are
# asked for with the size of the NumPy work they replace: about nine passes over the array,
# plus two row-wise reductions at ~0.05 us a row (the time of a pass over ~128 elements
# each).
_SOFTMAX_PASSES, _ROW_WORK = 9, 256


def _compiled_rows(xp, x, axis):
    """The compiled softmax kernels when they take ``x`` reduced over ``axis`` (the last
    axis, at most ``_SHORT_AXIS`` long, a C-ordered float32/float64 array, and
    ``accel.kernels``' size and backend choice), else None: NumPy runs it."""
    n = x.shape[-1] if x.ndim else 0
    if (axis != x.ndim - 1 or not 0 < n <= _SHORT_AXIS or x.dtype not in _COMPILED_DTYPES
            or not x.flags.c_contiguous):
        return None
    return accel.kernels("softmax", xp, _SOFTMAX_PASSES * x.size + _ROW_WORK * (x.size // n))


def _log_softmax_impl(xp, x, *, axis):
    k = _compiled_rows(xp, x, axis)
    if k is not None:
        rows = x.reshape(-1, x.shape[-1])
        out = k.shift_rows(rows, xp.empty_like(rows))
        sums = k.row_sums(xp.exp(out), xp.empty(len(rows), x.dtype))
        return k.sub_rows(out, xp.log(sums, out=sums)).reshape(x.shape)
    # (reductions through the array's methods: no module-function wrapper per call)
    m = _max_keepdims(x, axis)
    m = xp.where(xp.isfinite(m), m, 0).astype(x.dtype, copy=False)
    shifted = x - m
    lse = xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    shifted -= lse
    return shifted


def _log_softmax_jvp(primals, tangents, *, axis):
    x, = primals
    out = log_softmax.bind(x, axis=axis)
    t = tangents[0]
    return out, t - fa.sum(fa.exp(out) * t, axis=axis, keepdims=True)


def _log_softmax_vjp(ct, x, *, out, axis):
    if ct.dtype != out.dtype:
        return (ct - fa.exp(out) * fa.sum(ct, axis=axis, keepdims=True),)
    return (log_softmax_grad.bind(ct, out, axis=axis),)


def _log_softmax_batch(vals, dims, *, axis):
    x = move_bdim(vals[0], dims[0], 0)
    return log_softmax.bind(x, axis=axis + 1), 0


log_softmax = declare("log_softmax", impl=_log_softmax_impl, abstract=same_aval,
                      jvp=_log_softmax_jvp, vjp=_log_softmax_vjp, batch=_log_softmax_batch)


# --- log_softmax_grad: log_softmax's backward, ct - exp(y) * sum(ct), y its output -----------

def _log_softmax_grad_impl(xp, ct, y, *, axis):
    k = _compiled_rows(xp, ct, axis)
    if k is not None and y.flags.c_contiguous:
        rows = ct.reshape(-1, ct.shape[-1])
        e = xp.exp(y.reshape(rows.shape))
        return k.grad_rows(rows, e, e).reshape(ct.shape)
    e = xp.exp(y)
    e *= ct.sum(axis=axis, keepdims=True)
    return xp.subtract(ct, e, out=e)


def _log_softmax_grad_abstract(ct, y, *, axis):
    if ct.shape != y.shape or ct.dtype != y.dtype:
        raise TypeError(f"log_softmax_grad: the cotangent ({ct.dtype}{list(ct.shape)}) and the "
                        f"log-probabilities ({y.dtype}{list(y.shape)}) need one shape and "
                        "dtype; cast the cotangent to the output's dtype first")
    return ct


def _log_softmax_grad_jvp(primals, tangents, *, axis):
    ct, y = primals
    t_ct, t_y = tangents
    out = log_softmax_grad.bind(ct, y, axis=axis)
    # linear in ct (the same map again); in y, d(-exp(y) * sum(ct)) = -exp(y) * sum(ct) * t_y
    parts = [] if t_ct is None else [log_softmax_grad.bind(t_ct, y, axis=axis)]
    if t_y is not None:
        parts.append(-(fa.exp(y) * t_y) * fa.sum(ct, axis=axis, keepdims=True))
    return out, (None if not parts else parts[0] if len(parts) == 1 else parts[0] + parts[1])


def _log_softmax_grad_vjp(u, ct, y, *, out, axis):
    # the transpose of ct -> ct - e * sum(ct) is u -> u - sum(e * u), broadcast back
    eu = fa.exp(y) * u
    return u - fa.sum(eu, axis=axis, keepdims=True), -eu * fa.sum(ct, axis=axis, keepdims=True)


def _log_softmax_grad_batch(vals, dims, *, axis):
    size = batch_size(vals, dims)
    ct, y = (bdim_to_front(v, d, size) for v, d in zip(vals, dims))
    return log_softmax_grad.bind(ct, y, axis=axis + 1), 0


log_softmax_grad = declare("log_softmax_grad", impl=_log_softmax_grad_impl,
                           abstract=_log_softmax_grad_abstract, jvp=_log_softmax_grad_jvp,
                           vjp=_log_softmax_grad_vjp, batch=_log_softmax_grad_batch)

# Every kernel above allocates its result (clip, the gated product, x - max, exp(y)): the jit
# executor may hand those buffers on once they are dead.
declare_fresh(gate, clamp, leaky_relu, log_softmax, log_softmax_grad)
