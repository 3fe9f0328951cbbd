"""``fnarray.onnx.export``: write a model or a pure function as an ONNX file.

The function (or ``nn.Module`` through ``nn.functional_call``, in its current train/eval
mode) is traced to the IR at the example arguments' shapes and optimised with the IR
passes; every equation is then lowered by the rule its primitive declares in
``fnarray/ops/<family>_onnx.py`` (see ``fnarray.onnx.rules``).  Parameters, buffers and
program constants become initializers.

Dynamic axes: the function is traced a second time with every dynamic axis one longer.
Sizes that differ between the two traces follow the dynamic axes: in inputs and outputs
they become symbolic dimensions, in reshape/broadcast targets ``-1`` (resolved by ONNX at
run time), in constants a shape or a number computed at run time from the dynamic sizes
(a mean's count, its reciprocal in a gradient); anywhere else the export refuses, naming
the equation or the constant.

The ``onnx`` package is imported on first use (``pip install 'fnarray[onnx]'``).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

__all__ = ["export", "UnsupportedPrimitiveError"]

DEFAULT_OPSET = 18


class UnsupportedPrimitiveError(ValueError):
    """A primitive of the traced program has no ONNX rule (or cannot take dynamic sizes)."""


def _require_onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError("fnarray.onnx.export needs the 'onnx' package: "
                          "pip install 'fnarray[onnx]'") from e
    return onnx


def export(model_or_fn, args, path, input_names=None, output_names=None,
           dynamic_axes=None, opset_version: int | None = None) -> None:
    """Trace ``model_or_fn(*args)`` and write it to ``path`` as an ONNX model.

    ``args``: one example input or a tuple of them (arrays or compat tensors).
    ``input_names``/``output_names``: graph value names (default ``input_i``/``output_i``).
    ``dynamic_axes``: ``{name: [axis, ...]}`` or ``{name: {axis: "symbol"}}`` for inputs
    and outputs whose sizes may change at run time.  ``opset_version``: 18 or later
    (default 18).  Nothing is written if the export fails: the file is written to a
    temporary name next to ``path`` and renamed when complete."""
    onnx = _require_onnx()
    from fnarray.onnx.builder import build_model
    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    if opset < 18:
        raise ValueError(f"fnarray.onnx.export: opset_version={opset} is not supported; the "
                         f"rules use opset 18 forms (reduction axes as inputs): pass 18 or later")
    model = build_model(model_or_fn, args, input_names, output_names, dynamic_axes or {},
                        opset)
    onnx.checker.check_model(model, full_check=True)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".onnx-export-", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        onnx.save_model(model, tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _normalize_dynamic(dynamic_axes: dict[str, Any]) -> dict[str, dict[int, str]]:
    out = {}
    for name, axes in dynamic_axes.items():
        if isinstance(axes, dict):
            out[name] = {int(a): str(s) for a, s in axes.items()}
        else:
            out[name] = {int(a): f"{name}_dynamic_axis_{int(a)}" for a in axes}
    return out
