"""Tensor creation under PyTorch names and signatures (``zeros(2, 3, dtype=...)``)."""

from __future__ import annotations

import math

import numpy as np

from fnarray import api as fa
from fnarray.compat import linalg as _linalg, promotion as _promotion, random as _random
from fnarray.compat import return_types
from fnarray.compat.tape import op_scope
from fnarray.compat.tensor import Tensor, _shape_args
from fnarray.compat.defaults import default_complex, default_float


def _finish(value, requires_grad: bool) -> Tensor:
    t = Tensor._make(value, None, 0)
    return t.requires_grad_(True) if requires_grad else t


def _dt(dtype):
    return None if dtype is None else np.dtype(dtype)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, scalars, arrays, tensors)."""
    if isinstance(data, Tensor):
        data = data.detach()._value
    elif isinstance(data, (list, tuple)):
        data = _unwrap_nested(data)
    if dtype is None and not isinstance(data, (fa.ArrayBase, np.ndarray, np.generic)):
        dtype = _python_default(data)
    return _finish(fa.asarray(data, dtype=_dt(dtype), device=device, copy=True), requires_grad)


def _python_default(data):
    """The dtype PyTorch infers for Python data holding a Python float (complex number):
    those count as the default float (complex) dtype, NumPy scalars and nested tensors
    as their own, promoted by category (``[float32 tensor, 2.5]`` is the default float,
    ``[np.float32(1.5)]`` float32); empty data is the default float.  ``None`` leaves
    the inference to the core, which already gives float32 and complex64 under the
    float32 default."""
    if default_float() == np.float32:
        return None
    leaves = _leaf_dtypes(data, set())
    if not leaves:  # ``tensor([])``
        return default_float()
    if not {float, complex} & leaves:
        return None
    dt = default_complex() if complex in leaves else default_float()
    for leaf in leaves - {float, complex}:
        dt = _promotion._promote(dt, leaf)
    return dt


def _leaf_dtypes(data, found: set) -> set:
    """``found`` plus the NumPy dtype of each array leaf of nested ``data``, and the types
    ``float`` / ``complex`` for Python floats and complex numbers (ints and bools add
    int64 / bool, which the floats outrank)."""
    if isinstance(data, (list, tuple)):
        for d in data:
            _leaf_dtypes(d, found)
    elif type(data) in (float, complex):
        found.add(type(data))
    else:
        found.add(np.asarray(data).dtype)
    return found


def _unwrap_nested(data):
    if isinstance(data, Tensor):
        return np.asarray(data.detach().concrete("tensor()"))
    if isinstance(data, (list, tuple)):
        return [_unwrap_nested(d) for d in data]
    return data


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, without a copy when it already is one of that dtype/device."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype) if (dtype or device) else data
    if isinstance(data, fa.ArrayBase):
        value = data if dtype is None else fa.astype(data, _dt(dtype))
        return Tensor._make(value, None, 0)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor holding a copy of ``ndarray`` (fnarray values never change, so unlike
    PyTorch later writes to ``ndarray`` are not seen)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    return Tensor._make(fa.asarray(ndarray, copy=True), None, 0)


def _filled(fill, size, dtype, device, requires_grad):
    shape = _shape_args(size)
    return _finish(fa.full(shape, fill, dtype=_dt(dtype) or default_float(), device=device),
                   requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _filled(0, size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _filled(1, size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    fill_value = fill_value.item() if isinstance(fill_value, Tensor) else fill_value
    if dtype is None:
        dtype = np.asarray(fill_value).dtype
        dtype = np.int64 if dtype.kind in "iu" else (
            np.bool_ if dtype.kind == "b" else
            default_complex() if dtype.kind == "c" else default_float())
    return _filled(fill_value, (tuple(size),), dtype, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad: bool = False,
         generator=None) -> Tensor:
    """Uniform values in [0, 1) (the default float unless ``dtype``)."""
    return _finish(_random.uniform(_shape_args(size), dtype, device, generator), requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: bool = False,
          generator=None) -> Tensor:
    """Standard normal values (the default float unless ``dtype``)."""
    return _finish(_random.normal(_shape_args(size), dtype, device, generator), requires_grad)


def randint(low, high=None, size=None, *, dtype=None, device=None,
            requires_grad: bool = False, generator=None) -> Tensor:
    """Integers uniform in ``[low, high)``; ``randint(high, size)`` starts at 0."""
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    return _finish(_random.randint(low, high, tuple(size), dtype, device, generator),
                   requires_grad)


def randperm(n: int, *, dtype=None, device=None, generator=None) -> Tensor:
    """A random ordering of ``0 .. n-1`` (int64 unless ``dtype``)."""
    return Tensor._make(_random.permutation(n, _dt(dtype), device, generator), None, 0)


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """0/1 draws of ``input``'s dtype, 1 with probability ``input`` (or ``p``)."""
    probs = input.detach()._value if p is None else fa.full(input.shape, p, input.dtype)
    return Tensor._make(_random.bernoulli(probs, input.dtype, input.device, generator),
                        None, 0)


def _like(fn, input, dtype, device, requires_grad):
    return fn(*input.shape, dtype=dtype or input.dtype, device=device or input.device,
              requires_grad=requires_grad)


def zeros_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(zeros, input, dtype, device, requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(ones, input, dtype, device, requires_grad)


def empty_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(zeros, input, dtype, device, requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(rand, input, dtype, device, requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(randn, input, dtype, device, requires_grad)


def full_like(input, fill_value, dtype=None, device=None,
              requires_grad: bool = False) -> Tensor:
    return full(input.shape, fill_value, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None and all(float(v).is_integer() and not isinstance(v, float)
                             for v in (start, end, step)):
        dtype = np.int64
    return _finish(fa.arange(start, end, step, dtype=_dt(dtype) or default_float(),
                             device=device), requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    return _finish(fa.linspace(start, end, steps, dtype=_dt(dtype) or default_float(),
                               device=device), requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    return _finish(fa.eye(n, m, dtype=_dt(dtype) or default_float(), device=device),
                   requires_grad)


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if isinstance(input, Tensor):
        return input.flatten(start_dim, end_dim)
    # A core array or tracer (a module's forward traced by ``compat.compile``).
    shape = tuple(input.shape)
    if not shape:
        return fa.reshape(input, (1,))
    s, e = start_dim % len(shape), end_dim % len(shape)
    return fa.reshape(input, (*shape[:s], math.prod(shape[s:e + 1]), *shape[e + 1:]))


def det(input) -> Tensor:
    """The determinant (of each matrix in a stack)."""
    return _linalg.det(input)


def svd(input, some: bool = True, compute_uv: bool = True):
    """``(U, S, V)`` with ``input = U diag(S) V^T`` (``torch.svd``: V, not Vh).  ``some``
    keeps the reduced factors; ``compute_uv=False`` returns zero-filled full-size U and
    V, as PyTorch does."""
    if not compute_uv:
        m, n = input.shape[-2:]
        batch = tuple(input.shape[:-2])
        zeros_uv = [Tensor._make(fa.zeros(batch + (k, k), input.dtype, input.device), None, 0)
                    for k in (m, n)]
        return return_types.svd(zeros_uv[0], _linalg.svdvals(input), zeros_uv[1])
    u, s, vh = _linalg.svd(input, full_matrices=not some)
    with op_scope("LinalgSvdBackward0"):
        return return_types.svd(u, s, fa.matrix_transpose(vh))
