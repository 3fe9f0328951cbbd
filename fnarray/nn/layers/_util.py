"""Helpers shared by the layer modules."""

from __future__ import annotations

import contextlib
import math

import fnarray as fa
from fnarray.compat.defaults import default_float
from fnarray.core.shapes import ShapeError, canonical_dtype
from fnarray.nn.parameter import Parameter


def empty_parameter(shape, dtype=None, device=None) -> Parameter:
    """An (uninitialised: zero) parameter of ``shape`` (the default float dtype unless
    ``dtype``); layers initialise it in ``reset_parameters``."""
    dtype = default_float() if dtype is None else canonical_dtype(dtype)
    value = fa.zeros(tuple(shape), dtype=dtype)
    return Parameter(value if device is None else fa.device_put(value, str(device)))


class ShapeMismatchError(ShapeError):
    """A layer got an input (or state) whose size disagrees with its configuration.

    PyTorch raises ``RuntimeError`` for these (``mat1 and mat2 shapes cannot be multiplied``,
    ``input.size(-1) must be equal to input_size``); fnarray's own convention is
    ``ValueError``. ``ShapeError`` is both, so code written for either catches it."""


def describe(layer) -> str:
    """A one-line name for error messages: ``Name(extra_repr)``, or ``layer`` itself when it
    is already a string."""
    if isinstance(layer, str):
        return layer
    return f"{layer._get_name()}({layer.extra_repr()})"


def check_features(layer, x, axis: int, expected: int, what: str) -> None:
    """Raise a ShapeMismatchError naming the layer and both shapes when
    ``x.shape[axis] != expected``."""
    if x.ndim == 0 or x.ndim <= (axis if axis >= 0 else -axis - 1) or x.shape[axis] != expected:
        raise ShapeMismatchError(f"{describe(layer)}: expected input with {expected} {what} "
                                 f"(dimension {axis}), got input of shape {tuple(x.shape)}")


@contextlib.contextmanager
def errors_named(layer):
    """Re-raise a ValueError/IndexError from the functions a layer calls with the layer's
    description in front, so the message names the layer as well as the operation."""
    try:
        yield
    except (ValueError, IndexError) as e:
        raise type(e)(f"{describe(layer)}: {e}") from None


def check_shape(layer, x, expected: tuple, what: str) -> None:
    """Raise a ShapeMismatchError naming the layer when ``x.shape != expected``."""
    if tuple(x.shape) != tuple(expected):
        raise ShapeMismatchError(f"{describe(layer)}: expected {what} of shape "
                                 f"{tuple(expected)}, got shape {tuple(x.shape)}")


def check_numel(layer, x, dim: int, sizes: tuple) -> None:
    """Raise a ShapeMismatchError naming the layer when axis ``dim`` of ``x`` cannot be split
    into ``sizes``."""
    if x.ndim == 0 or not -x.ndim <= dim < x.ndim or x.shape[dim] != math.prod(sizes):
        raise ShapeMismatchError(f"{describe(layer)}: cannot split dimension {dim} of input "
                                 f"shape {tuple(x.shape)} into {sizes} (needs "
                                 f"{math.prod(sizes)} elements)")


def reset_weight_and_bias(layer) -> None:
    """PyTorch's default for Linear and Conv layers: Kaiming-uniform weights (a=sqrt(5)) and
    biases uniform in +-1/sqrt(fan_in)."""
    from fnarray.nn import init
    init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
    if layer.bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(layer.weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(layer.bias, -bound, bound)
