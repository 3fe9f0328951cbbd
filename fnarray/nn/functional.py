"""``fnarray.nn.functional``: PyTorch's functional API (``F``) on the functional core.

Every function takes core arrays, tracers or compat tensors (a tensor is a tracer of the
compat trace, so it flows through ``fa`` functions and comes back a tensor) and is composed
of ``fa`` functions only: derivatives come from the primitives' rules, so all of this works
under ``fa.grad``, ``fa.jvp``, ``fa.vmap`` and ``fa.jit`` as well as ``loss.backward()``.

Randomness (``dropout`` and friends): without ``key=`` the compat global generator is used
(``torch.manual_seed``); inside transformations pass an explicit ``key=fa.random.key(...)``.
"""

from __future__ import annotations

import functools
import math

import fnarray as fa
from fnarray.nn import _conv as _c
from fnarray.nn._bce import bce_elementwise
from fnarray.nn._loss_direct import cross_entropy as _ce_direct, nll_loss as _nll_direct
from fnarray.nn._staged import StagedEager
from fnarray.core.array import Array
from fnarray.core.shapes import is_float
from fnarray.ops.activation import clamp as _CLAMP, log_softmax as _LOG_SOFTMAX
from fnarray.ops.indexing import gather as _GATHER
from fnarray.ops.loss import class_nll as _CLASS_NLL
from fnarray.ops.linalg import dot_general as _DOT
from fnarray.ops.shape import transpose as _TRANSPOSE

# the parameters ``permute_dims(w, (1, 0))``, a matrix ``matmul`` and ``fa.relu`` bind
_T_PARAMS = {"perm": (1, 0)}
_MM_PARAMS = {"contract": ((1,), (0,)), "batch": ((), ())}
_RELU_PARAMS = {"lo": 0.0, "hi": None, "inclusive": False}

def _grad_fn(name: str):
    """Name every node the function records ``name``, so a compat tensor's ``grad_fn`` reads
    as PyTorch's (``<MseLossBackward0>``, not the last primitive's ``<DivBackward0>``)."""
    def decorate(fn):
        @functools.wraps(fn)
        def named(*args, **kwargs):
            with _op_scope()(name):
                return fn(*args, **kwargs)
        return named
    return decorate


_OP_SCOPE: list = []  # compat.tape.op_scope, imported on first use (compat imports nn)


def _op_scope():
    if not _OP_SCOPE:
        from fnarray.compat.tape import op_scope
        _OP_SCOPE.append(op_scope)
    return _OP_SCOPE[0]


# ---------------------------------------------------------------------------- activations


@_grad_fn("ReluBackward0")
def relu(input, inplace: bool = False):
    """``max(x, 0)``; the derivative at 0 is 0, as in PyTorch (one pass each way)."""
    tape = _tape()
    if isinstance(input, tape.TENSOR) and tape._op.autocast is None:
        v = input._value
        if type(v) is Array and is_float(v._value.dtype):
            # a concrete float tensor: the node ``fa.relu`` records, straight to the tape
            return tape.run(_CLAMP, _RELU_PARAMS, "ClampBackward0", input, v, None, None,
                            v._device)
    return fa.relu(input)


def relu6(input, inplace: bool = False):
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    return fa.leaky_relu(input, negative_slope)


def elu(input, alpha: float = 1.0, inplace: bool = False):
    return fa.where(input > 0, input, alpha * fa.expm1(fa.minimum(input, 0.0)))


def celu(input, alpha: float = 1.0, inplace: bool = False):
    return fa.where(input > 0, input, alpha * fa.expm1(fa.minimum(input, 0.0) / alpha))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace: bool = False):
    return _SELU_SCALE * elu(input, _SELU_ALPHA)


@_grad_fn("GeluBackward0")
def gelu(input, approximate: str = "none"):
    """``x * Phi(x)``; ``approximate='tanh'`` uses PyTorch's tanh formula."""
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (input + 0.044715 * input * input * input)
        return 0.5 * input * (1.0 + fa.tanh(inner))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * input * (1.0 + fa.erf(input / math.sqrt(2.0)))


def sigmoid(input):
    return fa.sigmoid(input)


def tanh(input):
    return fa.tanh(input)


