"""PyTorch-signature convolution and pooling functions over the core N-d primitives.

Each factory builds the 1-d/2-d/3-d variant: it normalises PyTorch's arguments (ints or
tuples, ``padding='same'|'valid'``, unbatched inputs), checks shapes with messages that name
the function and both shapes, and calls ``fa.conv``, ``fa.conv_transpose``, ``fa.max_pool``,
``fa.avg_pool`` or ``fa.adaptive_avg_pool`` / ``fa.adaptive_max_pool``.
"""

from __future__ import annotations

import math

import numpy as np

import fnarray as fa
from fnarray.api.nn import _max_pool_taps


def ntuple(value, n: int, what: str, fn: str) -> tuple:
    """``value`` as an n-tuple of ints (PyTorch accepts an int or a sequence)."""
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise ValueError(f"{fn}: {what} must be an int or a tuple of {n} ints, got {value}")
    return value


def _batched(x, spatial: int, fn: str):
    """``(x with a batch axis, whether one was added)``."""
    if x.ndim == spatial + 2:
        return x, False
    if x.ndim == spatial + 1:
        return fa.expand_dims(x, 0), True
    raise ValueError(f"{fn}: expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D (batched) "
                     f"input, got shape {tuple(x.shape)}")


def _unbatch(x, added: bool):
    return fa.squeeze(x, axis=0) if added else x


def _autocast_bias(bias):
    """Under torch.autocast the bias joins the low precision."""
    from fnarray.compat.amp import autocast_bias
    return autocast_bias(bias)


def _bias(out, bias, spatial):
    bias = _autocast_bias(bias)
    return out if bias is None else out + fa.reshape(bias, (-1,) + (1,) * spatial)


def _same_padding(kernel, dilation) -> tuple:
    """'same' padding as (low, high) pairs: the extra cell goes to the high side."""
    pads = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def conv_nd(spatial: int):
    name = f"conv{spatial}d"

    def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
        x, added = _batched(input, spatial, name)
        if weight.ndim != spatial + 2:
            raise ValueError(f"{name}: weight must be {spatial + 2}-D, got shape {tuple(weight.shape)}")
        in_ch = weight.shape[1] * groups
        if x.shape[1] != in_ch:
            raise ValueError(f"{name}: expected input with {in_ch} channels (weight of shape "
                             f"{tuple(weight.shape)}, groups={groups}), but got input of shape "
                             f"{tuple(input.shape)}")
        stride = ntuple(stride, spatial, "stride", name)
        dilation = ntuple(dilation, spatial, "dilation", name)
        if padding == "valid":
            pads = ((0, 0),) * spatial
        elif padding == "same":
            pads = _same_padding(weight.shape[2:], dilation)
        else:
            pads = tuple((p, p) for p in ntuple(padding, spatial, "padding", name))
        out = fa.conv(x, weight, _autocast_bias(bias), stride=stride, padding=pads,
                      dilation=dilation, groups=groups)
        return _unbatch(out, added)

    conv.__name__ = name
    conv.__doc__ = (f"{spatial}-d cross-correlation of (N, C_in, ...) with weight "
                    f"(C_out, C_in/groups, ...), PyTorch's ``F.{name}``.")
    return conv


def conv_transpose_nd(spatial: int):
    name = f"conv_transpose{spatial}d"

    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                       groups: int = 1, dilation=1):
        x, added = _batched(input, spatial, name)
        if x.shape[1] != weight.shape[0]:
            raise ValueError(f"{name}: expected input with {weight.shape[0]} channels (weight of "
                             f"shape {tuple(weight.shape)}), but got input of shape "
                             f"{tuple(input.shape)}")
        out = fa.conv_transpose(
            x, weight, stride=ntuple(stride, spatial, "stride", name),
            padding=ntuple(padding, spatial, "padding", name),
            output_padding=ntuple(output_padding, spatial, "output_padding", name),
            dilation=ntuple(dilation, spatial, "dilation", name), groups=groups)
        return _unbatch(_bias(out, bias, spatial), added)

    conv_transpose.__name__ = name
    conv_transpose.__doc__ = (f"{spatial}-d transposed convolution with weight "
                              f"(C_in, C_out/groups, ...), PyTorch's ``F.{name}``.")
    return conv_transpose


