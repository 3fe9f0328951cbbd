"""``default_collate``: merge a list of samples into one batch, following PyTorch.

* arrays, tensors and NumPy arrays are stacked along a new first axis;
* Python ``bool``/``int``/``float``/``complex`` become ``bool``/``int64``/``float64``/
  ``complex128`` arrays, NumPy scalars keep their dtype;
* ``str`` and ``bytes`` stay a list;
* mappings are collated per key, namedtuples per field, and other sequences position by
  position — a tuple sample gives a *list* of batched fields, as in PyTorch.

Batched arrays come back as compat tensors when ``fnarray.compat`` is available, else as
``fa.Array`` (NumPy arrays in, tensors/arrays out, as PyTorch turns them into tensors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fnarray import _interop
from fnarray.core.array import Array
from fnarray.core.shapes import is_float
from fnarray.data.dataset import ColumnBatch

_PYTHON_DTYPES = ((bool, np.bool_), (int, np.int64), (float, np.float64), (complex, np.complex128))


def default_collate(batch):
    """Merge ``batch`` (a list of samples of the same structure) into batched arrays."""
    if isinstance(batch, ColumnBatch):
        return [_wrap(column.values[batch.indices], column.device) for column in batch.columns]
    if len(batch) == 0:
        raise ValueError("default_collate: the batch is empty")
    elem = batch[0]
    if isinstance(elem, (Array, np.ndarray, np.generic)) or _interop.is_tensor(elem):
        return _stack(batch)
    for kind, dtype in _PYTHON_DTYPES:
        if isinstance(elem, kind):
            return _wrap(np.array(batch, dtype=dtype), None)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        merged = {key: default_collate([sample[key] for sample in batch]) for key in elem}
        try:
            return type(elem)(merged)
        except TypeError:
            return merged
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, Sequence):
        sizes = {len(sample) for sample in batch}
        if len(sizes) != 1:
            raise RuntimeError(f"default_collate: every sample must have the same number of "
                               f"fields; got lengths {sorted(sizes)}")
        fields = [default_collate(list(field)) for field in zip(*batch)]
        if isinstance(elem, tuple):
            return fields
        try:
            return type(elem)(fields)
        except TypeError:
            return fields
    raise TypeError(f"default_collate: cannot batch samples of type {type(elem).__name__}; "
                    f"supported: arrays, tensors, NumPy arrays, numbers, strings, and "
                    f"dicts/lists/tuples of them (or pass collate_fn=...)")


def _stack(batch) -> object:
    elem = batch[0]
    values = [_interop.to_numpy(x) for x in batch]
    shapes = {v.shape for v in values}
    if len(shapes) != 1:
        raise RuntimeError(f"default_collate: cannot stack samples of different shapes "
                           f"{sorted(shapes)}; resize them or pass a collate_fn that pads")
    if values[0].dtype.kind in "OUSV" and not is_float(values[0].dtype):  # bfloat16 is 'V'
        raise TypeError(f"default_collate: cannot batch NumPy arrays of dtype {values[0].dtype}")
    inner = elem.array if _interop.is_tensor(elem) else elem
    device = inner.device if isinstance(inner, Array) else None
    return _wrap(np.stack(values), device)


def _wrap(value: np.ndarray, device):
    return _interop.from_numpy(value, device, as_tensor=True)