def silu(input, inplace: bool = False):
    return input * fa.sigmoid(input)


def softplus(input, beta: float = 1.0, threshold: float = 20.0):  # noqa: F811
    """``log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold``."""
    bx = input * beta
    safe = fa.minimum(bx, threshold)
    return fa.where(bx > threshold, input, fa.log1p(fa.exp(safe)) / beta)


def mish(input, inplace: bool = False):
    return input * fa.tanh(softplus(input))


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
    """Clamp to ``[min_val, max_val]``; the derivative is 0 outside the open interval."""
    return fa.hardtanh(input, min_val, max_val)


def hardsigmoid(input, inplace: bool = False):
    return relu6(input + 3.0) / 6.0


def hardswish(input, inplace: bool = False):
    return input * hardsigmoid(input)


def logsigmoid(input):
    return -softplus(-input)


def softsign(input):
    return input / (1 + fa.abs(input))


def tanhshrink(input):
    return input - fa.tanh(input)


def _softmax_dim(input, dim, name):
    if dim is None:  # PyTorch's legacy implicit choice
        dim = 0 if input.ndim in (0, 1, 3) else 1
    if input.ndim == 0:
        return 0
    if not -input.ndim <= dim < input.ndim:
        raise IndexError(f"{name}: dim {dim} is out of range for an input of shape "
                         f"{tuple(input.shape)}")
    return dim


@_grad_fn("SoftmaxBackward0")
def softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None):
    if dtype is not None:
        input = fa.astype(input, dtype)
    dim = _softmax_dim(input, dim, "softmax")
    shifted = input - fa.stop_gradient(fa.max(input, axis=dim, keepdims=True))
    e = fa.exp(shifted)
    return e / fa.sum(e, axis=dim, keepdims=True)


def log_softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None):
    if dtype is not None:
        input = fa.astype(input, dtype)
    dim = _softmax_dim(input, dim, "log_softmax")
    tape = _tape()
    if isinstance(input, tape.TENSOR) and tape._op.autocast is None:
        v = input._value
        if type(v) is Array and is_float(v._value.dtype) and v._value.size \
                and v._value.ndim:
            # a concrete float tensor: the node ``fa.log_softmax`` records, straight to
            # the tape (``dim`` was checked above)
            return tape.run(_LOG_SOFTMAX, {"axis": dim % v._value.ndim}, "LogSoftmaxBackward0",
                            input, v, None, None, v._device)
    return fa.log_softmax(input, axis=dim)


def softmin(input, dim: int | None = None, _stacklevel: int = 3, dtype=None):
    return softmax(-input, dim, dtype=dtype)


