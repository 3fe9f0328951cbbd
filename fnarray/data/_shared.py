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

Workers started by ``fork`` need no copy at all: they already map the parent's memory
copy-on-write.  For them (``forking = True``) a large array is pickled as a token into a
table of this module that the forked child inherits, and the worker gets a read-only view
of the parent's buffer — the payload still travels as bytes, so what a worker sees is the
same under every start method.
"""

from __future__ import annotations

import itertools
import mmap
import os
import weakref
from multiprocessing import shared_memory

import numpy as np

from fnarray.core.array import Array
from fnarray.core.device import CPU

MIN_BYTES = 1 << 20

_attached: list = []  # in a worker: the blocks its arrays view (kept for its lifetime)
_inherited: dict[int, np.ndarray] = {}  # token -> array, read by forked workers
_tokens = itertools.count()


class SharedArrays:
    """The shared-memory copies made for one loader, keyed by the source array."""

    def __init__(self, owner):
        self._blocks: dict[int, tuple[np.ndarray, shared_memory.SharedMemory]] = {}
        self._tokens: dict[tuple, int] = {}
        #: set while pickling for workers that ``fork``: arrays go by inherited token
        self.forking = False
        self._finalizer = weakref.finalize(owner, _release, self._blocks, self._tokens)

    def reduce(self, array):
        """The pickle reduction of ``array`` (a NumPy array or a CPU ``Array``): a reference
        to its shared copy (or, when ``forking``, to the parent's buffer), or None to
        pickle it normally (small, of an object dtype, not on the CPU).  Arrays viewing the
        same memory the same way (a tensor and the NumPy view of it) share one block; an
        ``Array`` is rebuilt around the worker's read-only view without a copy."""
        if isinstance(array, Array):
            if array.device is not CPU or array._value.nbytes < MIN_BYTES:
                return None
            return Array, (array._value, CPU, array.weak_type)
        if type(array) is not np.ndarray or array.nbytes < MIN_BYTES or array.dtype.hasobject:
            return None
        key = (array.__array_interface__["data"][0], array.shape, array.strides,
               array.dtype.str)
        if self.forking:
            token = self._tokens.get(key)
            if token is None:
                token = self._tokens[key] = next(_tokens)
                _inherited[token] = array  # held, so its memory (the key) is not reused
            return inherit, (token,)
        entry = self._blocks.get(key)
        if entry is None:
            block = shared_memory.SharedMemory(create=True, size=array.nbytes)
            np.ndarray(array.shape, array.dtype, buffer=block.buf)[...] = array
            # The entry holds ``array``, so its memory (the key) is not reused meanwhile.
            entry = self._blocks[key] = (array, block)
        return attach, (entry[1].name, array.shape, array.dtype.str)

    def close(self) -> None:
        self._finalizer()


def _release(blocks: dict, tokens: dict) -> None:
    for token in tokens.values():
        _inherited.pop(token, None)
    tokens.clear()
    for _, block in blocks.values():
        block.close()
        try:
            block.unlink()
        except FileNotFoundError:
            pass
    blocks.clear()


def inherit(token: int) -> np.ndarray:
    """A read-only view of the parent's array ``token`` (called when a forked worker
    unpickles its payload; the table came with the fork)."""
    try:
        array = _inherited[token]
    except KeyError:
        raise RuntimeError("DataLoader payload refers to the parent's memory, which only a "
                           "worker started by fork can see") from None
    view = array.view()
    view.flags.writeable = False
    return view


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
