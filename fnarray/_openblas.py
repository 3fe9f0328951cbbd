"""Let OpenBLAS's idle threads sleep soon after a product (set before NumPy loads OpenBLAS).

After every multi-threaded matrix product, OpenBLAS's worker threads busy-wait for new work
for ``2**OPENBLAS_THREAD_TIMEOUT`` CPU cycles (default 28: about 0.1 s) before they sleep.
A training step runs a product every few milliseconds, so on a machine with as many CPUs as
BLAS threads those workers hold every CPU but the caller's all the time, and nothing else
can use them: fnarray's Winograd convolutions (``fnarray/ops/conv_winograd.py``) then have to
run their tile transforms serially (threaded next to the spinning workers they ran slower).
With a timeout of 2**20 cycles (a third of a millisecond) the workers sleep between
products, and the Winograd driver shares its transforms across the CPUs: the tutorial
ConvNet's ``compat.compile`` step at two threads went from 44.1 to 34.2 ms (0.77x PyTorch
eager, from 1.02x), its MNIST epoch from 6.7 to 4.2 s, while the MLP step, whose products
follow each other closely, stayed the same (``benchmarks/compare.py``, session 6,
``/work/notes`` figures quoted in ``benchmarks/RESULTS.md``).

OpenBLAS reads the variable once, when NumPy is first imported.  So ``tune()``, run when
this module is imported (``fnarray/__init__.py`` imports it first), sets
``OPENBLAS_THREAD_TIMEOUT`` only when NumPy is not loaded yet and the user has not set it
(nor its old name ``GOTO_THREAD_TIMEOUT``): the user's value always wins,
``OPENBLAS_THREAD_TIMEOUT=28`` restores OpenBLAS's default, and ``FNARRAY_BLAS_TUNING=0``
leaves the environment alone.  A program that imports NumPy before fnarray keeps
OpenBLAS's default; the Winograd driver reads the variable to know which of the two it
runs with.  Child processes inherit the setting.  Other BLAS libraries (MKL, or OpenBLAS
built with OpenMP) do not read it.
"""

from __future__ import annotations

import os
import sys

TIMEOUT = "20"  #: the value ``tune()`` sets: 2**20 cycles of busy-waiting
_NAMES = ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")

tuned = False  #: whether ``tune()`` set the variable in this process


def tune() -> bool:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` as the module docstring says; True when it did."""
    global tuned
    if tuned or not _wanted():
        return tuned
    os.environ[_NAMES[0]] = TIMEOUT
    tuned = True
    return True


def _wanted() -> bool:
    if os.environ.get("FNARRAY_BLAS_TUNING") == "0" or "numpy" in sys.modules:
        return False
    return not any(name in os.environ for name in _NAMES)


tune()
