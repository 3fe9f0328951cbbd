"""numba kernels for the NumPy backend, one module per concept; reached only through
:func:`fnarray.backends.accel.kernels`, which imports a module on its first use.

Every kernel is compiled with :data:`compiled`: cached on disk, releasing the GIL (a
DataLoader thread or a user's thread keeps running) and with NumPy's error model (division
by zero gives inf/NaN as NumPy does, instead of raising).  Kernels write only into output
buffers they allocate themselves, or into buffers their caller donated; they never write
into an array that fnarray has handed out.
"""

from functools import partial

from numba import njit

compiled = partial(njit, cache=True, nogil=True, error_model="numpy")