def _pool_args(spatial, name, kernel_size, stride, padding, dilation=1):
    k = ntuple(kernel_size, spatial, "kernel_size", name)
    s = k if stride is None or stride == () or stride == [] else ntuple(stride, spatial, "stride", name)
    p = ntuple(padding, spatial, "padding", name)
    for pi, ki in zip(p, k):
        if pi > ki // 2:
            raise ValueError(f"{name}: padding {p} should be at most half of kernel_size {k}")
    return k, s, p, ntuple(dilation, spatial, "dilation", name)


def max_pool_nd(spatial: int):
    name = f"max_pool{spatial}d"

    def max_pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                 return_indices: bool = False):
        x, added = _batched(input, spatial, name)
        k, s, p, d = _pool_args(spatial, name, kernel_size, stride, padding, dilation)
        if not return_indices:
            return _unbatch(fa.max_pool(x, k, stride=s, padding=p, dilation=d,
                                        ceil_mode=ceil_mode), added)
        out, taps = _max_pool_taps(x, k, s, p, d, ceil_mode)
        indices = _tap_indices(taps, x.shape[2:], k, s, p, d)
        return _unbatch(out, added), _unbatch(indices, added)

    max_pool.__name__ = name
    max_pool.__doc__ = (f"PyTorch's ``F.{name}``: the max over each (dilated) window; with "
                        f"``return_indices=True`` also the flat spatial index of each maximum.")
    return max_pool


def _tap_indices(taps, spatial, kernel, strides, padding, dilation):
    """PyTorch's ``return_indices`` from the ``max_pool`` primitive's ``taps`` (the kernel
    offset of each window's first maximum): the flat index over the input's spatial axes,
    int64 of shape ``(N, C, *out)``; window starts come from the static geometry."""
    out, nd = taps.shape[2:], len(kernel)
    taps = fa.astype(taps, fa.int64)
    flat = None
    for a, (n, o, k, s, p, d) in enumerate(zip(spatial, out, kernel, strides, padding,
                                               dilation)):
        offset = (taps // math.prod(kernel[a + 1:])) % k
        start = (np.arange(o, dtype=np.int64) * s - p).reshape((o,) + (1,) * (nd - a - 1))
        pos = offset * d + fa.asarray(start, device=fa.device_of(taps))
        flat = pos if flat is None else flat * n + pos
    return flat


def avg_pool_nd(spatial: int):
    name = f"avg_pool{spatial}d"

    def avg_pool(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        x, added = _batched(input, spatial, name)
        k, s, p, _ = _pool_args(spatial, name, kernel_size, stride, padding)
        out = fa.avg_pool(x, k, stride=s, padding=p, ceil_mode=ceil_mode,
                          count_include_pad=count_include_pad, divisor_override=divisor_override)
        return _unbatch(out, added)

    avg_pool.__name__ = name
    avg_pool.__doc__ = f"PyTorch's ``F.{name}``: the mean over each window."
    return avg_pool


def adaptive_pool_nd(spatial: int, kind: str):
    name = f"adaptive_{kind}_pool{spatial}d"

    def adaptive_pool(input, output_size):
        x, added = _batched(input, spatial, name)
        size = ntuple(output_size, spatial, "output_size", name)
        size = tuple(x.shape[2 + i] if o is None else o for i, o in enumerate(size))
        fn = fa.adaptive_avg_pool if kind == "avg" else fa.adaptive_max_pool
        return _unbatch(fn(x, size), added)

    adaptive_pool.__name__ = name
    adaptive_pool.__doc__ = (f"PyTorch's ``F.{name}``: window i covers "
                             f"[floor(i*in/out), ceil((i+1)*in/out)).")
    return adaptive_pool
