"""Keep large NumPy buffers in the C heap instead of fresh memory mappings (glibc only).

Every eager fnarray operation returns a new array, so a training step allocates and frees
dozens of buffers of a few MB.  With glibc's defaults an allocation above the mmap
threshold (128 KiB, raised dynamically only to the largest block freed so far, and frozen
by any explicit setting) is a fresh ``mmap``, and freed heap memory above 128 KiB is given
back to the system: either way the next buffer of that size starts as untouched pages, and
filling it costs one page fault per 4 KiB.  On the project's machine that was the larger
part of many kernels: creating three 1.2 MB arrays cost 2.9 ms against 0.14 ms once the
memory was reused; Threefry on 295K blocks 8-10 ms against 3-5 ms; a whole MNIST training
step 140 ms against 113 ms.  PyTorch avoids the same cost with in-place kernels and its
allocators.

``tune()`` (called when fnarray is imported) raises the mmap threshold to 32 MiB, glibc's
upper limit, and keeps up to 256 MiB of freed memory at the top of the heap, so buffers up
to 32 MiB are recycled without page faults.  The price is that a process keeps up to that
much freed memory mapped.  It does nothing when the C library is not glibc, when the user
already set any ``MALLOC_*`` tunable in the environment (their choice wins), or when
``FNARRAY_MALLOC_TUNING=0``.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's maximum (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 256 << 20

tuned = False  #: whether ``tune()`` changed the allocator in this process


def tune() -> bool:
    """Apply the settings described in the module docstring; True when they took effect."""
    global tuned
    if tuned or not _wanted():
        return tuned
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return tuned


def _wanted() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("FNARRAY_MALLOC_TUNING") == "0":
        return False
    if any(name.startswith("MALLOC_") or name == "GLIBC_TUNABLES" for name in os.environ):
        return False
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False
