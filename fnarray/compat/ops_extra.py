"""More of ``torch``'s namespace, found missing by running tutorial programs with only the
import changed: function forms of tensor methods (``torch.reshape(x, s)``,
``torch.transpose``, ``torch.squeeze`` ...), small elementwise functions (``lerp``,
``addcmul``, ``clamp_min``, ``logit``, ``xlogy``, ``fmax`` ...), products (``addmm``,
``baddbmm``, ``kron``, ``tensordot``), statistics (``nansum``, ``cov``, ``corrcoef``),
index helpers (``tril_indices``), complex constructors (``complex``, ``polar``,
``view_as_real``), in-place activations (``relu_``, ``sigmoid_``) and the reproducibility
switches (``use_deterministic_algorithms``).

Each is a composition of recorded fnarray operations, so gradients flow where PyTorch's
do; ``op_scope`` names the ``grad_fn`` as PyTorch does.
"""

from __future__ import annotations

import math

import numpy as np

from fnarray import api as fa
from fnarray.compat.ops import FUNCTIONS, METHODS
from fnarray.compat.tape import op_scope
from fnarray.compat.tensor import Tensor
from fnarray.core.shapes import is_inexact

# torch.X(input, ...) == input.X(...) for these methods
_METHOD_FORMS = ("reshape", "transpose", "swapaxes", "swapdims", "squeeze", "unsqueeze",
                 "permute", "t", "clone", "chunk", "narrow", "select", "unbind", "ravel",
                 "take", "diagonal", "real", "imag", "conj", "unflatten")


def _method_form(name: str):
    def function(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    function.__name__ = name
    function.__doc__ = f"``torch.{name}(input, ...)``: ``input.{name}(...)``."
    return function


def _tensor(value) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor._make(fa.asarray(value), None, 0)


# --- elementwise ------------------------------------------------------------------------

def clamp_min(input, min):  # noqa: A002
    return input.clamp(min=min)


def clamp_max(input, max):  # noqa: A002
    return input.clamp(max=max)


def lerp(input, end, weight):
    """``input + weight * (end - input)``."""
    with op_scope("LerpBackward0"):
        return input + weight * (end - input)


def addcmul(input, tensor1, tensor2, *, value=1):
    with op_scope("AddcmulBackward0"):
        return input + value * tensor1 * tensor2


def addcdiv(input, tensor1, tensor2, *, value=1):
    with op_scope("AddcdivBackward0"):
        return input + value * tensor1 / tensor2


def logit(input, eps=None):
    """``log(p / (1 - p))``, with ``p`` clamped to ``[eps, 1 - eps]`` when ``eps`` is given."""
    with op_scope("LogitBackward0"):
        p = input if eps is None else fa.clip(input, eps, 1 - eps)
        return fa.log(p) - fa.log1p(-p)


def xlogy(input, other):
    """``input * log(other)``, and 0 where ``input`` is 0 (unless ``other`` is NaN)."""
    x, y = _tensor(input), _tensor(other)
    with op_scope("XlogyBackward0"):
        zero = (x == 0) & ~fa.isnan(y)
        safe = fa.where(zero, 1.0, y)
        return fa.where(zero, 0.0, x * fa.log(safe))


def frac(input):
    with op_scope("FracBackward0"):
        return input - fa.trunc(input)


def sinc(input):
    """``sin(pi x) / (pi x)``, 1 at 0 (with derivative 0 there)."""
    with op_scope("SincBackward0"):
        zero = input == 0
        px = math.pi * fa.where(zero, 1.0, input)
        return fa.where(zero, 1.0, fa.sin(px) / px)


def fmax(input, other):
    """Elementwise maximum ignoring NaN (NaN only where both are NaN)."""
    with op_scope("FmaxBackward0"):
        return fa.where(fa.isnan(other), input,
                        fa.where(fa.isnan(input), other, fa.maximum(input, other)))


def fmin(input, other):
    """Elementwise minimum ignoring NaN (NaN only where both are NaN)."""
    with op_scope("FminBackward0"):
        return fa.where(fa.isnan(other), input,
                        fa.where(fa.isnan(input), other, fa.minimum(input, other)))


def float_power(input, exponent):
    """``input ** exponent`` in double precision (complex128 for complex operands)."""
    wide = lambda v: (fa.astype(v, np.complex128 if v.dtype.kind == "c" else np.float64)  # noqa: E731
                      if hasattr(v, "dtype") else v)
    with op_scope("PowBackward1"):
        return wide(_tensor(input)) ** wide(exponent)


def heaviside(input, values):
    """0 where ``input < 0``, 1 where ``input > 0``, ``values`` where it is 0."""
    return fa.where(input == 0, values, fa.astype(input > 0, input.dtype))


def logaddexp(input, other):
    with op_scope("LogaddexpBackward0"):
        return fa.logaddexp(input, other)


def deg2rad(input):
    return input * (math.pi / 180)


def rad2deg(input):
    return input * (180 / math.pi)


def angle(input):
    """The argument of each element (0 or pi for real input)."""
    with op_scope("AngleBackward0"):
        return fa.angle(input)


def signbit(input):
    return fa.signbit(input)


# --- shape ---------------------------------------------------------------------------------

def tile(input, dims):
    return fa.tile(input, tuple(dims))


def masked_select(input, mask):
    """The elements where ``mask`` (broadcast with ``input``) is True, as a 1-D tensor."""
    x, m = fa.broadcast_arrays(input, mask)
    return x[m]


def fliplr(input):
    return input.flip(1)


def flipud(input):
    return input.flip(0)


def rot90(input, k: int = 1, dims=(0, 1)):
    """Rotate by 90 degrees ``k`` times in the plane ``dims`` (from the first towards the
    second axis)."""
    d0, d1 = dims
    k %= 4
    if k == 1:
        return input.flip(d1).transpose(d0, d1)
    if k == 2:
        return input.flip(d0).flip(d1)
    if k == 3:
        return input.transpose(d0, d1).flip(d1)
    return input.clone()


def broadcast_tensors(*tensors):
    return tuple(fa.broadcast_arrays(*tensors))


def atleast_1d(*tensors):
    out = tuple(t.reshape(1) if t.ndim == 0 else t for t in tensors)
    return out[0] if len(out) == 1 else out


def atleast_2d(*tensors):
    out = tuple(t.reshape(1, -1) if t.ndim < 2 else t for t in tensors)
    return out[0] if len(out) == 1 else out


# --- products --------------------------------------------------------------------------------

def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)``."""
    with op_scope("AddmmBackward0"):
        return _scaled(input, beta) + _scaled(fa.matmul(mat1, mat2), alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * (batch1 @ batch2)`` for batches of matrices."""
    with op_scope("BaddbmmBackward0"):
        return _scaled(input, beta) + _scaled(fa.matmul(batch1, batch2), alpha)


