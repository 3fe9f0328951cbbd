"""The table from primitive names to ONNX lowering rules.

Each primitive family declares its rules next to its primitives, in
``fnarray/ops/<family>_onnx.py``, with ``@onnx_rule("name", ...)``.  A rule receives the
graph builder (``GraphBuilder``: ``g.op``, ``g.const``), the ONNX value names of the
equation's inputs, the equation itself (for output shapes/dtypes) and the equation's
parameters; it returns the ONNX value name of each output.  Nothing here imports ``onnx``:
the builder does, so declaring rules costs nothing at ``import fnarray``.
"""

from __future__ import annotations

import importlib
from typing import Callable

RULES: dict[str, Callable] = {}

# The per-family rule modules; importing one declares its rules.
_FAMILIES = ("elementwise", "reduction", "shape", "linalg", "conv", "pooling", "activation",
             "sorting", "scan", "indexing", "control_flow", "loss", "calls")


def onnx_rule(*names: str, dynamic: bool = False):
    """Declare the decorated function as the ONNX lowering of the primitives ``names``.

    ``dynamic=True``: the rule accepts ``-1`` in integer-tuple parameters for sizes that
    follow a dynamic axis (a reshape target, a broadcast shape); other rules refuse them."""
    def register(fn):
        fn.onnx_dynamic = dynamic
        for name in names:
            if name in RULES:
                raise ValueError(f"ONNX rule for primitive {name!r} declared twice")
            RULES[name] = fn
        return fn
    return register


def load_rules() -> dict[str, Callable]:
    """Import every family's rule module (once) and return the table."""
    for family in _FAMILIES:
        importlib.import_module(f"fnarray.ops.{family}_onnx")
    return RULES
