"""``torch.testing.assert_close``: PyTorch's default tolerances per dtype and its messages.

Defaults (``rtol``, ``atol``): float16 (1e-3, 1e-5), bfloat16 (1.6e-2, 1e-5),
float32/complex64 (1.3e-6, 1e-5), float64/complex128 (1e-7, 1e-7), integers and bool
(0, 0: exact equality).  Python floats compare as float64.  Sequences and mappings are
compared element by element.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Number

import numpy as np
from fnarray.core.shapes import is_float, is_inexact

_TOLERANCES = {"float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5),
               "float32": (1.3e-6, 1e-5), "float64": (1e-7, 1e-7),
               "complex64": (1.3e-6, 1e-5), "complex128": (1e-7, 1e-7)}


def default_tolerances(*dtypes) -> tuple[float, float]:
    """The largest default ``(rtol, atol)`` over ``dtypes``."""
    pairs = [_TOLERANCES.get(np.dtype(d).name, (0.0, 0.0)) for d in dtypes]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _is_tensor_like(x) -> bool:
    from fnarray.compat.tensor import Tensor
    return isinstance(x, (Tensor, np.ndarray)) or hasattr(x, "__fnarray_array__")


def _host(x) -> np.ndarray:
    from fnarray.compat.tensor import Tensor
    if isinstance(x, Tensor):
        return np.asarray(x.detach().concrete("assert_close"))
    return np.asarray(x)


def _fail(msg, generated: str):
    if callable(msg):
        generated = msg(generated)
    elif msg is not None:
        generated = msg
    raise AssertionError(generated)


def _diff_lines(abs_diff, abs_idx, atol, rel_diff, rel_idx, rtol) -> str:
    equality = rtol == 0 and atol == 0
    out = ""
    for kind, diff, idx, tol in (("absolute", abs_diff, abs_idx, atol),
                                 ("relative", rel_diff, rel_idx, rtol)):
        line = (f"{kind.title()} difference: {diff}" if idx is None
                else f"Greatest {kind} difference: {diff} at index {idx}")
        if not equality:
            line += f" (up to {tol} allowed)"
        out += line + "\n"
    return out


def _close(a: np.ndarray, e: np.ndarray, rtol, atol, equal_nan) -> np.ndarray:
    if is_inexact(a.dtype) or is_inexact(e.dtype):
        return np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    return a == e


def _compare_tensors(actual, expected, rtol, atol, equal_nan, check_dtype, msg, scalar):
    from fnarray.compat.formatting import dtype_name
    from fnarray.compat.tensor import Size
    a, e = _host(actual), _host(expected)
    if not scalar and a.shape != e.shape:
        _fail(msg, f"The values for attribute 'shape' do not match: {Size(a.shape)} != "
                   f"{Size(e.shape)}.")
    if check_dtype and not scalar and a.dtype != e.dtype:
        _fail(msg, f"The values for attribute 'dtype' do not match: {dtype_name(a.dtype)} "
                   f"!= {dtype_name(e.dtype)}.")
    if rtol is None:
        rtol, atol = default_tolerances(a.dtype, e.dtype)
    matches = _close(a, e, rtol, atol, equal_nan)
    if bool(np.all(matches)):
        return
    wide = np.complex128 if (a.dtype.kind == "c" or e.dtype.kind == "c") else \
        (np.float64 if (is_float(a.dtype) or is_float(e.dtype)) else np.int64)
    a64, e64 = a.astype(wide), e.astype(wide)
    with np.errstate(divide="ignore", invalid="ignore"):
        abs_diff = np.abs(a64 - e64)
        rel_diff = abs_diff / np.abs(e64)
    abs_diff = np.where(matches, 0, abs_diff)
    rel_diff = np.where(matches, 0, np.nan_to_num(rel_diff, nan=np.inf))
    if scalar:
        text = (f"Scalars are not {'equal' if rtol == 0 and atol == 0 else 'close'}!\n\n"
                f"Expected {expected} but got {actual}.\n")
        text += _diff_lines(abs_diff.item(), None, atol, rel_diff.item(), None, rtol)
        _fail(msg, text.strip())
    n = matches.size
    bad = n - int(matches.sum())
    ia, ir = int(np.argmax(abs_diff)), int(np.argmax(rel_diff))

    def where(i):
        return tuple(int(v) for v in np.unravel_index(i, a.shape))

    text = (f"Tensor-likes are not {'equal' if rtol == 0 and atol == 0 else 'close'}!\n\n"
            f"Mismatched elements: {bad} / {n} ({bad / n:.1%})\n")
    text += _diff_lines(abs_diff.ravel()[ia].item(), where(ia), atol,
                        rel_diff.ravel()[ir].item(), where(ir), rtol)
    _fail(msg, text.strip())


def assert_close(actual, expected, *, allow_subclasses: bool = True, rtol=None, atol=None,
                 equal_nan: bool = False, check_device: bool = True,
                 check_dtype: bool = True, check_layout: bool = True,
                 check_stride: bool = False, msg=None) -> None:
    """Raise ``AssertionError`` (with PyTorch's message) unless ``actual`` and
    ``expected`` are close: ``|actual - expected| <= atol + rtol * |expected|``."""
    if (rtol is None) != (atol is None):
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, but "
                         f"got no {'rtol' if rtol is None else 'atol'}.")
    kw = dict(allow_subclasses=allow_subclasses, rtol=rtol, atol=atol, equal_nan=equal_nan,
              check_device=check_device, check_dtype=check_dtype, check_layout=check_layout,
              check_stride=check_stride, msg=msg)
    if _is_tensor_like(actual) or _is_tensor_like(expected):
        _compare_tensors(actual, expected, rtol, atol, equal_nan, check_dtype, msg, False)
    elif isinstance(actual, Number) and isinstance(expected, Number):
        if check_dtype and type(actual) is not type(expected) and not allow_subclasses:
            _fail(msg, f"The values for attribute 'type' do not match: {type(actual)} != "
                       f"{type(expected)}.")
        _compare_tensors(actual, expected, rtol, atol, equal_nan, False, msg, True)
    elif isinstance(actual, Mapping) and isinstance(expected, Mapping):
        if set(actual) != set(expected):
            _fail(msg, f"The keys of the mappings do not match:\nMissing keys in the actual "
                       f"mapping: {sorted(map(repr, set(expected) - set(actual)))}\n"
                       f"Additional keys in the actual mapping: "
                       f"{sorted(map(repr, set(actual) - set(expected)))}")
        for key in expected:
            assert_close(actual[key], expected[key], **kw)
    elif (isinstance(actual, Sequence) and isinstance(expected, Sequence)
          and not isinstance(actual, str) and not isinstance(expected, str)):
        if len(actual) != len(expected):
            _fail(msg, f"The length of the sequences mismatch: {len(actual)} != "
                       f"{len(expected)}")
        for a, e in zip(actual, expected):
            assert_close(a, e, **kw)
    elif actual is None and expected is None:
        return
    else:
        raise TypeError(f"No comparison pair was able to handle inputs of type "
                        f"{type(actual)} and {type(expected)}.")