def _scaled(x, factor):
    return x if factor == 1 else x * factor


def kron(input, other):
    return fa.kron(input, other)


def inner(input, other):
    return fa.inner(input, other)


def tensordot(a, b, dims=2):
    """``dims`` an int (last/first axes) or a pair of axis lists, as PyTorch takes it."""
    if not isinstance(dims, int):
        dims = tuple(tuple(d) if isinstance(d, (list, tuple)) else (d,) for d in dims)
    return fa.tensordot(a, b, axes=dims)


# --- statistics ------------------------------------------------------------------------------

def nansum(input, dim=None, keepdim: bool = False, *, dtype=None):
    out = fa.nansum(input, axis=dim, keepdims=keepdim)
    return out if dtype is None else out.astype(dtype)


def nanmean(input, dim=None, keepdim: bool = False, *, dtype=None):
    out = fa.nanmean(input, axis=dim, keepdims=keepdim)
    return out if dtype is None else out.astype(dtype)


def cov(input, *, correction: int = 1, fweights=None, aweights=None):
    """Covariance of the variables in the rows of ``input`` (observations in columns),
    with integer frequency weights and/or observation weights as ``torch.cov`` takes them."""
    x = input if input.ndim == 2 else input.reshape(1, -1)
    w = None
    for weights in (fweights, aweights):
        if weights is not None:
            w = weights if w is None else w * weights
    if w is None:
        w_sum = x.shape[1]
        avg = fa.mean(x, axis=1, keepdims=True)
        norm = w_sum - correction
    else:
        w = fa.astype(w, x.dtype if is_inexact(x.dtype) else np.float32)
        w_sum = fa.sum(w)
        avg = fa.sum(x * w, axis=1, keepdims=True) / w_sum
        norm = w_sum - (correction if aweights is None else
                        correction * fa.sum(w * aweights) / w_sum)
    centred = x - avg
    weighted = centred if w is None else centred * w
    out = fa.matmul(weighted, fa.conj(centred).T) / fa.maximum(norm, 0)
    return out.reshape(()) if input.ndim < 2 else out


