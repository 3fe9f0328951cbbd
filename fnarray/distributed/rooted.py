"""Collectives with a root, and point-to-point transfers: ``reduce``, ``gather``,
``scatter``, ``send``/``recv`` and their non-blocking ``isend``/``irecv``.

``dst``/``src`` are global ranks, as in PyTorch.  Compat tensors are written in place on
the ranks that receive (the others are left as they are); arrays are immutable, so the
received value is returned instead (None on ranks that receive nothing).  ``recv`` and
``scatter`` on arrays take an array of the expected shape and dtype as a template.  On an
``nccl`` group, transfers run between the GPUs (NCCL's ``reduce`` and grouped
``send``/``recv``); ``recv`` then needs an explicit ``src``, and transfers in both
directions between the same ranks must go through :func:`batch_isend_irecv` (one NCCL
group), since separate NCCL sends and receives on one stream would wait for each other.
"""

from __future__ import annotations

import numpy as np

from fnarray.distributed import ProcessGroup, _group, _mpi
from fnarray.distributed.collectives import (
    _MPI_OPS, ReduceOp, StreamWork, Work, _adopt, _check_list, _finish_op, _is_tensor,
    _reduce_op, _run, _wire, _write_back)


def _member(group: ProcessGroup | None, rank: int, name: str, what: str):
    """The group (None on a rank outside it) and ``rank``'s index in it."""
    g = _group(group)
    if rank not in g.ranks:
        raise ValueError(f"{name}: {what}={rank} is not in the group's ranks {g.ranks}")
    return (g if g.comm is not None else None), g.ranks.index(rank)


def _buffer(g: ProcessGroup, x, name: str):
    """What the backend moves: the device buffer (nccl) or a host copy (MPI)."""
    if g.nccl is not None:
        return g.nccl.buffer(x, name)
    return np.asarray(x._value if _is_tensor(x) else x)  # read-only view: only sent


def _deliver(g: ProcessGroup, target, value, dtype):
    """``value`` into the compat tensor ``target`` in place, or as a new array."""
    out = g.nccl.wrap(value) if g.nccl is not None else _adopt(value.astype(dtype, copy=False))
    if _is_tensor(target):
        _write_back([target], None, [out])
        return None
    return out


def reduce(tensor, dst: int, op=ReduceOp.SUM, group: ProcessGroup | None = None,
           async_op: bool = False):
    """Reduce ``tensor`` over the group; only rank ``dst`` receives the result."""
    g, root = _member(group, dst, "reduce", "dst")
    if g is None:
        return None
    buf = _buffer(g, tensor, "reduce")
    op = _reduce_op(op, "reduce", [buf.dtype])
    mine = g.comm.Get_rank() == root
    if g.nccl is not None:
        out, event = g.nccl.reduce(buf, op.value, root)
        work = StreamWork(event, lambda: _deliver(g, tensor, out, buf.dtype) if mine else None,
                          g.timeout, "reduce")
    else:
        send = _wire(buf)
        recv = np.empty_like(send)
        req = g.comm.Ireduce(send, recv, op=getattr(_mpi(), _MPI_OPS[op]), root=root)
        work = Work([req], lambda: _deliver(g, tensor, _finish_op(recv, op, g), buf.dtype)
                    if mine else None, g.timeout, "reduce")
    return _run(work, async_op, not _is_tensor(tensor))


