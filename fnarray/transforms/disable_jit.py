"""``disable_jit()``: run jit-compiled functions eagerly, for debugging.

Inside the block every ``jit``-compiled function calls the original Python function on its
arguments, so ``print`` shows concrete values, breakpoints stop on every call and Python
control flow on array values works.  The setting is per thread, like the default device.
"""

from __future__ import annotations

import contextlib
import threading

_state = threading.local()


def jit_disabled() -> bool:
    """True inside a ``disable_jit()`` block (of this thread)."""
    return getattr(_state, "disabled", False)


@contextlib.contextmanager
def disable_jit(disable: bool = True):
    """Within the block, ``jit`` runs functions eagerly (``disable=False`` re-enables it)."""
    prev = jit_disabled()
    _state.disabled = bool(disable)
    try:
        yield
    finally:
        _state.disabled = prev
