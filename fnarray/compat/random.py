"""PyTorch's global random state on top of fnarray's functional keys.

``manual_seed(s)`` resets one global key; each draw splits it, so a seed gives the same
sequence of tensors on every backend.  The numbers differ from PyTorch's generator.
"""

from __future__ import annotations

import threading

import numpy as np

_lock = threading.Lock()
_state = {"key": None, "seed": 0}


def _fa_random():
    import fnarray.api.random as fr  # written alongside this module; imported lazily
    return fr


def manual_seed(seed: int):
    """Reset the global generator; returns the seed (PyTorch returns a Generator)."""
    with _lock:
        _state["key"] = _fa_random().key(int(seed))
        _state["seed"] = int(seed)
    return seed


def initial_seed() -> int:
    return _state["seed"]


def next_key():
    """A fresh key, advancing the global state."""
    with _lock:
        if _state["key"] is None:
            _state["key"] = _fa_random().key(_state["seed"])
        keys = _fa_random().split(_state["key"], 2)
        _state["key"], sub = keys[0], keys[1]
    return sub


def _float(dtype):
    return np.dtype(np.float32 if dtype is None else dtype)


def uniform(shape, dtype=None, device=None):
    """Uniform [0, 1) values as a core array."""
    out = _fa_random().uniform(next_key(), tuple(shape), _float(dtype))
    return out if device is None else out.to(device)


def normal(shape, dtype=None, device=None):
    """Standard normal values as a core array."""
    out = _fa_random().normal(next_key(), tuple(shape), _float(dtype))
    return out if device is None else out.to(device)


def randint(low: int, high: int, shape, dtype=None, device=None):
    out = _fa_random().randint(next_key(), tuple(shape), low, high,
                               np.dtype(np.int64 if dtype is None else dtype))
    return out if device is None else out.to(device)
