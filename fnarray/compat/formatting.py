"""PyTorch's tensor printing: ``tensor([0.2500, 0.4000])``, ``tensor([1, 2], dtype=...)``.

The rules (precision 4, a shared element width, integer-valued floats printed as ``1.``,
scientific notation when magnitudes span more than 1000x or leave [1e-4, 1e8], summaries
with ``...`` beyond 1000 elements, 80-column lines) follow PyTorch's documented output.
"""

from __future__ import annotations

import math

import numpy as np

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80
_DEFAULT_DTYPES = (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_))


class _Formatter:
    """Chooses one notation and width for every element of a tensor."""

    def __init__(self, values: np.ndarray):
        self.floating = values.dtype.kind in "fc"
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        flat = values.ravel()
        if not self.floating:
            self.width = max((len(self._plain(v)) for v in flat), default=1)
            return
        finite = flat[np.isfinite(flat)]
        nonzero = np.abs(finite[finite != 0]).astype(np.float64)
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        if nonzero.size:
            lo, hi = nonzero.min(), nonzero.max()
            if self.int_mode:
                self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8
            else:
                self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        self.width = max((len(self._float(v)) for v in flat), default=1)

    @staticmethod
    def _plain(v) -> str:
        return str(v.item() if hasattr(v, "item") else v)

    def _float(self, v) -> str:
        v = float(v)
        if self.sci_mode:
            return f"{v:.{PRECISION}e}"
        if self.int_mode:
            text = f"{v:.0f}"
            return text if math.isinf(v) or math.isnan(v) else text + "."
        return f"{v:.{PRECISION}f}"

    def format(self, v) -> str:
        text = self._float(v) if self.floating else self._plain(v)
        return " " * (self.width - len(text)) + text


def _summarized(values: np.ndarray) -> np.ndarray:
    """The elements a summarised print shows (edges of every dimension)."""
    if values.ndim == 0:
        return values
    if values.shape[0] > 2 * EDGEITEMS:
        values = np.concatenate([values[:EDGEITEMS], values[-EDGEITEMS:]])
    return np.stack([_summarized(v) for v in values]) if values.ndim > 1 else values


def _body(values: np.ndarray, fmt: _Formatter, indent: int, summarize: bool) -> str:
    if values.ndim == 0:
        return fmt.format(values)
    n = values.shape[0]
    cut = summarize and n > 2 * EDGEITEMS
    idx = list(range(EDGEITEMS)) + [None] + list(range(n - EDGEITEMS, n)) if cut \
        else list(range(n))
    if values.ndim == 1:
        items = [" ..." if i is None else fmt.format(values[i]) for i in idx]
        per_line = max(1, (LINEWIDTH - indent) // (fmt.width + 2))
        lines = [", ".join(items[s:s + per_line]) for s in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    parts = ["..." if i is None else _body(values[i], fmt, indent + 1, summarize)
             for i in idx]
    sep = "," + "\n" * (values.ndim - 1) + " " * (indent + 1)
    return "[" + sep.join(parts) + "]"


def format_values(values: np.ndarray, indent: int) -> str:
    """The bracketed element text of ``values`` (no prefix, no suffixes)."""
    summarize = values.size > THRESHOLD
    fmt = _Formatter(_summarized(values) if summarize else values)
    return _body(values, fmt, indent, summarize)


def dtype_name(dtype) -> str:
    return f"fnarray.{np.dtype(dtype).name}"


def tensor_repr(t) -> str:
    """``repr`` of a compat tensor, as PyTorch prints it."""
    prefix = "tensor("
    values = np.asarray(t.concrete("printing"))
    suffixes = []
    if values.size == 0:
        body = "[]"
        if values.ndim != 1:
            suffixes.append(f"size={tuple(values.shape)}")
        if values.dtype != np.float32:
            suffixes.append(f"dtype={dtype_name(values.dtype)}")
    else:
        body = format_values(values, len(prefix))
        if values.dtype not in _DEFAULT_DTYPES:
            suffixes.append(f"dtype={dtype_name(values.dtype)}")
    dev = t.device
    if getattr(dev, "platform", "cpu") != "cpu":
        suffixes.append(f"device='{dev}'")
    fn = t.grad_fn
    if fn is not None:
        suffixes.append(f"grad_fn=<{fn.name()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    text = prefix + body
    for s in suffixes:
        last = text.rsplit("\n", 1)[-1]
        if len(last) + len(s) + 2 > LINEWIDTH:
            text += ",\n" + " " * len(prefix) + s
        else:
            text += ", " + s
    return text + ")"
