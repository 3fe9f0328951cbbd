"""``torch.utils``: ``data`` (``fnarray.data``), ``checkpoint`` and ``tensorboard`` (which
imports the ``tensorboard`` package only when a ``SummaryWriter`` is created)."""

from fnarray import data  # noqa: F401
from fnarray.compat.utils import checkpoint  # noqa: F401
from fnarray.compat.utils import tensorboard  # noqa: F401
