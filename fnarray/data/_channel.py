"""Result channels: one pipe per ``DataLoader`` worker, which can never hang its reader.

A ``multiprocessing.Queue`` shared by all workers can hang the main process: its ``get``
only bounds the wait for the first byte, then blocks until the whole message arrives, so a
worker that dies in the middle of a message (results are far larger than a pipe's buffer)
leaves the reader blocked forever; the queue's feeder thread can be cut off mid-message
when a worker exits; and a worker that dies holding the queue's write lock blocks the
others.  Here instead:

* every worker writes to its own pipe (no lock shared between processes), synchronously
  from its main thread (no feeder thread): when ``send`` returns, the whole message is in
  the pipe, so a worker that exits afterwards never loses it;
* the main process holds only the read end (it closes its copy of the write end once the
  worker has started, and children forked later close the read ends they inherit), so a
  dead worker's pipe reads as end-of-file;
* ``Reader`` reads the pipe in non-blocking mode; while a message is incomplete it waits in
  short polls and asks its caller whether the writer is still alive (and whether a
  ``timeout`` has passed), so a worker that died mid-message raises ``ChannelClosed``
  instead of blocking.

A message is a frame ``[count][length] * count`` followed by ``count`` parts: the pickle
(protocol 5) and then its out-of-band buffers, the raw bytes of the NumPy arrays, which are
written straight from the arrays' memory and read into fresh buffers that the unpickled
arrays then own (no copy on either side besides the pipe's own).  The pickle travels
only between this process and the workers it started over their private pipes (the trust
``multiprocessing`` itself relies on); no file is ever unpickled (``fnarray.io`` never pickles).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import select
import struct
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection

_COUNT = struct.Struct("!I")
_LENGTH = struct.Struct("!Q")
PIPE_BYTES = 1 << 20  # asked-for pipe capacity: a few batches in flight per worker
_open_readers: weakref.WeakSet = weakref.WeakSet()


class ChannelClosed(EOFError):
    """The writer closed its end (it exited or died); ``received`` bytes of an unfinished
    message had arrived (0 when it closed between messages)."""

    def __init__(self, received: int, expected: int | None):
        self.received, self.expected = received, expected
        where = (f"in the middle of a message ({received} of {expected} bytes received)"
                 if self.partial else "between messages")
        super().__init__(f"result channel closed {where}")

    @property
    def partial(self) -> bool:
        return self.received > 0


def pipe(ctx) -> tuple[Reader, Connection]:
    """A ``(reader, writer)`` pair; the writer goes to one worker process."""
    read_end, write_end = ctx.Pipe(duplex=False)
    try:  # Linux: room for a few batches, so a worker can run ahead of the main process
        fcntl.fcntl(write_end.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (AttributeError, OSError):
        pass
    return Reader(read_end), write_end


def encode(obj) -> list[memoryview]:
    """``obj`` as the parts of one message (raises whatever pickling ``obj`` raises)."""
    buffers: list[pickle.PickleBuffer] = []
    body = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    views = [memoryview(body), *(b.raw() for b in buffers)]
    header = _COUNT.pack(len(views)) + b"".join(_LENGTH.pack(v.nbytes) for v in views)
    return [memoryview(header), *views]


def send(writer: Connection, parts: list[memoryview]) -> None:
    """Write ``encode``'s parts, blocking until all of them are in the pipe.  Raises
    ``BrokenPipeError`` when the reader is gone."""
    fd = writer.fileno()
    for part in parts:
        while part.nbytes:
            part = part[os.write(fd, part):]


class Reader:
    """The main process's end of one worker's pipe (non-blocking; see the module doc)."""

    def __init__(self, connection: Connection):
        self.connection = connection
        os.set_blocking(connection.fileno(), False)
        _open_readers.add(self)

    def fileno(self) -> int:
        return self.connection.fileno()

    def close(self) -> None:
        self.connection.close()

    def receive(self, idle: Callable[[], bool], poll_seconds: float):
        """The next message.  While it is incomplete and nothing arrives for
        ``poll_seconds``, ``idle()`` is called: it may raise (e.g. a timeout) and returns
        whether the writer has exited; once it has, a message that cannot be completed from
        what is left in the pipe raises ``ChannelClosed``."""
        fill = _Filler(self.fileno(), idle, poll_seconds)
        count = _COUNT.unpack(fill(bytearray(_COUNT.size)))[0]
        lengths = struct.unpack(f"!{count}Q", fill(bytearray(_LENGTH.size * count)))
        fill.expected = fill.received + sum(lengths)
        parts = [fill(bytearray(n)) for n in lengths]
        return pickle.loads(parts[0], buffers=parts[1:])

    def discard(self) -> bool:
        """Read and drop whatever is in the pipe now; False once the writer has closed."""
        scratch = bytearray(PIPE_BYTES)
        while True:
            try:
                if not os.readv(self.fileno(), [scratch]):
                    return False
            except BlockingIOError:
                return True


class _Filler:
    """Fills buffers from a non-blocking pipe, counting what one message has received."""

    def __init__(self, fd: int, idle: Callable[[], bool], poll_seconds: float):
        self.fd, self.idle, self.poll_seconds = fd, idle, poll_seconds
        self.received, self.expected = 0, None
        self.writer_exited = False

    def __call__(self, buffer: bytearray) -> bytearray:
        view, filled = memoryview(buffer), 0
        while filled < len(buffer):
            try:
                n = os.readv(self.fd, [view[filled:]])
            except BlockingIOError:
                self._wait()
                continue
            if n == 0:
                raise ChannelClosed(self.received, self.expected)
            filled += n
            self.received += n
        return buffer

    def _wait(self) -> None:
        if select.select([self.fd], [], [], self.poll_seconds)[0]:
            return
        if self.writer_exited:  # nothing more can come (another process holds the write end)
            raise ChannelClosed(self.received, self.expected)
        self.writer_exited = self.idle()


def close_inherited() -> None:
    """In a freshly forked child: close the read ends inherited from the parent, so that
    only the main process holds them (a worker gets ``BrokenPipeError`` once the main
    process is gone instead of blocking on a pipe a sibling keeps open)."""
    for reader in list(_open_readers):
        reader.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=close_inherited)
