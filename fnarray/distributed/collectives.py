"""The collectives of :mod:`fnarray.distributed` (all_reduce, broadcast, all_gather,
reduce_scatter, barrier) and their work handles, on MPI or, for ``nccl`` groups, NCCL.

Values: compat tensors are updated in place (through ``copy_`` under ``no_grad``), arrays
and pytrees of arrays come back as new values.  MPI moves host copies of the buffers
(``_wire`` widens the dtypes MPI cannot reduce); NCCL works on the device buffers.
"""

from __future__ import annotations

import sys
import time
from functools import partial

import numpy as np

import fnarray as fa
from fnarray import tree_util
from fnarray.core.shapes import is_inexact
from fnarray.distributed import ProcessGroup, ReduceOp, _group, _mpi, _seconds


# --- values: compat tensors in place, arrays and pytrees by value --------------------------

def _tensor_type():
    compat = sys.modules.get("fnarray.compat")
    return compat.Tensor if compat is not None else None


def _leaves(value):
    """(host views of the leaves, read-only for arrays: MPI only reads them; the treedef
    rebuilding the value; the compat tensors)."""
    tensor = _tensor_type()
    if tensor is not None and isinstance(value, tensor):
        return [np.asarray(value._value)], None, [value]
    leaves, treedef = tree_util.tree_flatten(value)
    return [np.asarray(x) for x in leaves], treedef, None


def _device_leaves(g: ProcessGroup, value, name: str):
    """``_leaves`` for the nccl backend: the device buffers themselves (no copies)."""
    if _is_tensor(value):
        return [g.nccl.buffer(value, name)], None, [value]
    leaves, treedef = tree_util.tree_flatten(value)
    return [g.nccl.buffer(x, name) for x in leaves], treedef, None


def _write_back(tensors, treedef, arrays):
    """Write ``arrays`` (NumPy or fnarray arrays) into the compat ``tensors`` in place, or
    rebuild the pytree ``treedef`` from them."""
    if tensors is not None:
        from fnarray.compat import Tensor, grad_mode
        with grad_mode.no_grad():
            for t, a in zip(tensors, arrays):
                t.copy_(Tensor._make(fa.astype(_adopt(a), t._value.dtype), None, 0))
        return None
    return tree_util.tree_unflatten(treedef, [_adopt(a) for a in arrays])


def _adopt(a):
    """An fnarray array of ``a`` without a copy: ``a`` is a result buffer this module
    allocated and never writes again (or already an fnarray array)."""
    return fa.asarray(a, copy=False) if isinstance(a, np.ndarray) else fa.asarray(a)


_WIDEN = {np.dtype(np.float16): np.float32, np.dtype(np.bool_): np.uint8}


def _wire(a: np.ndarray) -> np.ndarray:
    """A buffer MPI can reduce: float16 through float32, bool through uint8; others as is."""
    kind = _WIDEN.get(a.dtype)
    if kind is None and a.dtype.kind not in "biufc":  # e.g. bfloat16 from ml_dtypes
        kind = np.float32
    return np.ascontiguousarray(a if kind is None else a.astype(kind)).reshape(a.shape)


class Work:
    """The handle of an asynchronous collective: ``wait()`` completes it (writing compat
    tensors in place) and returns True; ``result()`` waits and returns the value."""

    def __init__(self, requests, finish, timeout: float | None, name: str):
        self._requests, self._finish, self._timeout, self._name = requests, finish, timeout, name
        self._done, self._value = False, None

    def is_completed(self) -> bool:
        return self._done or self._test()

    def _test(self) -> bool:
        return _mpi().Request.Testall(self._requests)

    def _block(self) -> None:
        _mpi().Request.Waitall(self._requests)

    def wait(self, timeout=None) -> bool:
        if self._done:
            return True
        limit = _seconds(timeout) if timeout is not None else self._timeout
        if limit is None:
            self._block()
        else:
            deadline, spins = time.monotonic() + limit, 0
            while not self._test():
                spins += 1
                if spins > 200:
                    time.sleep(1e-4)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"fnarray.distributed.{self._name}: timed out after "
                                       f"{limit:g} s waiting for the other ranks")
        self._value = self._finish()
        self._done = True
        return True

    def result(self):
        self.wait()
        return self._value


