"""The errors a ``DataLoader`` raises for its workers: a worker that died, and an exception
raised in a worker, re-raised in the main process with the worker's traceback."""

from __future__ import annotations

import builtins
import signal

from fnarray.data import _channel, _worker


def death_message(worker_id: int, process, lost: list,
                  closed: _channel.ChannelClosed | None = None) -> str:
    """Why worker ``worker_id`` is gone (exit code or signal, and whether it died in the
    middle of sending a batch) and which sample indices it was loading (``lost``)."""
    code = process.exitcode
    how = "still running, but closed its result pipe" if code is None else f"exit code {code}"
    if code is not None and code < 0:
        try:
            how = f"signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"signal {-code}"
    during = ""
    if closed is not None and closed.partial:
        during = (f" in the middle of sending a batch ({closed.received} of "
                  f"{closed.expected or 'unknown'} bytes arrived)")
    return (f"DataLoader worker {worker_id} (pid {process.pid}) exited unexpectedly "
            f"({how}){during}; "
            f"it was loading the batches with sample indices {lost}. A worker dies like this "
            f"when it is killed (e.g. by the out-of-memory killer) or crashes in native code; "
            f"try num_workers=0 to see the error directly")


def reraise(failure: _worker.WorkerFailure, index) -> Exception:
    """The worker's exception as one of the same builtin type (``RuntimeError`` otherwise)
    whose message adds the worker id, the sample and batch index and the traceback."""
    where = f"sample index {failure.sample_index!r}"
    if failure.sample_index != index:
        where += f" (batch {index!r})"
    message = (f"{failure.error_type}: {failure.message}\n"
               f"Caught in DataLoader worker {failure.worker_id} while loading {where}.\n"
               f"Original traceback in the worker:\n{failure.traceback}")
    error_type = getattr(builtins, failure.error_type, None)
    if isinstance(error_type, type) and issubclass(error_type, Exception):
        try:
            return error_type(message)
        except TypeError:
            pass
    return RuntimeError(message)
