"""``cupy.cuda`` of the test double: devices (``FAKE_CUPY_DEVICES``, default 8), the
current device, streams and events.  Work runs synchronously, so an event recorded on a
stream has always fired."""

import os
import types

_state = types.SimpleNamespace(device=0)


def _count() -> int:
    return int(os.environ.get("FAKE_CUPY_DEVICES", "8"))


runtime = types.SimpleNamespace(getDeviceCount=_count)


class Device:
    def __init__(self, device=None):
        self.id = _state.device if device is None else int(device)
        if not 0 <= self.id < _count():
            raise RuntimeError(f"fake cupy: invalid device {self.id}")
        self._previous = None

    def use(self):
        _state.device = self.id

    def synchronize(self):
        pass

    def __enter__(self):
        self._previous, _state.device = _state.device, self.id
        return self

    def __exit__(self, *exc):
        _state.device = self._previous
        return False

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return self.id


class Stream:
    ptr = 0  # the legacy default stream, as in CuPy

    def synchronize(self):
        pass

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event


_stream = Stream()


def get_current_stream():
    return _stream


class Event:
    def __init__(self):
        self.recorded = False

    def record(self, stream=None):
        self.recorded = True

    @property
    def done(self) -> bool:
        return self.recorded

    def synchronize(self):
        assert self.recorded, "synchronize() on an event that was never recorded"


from cupy.cuda import nccl  # noqa: E402,F401
