"""Loaders never hang: a worker that dies in the middle of sending a batch, a writer that
stalls mid-message, a worker that exits right after its last message, an abandoned epoch
with workers blocked sending.  The scenarios that could hang run in a subprocess with a
time limit, so a regression fails instead of hanging the suite."""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fnarray import _interop
from fnarray.data import DataLoader, Dataset
from fnarray.data import _channel

values = _interop.to_numpy
LIMIT_SECONDS = 60  # far above the few seconds each scenario takes; reached only by a hang


class Big(Dataset):
    """Sample i: a float32 array of ``size`` values equal to i (larger than a pipe holds)."""

    def __init__(self, n, size=1 << 20, exit_at=None):
        self.n, self.size, self.exit_at = n, size, exit_at

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.exit_at:
            os._exit(0)
        return np.full(self.size, i, np.float32)


def run_scenario(body: str) -> subprocess.CompletedProcess:
    """Run ``body`` in a fresh Python with a hard time limit (a hang fails the test)."""
    script = textwrap.dedent("""
        import os, signal, sys, time
        import numpy as np
        from fnarray.data import DataLoader, Dataset, _channel

        class Big(Dataset):
            def __len__(self):
                return 8
            def __getitem__(self, i):
                return np.full(1 << 20, i, np.float32)  # 4 MB: 4 pipe buffers

        def send_half_then(action):
            def init(worker_id):
                if worker_id != 1:
                    return
                real_send = _channel.send
                def send(writer, parts):
                    data = b"".join(bytes(p) for p in parts)
                    real_send(writer, [memoryview(data)[:len(data) // 2]])
                    action()
                _channel.send = send
            return init
    """) + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=LIMIT_SECONDS)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_worker_killed_while_sending_a_batch_raises(method):
    proc = run_scenario(f"""
        kill = send_half_then(lambda: os.kill(os.getpid(), signal.SIGKILL))
        loader = DataLoader(Big(), batch_size=1, num_workers=2, worker_init_fn=kill,
                            multiprocessing_context={method!r})
        start = time.monotonic()
        try:  # worker 0's batches may or may not arrive before worker 1's death is seen
            for batch in loader:
                assert float(batch[0, 0]) % 2 == 0.0  # only worker 0's (even) samples
        except RuntimeError as e:
            print(f"{{time.monotonic() - start:.3f}}")
            print(e)
        else:
            sys.exit("no error")
    """)
    seconds, message = proc.stdout.split("\n", 1)
    assert float(seconds) < 5
    assert "worker 1 (pid " in message
    assert "exited unexpectedly (signal SIGKILL) in the middle of sending a batch (" in message
    counts = message.split("sending a batch (")[1].split(" bytes")[0]
    received, expected = (int(x) for x in counts.split(" of "))
    assert received == expected // 2 and expected > 4 << 20  # all that it wrote arrived
    assert "sample indices [[1]" in message


def test_writer_stalled_mid_message_is_bounded_by_timeout(tmp_path):
    # Worker 1 writes half of batch 1 only once batch 0 (worker 0's) has arrived: were its
    # half message first, the loader would be reading it, stalled, when batch 0 is due.
    proc = run_scenario(f"""
        marker = {str(tmp_path / "batch0-received")!r}

        def after_batch0(worker_id):
            if worker_id == 1:
                real_send = _channel.send
                def send(writer, parts):
                    while not os.path.exists(marker):
                        time.sleep(0.01)
                    real_send(writer, parts)
                _channel.send = send
            stall(worker_id)

        stall = send_half_then(lambda: time.sleep(20))
        loader = DataLoader(Big(), batch_size=1, num_workers=2, worker_init_fn=after_batch0,
                            timeout=3)  # (the first batch, on a loaded machine, must fit too)
        batches = iter(loader)
        next(batches)
        open(marker, "w").close()
        start = time.monotonic()
        try:
            next(batches)
        except RuntimeError as e:
            print(f"{{time.monotonic() - start:.3f}}")
            print(e)
    """)
    seconds, message = proc.stdout.split("\n", 1)
    assert 2.9 < float(seconds) < 8
    assert "timed out after 3 seconds (timeout=3) waiting for batch 1 from worker 1" in message


