"""``torch.fft``: ``fa.fft`` under PyTorch's argument names (``dim`` for the axes, ``s``/``n``
for sizes, ``norm``), plus ``fft2``/``ifft2``/``rfft2``/``irfft2`` over the last two
dimensions.  The transforms are recorded fnarray operations, so gradients flow (complex
ones in PyTorch's convention, which the compat tape applies)."""

from __future__ import annotations

from fnarray import fft as _fft

_NORM_DEFAULT = "backward"


def _one(name: str):
    def transform(input, n=None, dim: int = -1, norm=None):
        return getattr(_fft, name)(input, n=n, axis=dim, norm=norm or _NORM_DEFAULT)
    transform.__name__ = name
    transform.__doc__ = f"``torch.fft.{name}(input, n=None, dim=-1, norm=None)``."
    return transform


def _many(name: str, default_dim=None):
    def transform(input, s=None, dim=default_dim, norm=None):
        return getattr(_fft, name)(input, s=s, axes=dim, norm=norm or _NORM_DEFAULT)
    transform.__doc__ = f"``torch.fft.{name}(input, s=None, dim={default_dim}, norm=None)``."
    return transform


fft, ifft, rfft, irfft, hfft, ihfft = (_one(n) for n in ("fft", "ifft", "rfft", "irfft",
                                                          "hfft", "ihfft"))
fftn, ifftn, rfftn, irfftn = (_many(n) for n in ("fftn", "ifftn", "rfftn", "irfftn"))
fft2, ifft2, rfft2, irfft2 = (_many(n, (-2, -1)) for n in ("fftn", "ifftn", "rfftn", "irfftn"))


def fftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad: bool = False):
    from fnarray.compat.tensor import Tensor
    out = Tensor._make(_fft.fftfreq(n, d, dtype=dtype, device=device), None, 0)
    return out.requires_grad_(True) if requires_grad else out


def rfftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad: bool = False):
    from fnarray.compat.tensor import Tensor
    out = Tensor._make(_fft.rfftfreq(n, d, dtype=dtype, device=device), None, 0)
    return out.requires_grad_(True) if requires_grad else out


def fftshift(input, dim=None):
    return _fft.fftshift(input, axes=dim)


def ifftshift(input, dim=None):
    return _fft.ifftshift(input, axes=dim)
