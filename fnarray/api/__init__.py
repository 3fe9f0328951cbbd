"""The user-facing NumPy / Array-API namespace, composed from primitives.

Importing this package declares every primitive (``fnarray.ops``) and installs these
functions as the operators of ``Array`` and of every tracer.
"""

import sys as _sys
import types as _types

from fnarray.api._convert import astype  # noqa: F401
from fnarray.api.creation import *  # noqa: F401,F403
from fnarray.api.elementwise import *  # noqa: F401,F403
from fnarray.api.reductions import *  # noqa: F401,F403
from fnarray.api.manipulation import *  # noqa: F401,F403
from fnarray.api.indexing import *  # noqa: F401,F403
from fnarray.api.searching import *  # noqa: F401,F403
from fnarray.api.contraction import *  # noqa: F401,F403
from fnarray.api.nn import *  # noqa: F401,F403
from fnarray.api.einsum import einsum  # noqa: F401
from fnarray.api.special import digamma, lgamma, polygamma  # noqa: F401
from fnarray.api.dtype_functions import *  # noqa: F401,F403
from fnarray.api.device_utils import *  # noqa: F401,F403
from fnarray.api.quantiles import *  # noqa: F401,F403
from fnarray.api.statistics import *  # noqa: F401,F403
from fnarray.api.cumulative import *  # noqa: F401,F403
from fnarray.api.binning import *  # noqa: F401,F403
from fnarray.api.set_ops import *  # noqa: F401,F403
from fnarray.api.elementwise import abs, pow, round  # noqa: F401,A004
from fnarray.api.reductions import all, any, max, min, sum  # noqa: F401,A004
import fnarray.ops  # noqa: F401,E402  (declares the primitives)
from fnarray.core.array import install_api as _install

_install(_sys.modules[__name__])

# What ``from fnarray.api import *`` exports: the functions and classes defined by
# fnarray, not the submodules or the helpers they import.
__all__ = sorted(
    n for n, v in list(globals().items())
    if not n.startswith("_") and not isinstance(v, _types.ModuleType)
    and getattr(v, "__module__", "").startswith("fnarray."))