# ---------------------------------------------------------------------------- linear


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``."""
    out = _linear_direct(input, weight, bias)
    if out is not None:
        return out
    if input.shape[-1:] != weight.shape[-1:]:
        raise ValueError(f"linear: input has {input.shape[-1] if input.ndim else '()'} features "
                         f"(shape {tuple(input.shape)}) but weight has shape "
                         f"{tuple(weight.shape)}, which expects {weight.shape[-1]}")
    from fnarray.compat import amp
    op_scope = _op_scope()
    bias = amp.check_linear_operands(input, weight, bias)
    ndim = input.ndim
    name = ("AddmmBackward0" if bias is not None else "MmBackward0") if ndim == 2 \
        else ("ViewBackward0" if ndim > 2 else "SqueezeBackward4")
    if weight.ndim == 2:
        with op_scope("TBackward0"):
            weight = fa.permute_dims(weight, (1, 0))
    with op_scope(name):  # the grad_fn (and next_functions order) PyTorch gives
        out = fa.matmul(input, weight)
        return out if bias is None else bias + out


def _linear_direct(input, weight, bias):
    """The common eager case of ``linear`` — a matrix of compat tensors times a matrix
    weight (plus a vector bias), concrete values of one floating dtype on one device, no
    autocast — with the very nodes the general path records (``TBackward0``'s transpose,
    then ``AddmmBackward0``'s product and sum), dispatched straight to the tape; None for
    anything else (the general path checks it and names any error)."""
    tape = _tape()
    tensor_t = tape.TENSOR
    if (not isinstance(input, tensor_t) or not isinstance(weight, tensor_t)
            or tape._op.autocast is not None):
        return None
    iv, wv = input._value, weight._value
    if type(iv) is not Array or type(wv) is not Array:
        return None
    ib, wb, dev = iv._value, wv._value, iv._device
    if (ib.ndim != 2 or wb.ndim != 2 or ib.dtype != wb.dtype or not is_float(ib.dtype)
            or wv._device is not dev or ib.shape[1] != wb.shape[1]):
        return None
    if bias is not None:
        bv = bias._value if isinstance(bias, tensor_t) else None
        if (type(bv) is not Array or bv._device is not dev or bv._value.dtype != ib.dtype
                or bv._value.shape != wb.shape[:1]):
            return None
    op_scope, run = tape.op_scope, tape.run
    with op_scope("TBackward0"):
        wt = run(_TRANSPOSE, _T_PARAMS, "TransposeBackward0", weight, wv, None, None, dev)
    with op_scope("AddmmBackward0" if bias is not None else "MmBackward0"):
        out = run(_DOT, _MM_PARAMS, "DotGeneralBackward0", input, iv, wt, wt._value, dev)
        return out if bias is None else bias + out


_TAPE: list = []  # compat.tape, imported on first use (compat imports nn)


def _tape():
    if not _TAPE:
        from fnarray.compat import tape
        _TAPE.append(tape)
    return _TAPE[0]


def bilinear(input1, input2, weight, bias=None):
    """``y_k = x1 W_k x2 + b_k`` with ``weight`` of shape (out, in1, in2)."""
    out = fa.einsum("...i,kij,...j->...k", input1, weight, input2)
    return out if bias is None else out + bias


# ---------------------------------------------------------------------------- conv / pooling

conv1d = _c.conv_nd(1)
conv2d = _c.conv_nd(2)
conv3d = _c.conv_nd(3)
conv_transpose1d = _c.conv_transpose_nd(1)
conv_transpose2d = _c.conv_transpose_nd(2)
conv_transpose3d = _c.conv_transpose_nd(3)
max_pool1d = _c.max_pool_nd(1)
max_pool2d = _c.max_pool_nd(2)
max_pool3d = _c.max_pool_nd(3)
avg_pool1d = _c.avg_pool_nd(1)
avg_pool2d = _c.avg_pool_nd(2)
avg_pool3d = _c.avg_pool_nd(3)
adaptive_avg_pool1d = _c.adaptive_pool_nd(1, "avg")
adaptive_avg_pool2d = _c.adaptive_pool_nd(2, "avg")
adaptive_avg_pool3d = _c.adaptive_pool_nd(3, "avg")
adaptive_max_pool1d = _c.adaptive_pool_nd(1, "max")
adaptive_max_pool2d = _c.adaptive_pool_nd(2, "max")


# ---------------------------------------------------------------------------- dropout


def _keep_mask(input, p: float, shape, key):
    """A float mask of ``shape`` whose entries are ``1 / (1 - p)`` with probability ``1 - p``
    and 0 otherwise: the dropout scale is folded into the mask, so dropout's forward and
    backward passes are one product each."""
    if key is not None:
        from fnarray.api import random as fr
        keep = fr.uniform_at_least(key, p, shape, input.dtype)
    else:
        from fnarray.compat import random as global_rng
        keep = global_rng.uniform_at_least(p, shape, input.dtype, fa.device_of(input))
    return fa.astype(keep, input.dtype) * (1.0 / (1.0 - p))


def _check_p(p: float, name: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {p}")


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, *, key=None):
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``."""
    _check_p(p, "dropout")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return input * _keep_mask(input, p, tuple(input.shape), key)


def _feature_dropout(input, p, training, key, spatial: int, name: str):
    """Drop whole channels: the mask has shape (N, C, 1, ...) (or (C, 1, ...) unbatched)."""
    _check_p(p, name)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    batched = input.ndim == spatial + 2
    if input.ndim < 2:
        raise ValueError(f"{name}: expected a (N, C, ...) or (C, ...) input, got shape "
                         f"{tuple(input.shape)}")
    lead = 2 if batched or input.ndim == 2 else 1
    shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    return input * _keep_mask(input, p, shape, key)


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *, key=None):
    return _feature_dropout(input, p, training, key, 1, "dropout1d")


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *, key=None):
    return _feature_dropout(input, p, training, key, 2, "dropout2d")


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *, key=None):
    return _feature_dropout(input, p, training, key, 3, "dropout3d")


