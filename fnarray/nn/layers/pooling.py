"""Pooling layers."""

from __future__ import annotations

from fnarray.nn import functional as F
from fnarray.nn.layers._util import errors_named
from fnarray.nn.module import Module


class _MaxPoolNd(Module):
    fn = None

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        """The pooled input; with ``return_indices`` also the flat spatial index of each
        window's maximum (PyTorch's layout, usable with ``max_unpool``)."""
        with errors_named(self):
            return type(self).fn(input, self.kernel_size, self.stride, self.padding,
                                 self.dilation, ceil_mode=self.ceil_mode,
                                 return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    fn = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    fn = staticmethod(F.max_pool2d)


class MaxPool3d(_MaxPoolNd):
    fn = staticmethod(F.max_pool3d)


class _AvgPoolNd(Module):
    fn = None

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        with errors_named(self):
            return type(self).fn(input, self.kernel_size, self.stride, self.padding,
                                 self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    fn = staticmethod(F.avg_pool1d)

    def extra_repr(self) -> str:
        one = lambda v: v if isinstance(v, tuple) else (v,)
        return (f"kernel_size={one(self.kernel_size)}, stride={one(self.stride)}, "
                f"padding={one(self.padding)}")


class AvgPool2d(_AvgPoolNd):
    fn = staticmethod(F.avg_pool2d)


class AvgPool3d(_AvgPoolNd):
    fn = staticmethod(F.avg_pool3d)


class _AdaptivePoolNd(Module):
    fn = None

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        with errors_named(self):
            return type(self).fn(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    fn = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    fn = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveAvgPool3d(_AdaptivePoolNd):
    fn = staticmethod(F.adaptive_avg_pool3d)


class AdaptiveMaxPool1d(_AdaptivePoolNd):
    fn = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptivePoolNd):
    fn = staticmethod(F.adaptive_max_pool2d)
