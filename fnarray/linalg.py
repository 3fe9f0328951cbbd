"""``fa.linalg``: the Array API linear-algebra extension (see ``fnarray/api/linalg.py``)."""

from fnarray.api.linalg import *  # noqa: F401,F403
from fnarray.api.linalg import __all__  # noqa: F401
