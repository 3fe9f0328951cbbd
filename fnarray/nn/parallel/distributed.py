"""``DistributedDataParallel``: one model replica per rank, gradients averaged by MPI.

Construction broadcasts the parameters and buffers of rank 0, so every replica starts
equal.  Each forward run with gradients enabled queues a callback on the compat tape
(:func:`fnarray.compat.autograd.queue_callback`) that runs once the next ``backward()`` has
accumulated every ``.grad``: the gradients are packed into buckets of at most
``bucket_cap_mb`` megabytes, one non-blocking ``all_reduce`` per bucket is started, and
each bucket's average is written back into the ``.grad`` tensors in place.  (The tape
accumulates leaf gradients after its walk, so communication overlaps the other buckets'
packing rather than the backward computation itself.)

Buffers such as BatchNorm's running statistics follow PyTorch's default
``broadcast_buffers=True``: rank 0's buffers are broadcast at the start of every forward,
so all replicas normalise with the same statistics; there is no ``SyncBatchNorm`` (batch
statistics stay per rank, as with plain BatchNorm under PyTorch DDP).

``no_sync()`` skips the averaging for forwards run inside it (gradients accumulate
locally; the next synchronised backward averages the accumulated sum).  With
``find_unused_parameters=True`` a parameter that got no gradient on this rank counts as a
zero gradient; it keeps ``.grad = None`` only when no rank produced one.  Without it, a
missing gradient is an error, as in PyTorch.
"""

from __future__ import annotations

import contextlib

import numpy as np

import fnarray as fa
from fnarray import distributed as dist
from fnarray.nn.module import Module


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over ``process_group`` (the world by
    default); ``self.module`` is the wrapped replica."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None,
                 bucket_cap_mb: float = 25.0, find_unused_parameters: bool = False, **kwargs):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: the default process group is not "
                               "initialized; call fnarray.distributed.init_process_group() first")
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.bucket_bytes = int(bucket_cap_mb * 2**20)
        self.require_backward_grad_sync = True
        self._pending = False
        self._src = (process_group.ranks[0] if process_group is not None else 0)
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t, self._src, group=process_group)

    def forward(self, *args, **kwargs):
        from fnarray.compat import autograd, grad_mode
        if self.broadcast_buffers:
            for b in self.module.buffers():
                dist.broadcast(b, self._src, group=self.process_group)
        if grad_mode.is_grad_enabled() and self.require_backward_grad_sync and not self._pending:
            self._pending = True
            autograd.queue_callback(self._reduce_gradients)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Forwards inside this block do not average gradients on their backward."""
        previous, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def _buckets(self, params):
        bucket, size = [], 0
        for p in params:
            nbytes = int(np.prod(p.shape)) * np.dtype(p._value.dtype).itemsize
            if bucket and size + nbytes > self.bucket_bytes:
                yield bucket
                bucket, size = [], 0
            bucket.append(p)
            size += nbytes
        if bucket:
            yield bucket

    def _reduce_gradients(self) -> None:
        """Average every parameter's ``.grad`` across the ranks, bucket by bucket."""
        self._pending = False
        params = [p for p in self.module.parameters() if p.requires_grad]
        missing = [i for i, p in enumerate(params) if p.grad is None]
        if missing and not self.find_unused_parameters:
            names = [n for n, p in self.module.named_parameters() if p.requires_grad]
            raise RuntimeError(
                f"DistributedDataParallel: parameters {[names[i] for i in missing]} received no "
                f"gradient in this backward; pass find_unused_parameters=True to the "
                f"constructor if the forward does not use every parameter")
        used = None
        if self.find_unused_parameters:
            flags = fa.asarray(np.array([p.grad is not None for p in params], np.int32))
            used = np.asarray(dist.all_reduce(flags, group=self.process_group)) > 0
        works = []
        for bucket in self._buckets(params):
            dtype = np.result_type(*[np.dtype(p._value.dtype) for p in bucket])
            flat = np.concatenate([
                np.asarray(p.grad._value, dtype).ravel() if p.grad is not None
                else np.zeros(int(np.prod(p.shape)), dtype) for p in bucket])
            work = dist.all_reduce(fa.asarray(flat), dist.ReduceOp.AVG,
                                   group=self.process_group, async_op=True)
            works.append((bucket, work))
        index = {id(p): i for i, p in enumerate(params)}
        for bucket, work in works:
            self._unpack(bucket, np.asarray(work.result()), used, index)

    @staticmethod
    def _unpack(bucket, flat: np.ndarray, used, index) -> None:
        from fnarray.compat import Tensor, grad_mode
        offset = 0
        for p in bucket:
            n = int(np.prod(p.shape))
            value = flat[offset:offset + n].reshape(tuple(p.shape)).astype(np.dtype(p._value.dtype))
            offset += n
            if used is not None and not used[index[id(p)]]:
                continue
            new = Tensor._make(fa.asarray(value), None, 0)
            if p.grad is None:
                p.grad = new
            else:
                with grad_mode.no_grad():
                    p.grad.copy_(new)