class StreamWork(Work):
    """The handle of an NCCL collective: complete when ``event``, recorded on the stream
    after the NCCL call, has fired."""

    def __init__(self, event, finish, timeout: float | None, name: str):
        super().__init__([], finish, timeout, name)
        self._event = event

    def _test(self) -> bool:
        return bool(self._event.done)

    def _block(self) -> None:
        self._event.synchronize()


def _run(work: Work, async_op: bool, returns_value: bool):
    if async_op:
        return work
    work.wait()
    return work._value if returns_value else None


_MPI_OPS = {ReduceOp.SUM: "SUM", ReduceOp.AVG: "SUM", ReduceOp.MAX: "MAX",
            ReduceOp.MIN: "MIN", ReduceOp.PRODUCT: "PROD"}


def _finish_op(received: np.ndarray, op: ReduceOp, g: ProcessGroup) -> np.ndarray:
    """AVG's division of the summed ``received`` (a receive buffer of ours, not handed out
    yet, so divided in place: it is large for gradient buckets)."""
    if op is ReduceOp.AVG:
        np.divide(received, g.size(), out=received)
    return received


def _reduce_op(op, name: str, dtypes) -> ReduceOp:
    op = ReduceOp(op.value if isinstance(op, ReduceOp) else op)
    if op is ReduceOp.AVG and any(not is_inexact(np.dtype(d)) for d in dtypes):
        raise TypeError(f"fnarray.distributed.{name}: ReduceOp.AVG needs floating or complex "
                        f"tensors, got {[str(d) for d in dtypes]}; use SUM and divide")
    return op


def _mpi_op(op, name: str, dtypes):
    op = _reduce_op(op, name, dtypes)
    return op, getattr(_mpi(), _MPI_OPS[op])


def _active(group: ProcessGroup | None, name: str) -> ProcessGroup | None:
    g = _group(group)
    return g if g.comm is not None else None


def all_reduce(tensor, op=ReduceOp.SUM, group: ProcessGroup | None = None,
               async_op: bool = False):
    """Reduce ``tensor`` over the group's ranks; every rank receives the result."""
    g = _active(group, "all_reduce")
    if g is not None and g.nccl is not None:
        bufs, treedef, tensors = _device_leaves(g, tensor, "all_reduce")
        op = _reduce_op(op, "all_reduce", [b.dtype for b in bufs])
        outs, event = g.nccl.all_reduce(bufs, op.value)
        work = StreamWork(event, lambda: _write_back(tensors, treedef, map(g.nccl.wrap, outs)),
                          g.timeout, "all_reduce")
        return _run(work, async_op, tensors is None)
    leaves, treedef, tensors = _leaves(tensor)
    if g is None:
        return None
    op, mpi_op = _mpi_op(op, "all_reduce", [a.dtype for a in leaves])
    sends = [_wire(a) for a in leaves]
    recvs = [np.empty_like(s) for s in sends]
    reqs = [g.comm.Iallreduce(s, r, op=mpi_op) for s, r in zip(sends, recvs)]

    def finish():
        out = [_finish_op(r, op, g).astype(a.dtype, copy=False) for r, a in zip(recvs, leaves)]
        return _write_back(tensors, treedef, out)
    return _run(Work(reqs, finish, g.timeout, "all_reduce"), async_op, tensors is None)


