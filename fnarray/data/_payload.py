"""How a ``DataLoader`` hands its dataset, ``collate_fn`` and ``worker_init_fn`` to workers.

PyTorch on Linux forks its workers, so a Dataset defined in a notebook cell or inside a
function, a lambda ``collate_fn`` and a script without an ``if __name__ == "__main__":``
guard all work there.  fnarray starts workers with ``forkserver``/``spawn`` (forking a
process that runs BLAS threads can deadlock), which normally means pickling by reference
and re-running the main script in every worker.  Instead:

* the ``WorkerSpec`` is serialised once with ``cloudpickle`` (extra ``data``), which pickles
  classes and functions from ``__main__``, notebook cells, closures and lambdas by value,
  and large NumPy buffers by shared memory (``_shared``);
* while a worker process is started, ``__main__`` is hidden from ``multiprocessing``'s
  preparation step, so the worker never re-imports (re-runs) the user's script: it needs
  nothing from it, because the payload carries everything by value.

Without cloudpickle the spec is pickled by reference with the standard pickler (still
sharing large buffers; module-level definitions and a ``__main__`` guard required), and a
pickling failure names the extra to install.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
import types
from collections.abc import Iterator


_INSTALL_HINT = "install the 'data' extra (pip install 'fnarray[data]', i.e. cloudpickle)"


def _cloudpickle():
    try:
        import cloudpickle
    except ImportError:
        return None
    return cloudpickle


def by_value() -> bool:
    """Whether payloads carry functions and classes by value (cloudpickle is installed)."""
    return _cloudpickle() is not None


def dump(spec, shared=None) -> tuple[bytes, bool]:
    """``(payload, by_value)``: the spec as bytes — by value with cloudpickle when it is
    installed, else by reference with the standard pickler.  With ``shared`` (a
    ``_shared.SharedArrays``), large NumPy buffers are not in the bytes: they go by shared
    memory (or, for forked workers, by reference to the parent's memory)."""
    cp = _cloudpickle()
    buffer = io.BytesIO()
    pickler = _sharing_pickler(cp)(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.shared = shared
    pickler.dump(spec)
    return buffer.getvalue(), cp is not None


def _sharing_pickler(cp) -> type:
    """A ``CloudPickler`` (or, without cloudpickle, a standard ``Pickler``) that hands
    large NumPy arrays to its ``shared`` table."""
    base = pickle.Pickler if cp is None else cp.CloudPickler
    cls = _SharingPicklers.get(base)
    if cls is None:
        class SharingPickler(base):
            shared = None

            def reducer_override(self, obj):
                if self.shared is not None:
                    reduced = self.shared.reduce(obj)
                    if reduced is not None:
                        return reduced
                parent = getattr(super(), "reducer_override", None)
                return NotImplemented if parent is None else parent(obj)
        cls = _SharingPicklers[base] = SharingPickler
    return cls


_SharingPicklers: dict = {}


def load(payload):
    """The spec back from ``dump``'s payload (in the worker).

    The bytes come only from this worker's parent over the private pipe ``multiprocessing``
    opened for it (the same trust ``multiprocessing`` itself gives its own pickles); no file
    or outside input is ever read here, so ``fa.load`` keeps its never-unpickle promise."""
    return pickle.loads(payload)


def pickling_hint(by_value: bool) -> str:
    if by_value:
        return ("an object it holds cannot be serialised even by value (e.g. an open file, "
                "a lock or a database connection); open such resources lazily in "
                "__getitem__ or worker_init_fn, or use num_workers=0")
    return (f"define them at module level (not lambdas or local functions) and guard the "
            f"script with if __name__ == '__main__':, or {_INSTALL_HINT} so they are sent "
            f"by value")


@contextlib.contextmanager
def main_hidden(active: bool) -> Iterator[None]:
    """While starting a worker, show ``multiprocessing`` a ``__main__`` with no file or
    spec, so the worker does not re-run the user's script."""
    if not active:
        yield
        return
    real = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if real is None:
            del sys.modules["__main__"]
        else:
            sys.modules["__main__"] = real
