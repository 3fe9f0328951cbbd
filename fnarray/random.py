"""``fa.random``: functional, reproducible random numbers (see ``fnarray/api/random.py`` and
``fnarray/api/random_distributions.py``)."""

from fnarray.api.random import *  # noqa: F401,F403
from fnarray.api.random import __all__ as _basic
from fnarray.api.random_distributions import *  # noqa: F401,F403
from fnarray.api.random_distributions import __all__ as _more

__all__ = [*_basic, *_more]