def gather(tensor, gather_list=None, dst: int = 0, group: ProcessGroup | None = None,
           async_op: bool = False):
    """Collect every rank's ``tensor`` on rank ``dst``: into ``gather_list`` (one compat
    tensor per rank) there, or returned there as a list of arrays."""
    g, root = _member(group, dst, "gather", "dst")
    if g is None:
        return None
    buf = _buffer(g, tensor, "gather")
    mine = g.comm.Get_rank() == root
    if g.nccl is not None:
        others = [q for q in range(g.size()) if q != root]
        got, event = g.nccl.exchange({} if mine else {root: buf},
                                     {q: buf for q in others} if mine else {}, "gather")
        parts = [buf if q == root else got.get(q) for q in range(g.size())]
        work = StreamWork(event, lambda: finish(parts), g.timeout, "gather")
    else:
        send = _wire(buf)
        recv = np.empty((g.size(),) + send.shape, send.dtype)
        req = g.comm.Igather(send, recv, root=root)
        work = Work([req], lambda: finish([recv[q].astype(buf.dtype) for q in range(g.size())]),
                    g.timeout, "gather")

    def finish(parts):
        if not mine:
            return None
        if _is_tensor(tensor):
            _check_list(gather_list, g, "gather", "gather_list")
            for target, part in zip(gather_list, parts):
                _deliver(g, target, part, buf.dtype)
            return None
        return [_deliver(g, None, part, buf.dtype) for part in parts]
    return _run(work, async_op, not _is_tensor(tensor))


def scatter(tensor, scatter_list=None, src: int = 0, group: ProcessGroup | None = None,
            async_op: bool = False):
    """Rank ``src`` sends ``scatter_list[i]`` to the group's rank i, which receives it in
    ``tensor`` (a compat tensor, in place) or as the returned array (``tensor`` is then a
    template of its shape and dtype)."""
    g, root = _member(group, src, "scatter", "src")
    if g is None:
        return None
    like = _buffer(g, tensor, "scatter")
    mine = g.comm.Get_rank() == root
    parts = None
    if mine:
        _check_list(scatter_list, g, "scatter", "scatter_list")
        parts = [_buffer(g, x, "scatter") for x in scatter_list]
        if any(p.shape != like.shape for p in parts):
            raise ValueError(f"scatter: scatter_list entries must have the receiving tensor's "
                             f"shape {tuple(like.shape)}, got {[tuple(p.shape) for p in parts]}")
    if g.nccl is not None:
        sends = {q: parts[q] for q in range(g.size()) if q != root} if mine else {}
        got, event = g.nccl.exchange(sends, {} if mine else {root: like}, "scatter")
        value = parts[root] if mine else got[root]
        work = StreamWork(event, lambda: _deliver(g, tensor, value, like.dtype), g.timeout,
                          "scatter")
    else:
        send = _wire(np.stack(parts).astype(like.dtype)) if mine else None
        recv = np.empty_like(_wire(like))
        req = g.comm.Iscatter(send, recv, root=root)
        work = Work([req], lambda: _deliver(g, tensor, recv, like.dtype), g.timeout, "scatter")
    return _run(work, async_op, not _is_tensor(tensor))


class _RecvWork(Work):
    """An MPI receive: after ``wait()``, ``source`` is the sender's global rank."""

    def __init__(self, request, finish, timeout, name, ranks: list[int]):
        super().__init__([request], finish, timeout, name)
        self.status, self._ranks = _mpi().Status(), ranks

    @property
    def source(self) -> int:
        self.wait()
        return self._ranks[self.status.Get_source()]

    def _test(self) -> bool:
        return self._requests[0].Test(self.status)

    def _block(self) -> None:
        self._requests[0].Wait(self.status)


def isend(tensor, dst: int, group: ProcessGroup | None = None, tag: int = 0) -> Work:
    """Start sending ``tensor`` to global rank ``dst``; returns the work handle."""
    g, peer = _member(group, dst, "send", "dst")
    if g is None:
        raise RuntimeError(f"send: this rank is not a member of {_group(group)}")
    buf = _buffer(g, tensor, "send")
    if g.nccl is not None:
        _, event = g.nccl.exchange({peer: buf}, {}, "send")
        return StreamWork(event, lambda: None, g.timeout, "send")
    send = _wire(buf)
    return Work([g.comm.Isend(send, dest=peer, tag=tag)], lambda: None, g.timeout, "send")


