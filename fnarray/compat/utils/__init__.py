"""``torch.utils``: ``data`` (``fnarray.data``) and ``checkpoint``."""

from fnarray import data  # noqa: F401
from fnarray.compat.utils import checkpoint  # noqa: F401