# ---------------------------------------------------------------------------- normalisation


def _channel_shape(input):
    return (1, input.shape[1]) + (1,) * (input.ndim - 2)


def _affine(out, weight, bias, shape):
    if weight is not None:
        out = out * fa.reshape(weight, shape)
    if bias is not None:
        out = out + fa.reshape(bias, shape)
    return out


def batch_norm_stats(input):
    """Per-channel (mean, biased var, element count) over every axis but 1."""
    axes = (0,) + tuple(range(2, input.ndim))
    n = input.size // input.shape[1]
    return fa.mean(input, axis=axes), fa.var(input, axis=axes), n


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5):
    """Normalise each channel (axis 1).  In training the batch statistics are used and the
    running statistics (when given as tensors) are updated in place with the unbiased
    variance: ``running = (1 - momentum) * running + momentum * batch``."""
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input with at least 2 dims (N, C, ...), got "
                         f"shape {tuple(input.shape)}")
    shape = _channel_shape(input)
    if training:
        mean, var, n = batch_norm_stats(input)
        if n <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input shape {tuple(input.shape)}")
        if running_mean is not None:
            update_running_stats(running_mean, running_var, mean, var, n, momentum)
    else:
        mean, var = running_mean, running_var
    out = (input - fa.reshape(mean, shape)) / fa.sqrt(fa.reshape(var, shape) + eps)
    return _affine(out, weight, bias, shape)


def update_running_stats(running_mean, running_var, mean, var, n: int, momentum: float) -> None:
    """Blend batch statistics into running-statistic tensors in place (no gradient)."""
    from fnarray.compat.grad_mode import no_grad
    with no_grad():
        mean = fa.stop_gradient(mean)
        unbiased = fa.stop_gradient(var) * (n / (n - 1))
        running_mean.mul_(1 - momentum).add_(fa.astype(mean, running_mean.dtype) * momentum)
        running_var.mul_(1 - momentum).add_(fa.astype(unbiased, running_var.dtype) * momentum)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1, eps: float = 1e-5):
    """Normalise each (sample, channel) over its spatial axes."""
    shape = _channel_shape(input)
    if use_input_stats:
        axes = tuple(range(2, input.ndim))
        mean = fa.mean(input, axis=axes, keepdims=True)
        var = fa.var(input, axis=axes, keepdims=True)
        if running_mean is not None:
            n = input.size // (input.shape[0] * input.shape[1])
            update_running_stats(running_mean, running_var, fa.mean(fa.reshape(mean, mean.shape[:2]), axis=0),
                                 fa.mean(fa.reshape(var, var.shape[:2]), axis=0), n, momentum)
    else:
        mean, var = fa.reshape(running_mean, shape), fa.reshape(running_var, shape)
    out = (input - mean) / fa.sqrt(var + eps)
    return _affine(out, weight, bias, shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalise over the trailing ``normalized_shape`` axes."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(input.shape[input.ndim - k:]) != normalized_shape:
        raise ValueError(f"layer_norm: normalized_shape {list(normalized_shape)} does not match "
                         f"the trailing dims of the input shape {tuple(input.shape)}")
    axes = tuple(range(input.ndim - k, input.ndim))
    mean = fa.mean(input, axis=axes, keepdims=True)
    var = fa.var(input, axis=axes, keepdims=True)
    out = (input - mean) / fa.sqrt(var + eps)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Normalise each group of ``C / num_groups`` channels (and the spatial axes) per sample."""
    n, c = input.shape[0], input.shape[1]
    if c % num_groups:
        raise ValueError(f"group_norm: {c} channels are not divisible into {num_groups} groups")
    g = fa.reshape(input, (n, num_groups, -1))
    mean = fa.mean(g, axis=2, keepdims=True)
    var = fa.var(g, axis=2, keepdims=True)
    out = fa.reshape((g - mean) / fa.sqrt(var + eps), tuple(input.shape))
    return _affine(out, weight, bias, _channel_shape(input))


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12):
    norm = fa.sum(fa.abs(input) ** p, axis=dim, keepdims=True) ** (1.0 / p)
    return input / fa.maximum(norm, eps)


# ---------------------------------------------------------------------------- embedding etc.


def embedding(input, weight, padding_idx: int | None = None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` picked by the integer ``input``; the ``padding_idx`` row gets no
    gradient."""
    if input.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {input.dtype}")
    out = fa.take(weight, input, axis=0)
    if padding_idx is None:
        return out
    if padding_idx < 0:
        padding_idx += weight.shape[0]
    keep = fa.expand_dims(input != padding_idx, -1)
    return fa.where(keep, out, fa.stop_gradient(out))


def one_hot(tensor, num_classes: int = -1):
    """int64 one-hot encoding along a new last axis."""
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor, got dtype {tensor.dtype}")
    if num_classes < 0:
        num_classes = int(fa.max(tensor)) + 1
    classes = fa.arange(num_classes, device=fa.device_of(tensor))
    return fa.astype(fa.expand_dims(tensor, -1) == classes, fa.int64)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input, pad, mode: str = "constant", value: float | None = None):
    """PyTorch padding: ``pad`` lists (left, right) pairs starting from the last axis."""
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding length must be even and at most 2 * {input.ndim}, got "
                         f"{len(pad)}")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: unsupported mode {mode!r}; use one of {sorted(_PAD_MODES)}")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        return fa.pad(input, widths, mode="constant", constant_values=value or 0)
    return fa.pad(input, widths, mode=_PAD_MODES[mode])