def irecv(tensor, src: int | None = None, group: ProcessGroup | None = None,
          tag: int = 0) -> Work:
    """Start receiving into ``tensor`` (in place for a compat tensor; for an array,
    ``result()`` is the received array) from global rank ``src`` (any rank if None, MPI
    only); ``wait()`` then ``source`` gives the sender's global rank."""
    g = _group(group)
    if g.comm is None:
        raise RuntimeError(f"recv: this rank is not a member of {g}")
    if src is None and g.nccl is not None:
        raise ValueError("recv: the 'nccl' backend needs the sender's rank: pass src=")
    peer = None if src is None else _member(group, src, "recv", "src")[1]
    like = _buffer(g, tensor, "recv")
    if g.nccl is not None:
        got, event = g.nccl.exchange({}, {peer: like}, "recv")
        work = StreamWork(event, lambda: _deliver(g, tensor, got[peer], like.dtype),
                          g.timeout, "recv")
        work.source = src
        return work
    recv = np.empty_like(_wire(like))
    req = g.comm.Irecv(recv, source=_mpi().ANY_SOURCE if peer is None else peer, tag=tag)
    return _RecvWork(req, lambda: _deliver(g, tensor, recv, like.dtype), g.timeout, "recv",
                     g.ranks)


class P2POp:
    """One transfer for :func:`batch_isend_irecv`: ``op`` is :func:`isend` or
    :func:`irecv`, ``peer`` a global rank."""

    def __init__(self, op, tensor, peer: int, group: ProcessGroup | None = None, tag: int = 0):
        if op not in (isend, irecv):
            raise ValueError(f"P2POp: op must be fnarray.distributed.isend or irecv, got {op!r}")
        self.op, self.tensor, self.peer, self.group, self.tag = op, tensor, peer, group, tag


def batch_isend_irecv(p2p_op_list: list[P2POp]) -> list[Work]:
    """Start several sends and receives at once and return their work handles.  With the
    ``nccl`` backend they form one NCCL group, so exchanges in both directions (a ring, a
    halo swap) cannot deadlock on the stream; with MPI each is simply non-blocking."""
    groups = {id(_group(op.group)) for op in p2p_op_list}
    if len(groups) > 1:
        raise ValueError("batch_isend_irecv: every P2POp must use the same group")
    if not p2p_op_list or _group(p2p_op_list[0].group).nccl is None:
        return [op.op(op.tensor, op.peer, op.group, op.tag) for op in p2p_op_list]
    g = _group(p2p_op_list[0].group)
    peer = {id(op): _member(op.group, op.peer, "batch_isend_irecv", "peer")[1]
            for op in p2p_op_list}
    sends = [op for op in p2p_op_list if op.op is isend]
    recvs = [op for op in p2p_op_list if op.op is irecv]
    if len({peer[id(op)] for op in sends}) < len(sends) or \
            len({peer[id(op)] for op in recvs}) < len(recvs):
        raise ValueError("batch_isend_irecv: with the 'nccl' backend each peer takes at most "
                         "one send and one receive per batch")
    got, event = g.nccl.exchange(
        {peer[id(op)]: _buffer(g, op.tensor, "isend") for op in sends},
        {peer[id(op)]: _buffer(g, op.tensor, "irecv") for op in recvs}, "batch_isend_irecv")
    works = []
    for op in p2p_op_list:
        if op.op is isend:
            works.append(StreamWork(event, lambda: None, g.timeout, "isend"))
            continue
        work = StreamWork(event, lambda op=op: _deliver(g, op.tensor, got[peer[id(op)]],
                                                        op.tensor.dtype), g.timeout, "irecv")
        work.source = op.peer
        works.append(work)
    return works


def send(tensor, dst: int, group: ProcessGroup | None = None, tag: int = 0) -> None:
    """Send ``tensor`` to global rank ``dst`` (returns once it may be reused)."""
    isend(tensor, dst, group, tag).wait()


def recv(tensor, src: int | None = None, group: ProcessGroup | None = None, tag: int = 0):
    """Receive into ``tensor`` from global rank ``src`` (any if None): returns the sender's
    global rank for a compat tensor, as PyTorch; for an array, ``(sender, received)``."""
    work = irecv(tensor, src, group, tag)
    value = work.result()
    return work.source if _is_tensor(tensor) else (work.source, value)
