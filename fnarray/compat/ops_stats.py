"""Order statistics and distances under PyTorch names: ``median``, ``nanmedian``,
``quantile``, ``kthvalue``, ``mode``, ``cummax``, ``cummin``, ``cdist``, ``multinomial``,
and the special functions ``lgamma``, ``digamma``, ``polygamma``.

The index of each selected element is chosen on the host (stable sorts, PyTorch's tie
rules); the values are then gathered from the input with a recorded ``take_along_axis``,
so the gradient reaches exactly the selected element, as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from fnarray import api as fa
from fnarray.compat import return_types
from fnarray.compat.ops import FUNCTIONS, METHODS
from fnarray.compat.tape import op_scope
from fnarray.compat.tensor import Tensor
from fnarray.core.shapes import is_float

for _name, _fields in (("median", "values indices"), ("nanmedian", "values indices"),
                       ("kthvalue", "values indices"), ("mode", "values indices"),
                       ("cummax", "values indices"), ("cummin", "values indices")):
    setattr(return_types, _name, return_types._result_type(_name, _fields))


def _t(value) -> Tensor:
    return Tensor._make(fa.asarray(value), None, 0)


def _host(x) -> np.ndarray:
    return np.asarray(x.detach().concrete("an order statistic"))


def _pick(input, idx: np.ndarray, dim: int, keepdim: bool, name: str, result):
    """``result(values, indices)`` for the per-row positions ``idx`` (keepdims layout)."""
    with op_scope(name):
        values = fa.take_along_axis(input, fa.asarray(idx), axis=dim)
    indices = _t(idx)
    if not keepdim:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return result(values, indices)


def _select_sorted(input, dim, rank_of, ignore_nan=False):
    """Per-row positions (keepdims layout) of the element at sorted position
    ``rank_of(n_valid)`` along ``dim``; NaN sorts last, and a row holding NaN gives its
    first NaN unless ``ignore_nan``."""
    host = _host(input)
    dim %= host.ndim
    order = np.argsort(host, axis=dim, kind="stable")
    nans = (np.isnan(host) if is_float(host.dtype) else np.zeros(host.shape, bool)).sum(
        axis=dim, keepdims=True)
    n = host.shape[dim]
    valid = n - nans
    if ignore_nan:
        rank = np.where(valid > 0, rank_of(np.maximum(valid, 1)), 0)
    else:
        rank = np.where(nans > 0, valid, rank_of(np.full_like(valid, n)))
    return np.take_along_axis(order, rank.astype(np.int64), axis=dim)


def median(input, dim=None, keepdim: bool = False):
    """The lower of the two middle values (PyTorch's median); NaN if the row holds NaN.
    Without ``dim``: a 0-d tensor over all elements; with ``dim``: ``(values, indices)``."""
    return _median(input, dim, keepdim, False)


def nanmedian(input, dim=None, keepdim: bool = False):
    """``median`` ignoring NaN (NaN only where a row is all NaN)."""
    return _median(input, dim, keepdim, True)


def _median(input, dim, keepdim, ignore_nan):
    name = "NanmedianBackward0" if ignore_nan else "MedianBackward0"
    if input.numel() == 0:
        raise IndexError(f"median(): expected a non-empty tensor (got shape "
                         f"{list(input.shape)})")
    lower_middle = (lambda m: (m - 1) // 2)
    if dim is None:
        x = input.reshape(-1)
        idx = _select_sorted(x, 0, lower_middle, ignore_nan)
        with op_scope(name):
            return fa.take_along_axis(x, fa.asarray(idx), axis=0).reshape(())
    x = input if input.ndim else input.reshape(1)
    idx = _select_sorted(x, dim, lower_middle, ignore_nan)
    result = return_types.nanmedian if ignore_nan else return_types.median
    return _pick(x, idx, dim % x.ndim, keepdim, name, result)


def kthvalue(input, k: int, dim: int = -1, keepdim: bool = False):
    """The ``k``-th smallest element (1-based) along ``dim`` and its index."""
    n = input.shape[dim] if input.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k={k} out of range for dimension "
                           f"{dim} of size {n}")
    x = input if input.ndim else input.reshape(1)
    idx = _select_sorted(x, dim, lambda m: np.full_like(m, k - 1))
    return _pick(x, idx, dim % x.ndim, keepdim, "KthvalueBackward0", return_types.kthvalue)


def mode(input, dim: int = -1, keepdim: bool = False):
    """The most frequent value along ``dim`` (the smallest of equally frequent ones) and
    the index of its last occurrence, as PyTorch's CPU kernel gives."""
    host = _host(input)
    if host.ndim == 0:
        host = host.reshape(1)
    dim %= host.ndim
    moved = np.moveaxis(host, dim, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    best = np.empty(rows.shape[0], np.int64)
    for r, row in enumerate(rows):
        order = np.argsort(row, kind="stable")
        srt = row[order]
        ends = np.r_[np.flatnonzero(srt[1:] != srt[:-1]), len(row) - 1]
        freq = np.diff(np.r_[-1, ends])
        best[r] = order[ends[int(np.argmax(freq))]]
    idx = np.expand_dims(best.reshape(moved.shape[:-1]), dim)
    return _pick(input if input.ndim else input.reshape(1), idx, dim, keepdim,
                 "ModeBackward0", return_types.mode)


def _cumulative(input, dim: int, take_max: bool):
    host = _host(input)
    if host.ndim == 0:
        host = host.reshape(1)
    dim %= host.ndim
    acc = (np.maximum if take_max else np.minimum).accumulate(host, axis=dim)
    shape = [1] * host.ndim
    shape[dim] = host.shape[dim]
    pos = np.broadcast_to(np.arange(host.shape[dim]).reshape(shape), host.shape)
    hit = host == acc
    if is_float(host.dtype):
        hit |= np.isnan(host)
    idx = np.maximum.accumulate(np.where(hit, pos, 0), axis=dim)
    name = "CummaxBackward0" if take_max else "CumminBackward0"
    result = return_types.cummax if take_max else return_types.cummin
    return _pick(input if input.ndim else input.reshape(1), idx, dim, True, name, result)


def cummax(input, dim: int):
    """Running maximum along ``dim`` and the index where it was attained (the latest of
    equal values, as PyTorch)."""
    return _cumulative(input, dim, True)


def cummin(input, dim: int):
    """Running minimum along ``dim`` and the index where it was attained."""
    return _cumulative(input, dim, False)


def quantile(input, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"):
    """Quantiles ``q`` (a float or 1-D tensor in [0, 1]) along ``dim`` (all elements when
    None) with PyTorch's interpolation modes; a tensor ``q`` adds a leading dimension."""
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(f"quantile() interpolation must be one of linear, lower, higher, "
                         f"midpoint or nearest. Got {interpolation!r}")
    qs = np.asarray(q.detach().concrete("quantile q") if isinstance(q, Tensor) else q,
                    dtype=np.float64)
    if qs.ndim > 1 or (qs.size and (qs.min() < 0 or qs.max() > 1)):
        raise RuntimeError("quantile() q values must be in the range [0, 1] and q must be a "
                           "scalar or 1D tensor")
    if not is_float(input.dtype):
        raise RuntimeError(f"quantile() input tensor must be either float or double dtype, "
                           f"got {input.dtype}")
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else dim % max(x.ndim, 1)
    with op_scope("QuantileBackward0"):
        srt = fa.sort(x, axis=d)
    n = x.shape[d]
    outs = []
    for qv in np.atleast_1d(qs):
        pos = qv * (n - 1)
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = int(np.round(pos))  # round half to even, as PyTorch
        frac = 0.5 if interpolation == "midpoint" else pos - lo
        with op_scope("QuantileBackward0"):
            a, b = srt.narrow(d, lo, 1), srt.narrow(d, hi, 1)
            v = a if lo == hi else a + (b - a) * float(frac)
            if not keepdim or dim is None:
                v = v.squeeze(d)
            if keepdim and dim is None:
                v = v.reshape((1,) * input.ndim)
            # NaN in a row makes that quantile NaN, as in PyTorch.
            has_nan = fa.any(fa.isnan(x.detach()), axis=d, keepdims=keepdim and dim
                             is not None)
            if keepdim and dim is None:
                has_nan = fa.reshape(has_nan, (1,) * input.ndim)
            v = fa.where(has_nan, fa.asarray(np.nan, dtype=x.dtype), v)
        outs.append(v)
    if isinstance(q, (float, int)) or qs.ndim == 0:
        return outs[0]
    return fa.stack(outs, axis=0)


def cdist(x1, x2, p: float = 2.0, compute_mode=None):
    """p-norm distances between the rows of ``x1`` (..., P, M) and ``x2`` (..., R, M),
    shape (..., P, R); the gradient at zero distance is 0, as in PyTorch."""
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"cdist: X1 and X2 must have the same number of columns. X1: "
                           f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    with op_scope("CdistBackward0"):
        diff = fa.expand_dims(x1, -2) - fa.expand_dims(x2, -3)
        if p == 0:
            return fa.sum(fa.astype(diff != 0, x1.dtype), axis=-1)
        if p == np.inf:
            return fa.max(fa.abs(diff), axis=-1)
        if p == 1:
            return fa.sum(fa.abs(diff), axis=-1)
        a = fa.abs(diff)
        s = fa.sum(a * a if p == 2 else a ** p, axis=-1)
        pos = s > 0
        safe = fa.where(pos, s, fa.ones((), s.dtype))
        root = fa.sqrt(safe) if p == 2 else safe ** (1.0 / p)
        return fa.where(pos, root, fa.zeros((), s.dtype))


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None):
    """Draw ``num_samples`` category indices per row of the weights ``input`` (1-D or
    2-D, non-negative, not necessarily normalised).  Without replacement it is an
    exponential race (``argsort(E / w)``), which samples sequentially-without-replacement
    exactly; with replacement, inverse-CDF sampling."""
    from fnarray.compat import random
    w = _host(input).astype(np.float64)
    if w.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {w.ndim}")
    rows = w.reshape(-1, w.shape[-1])
    if (rows < 0).any() or not np.isfinite(rows).all():
        raise RuntimeError("multinomial: probability tensor contains either inf, nan or "
                           "element < 0")
    if (rows.sum(axis=1) <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of "
                           "probabilities <= 0)")
    k = rows.shape[1]
    if not replacement and num_samples > k:
        raise RuntimeError(f"multinomial: cannot sample n_sample ({num_samples}) > "
                           f"prob_dist.size(-1) ({k}) samples without replacement")
    if replacement:
        u = np.asarray(random.uniform((rows.shape[0], num_samples), np.float64, None,
                                      generator))
        cdf = np.cumsum(rows, axis=1)
        cdf /= cdf[:, -1:]
        out = np.stack([np.searchsorted(c, uu, side="right") for c, uu in zip(cdf, u)])
        out = np.minimum(out, k - 1)
    else:
        u = np.asarray(random.uniform(rows.shape, np.float64, None, generator))
        with np.errstate(divide="ignore"):
            keys = -np.log1p(-u) / rows  # Exp(1) / w: zero weight never wins
        out = np.argsort(keys, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(np.int64)
    return _t(out.reshape(num_samples) if w.ndim == 1 else out)


def lgamma(input):
    with op_scope("LgammaBackward0"):
        return fa.lgamma(input)


def digamma(input):
    with op_scope("DigammaBackward0"):
        return fa.digamma(input)


def polygamma(n: int, input):
    with op_scope("PolygammaBackward0"):
        return fa.polygamma(n, input)


for _name, _f in (("median", median), ("nanmedian", nanmedian), ("kthvalue", kthvalue),
                  ("mode", mode), ("cummax", cummax), ("cummin", cummin),
                  ("quantile", quantile), ("cdist", cdist),
                  ("multinomial", multinomial), ("lgamma", lgamma), ("digamma", digamma),
                  ("polygamma", polygamma)):
    FUNCTIONS[_name] = _f
    if _name not in ("cdist", "polygamma"):
        METHODS[_name] = _f
        setattr(Tensor, _name, _f)
Tensor.polygamma = lambda self, n: polygamma(n, self)
Tensor.lgamma_ = lambda self: self._inplace(lambda s: fa.lgamma(s), "LgammaBackward0")
Tensor.digamma_ = lambda self: self._inplace(lambda s: fa.digamma(s), "DigammaBackward0")