def test_last_message_before_a_normal_exit_is_never_lost():
    loader = DataLoader(Big(3, exit_at=1), batch_size=None, num_workers=1)
    batches = iter(loader)
    time.sleep(0.5)  # the worker has sent sample 0 and exited by now
    first = values(next(batches))
    assert first.shape == (1 << 20,) and (first == 0).all()
    with pytest.raises(RuntimeError, match=r"worker 0 \(pid \d+\) exited unexpectedly "
                                           r"\(exit code 0\); .*sample indices \[1, 2\]"):
        next(batches)


def test_abandoned_epoch_shuts_down_workers_blocked_sending():
    loader = DataLoader(Big(16), batch_size=2, num_workers=2, prefetch_factor=4)
    batches = iter(loader)
    next(batches)  # the workers now block sending 8 MB batches nobody reads
    time.sleep(0.3)
    pool = batches.pool
    start = time.monotonic()
    pool.close()
    assert time.monotonic() - start < 5  # bounded; how they ended is checked next
    assert [p.exitcode for p in pool.workers] == [0, 0]  # they exited when asked, not killed


def test_a_batch_that_cannot_be_pickled_is_explained():
    loader = DataLoader(Big(2), batch_size=None, num_workers=1,
                        collate_fn=lambda sample: (lambda: sample))
    with pytest.raises(RuntimeError, match=r"(?s)the batch cannot be pickled to the main process "
                                           r".*Caught in DataLoader worker 0 while loading "
                                           r"sample index 0"):
        next(iter(loader))


def test_channel_round_trip_keeps_arrays_and_structure():
    reader, writer = _channel.pipe(multiprocessing.get_context("fork"))
    message = {"c": np.arange(12.0).reshape(3, 4), "f": np.asfortranarray(np.ones((2, 3))),
               "strided": np.arange(10)[::2], "empty": np.zeros((0, 3), np.int8),
               "rest": (1, "two", [3.0])}
    _channel.send(writer, _channel.encode(message))
    got = reader.receive(lambda: False, 0.05)
    assert got.keys() == message.keys() and got["rest"] == (1, "two", [3.0])
    for key in ("c", "f", "strided", "empty"):
        np.testing.assert_array_equal(got[key], message[key])
        assert got[key].dtype == message[key].dtype
    writer.close()
    with pytest.raises(_channel.ChannelClosed) as closed:
        reader.receive(lambda: False, 0.05)
    assert not closed.value.partial
    reader.close()


def test_partial_message_from_an_exited_writer_never_blocks():
    """Even when another process still holds the write end (so no end-of-file comes), a
    partial message whose writer has exited raises after one more poll."""
    reader, writer = _channel.pipe(multiprocessing.get_context("fork"))
    parts = _channel.encode(np.ones(1000))
    data = b"".join(bytes(p) for p in parts)
    _channel.send(writer, [memoryview(data)[:100]])
    idle_calls = []

    def idle():
        idle_calls.append(time.monotonic())
        return True  # "the writer has exited"
    start = time.monotonic()
    with pytest.raises(_channel.ChannelClosed, match=r"in the middle of a message \(100 of "
                                                     rf"{len(data)} bytes received\)"):
        reader.receive(idle, 0.05)
    assert len(idle_calls) == 1 and time.monotonic() - start < 1
    writer.close()
    reader.close()


def test_forked_children_do_not_keep_read_ends_open():
    reader, writer = _channel.pipe(multiprocessing.get_context("fork"))
    pid = os.fork()
    if pid == 0:  # child: the read end was closed at fork
        os._exit(0 if reader.connection.closed else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    reader.close()  # so no process holds a read end now: writing finds no reader
    with pytest.raises(BrokenPipeError):
        _channel.send(writer, _channel.encode(1))
    writer.close()


def test_killed_worker_blocked_in_a_full_pipe_is_reported():
    """SIGKILL from outside while the worker is blocked writing a batch nobody reads yet."""
    loader = DataLoader(Big(8, size=4 << 20), batch_size=None, num_workers=1)
    batches = iter(loader)
    time.sleep(0.3)
    os.kill(batches.pool.workers[0].pid, signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"worker 0 \(pid \d+\) exited unexpectedly "
                                           r"\(signal SIGKILL\) in the middle of sending"):
        next(batches)
    assert time.monotonic() - start < 5
