"""PyTorch's scatter family: ``scatter_``, ``scatter_add_``, ``scatter_reduce(_)``,
``index_add(_)``, ``index_fill(_)``, ``masked_scatter(_)``.

Every update is functional underneath: the target positions are worked out on the host
from the (concrete) index, and the new value is ``flat.at[positions].set/add(...)`` of the
flattened tensor, so gradients flow to ``self`` and to ``src`` exactly as the ``.at``
updates define them.  The in-place methods rebind the handle through ``Tensor._inplace``.

``scatter_reduce`` with ``prod``/``amax``/``amin``/``mean`` must combine repeated indices;
it applies the updates in rounds, each round holding at most one write per position, so
every round is a plain read-modify-write and the result matches PyTorch for duplicates.
"""

from __future__ import annotations

import numpy as np

from fnarray import api as fa
from fnarray.compat.ops import FUNCTIONS, METHODS
from fnarray.compat.tape import op_scope
from fnarray.compat.tensor import Tensor, _raw
from fnarray.core.shapes import is_float

_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def _host_index(op: str, index) -> np.ndarray:
    idx = np.asarray(_raw(index))
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"{op}(): Expected dtype int64 for index, got {idx.dtype}")
    return idx.astype(np.int64, copy=False)


def _flat_positions(op: str, shape: tuple, dim: int, index: np.ndarray) -> np.ndarray:
    """Flat positions into a tensor of ``shape`` that ``index`` (scatter layout) targets."""
    nd = len(shape)
    if index.ndim != nd and not (nd == 0 and index.ndim <= 1):
        raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions "
                           f"as self tensor (index has {index.ndim}, self has {nd})")
    if nd == 0:
        return np.zeros(index.shape, np.int64)
    dim %= nd
    for d in range(nd):
        if d != dim and index.shape[d] > shape[d]:
            raise RuntimeError(f"{op}(): Size does not match at dimension {d}: index has "
                               f"size {index.shape[d]}, self has {shape[d]}")
    if index.size and (index.min() < 0 or index.max() >= shape[dim]):
        raise RuntimeError(f"{op}(): index {int(index.min() if index.min() < 0 else index.max())}"
                           f" is out of bounds for dimension {dim} with size {shape[dim]}")
    grids = list(np.indices(index.shape, sparse=True))
    grids[dim] = index
    return np.ravel_multi_index(tuple(np.broadcast_arrays(*grids)), shape)


def _source_values(op: str, src, index: np.ndarray, like):
    """``src`` cut to ``index``'s shape and flattened (a scalar stays a scalar)."""
    if not isinstance(src, Tensor) and not hasattr(src, "shape"):
        return fa.asarray(src, dtype=like.dtype) if not isinstance(src, (int, float, bool)) \
            else src
    if src.ndim != index.ndim and index.ndim:
        raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions as "
                           f"src tensor (index has {index.ndim}, src has {src.ndim})")
    for d, (n, m) in enumerate(zip(index.shape, src.shape)):
        if n > m:
            raise RuntimeError(f"{op}(): Size does not match at dimension {d}: index has "
                               f"size {n}, src has {m}")
    if tuple(src.shape) != index.shape:
        src = src[tuple(slice(0, n) for n in index.shape)]
    return fa.reshape(src, (-1,))


def _rounds(pos: np.ndarray) -> list:
    """Split the element numbers of ``pos`` into rounds with distinct positions each."""
    order = np.argsort(pos, kind="stable")
    sorted_pos = pos[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_pos)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(pos)]))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(pos)) - first
    return [np.flatnonzero(rank == r) for r in range(int(rank.max()) + 1 if len(pos) else 0)]


def scatter(input, dim: int, index, src=None, *, value=None, reduce=None):
    """Out-of-place ``scatter``: ``src`` (tensor or scalar, also as ``value=``) written at
    ``index`` along ``dim``; ``reduce='add'|'multiply'`` combines instead."""
    src = value if src is None else src
    if reduce not in (None, "add", "multiply"):
        raise RuntimeError(f"scatter(): reduce argument must be either add or multiply, "
                           f"got {reduce!r}")
    if reduce == "multiply":
        return scatter_reduce(input, dim, index, src, "prod")
    idx = _host_index("scatter", index)
    pos = fa.asarray(_flat_positions("scatter", tuple(input.shape), dim, idx).reshape(-1))
    vals = _source_values("scatter", src, idx, input)
    name = "ScatterAddBackward0" if reduce == "add" else (
        "ScatterBackward0" if isinstance(src, Tensor) else "ScatterBackward1")
    with op_scope(name):
        flat = fa.reshape(input, (-1,)).at[pos]
        flat = flat.add(vals) if reduce == "add" else flat.set(vals)
        return fa.reshape(flat, tuple(input.shape))


def scatter_add(input, dim: int, index, src):
    return scatter(input, dim, index, src, reduce="add")


