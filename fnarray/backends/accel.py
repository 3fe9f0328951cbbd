"""Compiled CPU kernels: the optional ``accel`` extra (numba), loaded on first use.

NumPy runs a composite kernel as a chain of passes, each reading and writing whole arrays
through fresh temporaries: Adam's update is about a dozen passes over every parameter, a
max-pool backward five, Threefry's twenty rounds a hundred.  Compiled with numba, each is one
loop that keeps its intermediates in registers.  The kernels live in
``fnarray.backends.kernels``, one module per concept, and a primitive's impl asks this
module for them; a primitive without a compiled kernel, an array on another backend, or a
machine without numba runs the NumPy code, which stays the reference: both give the same
values (to float rounding), and the tests run both.

Whether compiled kernels run is decided per call by :func:`kernels`:

* ``FNARRAY_ACCEL=0`` turns them off; ``FNARRAY_ACCEL=1`` requires them (an error naming the
  extra when numba is missing); unset, they run when numba is installed.
* Arrays smaller than :data:`MIN_SIZE` elements stay on NumPy, whose per-call cost is as low
  and which needs no compilation; this also keeps numba's import (about half a second) out
  of programs that never touch a large array.
* Kernels compile once per signature and cache the machine code on disk (numba's
  ``cache=True``), so later processes load them in milliseconds.

:func:`forced` overrides both choices for a block of code; the tests use it to run every
compiled kernel, at any size, against its NumPy reference.
"""

from __future__ import annotations

import importlib
import os
from contextlib import contextmanager
from types import ModuleType
from typing import Iterator

import numpy

MIN_SIZE = 1 << 15  #: arrays below this many elements run on NumPy

_ENV = "FNARRAY_ACCEL"
_mode: str | None = None  # "off" | "on" | "auto"; None: read the environment on first use
_numba: ModuleType | None | bool = None  # numba once imported; False when it is missing
_modules: dict[str, ModuleType] = {}
_min_size = MIN_SIZE
_threads: int | None = None  # set_num_threads' limit, applied when numba loads


def _current_mode() -> str:
    global _mode
    if _mode is None:
        value = os.environ.get(_ENV, "").strip()
        _mode = {"0": "off", "1": "on"}.get(value, "auto")
    return _mode


def available() -> bool:
    """Whether numba can be imported here (importing it on the first call)."""
    global _numba
    if _numba is None:
        try:
            _numba = importlib.import_module("numba")
        except ImportError:
            _numba = False
        else:
            if _threads is not None:
                set_num_threads(_threads)
    return _numba is not False


def _require() -> None:
    if not available():
        raise ImportError(
            f"compiled CPU kernels were requested ({_ENV}=1 or accel.forced(True)) but numba "
            "is not installed; install the 'accel' extra (pip install fnarray[accel]) or unset "
            f"{_ENV} to run on NumPy alone")


def kernels(name: str, xp, size: int) -> ModuleType | None:
    """The compiled-kernel module ``fnarray.backends.kernels.<name>`` when compiled kernels
    should run for an operation on ``size`` elements of backend ``xp``; None means "use the
    NumPy code"."""
    if xp is not numpy or size < _min_size:
        return None
    mode = _current_mode()
    if mode == "off":
        return None
    if mode == "on":
        _require()
    elif not available():
        return None
    module = _modules.get(name)
    if module is None:
        module = _modules[name] = importlib.import_module(f"fnarray.backends.kernels.{name}")
    return module


def loaded(name: str, xp) -> ModuleType | None:
    """The compiled-kernel module ``fnarray.backends.kernels.<name>`` when compiled kernels
    are on for backend ``xp`` and :func:`kernels` has already loaded it in this process;
    None otherwise (nothing is imported).  For work below :data:`MIN_SIZE` whose NumPy code
    is many calls (a random key split: some hundred ufunc calls, 78 us, against 2 us
    compiled): not worth importing numba for, but worth running compiled once a larger
    operation has paid for the loading."""
    if xp is not numpy or _current_mode() == "off":
        return None
    return _modules.get(name)


def enabled() -> bool:
    """Whether large NumPy operations currently run compiled kernels."""
    mode = _current_mode()
    if mode == "on":
        _require()
    return mode != "off" and available()


@contextmanager
def forced(on: bool) -> Iterator[None]:
    """Within the block, run compiled kernels for every size (``on``, which needs numba) or
    never (``not on``); the previous choice is restored on exit."""
    global _mode, _min_size
    saved = (_current_mode(), _min_size)
    _mode, _min_size = ("on", 0) if on else ("off", _min_size)
    try:
        if on:
            _require()
        yield
    finally:
        _mode, _min_size = saved


def set_num_threads(n: int) -> None:
    """Limit the threads of numba's parallel kernels to ``n`` (now, or when numba loads)."""
    global _threads
    _threads = int(n)
    if _numba:
        _numba.set_num_threads(max(1, min(int(n), _numba.config.NUMBA_NUM_THREADS)))