# ---------------------------------------------------------------------------- losses


def _reduce(loss, reduction: str, name: str):
    _check_reduction(reduction, name)
    if reduction == "mean":
        return fa.mean(loss)
    if reduction == "sum":
        return fa.sum(loss)
    return loss


def _check_reduction(reduction: str, name: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{name}: {reduction!r} is not a valid value for reduction; use "
                         f"'mean', 'sum' or 'none'")


def _legacy_reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


def _same_shape(input, target, name):
    if tuple(input.shape) != tuple(target.shape):
        try:
            fa.broadcast_shapes(tuple(input.shape), tuple(target.shape))
        except ValueError:
            raise ValueError(f"{name}: input shape {tuple(input.shape)} and target shape "
                             f"{tuple(target.shape)} do not broadcast") from None


@_grad_fn("MseLossBackward0")
def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):
    _same_shape(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, _legacy_reduction(size_average, reduce, reduction), "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):
    _same_shape(input, target, "l1_loss")
    return _reduce(fa.abs(input - target), _legacy_reduction(size_average, reduce, reduction),
                   "l1_loss")


@_grad_fn("SmoothL1LossBackward0")
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0):
    _same_shape(input, target, "smooth_l1_loss")
    d = fa.abs(input - target)
    loss = d if beta == 0 else fa.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "smooth_l1_loss")


@_grad_fn("HuberLossBackward0")
def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None):
    _same_shape(input, target, "huber_loss")
    d = fa.abs(input - target)
    loss = fa.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "huber_loss")


def _class_targets(input, target, name):
    """Check index targets: shape (N, d1, ...) for input (N, C, d1, ...), or () for (C,)."""
    expected = tuple(input.shape[:1]) + tuple(input.shape[2:]) if input.ndim > 1 else ()
    if tuple(target.shape) != expected:
        raise ValueError(f"{name}: input of shape {tuple(input.shape)} needs class-index targets "
                         f"of shape {expected}, got {tuple(target.shape)}")


def _class_weight(input, weight, class_dim, name):
    """A class ``weight`` must have one entry per class."""
    if weight is not None and tuple(weight.shape) != (input.shape[class_dim],):
        raise ValueError(f"{name}: weight must have shape ({input.shape[class_dim]},) (one per "
                         f"class of the input of shape {tuple(input.shape)}), got shape "
                         f"{tuple(weight.shape)}")


def _index_value(target):
    """Class-index targets as the value a compat tensor holds: integers carry no gradient,
    so the target-side arithmetic (ignore mask, class weights) needs no tape and runs as
    core operations."""
    unwrap = getattr(target, "__fnarray_array__", None)
    return target if unwrap is None else unwrap()


