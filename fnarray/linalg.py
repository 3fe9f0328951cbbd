"""``fa.linalg``: the Array API linear-algebra extension (see ``fnarray/api/linalg.py``),
plus ``eig``/``eigvals``/``lstsq`` (``fnarray/api/linalg_general.py``)."""

from fnarray.api.linalg import *  # noqa: F401,F403
from fnarray.api.linalg import __all__ as _standard
from fnarray.api.linalg_general import *  # noqa: F401,F403
from fnarray.api.linalg_general import __all__ as _general

__all__ = [*_standard, *_general]
