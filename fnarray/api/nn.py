"""Neural-network functions: convolution, pooling, softmax and activations.

``conv`` and ``conv_transpose`` are primitives (``fnarray/ops/conv.py``,
``fnarray/ops/conv_transpose.py``).  Everything else here is a composition
of primitives, so derivatives, batching and jit come from their rules:

* ``max_pool`` is the primitive of ``ops/pooling.py``: its derivative goes to one element
  per window, the first maximum in row-major window order (PyTorch's rule for ties);
  ``avg_pool`` takes windows with the linear primitive ``conv_patches`` and sums them;
* ``relu``, ``relu6``, ``hardtanh`` have derivative 0 at their kinks (as in PyTorch);
* ``softmax``/``log_softmax`` subtract the (gradient-stopped) maximum first, so they never
  overflow.
"""

from __future__ import annotations

import math
import numpy as np

from fnarray.api import creation, elementwise as ew, manipulation as mp, reductions as red
from fnarray.api._convert import as_operand, astype, device_of, promote, to_inexact
from fnarray.core.shapes import DEFAULT_FLOAT, canonical_dtype, is_float
from fnarray.ops import activation as _act, conv as _conv, pooling as _pooling
from fnarray.ops import conv_transpose as _conv_transpose
from fnarray.ops._util import normalize_axis
from fnarray.ops.sorting import stop_gradient as _stop_gradient

__all__ = [
    "conv", "conv_transpose", "max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool",
    "softmax", "log_softmax", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu",
    "mish", "softplus", "hardtanh", "one_hot",
]


# --- argument normalisation -----------------------------------------------------------------

def _tuple(value, nd: int, name: str, op: str) -> tuple:
    """An int or a sequence of ``nd`` ints as a tuple of ``nd`` ints."""
    vals = (value,) * nd if isinstance(value, (int, np.integer)) else tuple(value)
    if len(vals) != nd or not all(isinstance(v, (int, np.integer)) for v in vals):
        raise ValueError(f"{op}: {name} must be an int or {nd} ints (one per spatial axis), "
                         f"got {value!r}")
    return tuple(int(v) for v in vals)


def _padding(padding, nd: int, kernel, dilation, strides, op: str) -> tuple:
    """``padding`` as ``((lo, hi), ...)``: an int, ``nd`` ints, ``nd`` pairs, or the strings
    ``'valid'`` (none) and ``'same'`` (output size equals input size; stride 1 only)."""
    if padding == "valid":
        return ((0, 0),) * nd
    if padding == "same":
        if any(s != 1 for s in strides):
            raise ValueError(f"{op}: padding='same' needs stride 1, got stride {strides}")
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in total)
    if isinstance(padding, (int, np.integer)) or all(
            isinstance(p, (int, np.integer)) for p in padding):
        return tuple((p, p) for p in _tuple(padding, nd, "padding", op))
    pairs = tuple(tuple(int(v) for v in p) for p in padding)
    if len(pairs) != nd or any(len(p) != 2 for p in pairs):
        raise ValueError(f"{op}: padding must be an int, {nd} ints, {nd} (low, high) pairs, "
                         f"'same' or 'valid'; got {padding!r}")
    return pairs


def _check_positive(op: str, **groups):
    for name, vals in groups.items():
        if any(v < 1 for v in vals):
            raise ValueError(f"{op}: {name} must be positive, got {vals}")


def _spatial_operands(op, x, weight, bias):
    """Promote ``x``/``weight``(/``bias``) to one float dtype; unbatched input
    ``(C, *spatial)`` gains a batch axis (removed again by the caller)."""
    x, weight = promote(op, to_inexact(x), to_inexact(weight))
    if weight.ndim < 3:
        raise ValueError(f"{op}: weight must have shape (out, in/groups, *kernel) with at least "
                         f"one spatial axis, got {weight.shape}")
    unbatched = x.ndim == weight.ndim - 1
    if unbatched:
        x = mp.expand_dims(x, 0)
    if x.ndim != weight.ndim:
        raise ValueError(f"{op}: input {x.shape} and weight {weight.shape} disagree: a weight "
                         f"with {weight.ndim - 2} spatial axes needs input (N, C, *spatial) "
                         f"with {weight.ndim - 2} spatial axes")
    if bias is not None:
        bias = as_operand(bias)
    return x, weight, bias, unbatched