def _pick(values, target, class_dim):
    """``values[n, target[n, ...], ...]`` along ``class_dim``, for in-range targets: one
    ``gather`` whose index along the class axis is ``target`` itself and an ``arange`` along
    each other axis (``take_along_axis`` with the class axis kept and squeezed away costs two
    reshapes and a wrap of negative indices more, five small kernels in a loss program)."""
    key = []
    for d in range(values.ndim):
        if d == class_dim:
            key.append(target)
            continue
        k = d if d < class_dim else d - 1  # the axis of ``target`` it indexes
        along = fa.reshape(fa.arange(values.shape[d], device=fa.device_of(values)),
                           (1,) * k + (values.shape[d],) + (1,) * (target.ndim - k - 1))
        key.append(fa.broadcast_to(along, target.shape))
    return _GATHER.bind(values, *key)


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction: str = "mean"):
    """``-w[y] * input[y]``; 'mean' divides by the summed weights of non-ignored targets."""
    if weight is None and size_average is None and reduce is None:
        out = _nll_direct(input, target, ignore_index, reduction)
        if out is not None:  # a training step's usual loss, recorded directly
            return out
    return _nll_loss(input, target, weight, size_average, ignore_index, reduce, reduction)


@_grad_fn("NllLossBackward0")
def _nll_loss(input, target, weight, size_average, ignore_index, reduce, reduction):
    """``nll_loss`` past its direct path: options, checks, then the ``class_nll`` primitive
    (no weights) or the weighted composition's staged node."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: targets must be class indices (an integer dtype), got "
                        f"{target.dtype}")
    _class_targets(input, target, "nll_loss")
    class_dim = 1 if input.ndim > 1 else 0
    _class_weight(input, weight, class_dim, "nll_loss")
    if weight is None:  # one primitive each way (``ops/loss.py``), recorded as one node
        _check_reduction(reduction, "nll_loss")
        return _CLASS_NLL.bind(input, _index_value(target), ignore_index=ignore_index,
                               reduction=reduction, class_dim=class_dim)
    return _NLL(input, target, weight, class_dim=class_dim, ignore_index=ignore_index,
                reduction=reduction)


def _nll(input, target, weight, *, class_dim, ignore_index, reduction):
    """Class-weighted ``nll_loss`` past its checks; a recorded eager call runs as one
    staged node."""
    target = _index_value(target)
    valid = target != ignore_index
    safe = fa.where(valid, target, 0)
    picked = _pick(input, safe, class_dim)
    w = fa.astype(fa.where(valid, fa.take(weight, safe), 0.0), input.dtype)
    loss = -picked * w
    if reduction == "mean":
        return fa.sum(loss) / fa.sum(w)
    return _reduce(loss, reduction, "nll_loss")


_NLL = StagedEager(_nll, "nll_loss")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0):
    """``log_softmax`` over the class axis followed by ``nll_loss`` (index targets) or the
    cross entropy with class probabilities (float targets of the input's shape)."""
    if weight is None and size_average is None and reduce is None and not label_smoothing:
        out = _ce_direct(input, target, ignore_index, reduction)
        if out is not None:  # a training step's usual loss, recorded directly
            return out
    reduction = _legacy_reduction(size_average, reduce, reduction)
    class_dim = 1 if input.ndim > 1 else 0
    n_classes = input.shape[class_dim]
    _class_weight(input, weight, class_dim, "cross_entropy")
    logp = log_softmax(input, class_dim)
    wshape = (n_classes,) + (1,) * (input.ndim - class_dim - 1)
    if is_float(target.dtype):
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        terms = logp * target
        if weight is not None:
            terms = terms * fa.reshape(weight, wshape)
        loss = -fa.sum(terms, axis=class_dim)
        if reduction == "mean":
            return fa.sum(loss) / (input.size // n_classes)
        return _reduce(loss, reduction, "cross_entropy")
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if not label_smoothing:
        return nll
    valid = target != ignore_index
    terms = logp if weight is None else logp * fa.reshape(weight, wshape)
    smooth = fa.where(valid, -fa.sum(terms, axis=class_dim), 0.0)
    if reduction == "mean":
        if weight is None:
            denom = fa.sum(fa.astype(valid, input.dtype))
        else:
            denom = fa.sum(fa.where(valid, fa.take(weight, fa.where(valid, target, 0)), 0.0))
        smooth = fa.sum(smooth) / denom
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)


@_grad_fn("BinaryCrossEntropyBackward0")
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean"):
    """``-w (y log x + (1 - y) log(1 - x))`` with the logs clamped at -100, and PyTorch's
    gradient ``(x - y) / max((1 - x) x, 1e-12)`` (see ``_bce``); ``log(0)`` is never
    evaluated, so no NumPy warning."""
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"binary_cross_entropy: target size {tuple(target.shape)} must equal "
                         f"input size {tuple(input.shape)}")
    loss = bce_elementwise(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "binary_cross_entropy")