def broadcast(tensor, src: int, group: ProcessGroup | None = None, async_op: bool = False):
    """Send ``tensor`` from global rank ``src`` to every rank of the group."""
    g = _active(group, "broadcast")
    leaves, treedef, tensors = _leaves(tensor)
    if g is None:
        return None
    if src not in g.ranks:
        raise ValueError(f"broadcast: src={src} is not in the group's ranks {g.ranks}")
    if g.nccl is not None:
        bufs, treedef, tensors = _device_leaves(g, tensor, "broadcast")
        outs, event = g.nccl.broadcast(bufs, g.ranks.index(src))
        work = StreamWork(event, lambda: _write_back(tensors, treedef, map(g.nccl.wrap, outs)),
                          g.timeout, "broadcast")
        return _run(work, async_op, tensors is None)
    bufs = [np.array(_wire(a)) for a in leaves]  # received into: our own writable copies
    reqs = [g.comm.Ibcast(b, root=g.ranks.index(src)) for b in bufs]

    def finish():
        return _write_back(tensors, treedef,
                           [b.astype(a.dtype, copy=False) for b, a in zip(bufs, leaves)])
    return _run(Work(reqs, finish, g.timeout, "broadcast"), async_op, tensors is None)


def all_gather(tensor_list, tensor, group: ProcessGroup | None = None, async_op: bool = False):
    """Gather ``tensor`` from every rank.  With compat tensors ``tensor_list`` (one tensor
    per rank) is filled in place; with an array the list of arrays is returned and
    ``tensor_list`` may be None."""
    g = _active(group, "all_gather")
    if g is None:
        return None
    in_place = _is_tensor(tensor)
    if g.nccl is not None:
        gathered, event = g.nccl.all_gather(g.nccl.buffer(tensor, "all_gather"))
        work = partial(StreamWork, event)
        parts = [g.nccl.wrap(p) for p in gathered]
    else:
        a = np.asarray(tensor._value if in_place else tensor)
        send = _wire(a)
        recv = np.empty((g.size(),) + send.shape, send.dtype)
        work = partial(Work, [g.comm.Iallgather(send, recv)])
        parts = [recv[i] for i in range(g.size())]  # filled by the time finish() runs

    def finish():
        values = [fa.astype(_adopt(p), a.dtype) for p in parts] if g.nccl is None else parts
        if in_place:
            _check_list(tensor_list, g, "all_gather", "tensor_list")
            _write_back(list(tensor_list), None, values)
            return None
        return values
    return _run(work(finish, g.timeout, "all_gather"), async_op, not in_place)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group: ProcessGroup | None = None,
                   async_op: bool = False):
    """Reduce ``input_list`` (one tensor per rank) elementwise over the ranks; rank i keeps
    the i-th reduced tensor — in ``output`` for compat tensors, returned for arrays (pass
    ``output=None``)."""
    g = _active(group, "reduce_scatter")
    if g is None:
        return None
    _check_list(input_list, g, "reduce_scatter", "input_list")
    if g.nccl is not None:
        parts = [g.nccl.buffer(x, "reduce_scatter") for x in input_list]
    else:
        parts = [np.asarray(x._value if _is_tensor(x) else x) for x in input_list]
    if len({(p.shape, np.dtype(p.dtype)) for p in parts}) != 1:
        raise ValueError(f"reduce_scatter: input_list entries must share shape and dtype, got "
                         f"{[(p.shape, str(p.dtype)) for p in parts]}")
    op = _reduce_op(op, "reduce_scatter", [parts[0].dtype])
    if g.nccl is not None:
        reduced, event = g.nccl.reduce_scatter(parts, op.value)
        work = partial(StreamWork, event)
    else:
        send = _wire(np.stack(parts))
        reduced = np.empty_like(send[0])
        mpi_op = getattr(_mpi(), _MPI_OPS[op])
        work = partial(Work, [g.comm.Ireduce_scatter_block(send, reduced, op=mpi_op)])

    def finish():
        if g.nccl is not None:
            out = g.nccl.wrap(reduced)
        else:
            out = _adopt(_finish_op(reduced, op, g).astype(parts[0].dtype, copy=False))
        if _is_tensor(output):
            return _write_back([output], None, [out])
        return out
    return _run(work(finish, g.timeout, "reduce_scatter"), async_op, not _is_tensor(output))


