"""``fa.fft``: the Array API FFT extension (see ``fnarray/api/fft.py``)."""

from fnarray.api.fft import *  # noqa: F401,F403
from fnarray.api.fft import __all__  # noqa: F401
