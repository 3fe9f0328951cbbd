"""Linear and Bilinear layers."""

from __future__ import annotations

import math

from fnarray.nn import functional as F, init
from fnarray.nn.layers._util import check_features, empty_parameter, reset_weight_and_bias
from fnarray.nn.module import Module


class Linear(Module):
    """``y = x W^T + b`` with W of shape (out_features, in_features).

    Initialisation (PyTorch's): ``kaiming_uniform_(W, a=sqrt(5))``, i.e.
    U(-1/sqrt(in), 1/sqrt(in)), and the bias U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = empty_parameter((out_features, in_features), dtype, device)
        if bias:
            self.bias = empty_parameter((out_features,), dtype, device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self)

    def forward(self, input):
        check_features(self, input, -1, self.in_features, "features")
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Bilinear(Module):
    """``y_k = x1^T W_k x2 + b_k`` with W of shape (out, in1, in2); U(-1/sqrt(in1), ...)."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        self.weight = empty_parameter((out_features, in1_features, in2_features), dtype, device)
        if bias:
            self.bias = empty_parameter((out_features,), dtype, device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        check_features(self, input1, -1, self.in1_features, "features in input1")
        check_features(self, input2, -1, self.in2_features, "features in input2")
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
