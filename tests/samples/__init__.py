"""Example inputs for every primitive, used by the registry tests.

Each family module in this package defines ``SAMPLES: dict[str, Callable[[], Strategy]]``
mapping a primitive's registry name to a function returning a hypothesis strategy of
``Sample``.  ``tests/test_registry.py`` gathers them all; a primitive with no entry fails.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@dataclasses.dataclass
class Sample:
    """Inputs for one primitive application.

    ``args``: NumPy arrays (float64 for differentiable operands).
    ``params``: the primitive's static parameters.
    ``diff``: positions of the operands to differentiate (the others stay constant).
    ``batchable``: positions that may be given a batch axis in the vmap test
    (default: all operands).
    ``modes``: the derivative modes the primitive supports (``while`` is forward-only).
    """

    args: tuple
    params: dict = dataclasses.field(default_factory=dict)
    diff: tuple = (0,)
    batchable: tuple | None = None
    modes: tuple = ("fwd", "rev")


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=4):
    """Shapes including 0-d, size-0 and size-1 axes."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def floats(shape, lo=-2.0, hi=2.0, noncontiguous=False):
    """float64 arrays with moderate values; optionally a non-contiguous view."""
    def build(a):
        if noncontiguous and a.ndim:
            big = np.repeat(a, 2, axis=-1)
            return big[..., ::2]
        return a
    return hnp.arrays(np.float64, shape,
                      elements=st.floats(lo, hi, allow_nan=False, width=64)).map(build)


def away_from_zero(shape, lo=0.3, hi=2.0):
    """float64 arrays with |x| in [lo, hi] (for ops singular at 0)."""
    mags = hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, width=64))
    signs = hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0]))
    return st.tuples(mags, signs).map(lambda t: t[0] * t[1])


def broadcastable_pair(max_dims=3):
    """Two shapes that broadcast together (including 0-d and size-1 axes)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=max_dims,
                                             min_side=0, max_side=3).map(lambda b: b.input_shapes)


def all_samples() -> dict:
    """Every ``SAMPLES`` table in this package, merged."""
    out = {}
    for mod in pkgutil.iter_modules(__path__):
        m = importlib.import_module(f"{__name__}.{mod.name}")
        for name, fn in getattr(m, "SAMPLES", {}).items():
            if name in out:
                raise ValueError(f"primitive {name!r} has samples in two modules")
            out[name] = fn
    return out
