"""``cupy.cuda.nccl`` of the test double: NCCL's communicator implemented over mpi4py.

The code under test passes raw buffer addresses, element counts and NCCL type/op codes,
as with the real library; the double reads and writes the memory at those addresses with
NumPy and moves it with MPI.  It also checks what NCCL requires of its callers: every
member builds the communicator from the same unique id (the id embeds the world rank
that created it, and the members meet there to form their MPI communicator), with
distinct ranks below ``ndev``; calls between ``groupStart()`` and ``groupEnd()`` run
together at ``groupEnd()``.  ``NCCL_AVG`` exists (NCCL >= 2.10); a test may delete it to
exercise the code path for older releases.
"""

import ctypes
import os

import numpy as np
from mpi4py import MPI

NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64 = range(6)
NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64 = 6, 7, 8
NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, NCCL_AVG = range(5)

_DTYPES = {NCCL_INT8: np.int8, NCCL_UINT8: np.uint8, NCCL_INT32: np.int32,
           NCCL_UINT32: np.uint32, NCCL_INT64: np.int64, NCCL_UINT64: np.uint64,
           NCCL_FLOAT16: np.float16, NCCL_FLOAT32: np.float32, NCCL_FLOAT64: np.float64}
_AVG = NCCL_AVG  # kept when a test deletes the module attribute
_MPI_OPS = {NCCL_SUM: MPI.SUM, NCCL_PROD: MPI.PROD, NCCL_MAX: MPI.MAX, NCCL_MIN: MPI.MIN,
            NCCL_AVG: MPI.SUM}
_TAG = 4242
_counter = iter(range(1, 1 << 30))
_group: list | None = None  # calls queued between groupStart and groupEnd


class NcclError(RuntimeError):
    pass


def get_unique_id() -> tuple:
    """128 signed bytes, like NCCL's: the creating world rank, a serial, random bytes."""
    head = [MPI.COMM_WORLD.Get_rank(), next(_counter)]
    raw = list(np.frombuffer(np.array(head, np.int32).tobytes() + os.urandom(120), np.int8))
    return tuple(int(b) for b in raw)


