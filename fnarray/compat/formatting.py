"""PyTorch's tensor printing: ``tensor([0.2500, 0.4000])``, ``tensor([1, 2], dtype=...)``.

The rules (precision 4, a shared element width, integer-valued floats printed as ``1.``,
scientific notation when magnitudes span more than 1000x or leave [1e-4, 1e8], summaries
with ``...`` beyond 1000 elements, 80-column lines) follow PyTorch's documented output.
"""

from __future__ import annotations

import math

import numpy as np
from fnarray.compat.defaults import default_complex, default_float
from fnarray.core.shapes import is_float

_INT64, _BOOL = np.dtype(np.int64), np.dtype(np.bool_)


def _implied(dtype) -> bool:
    """Whether PyTorch leaves ``dtype=`` out: the default float (``set_default_dtype``) and
    its complex pair, int64 and bool."""
    return dtype in (default_float(), _INT64, _BOOL, default_complex())


class PrintOptions:
    """What ``set_printoptions`` changes (PyTorch's ``PRINT_OPTS``)."""

    PROFILES = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80),
                "full": (4, math.inf, 3, 80)}

    def __init__(self):
        self.precision, self.threshold, self.edgeitems, self.linewidth = \
            self.PROFILES["default"]
        self.sci_mode = None


PRINT_OPTS = PrintOptions()


def set_printoptions(precision: int | None = None, threshold: float | None = None,
                     edgeitems: int | None = None, linewidth: int | None = None,
                     profile: str | None = None, sci_mode: bool | None = None) -> None:
    """``torch.set_printoptions``: digits after the point, the element count beyond which
    prints are summarised, the edge items a summary keeps, the line width, a named
    ``profile`` (``default``, ``short``, ``full``) and forced (``True``/``False``) or
    automatic (``None``) scientific notation."""
    if profile is not None:
        if profile not in PrintOptions.PROFILES:
            raise ValueError(f"set_printoptions: unknown profile {profile!r}; use one of "
                             f"{sorted(PrintOptions.PROFILES)}")
        (PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems,
         PRINT_OPTS.linewidth) = PrintOptions.PROFILES[profile]
    for name, value in (("precision", precision), ("threshold", threshold),
                        ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if value is not None:
            setattr(PRINT_OPTS, name, value)
    PRINT_OPTS.sci_mode = sci_mode  # PyTorch resets it to automatic when not given


class _Formatter:
    """Chooses one notation and width for every element of a real tensor (PyTorch's
    ``_Formatter``: the width and notation come from the nonzero finite values only)."""

    def __init__(self, values: np.ndarray):
        self.floating = is_float(values.dtype)
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        flat = values.ravel()
        if not self.floating:
            self.width = max((len(self._plain(v)) for v in flat), default=1)
            return
        flat = flat.astype(np.float64)
        vals = flat[np.isfinite(flat) & (flat != 0)]
        if vals.size == 0:
            return
        absvals = np.abs(vals)
        lo, hi = absvals.min(), absvals.max()
        p = PRINT_OPTS.precision
        self.int_mode = bool(np.all(vals == np.ceil(vals)))
        if self.int_mode:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8
            texts = [f"{v:.{p}e}" for v in vals] if self.sci_mode else \
                [f"{v:.0f}." for v in vals]
        else:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
            texts = [f"{v:.{p}e}" if self.sci_mode else f"{v:.{p}f}" for v in vals]
        self.width = max(len(t) for t in texts)
        if PRINT_OPTS.sci_mode is not None:
            self.sci_mode = PRINT_OPTS.sci_mode

    @staticmethod
    def _plain(v) -> str:
        return str(v.item() if hasattr(v, "item") else v)

    def _float(self, v) -> str:
        v = float(v)
        p = PRINT_OPTS.precision
        if self.sci_mode:
            return f"{v:{self.width}.{p}e}"
        if self.int_mode:
            text = f"{v:.0f}"
            return text if math.isinf(v) or math.isnan(v) else text + "."
        return f"{v:.{p}f}"

    def format(self, v) -> str:
        text = self._float(v) if self.floating else self._plain(v)
        return " " * (self.width - len(text)) + text


class _ComplexFormatter:
    """Complex elements as PyTorch prints them: real and imaginary parts each formatted
    over their own values, joined as ``1.+2.j``."""

    floating = True

    def __init__(self, values: np.ndarray):
        self.real, self.imag = _Formatter(values.real), _Formatter(values.imag)
        self.width = self.real.width + self.imag.width + 1

    def format(self, v) -> str:
        real = self.real.format(v.real)
        imag = (self.imag.format(v.imag) + "j").lstrip()
        return real + imag if imag[0] in "+-" else real + "+" + imag


def _formatter(values: np.ndarray):
    return _ComplexFormatter(values) if values.dtype.kind == "c" else _Formatter(values)


def _summarized(values: np.ndarray) -> np.ndarray:
    """The elements a summarised print shows (edges of every dimension)."""
    if values.ndim == 0:
        return values
    edge = PRINT_OPTS.edgeitems
    if values.shape[0] > 2 * edge:
        values = np.concatenate([values[:edge], values[-edge:]])
    return np.stack([_summarized(v) for v in values]) if values.ndim > 1 else values


def _body(values: np.ndarray, fmt, indent: int, summarize: bool) -> str:
    if values.ndim == 0:
        return fmt.format(values)
    n, edge = values.shape[0], PRINT_OPTS.edgeitems
    cut = summarize and n > 2 * edge
    idx = list(range(edge)) + [None] + list(range(n - edge, n)) if cut else list(range(n))
    if values.ndim == 1:
        items = [" ..." if i is None else fmt.format(values[i]) for i in idx]
        per_line = max(1, (PRINT_OPTS.linewidth - indent) // (fmt.width + 2))
        lines = [", ".join(items[s:s + per_line]) for s in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    parts = ["..." if i is None else _body(values[i], fmt, indent + 1, summarize)
             for i in idx]
    sep = "," + "\n" * (values.ndim - 1) + " " * (indent + 1)
    return "[" + sep.join(parts) + "]"


def format_values(values: np.ndarray, indent: int) -> str:
    """The bracketed element text of ``values`` (no prefix, no suffixes)."""
    summarize = values.size > PRINT_OPTS.threshold
    fmt = _formatter(_summarized(values) if summarize else values)
    return _body(values, fmt, indent, summarize)


def dtype_name(dtype) -> str:
    return f"torch.{np.dtype(dtype).name}"


def tensor_repr(t) -> str:
    """``repr`` of a compat tensor, as PyTorch prints it."""
    prefix = "tensor("
    values = np.asarray(t.concrete("printing"))
    suffixes = []
    if values.size == 0:
        body = "[]"
        if values.ndim != 1:
            suffixes.append(f"size={tuple(values.shape)}")
        if values.dtype != default_float():
            suffixes.append(f"dtype={dtype_name(values.dtype)}")
    else:
        body = format_values(values, len(prefix))
        if not _implied(values.dtype):
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
        if len(last) + len(s) + 2 > PRINT_OPTS.linewidth:
            text += ",\n" + " " * len(prefix) + s
        else:
            text += ", " + s
    return text + ")"
