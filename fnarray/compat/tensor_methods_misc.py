"""Small Tensor methods and functions PyTorch code leans on: ``new_zeros/new_ones/
new_full/new_empty/new_tensor``, ``is_floating_point``, ``is_complex``, ``sum_to_size``,
``t == None`` (False, not an error), ``value in t``, ``finfo``/``iinfo`` (``limits``), and PyTorch's
integer division by zero (``RuntimeError: ZeroDivisionError``; NumPy would give 0).
"""

from __future__ import annotations

import numpy as np

from fnarray import api as fa
from fnarray.compat import ops
from fnarray.compat.limits import finfo, iinfo
from fnarray.compat.tape import op_scope
from fnarray.compat.tensor import Tensor, _raw, _shape_args
from fnarray.core.shapes import is_float


def _new(fill):
    def method(self, *size, dtype=None, device=None, requires_grad: bool = False,
               **_layout):
        dt = self.dtype if dtype is None else np.dtype(dtype)
        out = Tensor._make(fa.full(_shape_args(size), fill, dtype=dt,
                                   device=device or self.device), None, 0)
        return out.requires_grad_(True) if requires_grad else out
    return method


def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False,
             **_layout) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value``, with this tensor's dtype/device
    unless given."""
    return _new(_raw(fill_value))(self, size, dtype=dtype, device=device,
                                  requires_grad=requires_grad)


def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False,
               **_layout) -> Tensor:
    """A copy of ``data`` with this tensor's dtype/device unless given."""
    from fnarray.compat.functional import tensor
    return tensor(data, dtype=self.dtype if dtype is None else dtype,
                  device=device or self.device, requires_grad=requires_grad)


def is_floating_point(input) -> bool:
    return is_float(input.dtype)


def is_complex(input) -> bool:
    return input.dtype.kind == "c"


def sum_to_size(self, *size) -> Tensor:
    """Sum the broadcast dimensions away so the result has ``size`` (which ``self`` must
    be broadcastable from), as gradients of broadcasting are reduced."""
    target = tuple(_shape_args(size))
    shape = tuple(self.shape)
    lead = len(shape) - len(target)
    if lead < 0 or any(t not in (1, s) for t, s in zip(target, shape[lead:])):
        raise RuntimeError(f"sum_to_size: size {list(target)} is not expandable to size "
                           f"{list(shape)}")
    axes = tuple(range(lead)) + tuple(lead + i for i, (t, s) in
                                      enumerate(zip(target, shape[lead:])) if t == 1 and s != 1)
    if not axes:
        return self
    with op_scope("SumBackward1"):
        return fa.reshape(fa.sum(self, axis=axes), target)


_eq, _ne = Tensor.__eq__, Tensor.__ne__


def _tensor_eq(self, other):
    """``t == None`` is False (PyTorch), otherwise elementwise equality."""
    return False if other is None else _eq(self, other)


def _tensor_ne(self, other):
    return True if other is None else _ne(self, other)


def _contains(self, element) -> bool:
    """``element in t``: whether any element equals ``element`` (a number or tensor)."""
    if not isinstance(element, (Tensor, int, float, bool, complex, np.generic)):
        raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you "
                           f"passed in a {type(element).__name__}.")
    return bool(fa.any(fa.equal(self.detach(), _raw(element))))


def _integral(x) -> bool:
    if isinstance(x, (bool, int, np.integer, np.bool_)):
        return True
    dtype = getattr(x, "dtype", None)
    return dtype is not None and np.dtype(dtype).kind in "iub"


def _has_zero(x) -> bool:
    if isinstance(x, Tensor):
        try:
            x = x.detach().concrete("the division-by-zero check")
        except TypeError:  # traced (jit/vmap): the value is not known here
            return False
    return bool(np.any(np.asarray(x) == 0))


def _checked(fn, divisor: int, always: bool = True):
    """``fn`` raising PyTorch's error when integer operands divide by zero; ``divisor``
    is the position of the divisor argument; unless ``always``, only with a rounding
    mode (``div``)."""
    def op(*args, **kwargs):
        if (always or kwargs.get("rounding_mode") is not None) and len(args) > 1 \
                and _integral(args[0]) and _integral(args[1]) and _has_zero(args[divisor]):
            raise RuntimeError("ZeroDivisionError")
        return fn(*args, **kwargs)
    op.__name__, op.__doc__ = getattr(fn, "__name__", "op"), fn.__doc__
    return op


def _install() -> None:
    for name, fn in (("new_zeros", _new(0)), ("new_ones", _new(1)), ("new_empty", _new(0)),
                     ("new_full", new_full), ("new_tensor", new_tensor),
                     ("is_floating_point", is_floating_point), ("is_complex", is_complex),
                     ("sum_to_size", sum_to_size), ("__eq__", _tensor_eq),
                     ("__ne__", _tensor_ne), ("__contains__", _contains)):
        setattr(Tensor, name, fn)
    for name in ("is_floating_point", "is_complex"):
        ops.FUNCTIONS[name] = globals()[name]
    ops.FUNCTIONS["finfo"], ops.FUNCTIONS["iinfo"] = finfo, iinfo
    for name, divisor, always in (("floor_divide", 1, True), ("remainder", 1, True),
                                  ("fmod", 1, True), ("div", 1, False),
                                  ("divide", 1, False)):
        if name in ops.FUNCTIONS:
            ops.FUNCTIONS[name] = _checked(ops.FUNCTIONS[name], divisor, always)
        if hasattr(Tensor, name):
            setattr(Tensor, name, _checked(getattr(Tensor, name), divisor, always))
    for name, divisor in (("__floordiv__", 1), ("__rfloordiv__", 0), ("__mod__", 1),
                          ("__rmod__", 0)):
        if hasattr(Tensor, name):
            setattr(Tensor, name, _checked(getattr(Tensor, name), divisor))


_install()
