"""TensorBoard logging with ``torch.utils.tensorboard.SummaryWriter``'s interface.

Event files are written with the ``tensorboard`` package's protos and ``EventFileWriter``
(the optional extra ``fnarray[tensorboard]``); that package is imported only when a writer
is created, so ``import fnarray`` never needs it."""

from fnarray.tensorboard.writer import SummaryWriter

__all__ = ["SummaryWriter"]
