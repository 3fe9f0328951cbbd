"""Large NumPy buffers travel to ``DataLoader`` workers through shared memory.

When the worker payload is serialised (``_payload.dump``), every NumPy array of at least
``MIN_BYTES`` it reaches — the columns of a ``TensorDataset`` (arrays and tensors reduce
to NumPy), ``MNIST.data``, any array a user dataset holds — is copied once into a
``multiprocessing.shared_memory`` block and pickled as the block's name.  Workers map the
block read-only instead of unpickling their own copy, so starting N workers costs one copy
of the dataset instead of N pickles of it (PyTorch gets the same effect from fork's
copy-on-write pages).

Blocks are cached per loader (the same array is shared once across epochs) and are
closed and unlinked when the loader is garbage collected or the interpreter exits; the
``multiprocessing`` resource tracker removes them if the main process is killed.
Workers attach without registering with the tracker, so they never unlink a block.
"""

from __future__ import annotations

import mmap
import os
import weakref
from multiprocessing import shared_memory

import numpy as np

MIN_BYTES = 1 << 20

_attached: list = []  # in a worker: the blocks its arrays view (kept for its lifetime)


class SharedArrays:
    """The shared-memory copies made for one loader, keyed by the source array."""

    def __init__(self, owner):
        self._blocks: dict[int, tuple[np.ndarray, shared_memory.SharedMemory]] = {}
        self._finalizer = weakref.finalize(owner, _release, self._blocks)

    def reduce(self, array: np.ndarray):
        """The pickle reduction of ``array``: a reference to its shared copy, or None to
        pickle it normally (small, or of an object dtype).  Arrays viewing the same memory
        the same way (a tensor and the NumPy view of it) share one block."""
        if array.nbytes < MIN_BYTES or array.dtype.hasobject:
            return None
        key = (array.__array_interface__["data"][0], array.shape, array.strides,
               array.dtype.str)
        entry = self._blocks.get(key)
        if entry is None:
            block = shared_memory.SharedMemory(create=True, size=array.nbytes)
            np.ndarray(array.shape, array.dtype, buffer=block.buf)[...] = array
            # The entry holds ``array``, so its memory (the key) is not reused meanwhile.
            entry = self._blocks[key] = (array, block)
        return attach, (entry[1].name, array.shape, array.dtype.str)

    def close(self) -> None:
        self._finalizer()


def _release(blocks: dict) -> None:
    for _, block in blocks.values():
        block.close()
        try:
            block.unlink()
        except FileNotFoundError:
            pass
    blocks.clear()


def attach(name: str, shape: tuple, dtype: str) -> np.ndarray:
    """A read-only array viewing the shared block ``name`` (called when a worker
    unpickles its payload)."""
    dtype = np.dtype(dtype)
    out = np.ndarray(shape, dtype, buffer=_map(name, int(np.prod(shape)) * dtype.itemsize))
    out.flags.writeable = False
    return out


def _map(name: str, nbytes: int):
    """The block's memory, mapped without registering it with the resource tracker (a
    registration from a worker would make the tracker unlink or double-count it)."""
    try:
        block = shared_memory.SharedMemory(name=name, track=False)  # Python >= 3.13
    except TypeError:
        if os.name == "nt":  # no tracker on Windows
            block = shared_memory.SharedMemory(name=name)
        else:
            import _posixshmem
            fd = _posixshmem.shm_open("/" + name, os.O_RDONLY, mode=0o600)
            try:
                block = mmap.mmap(fd, nbytes, prot=mmap.PROT_READ)
            finally:
                os.close(fd)
            _attached.append(block)
            return block
    _attached.append(block)
    return block.buf
