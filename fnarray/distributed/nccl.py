"""The ``nccl`` backend: collectives between GPUs through NCCL (CuPy's ``cupy.cuda.nccl``).

A job is launched with ``mpiexec`` as for the ``mpi`` backend, and MPI bootstraps NCCL:
rank 0 of a group creates NCCL's unique id, the group's MPI communicator broadcasts it,
and every member builds its ``NcclCommunicator`` from it.  Each process drives one GPU,
the one whose index is its *local rank* (its rank among the processes of its node, read
from the launcher's environment or, failing that, from a node-local MPI split), as
PyTorch's ``torch.cuda.set_device(local_rank)`` convention does.

Collectives take arrays and tensors that live on that GPU and are queued on CuPy's
current stream; their results are new device buffers (inputs are never written).  A
:class:`StreamWork` completes when an event recorded after the NCCL call has fired.
NCCL has no complex, bool, 16-bit integer or (in older releases) average reductions:
complex values travel as pairs of reals (sums only), bools as bytes (SUM is a logical
or, PRODUCT a logical and, as in PyTorch), 16-bit integers through int32, and AVG is a
sum divided by the group size where NCCL lacks ``NCCL_AVG``.
"""

from __future__ import annotations

import os

import numpy as np

from fnarray.core.array import Array

LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK",
                        "MV2_COMM_WORLD_LOCAL_RANK", "PMI_LOCAL_RANK", "PMIX_LOCAL_RANK")


def cupy_and_nccl():
    """``(cupy, cupy.cuda.nccl)``, or an ImportError naming the extra that provides them."""
    try:
        import cupy
        from cupy.cuda import nccl
    except ImportError as exc:
        raise ImportError(
            "init_process_group('nccl') needs CuPy with NCCL on a machine with NVIDIA GPUs: "
            "install the 'gpu' extra (pip install 'fnarray[gpu]'), or use backend='mpi' "
            "(CPU)") from exc
    return cupy, nccl


def local_rank(comm) -> int:
    """This process's rank among the processes of ``comm`` on the same node."""
    for name in LOCAL_RANK_VARIABLES:
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    from mpi4py import MPI
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_rank()
    finally:
        node.Free()


def select_device(comm):
    """Make the GPU of this process's local rank current; return its fnarray Device."""
    from fnarray.core import device as _device
    cupy, _ = cupy_and_nccl()
    count = cupy.cuda.runtime.getDeviceCount()
    index = local_rank(comm)
    if index >= count:
        raise RuntimeError(
            f"init_process_group('nccl'): this process has local rank {index} but CuPy sees "
            f"{count} GPU(s) on its node; NCCL needs one GPU per process: launch at most "
            f"{count} processes per node")
    cupy.cuda.Device(index).use()
    return _device.get_device(f"cuda:{index}")


