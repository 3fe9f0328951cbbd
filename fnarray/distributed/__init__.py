"""Multi-process collectives with ``torch.distributed``'s face, on MPI (mpi4py).

Launch a job the way HPC users do: ``mpiexec -n 4 python train.py``; in the script call
``fnarray.distributed.init_process_group("mpi")`` and then the collectives below.

Values.  On a compat tensor a collective works in place, like PyTorch (the write goes
through the tensor's in-place update machinery, outside autograd, so version counters and
views stay right).  On an ``fa.Array`` or a pytree of them arrays are immutable, so the
collective returns the new value instead.  With ``async_op=True`` every collective returns
a :class:`Work` handle; ``wait()`` finishes it (and writes compat tensors), ``result()``
gives the value for arrays.

Failure.  ``init_process_group`` installs an exception hook that aborts the whole MPI job
when any rank dies of an uncaught exception, so the launcher exits non-zero instead of the
other ranks waiting forever in a collective.  ``timeout`` bounds each collective: past it a
``RuntimeError`` is raised (and, uncaught, aborts the job the same way).

GPUs.  ``init_process_group("nccl")`` runs the same collectives through NCCL (CuPy's
``cupy.cuda.nccl``, from the ``gpu`` extra) between the GPUs of the job, one per process
(the one of its node-local rank), bootstrapped over MPI; values must live on that GPU.
See :mod:`fnarray.distributed.nccl`.

``mpi4py`` is imported on first use only; ``import fnarray`` never loads MPI.
"""

from __future__ import annotations

import sys
import time
import traceback
from datetime import timedelta
from enum import Enum

__all__ = [
    "P2POp", "ProcessGroup", "ReduceOp", "Work", "all_gather", "all_gather_into_tensor",
    "all_reduce", "barrier", "batch_isend_irecv", "broadcast", "destroy_process_group",
    "gather", "get_rank", "get_world_size", "init_process_group", "irecv", "is_available",
    "is_initialized", "isend", "new_group", "pmean", "psum", "recv", "reduce",
    "reduce_scatter", "reduce_scatter_tensor", "scatter", "send"]


def _mpi():
    """The ``mpi4py.MPI`` module, or an ImportError naming the extra that provides it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "fnarray.distributed needs mpi4py and an MPI library: install the "
            "'distributed' extra (pip install 'fnarray[distributed]', which brings mpi4py "
            "and the mpich wheel with mpiexec)") from exc
    return MPI


def is_available() -> bool:
    """True when mpi4py can be imported (the ``distributed`` extra is installed)."""
    try:
        _mpi()
    except ImportError:
        return False
    return True


class ReduceOp(Enum):
    """Reductions of ``all_reduce`` and ``reduce_scatter``; AVG is SUM divided by the
    group size (floating and complex dtypes only)."""
    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"


class ProcessGroup:
    """A set of ranks sharing an MPI communicator; ``comm`` is None on ranks outside it.
    With the ``nccl`` backend ``nccl`` is the group's NCCL communicator (members only)."""

    def __init__(self, comm, ranks: list[int], timeout: float | None, nccl=None):
        self.comm, self.ranks, self.timeout, self.nccl = comm, ranks, timeout, nccl

    def rank(self) -> int:
        return self.comm.Get_rank() if self.comm is not None else -1

    def size(self) -> int:
        return len(self.ranks)

    def __repr__(self) -> str:
        return f"ProcessGroup(ranks={self.ranks})"


class _State:
    world: ProcessGroup | None = None
    backend: str | None = None
    groups: list[ProcessGroup] = []
    previous_hook = None


_state = _State()

# Seconds a failing rank waits, after printing its traceback, before aborting the job.
ABORT_GRACE_SECONDS = 0.5


def _seconds(timeout) -> float | None:
    if timeout is None:
        return None
    return timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)


def _abort_on_exception(kind, value, tb) -> None:
    """Print the traceback, then abort every rank: the others may be blocked in a
    collective this rank will never join.

    The traceback goes out in one write and the rank pauses briefly before aborting: the
    launcher relays each rank's output through its own proxy, and ``Abort`` tears that proxy
    down, so lines still in flight (often the last one, the error message) would be lost."""
    sys.stderr.write("".join(traceback.format_exception(kind, value, tb)))
    sys.stderr.flush()
    time.sleep(ABORT_GRACE_SECONDS)
    _mpi().COMM_WORLD.Abort(1)


