"""PyTorch's stateful random numbers on top of fnarray's functional keys (``fa.random``).

A ``Generator`` holds one key; every draw splits it into a new state and a key for the
draw, so a seed gives the same sequence of tensors on every backend.  The global default
generator is what ``manual_seed`` resets and what functions use without ``generator=``.
The numbers differ from PyTorch's (a different algorithm), not their distributions.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from fnarray.api import random as fr
from fnarray.api.creation import device_put as fa_device_put
from fnarray.compat.defaults import default_float


class Generator:
    """An independent random stream: ``Generator().manual_seed(0)`` and pass it as
    ``generator=`` to ``rand``, ``randn``, ``randint``, ``randperm`` and the in-place
    ``normal_``/``uniform_``/``bernoulli_``."""

    def __init__(self, device="cpu"):
        self.device = device
        self._lock = threading.Lock()
        self._seed = 0
        self._key = None

    def manual_seed(self, seed: int) -> "Generator":
        """Restart the stream from ``seed``; returns the generator (for chaining)."""
        key = fr.key(int(seed))
        with self._lock:
            self._key, self._seed = key, int(seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        """The current state (a key); ``set_state`` restores it."""
        return self._key

    def set_state(self, state) -> "Generator":
        self._key = state
        return self

    def next_key(self):
        """A fresh key for one draw, advancing the stream."""
        with self._lock:
            if self._key is None:
                self._key = fr.key(self._seed)
            keys = fr.split(self._key, 2)
            self._key = keys[0]
        return keys[1]


default_generator = Generator()


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, _caller: str = "fork_rng",
             _devices_kw: str = "devices", device_type: str = "cuda"):
    """Within the block draw from the default generator freely: its state is restored on
    exit, so the draws after the block are those that would have come without it."""
    if not enabled:
        yield
        return
    state = default_generator.get_state()
    try:
        yield
    finally:
        default_generator.set_state(state)


def manual_seed(seed: int) -> Generator:
    """Reset the global generator; returns it, as PyTorch does."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    return default_generator.initial_seed()


def _key(generator):
    return (default_generator if generator is None else generator).next_key()


def _float(dtype):
    return default_float() if dtype is None else np.dtype(dtype)


def _placed(value, device):
    # device_put, not ``value.to``: under a transformation (``compat.compile`` traces
    # dropout) the value is a tracer, which stays where its trace puts it.
    return value if device is None else fa_device_put(value, device)


def uniform(shape, dtype=None, device=None, generator=None):
    """Uniform [0, 1) values as a core array."""
    return _placed(fr.uniform(_key(generator), tuple(shape), _float(dtype)), device)


def uniform_at_least(p: float, shape, dtype=None, device=None, generator=None):
    """``uniform(shape, ...) >= p`` from the words the draw would use, compared as
    integers (``fa.random.uniform_at_least``): dropout's keep mask."""
    return _placed(fr.uniform_at_least(_key(generator), p, tuple(shape), _float(dtype)), device)


def normal(shape, dtype=None, device=None, generator=None):
    """Standard normal values as a core array."""
    return _placed(fr.normal(_key(generator), tuple(shape), _float(dtype)), device)


def randint(low: int, high: int, shape, dtype=None, device=None, generator=None):
    """Integers uniform in ``[low, high)`` as a core array (int64 by default)."""
    out = fr.randint(_key(generator), tuple(shape), low, high,
                     np.dtype(np.int64 if dtype is None else dtype))
    return _placed(out, device)


def permutation(n: int, dtype=None, device=None, generator=None):
    """A random ordering of ``range(n)`` as a core array (int64 by default)."""
    out = fr.permutation(_key(generator), int(n))
    return _placed(out.astype(np.dtype(np.int64 if dtype is None else dtype)), device)


def bernoulli(p, dtype, device=None, generator=None):
    """0/1 values of ``dtype`` that are 1 with probability ``p`` (a core array of the
    shape of ``p``)."""
    return _placed(fr.bernoulli(_key(generator), p).astype(dtype), device)
