"""Patch extraction and rearrangement (re-exported by ``fnarray.nn.functional``):
``unfold`` (im2col), ``fold`` (col2im, overlaps summed), ``pixel_shuffle`` and
``pixel_unshuffle``, with PyTorch's layouts.

``unfold`` is the im2col primitive ``conv_patches`` (one copy out of a strided view of the
padded input) and ``fold`` its transpose ``conv_patches_transpose`` (one strided add per
kernel offset), each followed or preceded by a swap of the (channel, kernel) and sample
axes into PyTorch's ``(N, C * kh * kw, L)`` layout; both differentiate through those
primitives' rules (each is the other's adjoint, as in PyTorch).
"""

from __future__ import annotations

import fnarray as fa
from fnarray.nn._conv import ntuple
from fnarray.ops import conv as _conv


def _patch_geometry(name, spatial, kernel_size, dilation, padding, stride) -> dict:
    """The 2-d window geometry as ``conv_patches`` parameters plus the block grid ``out``;
    raises when the (dilated) kernel does not fit the padded input."""
    kernel = ntuple(kernel_size, 2, "kernel_size", name)
    dil = ntuple(dilation, 2, "dilation", name)
    pad = ntuple(padding, 2, "padding", name)
    strides = ntuple(stride, 2, "stride", name)
    padded = tuple(n + 2 * p for n, p in zip(spatial, pad))
    out = tuple((n - d * (k - 1) - 1) // s + 1 for n, k, d, s in zip(padded, kernel, dil, strides))
    if any(o <= 0 for o in out):
        raise RuntimeError(f"{name}: the kernel {kernel} with dilation {dil} does not "
                           f"fit the padded input {padded} (spatial size {tuple(spatial)}, "
                           f"padding {pad})")
    return dict(kernel=kernel, strides=strides, dilation=dil,
                padding=tuple((p, p) for p in pad)), out


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding blocks of a ``(N, C, H, W)`` (or ``(C, H, W)``) input as columns:
    ``(N, C * kh * kw, L)`` with ``L`` the number of blocks."""
    if input.ndim not in (3, 4):
        raise ValueError(f"unfold: expected a 3-D (unbatched) or 4-D (batched) input, got "
                         f"shape {tuple(input.shape)}")
    x = input if input.ndim == 4 else fa.expand_dims(input, 0)
    n, c = x.shape[:2]
    geom, out = _patch_geometry("unfold", x.shape[2:], kernel_size, dilation, padding, stride)
    cols = _conv.conv_patches.bind(x, **geom)  # (C, kh, kw, N, oh, ow)
    cols = fa.permute_dims(cols, (3, 0, 1, 2, 4, 5))
    k = geom["kernel"][0] * geom["kernel"][1]
    out = fa.reshape(cols, (n, c * k, out[0] * out[1]))
    return out if input.ndim == 4 else out[0]


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The inverse layout of ``unfold``: columns ``(N, C * kh * kw, L)`` summed back into
    a ``(N, C, *output_size)`` image (overlapping values add up)."""
    if input.ndim not in (2, 3):
        raise ValueError(f"fold: expected a 2-D (unbatched) or 3-D (batched) input, got shape "
                         f"{tuple(input.shape)}")
    x = input if input.ndim == 3 else fa.expand_dims(input, 0)
    out_hw = ntuple(output_size, 2, "output_size", "fold")
    geom, (oh, ow) = _patch_geometry("fold", out_hw, kernel_size, dilation, padding, stride)
    k = geom["kernel"][0] * geom["kernel"][1]
    n, ck, length = x.shape
    if ck % k or length != oh * ow:
        raise RuntimeError(f"fold: expected size of input's dimension 1 to be divisible by "
                           f"the product of kernel_size ({k}) and dimension 2 to match the "
                           f"number of blocks ({oh} x {ow} = {oh * ow}), got input shape "
                           f"{tuple(input.shape)}")
    cols = fa.reshape(x, (n, ck // k, *geom["kernel"], oh, ow))
    cols = fa.permute_dims(cols, (1, 2, 3, 0, 4, 5))  # (C, kh, kw, N, oh, ow)
    out = _conv.conv_patches_transpose.bind(cols, in_spatial=tuple(out_hw), **geom)
    return out if input.ndim == 3 else out[0]


def pixel_shuffle(input, upscale_factor: int):
    """``(*, C * r^2, H, W)`` → ``(*, C, H * r, W * r)``."""
    r = int(upscale_factor)
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                           f"is not divisible by {r * r}")
    x = fa.reshape(input, (*lead, c // (r * r), r, r, h, w))
    nl = len(lead)
    x = fa.permute_dims(x, (*range(nl), nl, nl + 3, nl + 1, nl + 4, nl + 2))
    return fa.reshape(x, (*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor: int):
    """``(*, C, H * r, W * r)`` → ``(*, C * r^2, H, W)`` (the inverse of pixel_shuffle)."""
    r = int(downscale_factor)
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle expects height and width to be divisible by "
                           f"downscale_factor, got {(h, w)} and {r}")
    x = fa.reshape(input, (*lead, c, h // r, r, w // r, r))
    nl = len(lead)
    x = fa.permute_dims(x, (*range(nl), nl, nl + 2, nl + 4, nl + 1, nl + 3))
    return fa.reshape(x, (*lead, c * r * r, h // r, w // r))