@_grad_fn("BinaryCrossEntropyWithLogitsBackward0")
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None):
    """Sigmoid + binary cross entropy in one numerically stable expression;
    ``pos_weight`` scales the positive term."""
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: target size {tuple(target.shape)} "
                         f"must equal input size {tuple(input.shape)}")
    log_sig_neg = fa.log1p(fa.exp(-fa.abs(input))) + fa.maximum(-input, 0.0)  # -log sigmoid(x)
    scale = 1.0 if pos_weight is None else (pos_weight - 1) * target + 1
    loss = (1 - target) * input + scale * log_sig_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction),
                   "binary_cross_entropy_with_logits")


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False):
    """``target * (log target - input)`` with ``input`` in log space; 'batchmean' divides the
    sum by the batch size (the mathematically correct KL divergence)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if log_target:
        loss = fa.exp(target) * (target - input)
    else:
        safe = fa.where(target > 0, target, 1.0)
        loss = fa.where(target > 0, target * fa.log(safe), 0.0) - target * input
    if reduction == "batchmean":
        return fa.sum(loss) / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    n1 = fa.sqrt(fa.sum(x1 * x1, axis=dim))
    n2 = fa.sqrt(fa.sum(x2 * x2, axis=dim))
    return fa.sum(x1 * x2, axis=dim) / (fa.maximum(n1, eps) * fa.maximum(n2, eps))


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                          reduce=None, reduction: str = "mean"):
    """``1 - cos`` for target 1, ``max(0, cos - margin)`` for target -1."""
    dim = input1.ndim - 1
    eps = 1e-12
    cos = fa.sum(input1 * input2, axis=dim) / fa.sqrt(
        (fa.sum(input1 * input1, axis=dim) + eps) * (fa.sum(input2 * input2, axis=dim) + eps))
    loss = fa.where(target == 1, 1 - cos, fa.where(target == -1, fa.maximum(cos - margin, 0.0), 0.0))
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "cosine_embedding_loss")


# ---------------------------------------------------------------------------- attention


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None, *,
                                 dropout_key=None):
    """``softmax(q k^T * scale + mask) v``; a boolean ``attn_mask`` marks positions that may
    attend, a float mask is added.  ``dropout_key`` feeds dropout for core arrays."""
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = fa.matmul(query, fa.matrix_transpose(key)) * scale
    if is_causal:
        allowed = fa.tril(fa.ones((L, S), dtype=fa.bool, device=fa.device_of(scores)))
        scores = fa.where(allowed, scores, -math.inf)
    if attn_mask is not None:
        if attn_mask.dtype == fa.bool:
            scores = fa.where(attn_mask, scores, -math.inf)
        else:
            scores = scores + attn_mask
    weights = softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, key=dropout_key)
    return fa.matmul(weights, value)


# ---------------------------------------------------------------------------- resampling


def _source_index(out_size: int, in_size: int, scale, mode: str, align_corners):
    """Source coordinates for each output position along one axis (NumPy, static)."""
    import numpy as np
    dst = np.arange(out_size, dtype=np.float64)
    if mode == "nearest":
        step = in_size / out_size if scale is None else 1.0 / scale
        return np.minimum(np.floor(dst * step).astype(np.int64), in_size - 1)
    if align_corners:
        step = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        return dst * step
    step = in_size / out_size if scale is None else 1.0 / scale
    return np.maximum((dst + 0.5) * step - 0.5, 0.0)


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False):
    """Resize the spatial axes (2..) with 'nearest', 'linear', 'bilinear', 'bicubic' or
    'trilinear' interpolation, one axis at a time (separably).  'bicubic' is PyTorch's
    (``a = -0.75``, edge pixels repeated); ``antialias=True`` (bilinear/bicubic, without
    ``align_corners``) stretches the filter when shrinking, as PyTorch's (= Pillow's)."""
    import numpy as np
    spatial = input.ndim - 2
    if spatial < 1:
        raise ValueError(f"interpolate: expected a (N, C, ...) input, got shape {tuple(input.shape)}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if mode not in ("nearest", "linear", "bilinear", "bicubic", "trilinear"):
        raise ValueError(f"interpolate: unsupported mode {mode!r}; use nearest, linear, "
                         f"bilinear, bicubic or trilinear")
    if antialias and (mode not in ("bilinear", "bicubic") or align_corners):
        raise ValueError(f"interpolate: antialias=True needs mode 'bilinear' or 'bicubic' "
                         f"without align_corners, got mode {mode!r}")
    if mode != "nearest" and {"linear": 1, "bilinear": 2, "bicubic": 2,
                              "trilinear": 3}[mode] != spatial:
        raise ValueError(f"interpolate: mode {mode!r} needs {mode!r}-compatible input; got "
                         f"{spatial} spatial dims (shape {tuple(input.shape)})")
    in_sizes = tuple(input.shape[2:])
    scales = (scale_factor,) * spatial if isinstance(scale_factor, (int, float)) else scale_factor
    if size is not None:
        out_sizes = (size,) * spatial if isinstance(size, int) else tuple(size)
        scales = (None,) * spatial
    else:
        out_sizes = tuple(int(math.floor(n * s)) for n, s in zip(in_sizes, scales))
        if recompute_scale_factor:
            scales = (None,) * spatial
    out = input
    for ax, (n_in, n_out, s) in enumerate(zip(in_sizes, out_sizes, scales), start=2):
        src = _source_index(n_out, n_in, s, mode, align_corners)
        if mode == "nearest":
            out = fa.take(out, src, axis=ax)
            continue
        if antialias or mode == "bicubic":
            out = _resample_axis(out, ax, _resize_weights(n_in, n_out, s, mode, align_corners,
                                                          antialias))
            continue
        lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        frac_shape = (n_out,) + (1,) * (input.ndim - 1 - ax)
        frac = fa.asarray((src - lo).reshape(frac_shape), dtype=input.dtype,
                          device=fa.device_of(input))
        a, b = fa.take(out, lo, axis=ax), fa.take(out, hi, axis=ax)
        out = a + (b - a) * frac
    return out


def _resize_weights(n_in: int, n_out: int, scale, mode: str, align_corners, antialias: bool):
    """The ``(n_out, n_in)`` matrix of one axis of a bicubic or antialiased resize."""
    import numpy as np
    from fnarray.data import _resample
    if antialias:
        return _resample._weights(n_in, n_out, mode, True)
    if align_corners:
        src = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        src = (np.arange(n_out) + 0.5) * (n_in / n_out if scale is None else 1.0 / scale) - 0.5
    return _resample.cubic_weights(src, n_in)


def _resample_axis(x, axis: int, weights):
    """``x`` with axis ``axis`` replaced by ``weights @`` that axis (a recorded product)."""
    w = fa.asarray(weights, dtype=x.dtype, device=fa.device_of(x))
    moved = fa.moveaxis(x, axis, -1)
    return fa.moveaxis(fa.matmul(moved, w.T), -1, axis)


# Patch functions and the functions of functional_more live in their own modules (by size).
from fnarray.nn.functional_patches import (  # noqa: E402,F401
    fold, pixel_shuffle, pixel_unshuffle, unfold)
from fnarray.nn.functional_more import (  # noqa: E402,F401
    embedding_bag, gaussian_nll_loss, glu, gumbel_softmax, hardshrink, hinge_embedding_loss,
    margin_ranking_loss, multilabel_soft_margin_loss, pairwise_distance, poisson_nll_loss, prelu,
    soft_margin_loss, softshrink, threshold, triplet_margin_loss)
