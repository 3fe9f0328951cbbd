"""Data parallelism across processes: :class:`DistributedDataParallel`."""

from fnarray.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
