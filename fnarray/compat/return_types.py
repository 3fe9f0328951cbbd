"""Named result tuples (``torch.return_types``): ``max(x, dim)`` returns ``(values, indices)``
that is also readable as ``.values``/``.indices``, and prints the way PyTorch prints it::

    torch.return_types.max(
    values=tensor([3., 4.]),
    indices=tensor([1, 1]))
"""

from __future__ import annotations

from collections import namedtuple


def _repr(self) -> str:
    fields = ",\n".join(f"{name}={value!r}" for name, value in zip(self._fields, self))
    return f"torch.return_types.{type(self).__name__}(\n{fields})"


def _result_type(name: str, fields: str) -> type:
    """A namedtuple class ``name`` with ``fields`` and PyTorch's multi-line repr."""
    cls = namedtuple(name, fields)
    cls.__repr__ = cls.__str__ = _repr
    cls.__module__ = __name__
    return cls


max = _result_type("max", "values indices")  # noqa: A001
min = _result_type("min", "values indices")  # noqa: A001
sort = _result_type("sort", "values indices")
topk = _result_type("topk", "values indices")
svd = _result_type("svd", "U S V")
linalg_svd = _result_type("linalg_svd", "U S Vh")
linalg_slogdet = _result_type("linalg_slogdet", "sign logabsdet")
linalg_eigh = _result_type("linalg_eigh", "eigenvalues eigenvectors")
linalg_qr = _result_type("linalg_qr", "Q R")
