"""``fa.random``: functional, reproducible random numbers (see ``fnarray/api/random.py``)."""

from fnarray.api.random import *  # noqa: F401,F403
from fnarray.api.random import __all__  # noqa: F401