def _finish(op, y, bias, unbatched):
    if bias is not None:
        if bias.shape != (y.shape[1],):
            raise ValueError(f"{op}: bias must have shape ({y.shape[1]},) (one per output "
                             f"channel), got {bias.shape}")
        y = y + mp.reshape(bias, (y.shape[1],) + (1,) * (y.ndim - 2))
    return y[0] if unbatched else y


# --- convolution ------------------------------------------------------------------------------

def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """N-d convolution (cross-correlation, as in PyTorch's ``conv1d/2d/3d``).

    ``x``: ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``; ``weight``:
    ``(C_out, C_in // groups, *kernel)``; ``bias``: ``(C_out,)`` or None.  ``stride`` and
    ``dilation`` are an int or one int per spatial axis; ``padding`` (zeros) is an int, one
    int per axis, ``((lo, hi), ...)`` pairs, ``'same'`` or ``'valid'``.
    """
    op = "conv"
    x, weight, bias, unbatched = _spatial_operands(op, x, weight, bias)
    nd = weight.ndim - 2
    kernel = weight.shape[2:]
    strides = _tuple(stride, nd, "stride", op)
    dil = _tuple(dilation, nd, "dilation", op)
    _check_positive(op, stride=strides, dilation=dil, groups=(groups,))
    pads = _padding(padding, nd, kernel, dil, strides, op)
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        raise ValueError(f"{op}: padding must be non-negative, got {pads}")
    c_in, c_out = x.shape[1], weight.shape[0]
    if c_in % groups or c_out % groups or weight.shape[1] * groups != c_in:
        raise ValueError(
            f"{op}: input {x.shape} with {c_in} channels and weight {weight.shape} do not fit "
            f"groups={groups}: need C_in = weight.shape[1] * groups and C_out divisible by "
            f"groups")
    out = _conv.out_spatial(x.shape[2:], kernel, strides, pads, dil)
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: the (dilated) kernel {kernel} is larger than the padded input "
                         f"{x.shape[2:]} (padding {pads}, dilation {dil}); pad the input or "
                         f"use a smaller kernel")
    # a bias of the product's dtype and shape is added by the primitive, in the same pass
    # as its output's layout copy; any other goes to ``_finish`` (promotion, error message)
    fused = bias is not None and bias.shape == (c_out,) and bias.dtype == x.dtype
    y = _conv.conv.bind(x, weight, *((bias,) if fused else ()), strides=strides,
                        padding=pads, dilation=dil, groups=int(groups))
    return _finish(op, y, None if fused else bias, unbatched)


def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0,
                   groups: int = 1, dilation=1):
    """Transposed convolution with PyTorch's ``conv_transpose1d/2d/3d`` semantics: the
    adjoint (input gradient) of ``conv`` with the same stride, padding, dilation and groups.

    ``weight`` is ``(C_in, C_out // groups, *kernel)``.  Output size per axis:
    ``(in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1``;
    ``output_padding`` (< stride or < dilation) adds rows at the high end.
    """
    op = "conv_transpose"
    x, weight, bias, unbatched = _spatial_operands(op, x, weight, bias)
    nd = weight.ndim - 2
    kernel = weight.shape[2:]
    strides = _tuple(stride, nd, "stride", op)
    dil = _tuple(dilation, nd, "dilation", op)
    pad = _tuple(padding, nd, "padding", op)
    out_pad = _tuple(output_padding, nd, "output_padding", op)
    _check_positive(op, stride=strides, dilation=dil, groups=(groups,))
    if x.shape[1] != weight.shape[0] or weight.shape[0] % groups:
        raise ValueError(f"{op}: input {x.shape} has {x.shape[1]} channels but weight "
                         f"{weight.shape} expects {weight.shape[0]} (weight is (C_in, "
                         f"C_out // groups, *kernel), C_in divisible by groups={groups})")
    if any(p < 0 for p in pad) or any(not (0 <= op_ < max(s, d))
                                      for op_, s, d in zip(out_pad, strides, dil)):
        raise ValueError(f"{op}: need padding >= 0 and 0 <= output_padding < max(stride, "
                         f"dilation); got padding={pad}, output_padding={out_pad}")
    in_spatial = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o
                       in zip(x.shape[2:], strides, pad, dil, kernel, out_pad))
    if any(n < 1 for n in in_spatial):
        raise ValueError(f"{op}: padding {pad} is too large for input {x.shape} and kernel "
                         f"{kernel}: the output size would be {in_spatial}")
    # As a convolution's adjoint, the weight reads (C_out_of_conv = C_in here, C_in/groups).
    y = _conv_transpose.conv_transpose.bind(
        x, weight, in_spatial=in_spatial, strides=strides, padding=tuple((p, p) for p in pad),
        dilation=dil, groups=int(groups))
    return _finish(op, y, bias, unbatched)


