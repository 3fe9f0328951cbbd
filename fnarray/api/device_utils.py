"""Moving pytrees of arrays to the host, and waiting for their computation.

``device_put`` (in ``creation``) places a pytree on a device; ``device_get`` brings one
back as NumPy arrays; ``block_until_ready`` waits for asynchronous (GPU) kernels, which is
what a benchmark must do before reading the clock.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fnarray.core import tree as _tree
from fnarray.core.array import Array, ArrayBase
from fnarray.core.trace import ConcretizationError

__all__ = ["device_get", "block_until_ready"]


def device_get(x: Any) -> Any:
    """``x`` with every array leaf replaced by a NumPy array of its values (copied from
    the device if needed); other leaves are returned unchanged."""
    def get(leaf):
        if isinstance(leaf, Array):
            return np.asarray(leaf)  # read-only: the array stays immutable
        if isinstance(leaf, ArrayBase):
            raise ConcretizationError(
                f"device_get: a leaf is a traced value ({type(leaf).__name__}) with no "
                f"concrete value inside this transformation; call device_get on the "
                f"transformation's outputs instead")
        return leaf
    return _tree.map(get, x)


def block_until_ready(x: Any) -> Any:
    """Wait until every array in the pytree ``x`` is computed; returns ``x``."""
    for leaf in _tree.leaves(x):
        if isinstance(leaf, Array):
            leaf.block_until_ready()
    return x