def scatter_reduce(input, dim: int, index, src, reduce: str, *, include_self: bool = True):
    """``scatter_reduce`` with ``reduce`` in sum/prod/mean/amax/amin (PyTorch 2 semantics:
    ``include_self=False`` ignores the old values at the targeted positions)."""
    if reduce not in _REDUCTIONS:
        raise RuntimeError(f"scatter_reduce(): reduce argument must be one of "
                           f"{', '.join(_REDUCTIONS)}, got {reduce!r}")
    idx = _host_index("scatter_reduce", index)
    pos = _flat_positions("scatter_reduce", tuple(input.shape), dim, idx).reshape(-1)
    vals = _source_values("scatter_reduce", src, idx, input)
    if not hasattr(vals, "shape"):
        vals = fa.full((len(pos),), vals, dtype=input.dtype)
    with op_scope("ScatterReduceBackward0"):
        flat = fa.reshape(input, (-1,))
        targets = fa.asarray(np.unique(pos))
        if not include_self:
            flat = flat.at[targets].set(_identity(reduce, input.dtype))
        if reduce in ("sum", "mean"):
            flat = flat.at[fa.asarray(pos)].add(vals)
        else:
            for sel in _rounds(pos):
                upd = flat.at[fa.asarray(pos[sel])]
                part = vals[fa.asarray(sel)]
                flat = (upd.multiply(part) if reduce == "prod" else
                        upd.max(part) if reduce == "amax" else upd.min(part))
        if reduce == "mean":
            counts = np.bincount(pos, minlength=flat.shape[0]) + (1 if include_self else 0)
            counts = fa.asarray(np.maximum(counts, 1).astype(input.dtype))
            flat = flat // counts if input.dtype.kind in "iu" else flat / counts
        return fa.reshape(flat, tuple(input.shape))


def _identity(reduce: str, dtype):
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    big = np.inf if is_float(dtype) else np.iinfo(dtype).max
    return -big if reduce == "amax" else big


def _dim_key(input, dim: int, index, op: str):
    idx = _host_index(op, index)
    if idx.ndim > 1:
        raise RuntimeError(f"{op}(): Index is supposed to be a vector, got shape "
                           f"{list(idx.shape)}")
    dim %= max(input.ndim, 1)
    n = input.shape[dim] if input.ndim else 1
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise RuntimeError(f"{op}(): index out of range in self (dimension {dim} has size "
                           f"{n}, index holds {int(idx.min())}..{int(idx.max())})")
    return (slice(None),) * dim + (fa.asarray(idx.reshape(-1) % max(n, 1)),)


def index_add(input, dim: int, index, source, *, alpha=1):
    """``input`` with ``alpha * source`` added to the slices ``index`` along ``dim``
    (repeated indices accumulate)."""
    key = _dim_key(input, dim, index, "index_add")
    with op_scope("IndexAddBackward0"):
        return input.at[key].add(source if alpha == 1 else source * alpha)


def index_fill(input, dim: int, index, value):
    """``input`` with the slices ``index`` along ``dim`` set to the scalar ``value``."""
    key = _dim_key(input, dim, index, "index_fill")
    with op_scope("IndexFillBackward0" if not isinstance(value, Tensor) else
                  "IndexFillBackward1"):
        return input.at[key].set(_raw(value) if not isinstance(value, Tensor) else value)


def masked_scatter(input, mask, source):
    """``input`` with the positions where ``mask`` is True filled, in row-major order,
    with consecutive elements of ``source``."""
    m = np.broadcast_to(np.asarray(_raw(mask)), tuple(input.shape))
    if m.dtype != np.bool_:
        raise RuntimeError(f"masked_scatter_: expected BoolTensor for mask, got {m.dtype}")
    pos = np.flatnonzero(m)
    if len(pos) > source.numel():
        raise RuntimeError(f"masked_scatter: the mask selects {len(pos)} elements but "
                           f"source has only {source.numel()}")
    with op_scope("MaskedScatterBackward0"):
        vals = fa.reshape(source, (-1,))[: len(pos)]
        flat = fa.reshape(input, (-1,)).at[fa.asarray(pos)].set(vals)
        return fa.reshape(flat, tuple(input.shape))


def _inplace(fn, name):
    def method(self, *args, **kwargs):
        return self._inplace(lambda s: fn(s, *args, **kwargs), name)
    method.__name__ = fn.__name__ + "_"
    method.__doc__ = f"In-place ``{fn.__name__}`` (rebinds this tensor to the result)."
    return method


for _name, _f, _grad in (
        ("scatter", scatter, "ScatterBackward0"),
        ("scatter_add", scatter_add, "ScatterAddBackward0"),
        ("scatter_reduce", scatter_reduce, "ScatterReduceBackward0"),
        ("index_add", index_add, "IndexAddBackward0"),
        ("index_fill", index_fill, "IndexFillBackward0"),
        ("masked_scatter", masked_scatter, "MaskedScatterBackward0")):
    FUNCTIONS[_name] = METHODS[_name] = _f
    setattr(Tensor, _name, _f)
    setattr(Tensor, _name + "_", _inplace(_f, _grad))