def corrcoef(input):
    """Pearson correlation coefficients of the rows of ``input``, clipped to [-1, 1]."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = fa.sqrt(fa.diagonal(c))
    return fa.clip(c / d[:, None] / d[None, :], -1, 1)


def trapezoid(y, x=None, *, dx=None, dim: int = -1):
    """The trapezoidal rule along ``dim`` (sample points ``x`` or spacing ``dx``)."""
    n = y.shape[dim]
    left, right = y.narrow(dim, 0, n - 1), y.narrow(dim, 1, n - 1)
    if x is None:
        return fa.sum(left + right, axis=dim) * ((1.0 if dx is None else dx) / 2)
    spacing = fa.diff(x, axis=dim if x.ndim == y.ndim else -1)
    return fa.sum((left + right) * spacing, axis=dim) / 2


def _triangle_indices(row: int, col: int, offset: int, lower: bool, dtype, device):
    rows, cols = np.tril_indices(row, offset, col) if lower else np.triu_indices(row, offset,
                                                                                  col)
    value = fa.asarray(np.stack([rows, cols]).astype(np.int64 if dtype is None else
                                                     np.dtype(dtype)), device=device)
    return Tensor._make(value, None, 0)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None):
    """The ``(2, N)`` coordinates of the lower triangle of a ``row x col`` matrix."""
    return _triangle_indices(row, col, offset, True, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None):
    """The ``(2, N)`` coordinates of the upper triangle of a ``row x col`` matrix."""
    return _triangle_indices(row, col, offset, False, dtype, device)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad: bool = False):
    from fnarray.compat.functional import linspace
    out = base ** linspace(start, end, steps, dtype=np.float64, device=device)
    out = out.to(dtype if dtype is not None else np.float32)
    return out.requires_grad_(True) if requires_grad else out


# --- complex -------------------------------------------------------------------------------

def complex(real, imag):  # noqa: A001
    """``real + i imag`` (float32 parts give complex64, float64 complex128)."""
    if real.dtype != imag.dtype:
        raise RuntimeError(f"Expected object of scalar type {real.dtype} but got scalar type "
                           f"{imag.dtype} for second argument")
    with op_scope("ComplexBackward0"):
        return real + 1j * imag


def polar(abs, angle):  # noqa: A002
    """``abs * (cos(angle) + i sin(angle))``."""
    with op_scope("PolarBackward0"):
        return abs * fa.cos(angle) + 1j * (abs * fa.sin(angle))


def view_as_real(input):
    """A complex tensor as ``(..., 2)`` real pairs (a copy here: arrays are immutable)."""
    if input.dtype.kind != "c":
        raise RuntimeError("view_as_real is only supported for complex tensors")
    with op_scope("ViewAsRealBackward0"):
        return fa.stack([fa.real(input), fa.imag(input)], axis=-1)


def view_as_complex(input):
    """The inverse of ``view_as_real``: a ``(..., 2)`` float tensor as complex numbers."""
    if input.ndim == 0 or input.shape[-1] != 2:
        raise RuntimeError(f"Tensor must have a last dimension of size 2, got shape "
                           f"{list(input.shape)}")
    with op_scope("ViewAsComplexBackward0"):
        return input[..., 0] + 1j * input[..., 1]


def resolve_conj(input):
    return input


def resolve_neg(input):
    return input


# --- linear algebra under the old names ----------------------------------------------------

def inverse(input):
    from fnarray.compat import linalg
    return linalg.inv(input)


def pinverse(input, rcond: float = 1e-15):
    from fnarray.compat import linalg
    return linalg.pinv(input, rtol=rcond) if rcond != 1e-15 else linalg.pinv(input)


def logdet(input):
    """``log(det(input))``: NaN for a negative determinant, -inf for a singular matrix."""
    from fnarray.compat import linalg
    sign, logabs = linalg.slogdet(input)
    return fa.where(sign < 0, math.nan, fa.where(sign == 0, -math.inf, logabs))


# --- reproducibility switches (fnarray's kernels are deterministic) -------------------------

_deterministic = {"mode": False, "warn_only": False}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Recorded for ``are_deterministic_algorithms_enabled``; every fnarray kernel is
    deterministic already (same inputs, same bits), so nothing else changes."""
    _deterministic["mode"], _deterministic["warn_only"] = bool(mode), bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    return _deterministic["mode"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _deterministic["warn_only"]


def seed() -> int:
    """Seed the default generator from a non-deterministic source; return the seed."""
    from fnarray.compat.random import manual_seed
    value = int(np.random.SeedSequence().entropy % (2 ** 63))
    manual_seed(value)
    return value


# --- methods ---------------------------------------------------------------------------------

def _inplace_unary(fn, grad_name: str):
    def method(self):
        return self._inplace(lambda s: fn(s), grad_name)
    return method


def _pin_memory(self, device=None):
    """Page-locked host memory is a CUDA notion; the tensor itself is returned."""
    return self


def _fill_diagonal_(self, fill_value, wrap: bool = False):
    """Write ``fill_value`` on the main diagonal (all indices equal) in place; a tall 2-D
    matrix restarts the diagonal every ``cols + 1`` rows when ``wrap``, as PyTorch does."""
    shape = tuple(self.shape)
    if len(shape) < 2 or (len(shape) > 2 and len(set(shape)) != 1):
        raise RuntimeError("all dimensions of input must be of equal length" if len(shape) > 2
                           else "dimensions must larger than 1")
    mask = np.zeros(shape, bool)
    n = min(shape)
    mask[(np.arange(n),) * len(shape)] = True
    if wrap and len(shape) == 2 and shape[0] > shape[1] + 1:
        flat = mask.reshape(-1)
        flat[np.arange(0, flat.size, shape[1] + 1)] = True
    where = fa.asarray(mask)
    return self._inplace(lambda s: fa.where(where, fa.astype(fill_value, s.dtype), s),
                         "FillBackward1")


def _get_device(self) -> int:
    """-1 for a CPU tensor, else the device index (PyTorch's convention)."""
    device = self.device
    return -1 if device.type == "cpu" else (device.index or 0)


_FUNCTIONS = (clamp_min, clamp_max, lerp, addcmul, addcdiv, logit, xlogy, frac, sinc, fmax,
              fmin, float_power, heaviside, logaddexp, deg2rad, rad2deg, angle, signbit, tile,
              masked_select, fliplr, flipud, rot90, broadcast_tensors, atleast_1d, atleast_2d,
              addmm, baddbmm, kron, inner, tensordot, nansum, nanmean, cov, corrcoef,
              trapezoid, tril_indices, triu_indices, logspace, complex, polar, view_as_real,
              view_as_complex, resolve_conj, resolve_neg, inverse, pinverse, logdet,
              use_deterministic_algorithms, are_deterministic_algorithms_enabled,
              is_deterministic_algorithms_warn_only_enabled, seed)
# also Tensor methods in PyTorch (input first)
_AS_METHODS = ("clamp_min", "clamp_max", "lerp", "addcmul", "addcdiv", "logit", "xlogy",
               "frac", "sinc", "fmax", "fmin", "float_power", "heaviside", "logaddexp",
               "deg2rad", "rad2deg", "angle", "signbit", "tile", "masked_select", "fliplr",
               "flipud", "rot90", "addmm", "baddbmm", "kron", "inner", "nansum", "nanmean",
               "cov", "corrcoef", "inverse", "pinverse", "logdet", "resolve_conj",
               "resolve_neg")


def _install() -> None:
    for name in _METHOD_FORMS:
        FUNCTIONS.setdefault(name, _method_form(name))
    for fn in _FUNCTIONS:
        FUNCTIONS.setdefault(fn.__name__, fn)
    FUNCTIONS.setdefault("trapz", trapezoid)
    for name in _AS_METHODS:
        if not hasattr(Tensor, name):
            METHODS[name] = FUNCTIONS[name]
            setattr(Tensor, name, FUNCTIONS[name])
    for name, fn, grad_name in (("relu_", fa.relu, "ReluBackward0"),
                                ("sigmoid_", fa.sigmoid, "SigmoidBackward0"),
                                ("tanh_", fa.tanh, "TanhBackward0"),
                                ("log_", fa.log, "LogBackward0"),
                                ("exp_", fa.exp, "ExpBackward0")):
        if not hasattr(Tensor, name):
            setattr(Tensor, name, _inplace_unary(fn, grad_name))
    extras = {"pin_memory": _pin_memory, "is_pinned": lambda self, device=None: False,
              "share_memory_": lambda self: self, "is_shared": lambda self: False,
              "get_device": _get_device, "fill_diagonal_": _fill_diagonal_,
              "nbytes": property(lambda self: self.numel() * self.element_size()),
              "itemsize": property(lambda self: self.element_size()),
              "mH": property(lambda self: fa.conj(self.mT)),
              "H": property(lambda self: fa.conj(self.T))}
    for name, value in extras.items():
        if not hasattr(Tensor, name):
            setattr(Tensor, name, value)


_install()
