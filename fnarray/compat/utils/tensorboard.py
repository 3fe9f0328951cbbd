"""``torch.utils.tensorboard``: ``SummaryWriter`` (the ``tensorboard`` package is imported
only when a writer is created)."""

from fnarray.tensorboard import SummaryWriter

__all__ = ["SummaryWriter"]
