"""Importing fnarray on glibc keeps large freed buffers for reuse (``fnarray/_malloc.py``):
re-allocating a training step's buffers then costs few page faults, where glibc's defaults
fault most pages in again; ``FNARRAY_MALLOC_TUNING=0`` or the user's own ``MALLOC_*``
settings leave the allocator alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import resource
import numpy as np
import fnarray._malloc as m
import fnarray  # noqa: F401  (tunes on import)

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

# the buffer sizes of one MNIST training step's activations, alive together, as in a step
sizes = [294912, 1384448, 2359296, 1179648, 589824]
for size in sizes:
    np.ones(size, np.float32)
start = faults()
for _ in range(10):
    alive = [np.ones(size, np.float32) for size in sizes]  # writes every page
    del alive
print(m.tuned, faults() - start)
"""


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False


def _run(**env) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "FNARRAY_MALLOC_TUNING")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env={**clean, **env}, timeout=120, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _glibc(), reason="glibc only")
def test_large_buffers_are_reused_without_page_faults():
    tuned, tuned_faults = _run()
    off, off_faults = _run(FNARRAY_MALLOC_TUNING="0")
    users, _ = _run(MALLOC_ARENA_MAX="2")
    assert (tuned, off, users) == ("True", "False", "False")
    assert off_faults > 5000  # of ~57,000 pages written
    assert tuned_faults < off_faults / 3
