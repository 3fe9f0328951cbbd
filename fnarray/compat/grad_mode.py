"""Whether operations on tensors are recorded for ``backward()`` (per thread).

``no_grad``, ``enable_grad``, ``set_grad_enabled`` and ``inference_mode`` work as context
managers and as decorators, like PyTorch's.
"""

from __future__ import annotations

import functools
import threading


class _GradState(threading.local):
    def __init__(self):
        self.enabled = True
        self.inference = False  # inside inference_mode()


_state = _GradState()


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded."""
    return _state.enabled


class _Mode:
    """A recording mode usable as a context manager or a decorator."""

    mode = True

    def __enter__(self):
        self._saved = _state.enabled
        _state.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _state.enabled = self._saved
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            saved = _state.enabled
            _state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = saved
        return wrapped


class no_grad(_Mode):
    """Within the block (or decorated function) nothing is recorded for ``backward()``."""

    mode = False


class enable_grad(_Mode):
    """Recording is on within the block, even inside ``no_grad``."""

    mode = True


class set_grad_enabled(_Mode):
    """Turn recording on or off: immediately (``set_grad_enabled(False)``), for a ``with``
    block (restored afterwards), or around a decorated function."""

    def __init__(self, mode: bool = True):
        self._before = _state.enabled
        self.mode = bool(mode)
        _state.enabled = self.mode

    def __enter__(self):
        super().__enter__()
        self._saved = self._before
        return self

    def __call__(self, fn):
        _state.enabled = self._before  # used as a decorator: the mode applies only inside
        return super().__call__(fn)


class inference_mode(_Mode):
    """Like ``no_grad`` (fnarray has no separate inference tensors);
    ``inference_mode(False)`` leaves recording as it is."""

    def __init__(self, mode: bool = True):
        self.inference = bool(mode)
        self.mode = False if mode else _state.enabled

    def __enter__(self):
        self._saved_inference = _state.inference
        _state.inference = self.inference
        return super().__enter__()

    def __exit__(self, *exc):
        _state.inference = self._saved_inference
        return super().__exit__(*exc)

    def __call__(self, fn):
        inference = self.inference

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with inference_mode(inference):
                return fn(*args, **kwargs)
        return wrapped


def is_inference_mode_enabled() -> bool:
    """True inside ``inference_mode()``."""
    return _state.inference