def init_process_group(backend: str = "mpi", init_method: str | None = None, timeout=None,
                       world_size: int = -1, rank: int = -1, **kwargs) -> None:
    """Join the job started by ``mpiexec``.  ``backend`` is ``"mpi"`` (CPU arrays) or
    ``"nccl"`` (arrays on this process's GPU; CuPy from the ``gpu`` extra).  Rank and
    world size come from MPI; passing different ones is an error.  ``timeout`` (seconds or
    a ``timedelta``) bounds every collective."""
    if _state.world is not None:
        raise RuntimeError("init_process_group: the default process group is already "
                           "initialized; call destroy_process_group() first")
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: unknown backend {backend!r}; fnarray supports "
                         f"'mpi' (CPU, through mpi4py) and 'nccl' (GPUs, through CuPy)")
    if backend == "nccl":
        from fnarray.distributed import nccl
        nccl.cupy_and_nccl()  # before MPI: a missing CuPy names the 'gpu' extra
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    if world_size not in (-1, comm.Get_size()) or rank not in (-1, comm.Get_rank()):
        raise ValueError(
            f"init_process_group: world_size={world_size}, rank={rank} disagree with the MPI "
            f"launch (size {comm.Get_size()}, rank {comm.Get_rank()}); leave them at -1")
    _state.previous_hook, sys.excepthook = sys.excepthook, _abort_on_exception
    world = ProcessGroup(comm, list(range(comm.Get_size())), _seconds(timeout))
    if backend == "nccl":
        world.nccl = nccl.NcclComm(comm, nccl.select_device(comm))
    _state.world, _state.backend = world, backend


def is_initialized() -> bool:
    return _state.world is not None


def get_backend(group: ProcessGroup | None = None) -> str:
    _group(group)
    return _state.backend


def _group(group: ProcessGroup | None) -> ProcessGroup:
    if _state.world is None:
        raise RuntimeError("fnarray.distributed: the default process group is not "
                           "initialized; call init_process_group('mpi') first")
    return _state.world if group is None else group


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank in ``group`` (the world by default); -1 outside the group."""
    return _group(group).rank()


def get_world_size(group: ProcessGroup | None = None) -> int:
    return _group(group).size()


def new_group(ranks=None, timeout=None, backend=None) -> ProcessGroup:
    """A group over ``ranks`` (all ranks by default).  Every rank of the world must call it,
    members or not, as in PyTorch."""
    world = _group(None)
    ranks = sorted(set(range(world.size()) if ranks is None else (int(r) for r in ranks)))
    if not ranks or ranks[0] < 0 or ranks[-1] >= world.size():
        raise ValueError(f"new_group: ranks {ranks} must be a non-empty subset of "
                         f"0..{world.size() - 1}")
    me = world.rank()
    color = 0 if me in ranks else _mpi().UNDEFINED
    comm = world.comm.Split(color, ranks.index(me) if me in ranks else 0)
    group = ProcessGroup(comm if me in ranks else None, ranks,
                         _seconds(timeout) if timeout is not None else world.timeout)
    if world.nccl is not None and group.comm is not None:
        from fnarray.distributed.nccl import NcclComm
        group.nccl = NcclComm(group.comm, world.nccl.device)
    _state.groups.append(group)
    return group


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Free ``group``'s communicator, or, by default, leave the job's process group."""
    if group is not None and group is not _state.world:
        _free(group)
        return
    for g in [*_state.groups, _group(None)]:
        _free(g)
    _state.groups, _state.world, _state.backend = [], None, None
    sys.excepthook = _state.previous_hook


def _free(group: ProcessGroup) -> None:
    if group.nccl is not None:
        group.nccl.destroy()
        group.nccl = None
    if group.comm is not None and group is not _state.world:
        group.comm.Free()
        group.comm = None


from fnarray.distributed.collectives import (  # noqa: E402,F401  (they use the above)
    StreamWork, Work, all_gather, all_gather_into_tensor, all_reduce, barrier, broadcast,
    reduce_scatter, reduce_scatter_tensor)
from fnarray.distributed.rooted import (  # noqa: E402,F401
    P2POp, batch_isend_irecv, gather, irecv, isend, recv, reduce, scatter, send)
from fnarray.distributed.functional import pmean, psum  # noqa: E402  (uses _group above)