def all_gather_into_tensor(output_tensor, input_tensor, group: ProcessGroup | None = None,
                           async_op: bool = False):
    """``all_gather`` into one tensor: the ranks' inputs concatenated along dim 0 (or
    stacked: any ``output_tensor`` of ``world size`` times the input's size, filled in rank
    order).  With arrays pass ``output_tensor=None``: the concatenation is returned."""
    g = _active(group, "all_gather_into_tensor")
    if g is None:
        return None
    value = input_tensor._value if _is_tensor(input_tensor) else fa.asarray(input_tensor)
    parts = all_gather(None, value, group=group, async_op=True)

    def finish():
        joined = fa.concatenate([fa.reshape(p, (-1,)) for p in parts.result()])
        if not _is_tensor(output_tensor):
            shape = (g.size() * (value.shape[0] if value.ndim else 1),) + tuple(value.shape[1:])
            return fa.reshape(joined, shape)
        if output_tensor.numel() != joined.size:
            raise ValueError(f"all_gather_into_tensor: output_tensor has {output_tensor.numel()} "
                             f"elements; it needs world size ({g.size()}) x input size "
                             f"({value.size}) = {joined.size}")
        return _write_back([output_tensor], None, [fa.reshape(joined, tuple(output_tensor.shape))])
    return _run(_Then(parts, finish, g.timeout, "all_gather_into_tensor"), async_op,
                not _is_tensor(output_tensor))


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group: ProcessGroup | None = None,
                          async_op: bool = False):
    """``reduce_scatter`` of one tensor: ``input`` (world size times ``output``'s size, in
    rank-order chunks along dim 0) is reduced over the ranks and rank i keeps chunk i — in
    ``output`` for compat tensors, returned for arrays (``output=None``)."""
    g = _active(group, "reduce_scatter_tensor")
    if g is None:
        return None
    value = input._value if _is_tensor(input) else fa.asarray(input)
    if value.ndim == 0 or value.shape[0] % g.size():
        raise ValueError(f"reduce_scatter_tensor: input of shape {tuple(value.shape)} does not "
                         f"split into {g.size()} equal chunks along dim 0")
    step = value.shape[0] // g.size()
    chunks = [value[q * step:(q + 1) * step] for q in range(g.size())]
    if _is_tensor(output):
        chunks = [fa.reshape(c, tuple(output.shape)) for c in chunks]
    return reduce_scatter(output, chunks, op, group, async_op)


class _Then(Work):
    """A work handle finishing with ``finish()`` once the work ``first`` has completed."""

    def __init__(self, first: Work, finish, timeout, name: str):
        super().__init__([], finish, timeout, name)
        self._first = first

    def _test(self) -> bool:
        return self._first.is_completed()

    def _block(self) -> None:
        self._first.wait()


def barrier(group: ProcessGroup | None = None, async_op: bool = False):
    """Wait until every rank of the group has reached the barrier."""
    g = _active(group, "barrier")
    if g is None:
        return None
    if g.nccl is not None:  # the GPU work queued so far is part of what "reached" means
        g.nccl.cupy.cuda.get_current_stream().synchronize()
    return _run(Work([g.comm.Ibarrier()], lambda: None, g.timeout, "barrier"), async_op, False)


def _is_tensor(x) -> bool:
    tensor = _tensor_type()
    return tensor is not None and isinstance(x, tensor)



def _check_list(items, g: ProcessGroup, name: str, what: str) -> None:
    if items is None or len(items) != g.size():
        got = "None" if items is None else f"{len(items)} entries"
        raise ValueError(f"{name}: {what} needs one tensor per rank ({g.size()}), got {got}")