def _memory(ptr: int, count: int, datatype: int) -> np.ndarray:
    dtype = np.dtype(_DTYPES[datatype])
    if count == 0:
        return np.empty(0, dtype)
    raw = (ctypes.c_char * (count * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(raw, dtype)


def groupStart():
    global _group
    if _group is None:
        _group = []


def groupEnd():
    global _group
    calls, _group = _group, None
    started = [call() for call in calls or ()]
    MPI.Request.Waitall([req for req, _ in started])
    for _, finish in started:
        finish()


class NcclCommunicator:
    def __init__(self, ndev: int, commId: tuple, rank: int):  # noqa: N803 - CuPy's names
        from cupy import cuda
        if len(commId) != 128 or not 0 <= rank < ndev:
            raise NcclError(f"invalid arguments: ndev={ndev}, rank={rank}, id of "
                            f"{len(commId)} bytes")
        world = MPI.COMM_WORLD
        root = int(np.frombuffer(np.array(commId[:4], np.int8).tobytes(), np.int32)[0])
        me = (rank, world.Get_rank(), tuple(commId), cuda.Device().id)
        if world.Get_rank() == root:
            members = [me] + [world.recv(source=MPI.ANY_SOURCE, tag=_TAG)
                              for _ in range(ndev - 1)]
            if any(m[2] != commId for m in members):
                raise NcclError("members built the communicator from different unique ids")
            if sorted(m[0] for m in members) != list(range(ndev)):
                raise NcclError(f"ranks {[m[0] for m in members]} are not 0..{ndev - 1}")
            order = [m[1] for m in sorted(members)]
            for m in members[1:]:
                world.send(order, dest=m[1], tag=_TAG)
        else:
            world.send(me, dest=root, tag=_TAG)
            order = world.recv(source=root, tag=_TAG)
        self._comm = world.Create_group(world.Get_group().Incl(order), tag=_TAG)
        self._device, self._rank, self._size = me[3], rank, ndev

    def device_id(self) -> int:
        return self._device

    def rank_id(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size

    def destroy(self):
        if self._comm is not None:
            self._comm.Free()
            self._comm = None

    def _call(self, start):
        """Run ``start() -> (request, finish)`` now, or at groupEnd inside a group."""
        if _group is not None:
            _group.append(start)
            return
        req, finish = start()
        req.Wait()
        finish()

    @staticmethod
    def _check_stream(stream):
        if not isinstance(stream, int):
            raise TypeError(f"stream must be a pointer (int), got {type(stream).__name__}")

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):  # noqa: N802
        self._check_stream(stream)
        send, recv = _memory(sendbuf, count, datatype), _memory(recvbuf, count, datatype)
        wide = send.dtype == np.float16  # MPI has no half type: reduce in float32
        src = send.astype(np.float32) if wide else send.copy()
        dst = np.empty_like(src)

        def start():
            def finish():
                out = dst / self._size if op == _AVG else dst
                recv[...] = out.astype(recv.dtype)
            return self._comm.Iallreduce(src, dst, op=_MPI_OPS[op]), finish
        self._call(start)

    def reduce(self, sendbuf, recvbuf, count, datatype, op, root, stream):
        self._check_stream(stream)
        send, recv = _memory(sendbuf, count, datatype), _memory(recvbuf, count, datatype)
        src = send.astype(np.float32) if send.dtype == np.float16 else send.copy()
        dst = np.zeros_like(src)

        def start():
            def finish():
                if self._rank == root:
                    out = dst / self._size if op == _AVG else dst
                    recv[...] = out.astype(recv.dtype)
            return self._comm.Ireduce(src, dst, op=_MPI_OPS[op], root=root), finish
        self._call(start)

    def broadcast(self, sendbuff, recvbuff, count, datatype, root, stream):
        self._check_stream(stream)
        recv = _memory(recvbuff, count, datatype)
        buf = (_memory(sendbuff, count, datatype).copy() if self._rank == root
               else np.empty_like(recv))

        def start():
            def finish():
                recv[...] = buf
            return self._comm.Ibcast(buf.view(np.uint8), root=root), finish
        self._call(start)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):  # noqa: N802
        self._check_stream(stream)
        send = _memory(sendbuf, count, datatype).copy()
        recv = _memory(recvbuf, count * self._size, datatype)
        dst = np.empty_like(recv)

        def start():
            def finish():
                recv[...] = dst
            return self._comm.Iallgather(send.view(np.uint8), dst.view(np.uint8)), finish
        self._call(start)

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):  # noqa: N802
        self._check_stream(stream)
        send = _memory(sendbuf, recvcount * self._size, datatype)
        recv = _memory(recvbuf, recvcount, datatype)
        wide = send.dtype == np.float16
        src = send.astype(np.float32) if wide else send.copy()
        dst = np.empty(recvcount, src.dtype)

        def start():
            def finish():
                out = dst / self._size if op == _AVG else dst
                recv[...] = out.astype(recv.dtype)
            return self._comm.Ireduce_scatter_block(src, dst, op=_MPI_OPS[op]), finish
        self._call(start)

    def send(self, sendbuf, count, datatype, peer, stream):
        self._check_stream(stream)
        data = _memory(sendbuf, count, datatype).copy()
        self._call(lambda: (self._comm.Isend(data.view(np.uint8), dest=peer, tag=_TAG),
                            lambda: None))

    def recv(self, recvbuf, count, datatype, peer, stream):
        self._check_stream(stream)
        recv = _memory(recvbuf, count, datatype)
        dst = np.empty_like(recv)

        def start():
            def finish():
                recv[...] = dst
            return self._comm.Irecv(dst.view(np.uint8), source=peer, tag=_TAG), finish
        self._call(start)