# --- pooling ----------------------------------------------------------------------------------

def _pool_geometry(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Windows over the trailing spatial axes: ``(x, geometry)``; ``kernel_size`` as an int
    pools over all axes after the first two."""
    x = as_operand(x)
    nd = (len(kernel_size) if not isinstance(kernel_size, (int, np.integer))
          else max(x.ndim - 2, 1))
    if x.ndim < nd + 1:
        raise ValueError(f"{op}: input {x.shape} needs at least {nd + 1} dimensions "
                         f"((C, *spatial) or (N, C, *spatial)) for a {nd}-d window")
    kernel = _tuple(kernel_size, nd, "kernel_size", op)
    strides = kernel if stride is None else _tuple(stride, nd, "stride", op)
    pad = _tuple(padding, nd, "padding", op)
    dil = _tuple(dilation, nd, "dilation", op)
    _check_positive(op, kernel_size=kernel, stride=strides, dilation=dil)
    if any(p < 0 or 2 * p > d * (k - 1) + 1 for p, k, d in zip(pad, kernel, dil)):
        raise ValueError(f"{op}: padding {pad} must be non-negative and at most half the "
                         f"(dilated) kernel {kernel}")
    spatial = x.shape[x.ndim - nd:]
    outs, extra = [], []
    for n, k, s, p, d in zip(spatial, kernel, strides, pad, dil):
        span = n + 2 * p - d * (k - 1) - 1
        if span < 0:
            raise ValueError(f"{op}: window {kernel} (dilation {dil}) does not fit the padded "
                             f"input {spatial} (padding {pad})")
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= n + p:  # the last window must start inside
            o -= 1
        outs.append(o)
        extra.append(max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p)))
    geom = dict(kernel=kernel, strides=strides, dilation=dil, pad=pad, extra=tuple(extra),
                lead=x.shape[:x.ndim - nd], out=tuple(outs), spatial=spatial)
    return x, geom


def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False):
    """Max pooling over the trailing ``len(kernel_size)`` axes (PyTorch ``max_pool1d/2d/3d``;
    an int ``kernel_size`` pools all axes after (N, C)).  ``stride`` defaults to the kernel.

    Pads with ``-inf`` (only where padding or ``ceil_mode`` needs it) and applies the
    ``max_pool`` primitive, whose derivative sends each window's cotangent to its first
    maximum (row-major window order), as PyTorch does.
    """
    return _max_pool_taps(x, kernel_size, stride, padding, dilation, ceil_mode)[0]


def _max_pool_taps(x, kernel_size, stride, padding, dilation, ceil_mode):
    """``(values, taps)`` of the ``max_pool`` primitive (``taps``: the row-major kernel
    offset of each window's maximum, which ``F.max_pool2d(return_indices=True)`` turns
    into flat input indices)."""
    x, geom = _pool_geometry("max_pool", x, kernel_size, stride, padding, dilation, ceil_mode)
    nd = len(geom["kernel"])
    widths = ((0, 0),) * (x.ndim - nd) + tuple((p, p + e)
                                               for p, e in zip(geom["pad"], geom["extra"]))
    if any(lo or hi for lo, hi in widths):
        fill = (-math.inf if is_float(x.dtype)
                else (False if x.dtype.kind == "b" else int(np.iinfo(x.dtype).min)))
        x = mp.pad(x, widths, constant_values=fill)
    return _pooling.max_pool.bind(x, kernel=geom["kernel"], strides=geom["strides"],
                                  dilation=geom["dilation"])


def _avg_divisor(geom, count_include_pad: bool) -> np.ndarray:
    """Per-window element counts, PyTorch's rule: windows are clipped to the padded input
    (``count_include_pad``) or to the input itself."""
    counts = []
    for n, k, s, p, d, o in zip(geom["spatial"], geom["kernel"], geom["strides"], geom["pad"],
                                geom["dilation"], geom["out"]):
        starts = np.arange(o) * s - p
        taps = starts[:, None] + d * np.arange(k)[None, :]
        hi = n + p if count_include_pad else n
        lo = -p if count_include_pad else 0
        counts.append(((taps >= lo) & (taps < hi)).sum(axis=1))
    out = counts[0]
    for c in counts[1:]:
        out = np.multiply.outer(out, c)
    return out


def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
             count_include_pad: bool = True, divisor_override: int | None = None):
    """Average pooling over the trailing ``len(kernel_size)`` axes (PyTorch
    ``avg_pool1d/2d/3d``).  A composition of ``conv_patches`` (zero padding) and ``sum``,
    divided by the window's count: the whole window clipped to the padded input when
    ``count_include_pad``, else only the real input elements; or ``divisor_override``."""
    x = to_inexact(x)
    x, geom = _pool_geometry("avg_pool", x, kernel_size, stride, padding, 1, ceil_mode)
    nd = len(geom["kernel"])
    flat = mp.reshape(x, (math.prod(geom["lead"]), 1, *geom["spatial"]))
    # windows (1, *kernel, M, *out), summed over the kernel axes
    win = _conv.conv_patches.bind(
        flat, kernel=geom["kernel"], strides=geom["strides"], dilation=geom["dilation"],
        padding=tuple((p, p + e) for p, e in zip(geom["pad"], geom["extra"])))
    total = red.sum(win, axis=tuple(range(1, 1 + nd)))
    total = mp.reshape(total, (*geom["lead"], *geom["out"]))
    if divisor_override is not None:
        return total / divisor_override
    div = creation.asarray(_avg_divisor(geom, count_include_pad), dtype=total.dtype,
                           device=device_of(total))
    return total / div


def _adaptive_bins(n: int, out: int):
    """PyTorch's adaptive bins: ``[floor(i n / out), ceil((i + 1) n / out))``."""
    i = np.arange(out)
    return (i * n) // out, -((-(i + 1) * n) // out)


def _adaptive_args(op, x, output_size):
    x = as_operand(x)
    sizes = (output_size,) if isinstance(output_size, (int, np.integer)) or output_size is None \
        else tuple(output_size)
    nd = len(sizes)
    if x.ndim < nd + 1:
        raise ValueError(f"{op}: input {x.shape} needs at least {nd + 1} dimensions for "
                         f"output_size {output_size!r}")
    spatial = x.shape[x.ndim - nd:]
    sizes = tuple(n if s is None else int(s) for s, n in zip(sizes, spatial))
    if any(s < 1 for s in sizes) or any(n < 1 for n in spatial):
        raise ValueError(f"{op}: output_size {sizes} and input {x.shape} must be positive")
    return x, sizes, x.ndim - nd


def adaptive_avg_pool(x, output_size):
    """Average over PyTorch's adaptive bins along the trailing ``len(output_size)`` axes
    (an int pools one axis; ``None`` entries keep that axis).  Bins are separable, so each
    axis is one contraction with a fixed (out, in) averaging matrix."""
    x, sizes, first = _adaptive_args("adaptive_avg_pool", to_inexact(x), output_size)
    from fnarray.api.contraction import tensordot
    for ax, o in enumerate(sizes, start=first):
        n = x.shape[ax]
        lo, hi = _adaptive_bins(n, o)
        cols = np.arange(n)
        mat = ((cols >= lo[:, None]) & (cols < hi[:, None])) / (hi - lo)[:, None]
        mat = creation.asarray(mat, dtype=x.dtype, device=device_of(x))
        x = mp.moveaxis(tensordot(x, mat, axes=([ax], [1])), -1, ax)
    return x


def adaptive_max_pool(x, output_size):
    """Maximum over PyTorch's adaptive bins along the trailing ``len(output_size)`` axes.
    Per axis, each bin is gathered as a fixed-width window (short bins repeat their last
    element, which changes neither the max nor, summed back, its derivative)."""
    x, sizes, first = _adaptive_args("adaptive_max_pool", x, output_size)
    from fnarray.api.indexing import take
    for ax, o in enumerate(sizes, start=first):
        n = x.shape[ax]
        lo, hi = _adaptive_bins(n, o)
        width = int((hi - lo).max())
        idx = np.minimum(lo[:, None] + np.arange(width)[None, :], hi[:, None] - 1)
        g = take(x, idx.reshape(-1), axis=ax)
        g = mp.reshape(g, (*x.shape[:ax], o, width, *x.shape[ax + 1:]))
        x = red.max(g, axis=ax + 1)
    return x


# --- softmax --------------------------------------------------------------------------------

def _shifted(x, axis):
    x = to_inexact(x)
    return x - _stop_gradient.bind(red.max(x, axis=axis, keepdims=True))


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``, computed after subtracting the maximum."""
    x = to_inexact(x)
    if x.size == 0:
        return x
    e = ew.exp(_shifted(x, axis))
    return e / red.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis``, computed after subtracting the maximum."""
    x = to_inexact(x)
    if x.size == 0:
        return x
    return _act.log_softmax.bind(x, axis=normalize_axis(axis, x.ndim, "log_softmax"))


# --- activations ------------------------------------------------------------------------------

def relu(x):
    """``max(x, 0)``; its derivative at 0 is taken as 0 (as in PyTorch and JAX)."""
    x = as_operand(x)
    if not is_float(x.dtype):
        return ew.where(x > 0, x, 0)
    return _act.clamp.bind(x, lo=0.0, hi=None, inclusive=False)


def relu6(x):
    """``min(max(x, 0), 6)``; derivative 0 at both kinks."""
    return hardtanh(x, 0.0, 6.0)


def hardtanh(x, min_val: float = -1.0, max_val: float = 1.0):
    """``x`` clamped to ``[min_val, max_val]``; derivative 0 at (and beyond) the bounds."""
    x = to_inexact(x)
    if not is_float(x.dtype):
        return ew.where(x <= min_val, min_val, ew.where(x >= max_val, max_val, x))
    return _act.clamp.bind(x, lo=float(min_val), hi=float(max_val), inclusive=False)


def leaky_relu(x, negative_slope: float = 0.01):
    """``x`` for ``x > 0``, else ``negative_slope * x``."""
    x = to_inexact(x)
    if not is_float(x.dtype):
        return ew.where(x > 0, x, x * negative_slope)
    return _act.leaky_relu.bind(x, slope=float(negative_slope))


def _negative_part(x):
    """``min(x, 0)`` with derivative 1 at 0, used so ``exp`` never sees large inputs."""
    return ew.where(x > 0, 0.0, x)


def elu(x, alpha: float = 1.0):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    x = to_inexact(x)
    return ew.where(x > 0, x, alpha * ew.expm1(_negative_part(x)))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
    """Scaled ELU with the self-normalising constants of Klambauer et al. (2017)."""
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


_GELU_MODES = {True: True, "tanh": True, False: False, "none": False}


def gelu(x, approximate: bool | str = True):
    """``x * Phi(x)``.  As in ``jax.nn.gelu``, the default ``approximate=True`` uses the tanh
    approximation and ``approximate=False`` the exact normal CDF (via ``erf``); PyTorch's
    spellings ``'tanh'`` and ``'none'`` are accepted too.  (``nn.functional.gelu`` keeps
    PyTorch's exact default.)"""
    x = to_inexact(x)
    mode = _GELU_MODES.get(approximate) if isinstance(approximate, (bool, str)) else None
    if mode is None:
        raise ValueError(f"gelu: approximate must be True/False (or 'tanh'/'none'), got "
                         f"{approximate!r}")
    if not mode:
        return 0.5 * x * (1.0 + ew.erf(x * (1.0 / math.sqrt(2.0))))
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
    return 0.5 * x * (1.0 + ew.tanh(inner))


def silu(x):
    """``x * sigmoid(x)`` (a.k.a. swish)."""
    x = to_inexact(x)
    return x * ew.sigmoid(x)


def softplus(x, beta: float = 1.0, threshold: float = 20.0):
    """``log(1 + exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold``.
    Written as ``max(z, 0) + log1p(exp(-|z|))`` so it never overflows."""
    x = to_inexact(x)
    z = x * beta
    soft = (ew.maximum(z, 0.0) + ew.log1p(ew.exp(-ew.abs(z)))) / beta
    return ew.where(z > threshold, x, soft)


def mish(x):
    """``x * tanh(softplus(x))``."""
    x = to_inexact(x)
    return x * ew.tanh(softplus(x))


def one_hot(x, num_classes: int | None = None, dtype=DEFAULT_FLOAT, axis: int = -1):
    """One-hot encoding of integer ``x`` along a new ``axis`` (``num_classes=None`` uses
    ``max(x) + 1``, which needs a concrete ``x``).  Out-of-range labels give all zeros."""
    x = as_operand(x)
    if x.dtype.kind not in "iub":
        raise TypeError(f"one_hot: labels must be integers, got {x.dtype}")
    if num_classes is None:
        num_classes = int(red.max(x)) + 1 if x.size else 0
    classes = creation.arange(num_classes, dtype=x.dtype, device=device_of(x))
    hot = astype(mp.expand_dims(x, -1) == classes, canonical_dtype(dtype))
    return hot if axis == -1 else mp.moveaxis(hot, -1, axis)
