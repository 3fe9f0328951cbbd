"""Patch extraction and rearrangement (re-exported by ``fnarray.nn.functional``):
``unfold`` (im2col), ``fold`` (col2im, overlaps summed), ``pixel_shuffle`` and
``pixel_unshuffle``, with PyTorch's layouts.

``unfold`` is one gather of the padded input at host-computed patch positions and
``fold`` the matching scatter-add, so both differentiate through the indexing rules
(each is the other's adjoint, as in PyTorch).
"""

from __future__ import annotations

import numpy as np

import fnarray as fa
from fnarray.nn._conv import ntuple


def _patch_grid(name, spatial, kernel_size, dilation, padding, stride):
    """``(rows, cols, out_hw)``: padded-input coordinates of every kernel tap of every
    block, each of shape ``(kh * kw, L)``."""
    kh, kw = ntuple(kernel_size, 2, "kernel_size", name)
    dh, dw = ntuple(dilation, 2, "dilation", name)
    ph, pw = ntuple(padding, 2, "padding", name)
    sh, sw = ntuple(stride, 2, "stride", name)
    h, w = spatial[0] + 2 * ph, spatial[1] + 2 * pw
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise RuntimeError(f"{name}: the kernel {(kh, kw)} with dilation {(dh, dw)} does not "
                           f"fit the padded input {(h, w)} (spatial size {tuple(spatial)}, "
                           f"padding {(ph, pw)})")
    ki, kj = np.meshgrid(np.arange(kh) * dh, np.arange(kw) * dw, indexing="ij")
    oi, oj = np.meshgrid(np.arange(oh) * sh, np.arange(ow) * sw, indexing="ij")
    rows = ki.reshape(-1, 1) + oi.reshape(1, -1)
    cols = kj.reshape(-1, 1) + oj.reshape(1, -1)
    return rows, cols, (ph, pw), (oh, ow), kh * kw


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding blocks of a ``(N, C, H, W)`` (or ``(C, H, W)``) input as columns:
    ``(N, C * kh * kw, L)`` with ``L`` the number of blocks."""
    if input.ndim not in (3, 4):
        raise ValueError(f"unfold: expected a 3-D (unbatched) or 4-D (batched) input, got "
                         f"shape {tuple(input.shape)}")
    x = input if input.ndim == 4 else fa.expand_dims(input, 0)
    n, c = x.shape[:2]
    rows, cols, (ph, pw), _, k = _patch_grid("unfold", x.shape[2:], kernel_size, dilation,
                                             padding, stride)
    if ph or pw:
        x = fa.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    patches = x[:, :, fa.asarray(rows), fa.asarray(cols)]  # (N, C, k, L)
    out = fa.reshape(patches, (n, c * k, rows.shape[1]))
    return out if input.ndim == 4 else out[0]


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The inverse layout of ``unfold``: columns ``(N, C * kh * kw, L)`` summed back into
    a ``(N, C, *output_size)`` image (overlapping values add up)."""
    if input.ndim not in (2, 3):
        raise ValueError(f"fold: expected a 2-D (unbatched) or 3-D (batched) input, got shape "
                         f"{tuple(input.shape)}")
    x = input if input.ndim == 3 else fa.expand_dims(input, 0)
    out_hw = ntuple(output_size, 2, "output_size", "fold")
    rows, cols, (ph, pw), (oh, ow), k = _patch_grid("fold", out_hw, kernel_size, dilation,
                                                    padding, stride)
    n, ck, length = x.shape
    if ck % k or length != oh * ow:
        raise RuntimeError(f"fold: expected size of input's dimension 1 to be divisible by "
                           f"the product of kernel_size ({k}) and dimension 2 to match the "
                           f"number of blocks ({oh} x {ow} = {oh * ow}), got input shape "
                           f"{tuple(input.shape)}")
    c = ck // k
    canvas = fa.zeros((n, c, out_hw[0] + 2 * ph, out_hw[1] + 2 * pw), dtype=x.dtype,
                      device=fa.device_of(x))
    canvas = canvas.at[:, :, fa.asarray(rows), fa.asarray(cols)].add(
        fa.reshape(x, (n, c, k, length)))
    out = canvas[:, :, ph:ph + out_hw[0], pw:pw + out_hw[1]]
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