_OPS = {"sum": "NCCL_SUM", "product": "NCCL_PROD", "max": "NCCL_MAX", "min": "NCCL_MIN"}
_TYPES = {"int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
          "uint32": "NCCL_UINT32", "int64": "NCCL_INT64", "uint64": "NCCL_UINT64",
          "float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}
_WIDER = {"int16": np.int32, "uint16": np.int32}


class NcclComm:
    """An NCCL communicator over the ranks of the MPI communicator ``mpi_comm`` (every
    member calls this), driving ``device``."""

    def __init__(self, mpi_comm, device):
        self.cupy, self.nccl = cupy_and_nccl()
        self.device, self.size = device, mpi_comm.Get_size()
        uid = self.nccl.get_unique_id() if mpi_comm.Get_rank() == 0 else None
        uid = mpi_comm.bcast(uid, root=0)
        with self.cupy.cuda.Device(device.index):
            self.comm = self.nccl.NcclCommunicator(self.size, uid, mpi_comm.Get_rank())

    def destroy(self) -> None:
        self.comm.destroy()

    # --- values ----------------------------------------------------------------------
    def buffer(self, x, name: str):
        """The device buffer of an Array or compat tensor, checked to be on our GPU."""
        held = getattr(x, "_value", None)
        value = held if isinstance(held, Array) and not isinstance(x, Array) else x  # tensors
        device = getattr(value, "device", None)
        if not isinstance(value, Array) or device is not self.device:
            where = "a Python value" if device is None else f"device {device}"
            raise ValueError(
                f"fnarray.distributed.{name}: the 'nccl' backend works on arrays on this "
                f"process's GPU ({self.device}), got {type(x).__name__} on {where}; move it "
                f"with .to('{self.device}') (fa.device_put(x, '{self.device}')), or use "
                f"backend='mpi' for CPU arrays")
        return value._value

    def wrap(self, buf) -> Array:
        return Array(buf, self.device)

    def _wire(self, buf, op: str | None, name: str):
        """``(buffer NCCL can reduce, its NCCL type, NCCL op, how to read the result)``."""
        dtype = np.dtype(buf.dtype)
        contiguous = self.cupy.ascontiguousarray(buf).reshape(buf.shape)
        if dtype.kind == "c":
            if op not in (None, "sum", "avg"):
                raise TypeError(f"fnarray.distributed.{name}: ReduceOp.{op.upper()} is not "
                                f"defined for complex {dtype} tensors; use SUM or AVG")
            real = np.dtype(f"float{dtype.itemsize * 4}")  # (re, im) pairs on a new axis
            wire = contiguous.reshape(buf.shape + (1,)).view(real)
            return wire, _TYPES[real.name], op, lambda r: r.view(dtype)[..., 0]
        if dtype.kind == "b":
            op = {"sum": "max", "product": "min"}.get(op, op)
            return contiguous.view(np.uint8), _TYPES["uint8"], op, lambda r: r.view(np.bool_)
        if dtype.name in _TYPES:
            return contiguous, _TYPES[dtype.name], op, lambda r: r
        wider = _WIDER.get(dtype.name, np.float32)  # e.g. bfloat16 through float32
        return buf.astype(wider), _TYPES[np.dtype(wider).name], op, lambda r: r.astype(dtype)

    def _op_code(self, op: str, dtype):
        """NCCL's code for ``op`` and whether the result still needs dividing (AVG)."""
        if op == "avg":
            native = getattr(self.nccl, "NCCL_AVG", None)
            if native is not None and np.dtype(dtype).kind == "f":
                return native, False
            return self.nccl.NCCL_SUM, True
        return getattr(self.nccl, _OPS[op]), False

    def _event(self):
        event = self.cupy.cuda.Event()
        event.record(self.cupy.cuda.get_current_stream())
        return event

    # --- collectives on raw buffers (each returns (results, completion event)) -----------
    def all_reduce(self, bufs: list, op: str, name: str = "all_reduce"):
        stream = self.cupy.cuda.get_current_stream().ptr
        outs, reads = [], []
        self.nccl.groupStart()
        try:
            for buf in bufs:
                wire, kind, wire_op, read = self._wire(buf, op, name)
                code, divide = self._op_code(wire_op, wire.dtype)
                out = self.cupy.empty_like(wire)
                self.comm.allReduce(wire.data.ptr, out.data.ptr, wire.size,
                                    getattr(self.nccl, kind), code, stream)
                outs.append((out, divide))
                reads.append(read)
        finally:
            self.nccl.groupEnd()
        results = [read(out / self.size if divide else out).astype(buf.dtype, copy=False)
                   for (out, divide), read, buf in zip(outs, reads, bufs)]
        return results, self._event()

    def broadcast(self, bufs: list, root: int):
        stream = self.cupy.cuda.get_current_stream().ptr
        outs = []
        self.nccl.groupStart()
        try:
            for buf in bufs:
                wire, kind, _, read = self._wire(buf, None, "broadcast")
                out = self.cupy.empty_like(wire)
                self.comm.broadcast(wire.data.ptr, out.data.ptr, wire.size,
                                    getattr(self.nccl, kind), root, stream)
                outs.append(read(out).astype(buf.dtype, copy=False))
        finally:
            self.nccl.groupEnd()
        return outs, self._event()

    def all_gather(self, buf):
        wire, kind, _, read = self._wire(buf, None, "all_gather")
        out = self.cupy.empty((self.size,) + wire.shape, wire.dtype)
        self.comm.allGather(wire.data.ptr, out.data.ptr, wire.size, getattr(self.nccl, kind),
                            self.cupy.cuda.get_current_stream().ptr)
        parts = [read(out[i]).astype(buf.dtype, copy=False) for i in range(self.size)]
        return parts, self._event()

    def reduce_scatter(self, bufs: list, op: str):
        stacked = self.cupy.stack(bufs)
        wire, kind, wire_op, read = self._wire(stacked, op, "reduce_scatter")
        code, divide = self._op_code(wire_op, wire.dtype)
        out = self.cupy.empty(wire.shape[1:], wire.dtype)
        self.comm.reduceScatter(wire.data.ptr, out.data.ptr, out.size,
                                getattr(self.nccl, kind), code,
                                self.cupy.cuda.get_current_stream().ptr)
        result = read(out / self.size if divide else out).astype(bufs[0].dtype, copy=False)
        return result, self._event()

    def reduce(self, buf, op: str, root: int):
        """NCCL reduce: the reduced buffer, meaningful on ``root`` only."""
        wire, kind, wire_op, read = self._wire(buf, op, "reduce")
        code, divide = self._op_code(wire_op, wire.dtype)
        out = self.cupy.empty_like(wire)
        self.comm.reduce(wire.data.ptr, out.data.ptr, wire.size, getattr(self.nccl, kind), code,
                         root, self.cupy.cuda.get_current_stream().ptr)
        result = read(out / self.size if divide else out).astype(buf.dtype, copy=False)
        return result, self._event()

    def exchange(self, sends: dict, recvs: dict, name: str):
        """Point-to-point transfers in one NCCL group (so that pairs cannot deadlock):
        ``sends`` maps peer -> buffer, ``recvs`` maps peer -> a buffer of the shape and
        dtype to receive; returns ``({peer: received buffer}, event)``."""
        stream = self.cupy.cuda.get_current_stream().ptr
        pending, keep = {}, []
        self.nccl.groupStart()
        try:
            for peer, buf in sends.items():
                wire, kind, _, _ = self._wire(buf, None, name)
                self.comm.send(wire.data.ptr, wire.size, getattr(self.nccl, kind), peer, stream)
                keep.append(wire)  # alive until the transfer is queued
            for peer, like in recvs.items():
                wire, kind, _, read = self._wire(like, None, name)
                out = self.cupy.empty_like(wire)
                self.comm.recv(out.data.ptr, out.size, getattr(self.nccl, kind), peer, stream)
                pending[peer] = (out, read, like.dtype)
        finally:
            self.nccl.groupEnd()
        got = {peer: read(out).astype(dtype, copy=False)
               for peer, (out, read, dtype) in pending.items()}
        return got, self._event()
