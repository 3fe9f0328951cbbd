"""``DistributedDataParallel``: one model replica per rank, gradients averaged by MPI.

Construction broadcasts the parameters and buffers of rank 0, so every replica starts
equal, groups the parameters into buckets of at most ``bucket_cap_mb`` megabytes (in
reverse registration order, as PyTorch does: roughly the order backward produces their
gradients) and registers a post-accumulate-grad hook on each.  During a synchronised
backward the tape fills a parameter's ``.grad`` as soon as it is final and calls the hook;
when a bucket's gradients are all final (and the buckets before it have been launched, so
every rank issues its collectives in the same order) the bucket is flattened and its
non-blocking ``all_reduce(AVG)`` starts while backward goes on.  A callback queued on the
tape (:func:`fnarray.compat.autograd.queue_callback`) runs at the end of backward: it
launches what is left, waits for every bucket and writes the averages back into the
``.grad`` tensors in place.  MPI progresses non-blocking collectives inside MPI calls, so
each hook also tests the buckets in flight.

Buffers such as BatchNorm's running statistics follow PyTorch's default
``broadcast_buffers=True``: rank 0's buffers are broadcast at the start of every forward,
so all replicas normalise with the same statistics (batch statistics stay per rank, as with
plain BatchNorm under PyTorch DDP; ``nn.SyncBatchNorm`` computes them over all ranks).

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
        self.require_backward_grad_sync = True
        self._pending = False
        self._src = (process_group.ranks[0] if process_group is not None else 0)
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t, self._src, group=process_group)
        params = [p for p in module.parameters() if p.requires_grad]
        self._reducer = _Reducer(params, int(bucket_cap_mb * 2**20), process_group)
        for p in params:
            p.register_post_accumulate_grad_hook(self._on_grad_ready)

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

    def _reduce_gradients(self) -> None:
        """End of a synchronised backward: launch the buckets still waiting (in order),
        wait for every bucket's average and write it into the ``.grad`` tensors."""
        self._pending = False
        try:
            self._reducer.finish(self.module, self.find_unused_parameters)
        finally:
            self._reducer.reset()

    def _on_grad_ready(self, param) -> None:
        if self._pending:
            self._reducer.mark_ready(param)


class _Reducer:
    """Gradient buckets and the all-reduces in flight for one backward.

    Buckets follow PyTorch: parameters in reverse registration order (roughly the order
    backward produces their gradients), at most ``cap`` bytes each.  A bucket is launched
    when every one of its gradients is final and every earlier bucket has been launched:
    all ranks must start their collectives in the same order.
    """

    def __init__(self, params: list, cap: int, group):
        self.params, self.group = params, group
        self.buckets: list[list] = []
        size = 0
        for p in reversed(params):
            nbytes = int(np.prod(p.shape)) * np.dtype(p._value.dtype).itemsize
            if not self.buckets or (size + nbytes > cap and self.buckets[-1]):
                self.buckets.append([])
                size = 0
            self.buckets[-1].append(p)
            size += nbytes
        self.bucket_of = {id(p): b for b, bucket in enumerate(self.buckets) for p in bucket}
        self.reset()

    def reset(self) -> None:
        self.waiting = [len(b) for b in self.buckets]
        self.ready: set[int] = set()
        self.works: list = []  # (bucket, work) per launched bucket, in bucket order

    def mark_ready(self, param) -> None:
        """``param.grad`` is final for this backward: launch what became launchable."""
        if id(param) in self.ready or id(param) not in self.bucket_of:
            return
        self.ready.add(id(param))
        self.waiting[self.bucket_of[id(param)]] -= 1
        while len(self.works) < len(self.buckets) and self.waiting[len(self.works)] == 0:
            self._launch(len(self.works))
        for _, work in self.works:
            work.is_completed()  # lets MPI progress the collectives already started

    def _launch(self, b: int) -> None:
        bucket = self.buckets[b]
        dtype = np.result_type(*[np.dtype(p._value.dtype) for p in bucket])
        flat = fa.concatenate([
            fa.ravel(fa.astype(p.grad._value, dtype)) if p.grad is not None
            else fa.zeros(int(np.prod(p.shape)), dtype, p._value.device) for p in bucket])
        self.works.append((bucket, dist.all_reduce(flat, dist.ReduceOp.AVG,
                                                   group=self.group, async_op=True)))

    def finish(self, module: Module, find_unused: bool) -> None:
        missing = [p for p in self.params if p.grad is None]
        if missing and not find_unused:
            names = {id(p): n for n, p in module.named_parameters()}
            raise RuntimeError(
                f"DistributedDataParallel: parameters {[names[id(p)] for p in missing]} "
                f"received no gradient in this backward; pass find_unused_parameters=True "
                f"to the constructor if the forward does not use every parameter")
        while len(self.works) < len(self.buckets):
            self._launch(len(self.works))
        used = None
        if find_unused:  # after the buckets: every rank issues collectives in one order
            flags = fa.asarray(np.array([p.grad is not None for p in self.params], np.int32),
                               device=self.params[0]._value.device)  # nccl: on the GPU
            counts = np.asarray(dist.all_reduce(flags, group=self.group))
            used = {id(p) for p, c in zip(self.params, counts) if c > 0}
        for bucket, work in self.works:
            _unpack(bucket, work.result(), used)


def _unpack(bucket: list, flat, used) -> None:
    """Write the averaged ``flat`` back into the bucket's ``.grad`` tensors in place."""
    from fnarray.compat import Tensor, grad_mode
    offset = 0
    for p in bucket:
        n = int(np.prod(p.shape))
        value = fa.astype(fa.reshape(flat[offset:offset + n], tuple(p.shape)), p._value.dtype)
        offset += n
        if used is not None and id(p) not in used:
            continue
        new = Tensor._make(value, None, 0)
        if p.grad is None:
            p.grad = new
        else:
            with grad_mode.no_grad():
                p.grad.copy_(new)
