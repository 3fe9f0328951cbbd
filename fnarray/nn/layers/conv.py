"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d/3d."""

from __future__ import annotations


from fnarray.nn import functional as F
from fnarray.nn._conv import ntuple
from fnarray.nn.layers._util import check_features, empty_parameter, reset_weight_and_bias
from fnarray.nn.module import Module

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared construction, initialisation and repr of the convolution layers."""

    spatial = 2
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None, output_padding=0):
        super().__init__()
        name = type(self).__name__
        n = self.spatial
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"{name}: padding must be 'same', 'valid' or ints, got {padding!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", name)
        self.stride = ntuple(stride, n, "stride", name)
        self.padding = padding if isinstance(padding, str) else ntuple(padding, n, "padding", name)
        self.dilation = ntuple(dilation, n, "dilation", name)
        self.output_padding = ntuple(output_padding, n, "output_padding", name)
        self.groups, self.padding_mode = groups, padding_mode
        shape = ((in_channels, out_channels // groups) if self.transposed
                 else (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = empty_parameter(shape, dtype, device)
        if bias:
            self.bias = empty_parameter((out_channels,), dtype, device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self)

    def _check_input(self, input) -> None:
        axis = 1 if input.ndim == self.spatial + 2 else 0
        if input.ndim not in (self.spatial + 1, self.spatial + 2):
            raise ValueError(f"{self!r}: expected a {self.spatial + 1}-D or {self.spatial + 2}-D "
                             f"input, got input of shape {tuple(input.shape)}")
        check_features(self, input, axis, self.in_channels, "channels")

    def extra_repr(self) -> str:
        n = self.spatial
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, device, dtype)

    def forward(self, input):
        self._check_input(input)
        conv = (F.conv1d, F.conv2d, F.conv3d)[self.spatial - 1]
        padding = self.padding
        if self.padding_mode != "zeros" and not isinstance(padding, str):
            widths = []
            for p in reversed(padding):
                widths += [p, p]
            input = F.pad(input, widths, mode=self.padding_mode)
            padding = 0
        return conv(input, self.weight, self.bias, self.stride, padding, self.dilation,
                    self.groups)


class Conv1d(_Conv):
    spatial = 1


class Conv2d(_Conv):
    spatial = 2


class Conv3d(_Conv):
    spatial = 3


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f"{type(self).__name__}: only padding_mode='zeros' is supported")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, device, dtype, output_padding)

    def forward(self, input, output_size=None):
        self._check_input(input)
        conv = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[self.spatial - 1]
        return conv(input, self.weight, self.bias, self.stride, self.padding,
                    self._output_padding(input, output_size), self.groups, self.dilation)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        want = tuple(output_size)[-self.spatial:]
        extra = []
        for i, w in enumerate(want):
            n = input.shape[input.ndim - self.spatial + i]
            smallest = ((n - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            if not smallest <= w < smallest + self.stride[i]:
                raise ValueError(f"{self!r}: requested output size {want} is not reachable from "
                                 f"input of shape {tuple(input.shape)}")
            extra.append(w - smallest)
        return tuple(extra)


class ConvTranspose1d(_ConvTranspose):
    spatial = 1


class ConvTranspose2d(_ConvTranspose):
    spatial = 2


class ConvTranspose3d(_ConvTranspose):
    spatial = 3
