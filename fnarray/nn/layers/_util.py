"""Helpers shared by the layer modules."""

from __future__ import annotations

import fnarray as fa
from fnarray.core.shapes import canonical_dtype
from fnarray.nn.parameter import Parameter


def empty_parameter(shape, dtype=None, device=None) -> Parameter:
    """An (uninitialised: zero) parameter of ``shape``; layers initialise it in
    ``reset_parameters``."""
    dtype = fa.float32 if dtype is None else canonical_dtype(dtype)
    value = fa.zeros(tuple(shape), dtype=dtype)
    return Parameter(value if device is None else fa.device_put(value, str(device)))


def describe(layer) -> str:
    """A one-line name for error messages: ``Name(extra_repr)``, or ``layer`` itself when it
    is already a string."""
    if isinstance(layer, str):
        return layer
    return f"{layer._get_name()}({layer.extra_repr()})"


def check_features(layer, x, axis: int, expected: int, what: str) -> None:
    """Raise a ValueError naming the layer and both shapes when ``x.shape[axis] != expected``."""
    if x.ndim == 0 or x.ndim <= (axis if axis >= 0 else -axis - 1) or x.shape[axis] != expected:
        raise ValueError(f"{describe(layer)}: expected input with {expected} {what} (dimension "
                         f"{axis}), got input of shape {tuple(x.shape)}")
