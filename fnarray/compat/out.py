"""PyTorch's ``out=`` argument: ``torch.matmul(a, b, out=c)`` writes the result into ``c``.

Every ``torch.<op>`` function gets it here, once, when ``fnarray.compat`` exports its
functions (the op itself computes a new tensor as always).  What PyTorch checks is checked:
the result's dtype must be castable to ``out``'s (``int_out`` cannot take a float result);
an ``out`` of another shape is resized, with PyTorch's deprecation warning unless it was
empty; and nothing that requires grad may be involved, since a write into ``out`` cannot
be differentiated.  Ops returning several tensors (``torch.max(x, 1, out=(v, i))``) take
a tuple.
"""

from __future__ import annotations

import functools
import inspect
import warnings

from fnarray.compat import grad_mode
from fnarray.compat.tensor import Tensor, _check_cast


def with_out(name: str, fn):
    """``fn`` accepting ``out=``; returned unchanged when it takes ``out`` itself or is not
    a plain function (a class such as ``torch.finfo``)."""
    if not inspect.isfunction(fn):
        return fn
    try:
        if "out" in inspect.signature(fn).parameters:
            return fn
    except (TypeError, ValueError):
        return fn

    @functools.wraps(fn)
    def op(*args, out=None, **kwargs):
        result = fn(*args, **kwargs)
        return result if out is None else write_out(name, out, result)

    return op


def write_out(name: str, out, result):
    """Write ``result`` (a tensor or a tuple of them) into ``out`` and return ``out``."""
    if isinstance(result, tuple):
        if not isinstance(out, (tuple, list)) or len(out) != len(result):
            raise TypeError(f"{name}(): out must be a tuple of {len(result)} tensors")
        written = tuple(write_out(name, o, r) for o, r in zip(out, result))
        return type(result)(*written) if hasattr(result, "_fields") else written
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    result = result if isinstance(result, Tensor) else Tensor(result)
    if grad_mode.is_grad_enabled() and (result.requires_grad or out.requires_grad):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support "
                           f"automatic differentiation, but one of the arguments requires "
                           f"grad.")
    _check_cast(result.dtype, out.dtype)
    if tuple(out.shape) == tuple(result.shape):
        with grad_mode.no_grad():
            out.copy_(result)
        return out
    if out.numel():
        warnings.warn(f"An output with one or more elements was resized since it had shape "
                      f"{list(out.shape)}, which does not match the required output shape "
                      f"{list(result.shape)}. This behavior is deprecated, and in a future "
                      f"PyTorch release outputs will not be resized unless they have zero "
                      f"elements. You can explicitly reuse an out tensor t by resizing it, "
                      f"inplace, to zero elements with t.resize_(0).", UserWarning,
                      stacklevel=3)
    out.data = result.detach().to(out.dtype)
    return out
