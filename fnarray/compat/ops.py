"""Tensor operations under PyTorch names, written once and used twice: as functions of
``fnarray.compat`` (``torch.sum(x, dim=1)``) and as ``Tensor`` methods (``x.sum(dim=1)``).

Every operation is a composition of ``fnarray`` functions on tensors — no derivative code
lives here; ``op_scope`` only names the recorded nodes the way PyTorch names ``grad_fn``.
"""

from __future__ import annotations

import numpy as np

from fnarray import api as fa
from fnarray.compat import dispatch as _dispatch
from fnarray.compat import tape as _tape
from fnarray.compat.tape import op_scope
from fnarray.ops import activation as _activation
from fnarray.compat import return_types
from fnarray.compat.out import write_out
from fnarray.compat.promotion import float_input as _float_input, operands as _pt_operands
from fnarray.compat.tensor import Tensor, _dims, _raw
from fnarray.transforms import stop_gradient
from fnarray.core.shapes import is_float, is_inexact

METHODS: dict = {}  # name -> function, installed on Tensor below
FUNCTIONS: dict = {}  # name -> function, exported by fnarray.compat


def _register(name, fn, method=True, function=True):
    if method:
        METHODS[name] = fn
    if function:
        FUNCTIONS[name] = fn


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor._make(fa.asarray(x), None, 0)


def _named_call(grad_name, fn):
    def op(*args, **kwargs):
        with op_scope(grad_name):
            return fn(*args, **kwargs)
    return op


# --- elementwise ----------------------------------------------------------------------

_UNARY = {
    "abs": (fa.abs, "Abs"), "neg": (fa.negative, "Neg"), "exp": (fa.exp, "Exp"),
    "exp2": (fa.exp2, "Exp2"), "expm1": (fa.expm1, "Expm1"), "log": (fa.log, "Log"),
    "log2": (fa.log2, "Log2"), "log10": (fa.log10, "Log10"), "log1p": (fa.log1p, "Log1P"),
    "sqrt": (fa.sqrt, "Sqrt"), "rsqrt": (fa.rsqrt, "Rsqrt"), "sin": (fa.sin, "Sin"),
    "cos": (fa.cos, "Cos"), "tan": (fa.tan, "Tan"), "asin": (fa.asin, "Asin"),
    "acos": (fa.acos, "Acos"), "atan": (fa.atan, "Atan"), "sinh": (fa.sinh, "Sinh"),
    "cosh": (fa.cosh, "Cosh"), "tanh": (fa.tanh, "Tanh"), "asinh": (fa.asinh, "Asinh"),
    "acosh": (fa.acosh, "Acosh"), "atanh": (fa.atanh, "Atanh"),
    "sigmoid": (fa.sigmoid, "Sigmoid"), "erf": (fa.erf, "Erf"), "floor": (fa.floor, "Floor"),
    "ceil": (fa.ceil, "Ceil"), "trunc": (fa.trunc, "Trunc"), "sign": (fa.sign, "Sign"),
    "square": (fa.square, "Pow"), "reciprocal": (fa.reciprocal, "Reciprocal"),
    "isnan": (fa.isnan, "Isnan"), "isinf": (fa.isinf, "Isinf"),
    "isfinite": (fa.isfinite, "Isfinite"), "logical_not": (fa.logical_not, "LogicalNot"),
}
# Functions whose result is floating for integer input too (in the default float dtype).
_FLOAT_VALUED = frozenset({
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin", "cos",
    "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
    "sigmoid", "erf", "reciprocal", "div", "true_divide", "atan2", "__truediv__",
    "__rtruediv__"})


def _float_valued(fn):
    """``fn`` with integer and bool tensor operands first cast to the default float
    (``promotion.float_input``: a no-op under the float32 default)."""
    def op(*args, **kwargs):
        return fn(*map(_float_input, args), **kwargs)
    return op


for _name, (_f, _g) in _UNARY.items():
    _f = _float_valued(_f) if _name in _FLOAT_VALUED else _f
    _register(_name, _dispatch.unary(_named_call(_g + "Backward0", _f), _g + "Backward0",
                                     _name))
for _alias, _name in (("negative", "neg"), ("absolute", "abs"), ("arcsin", "asin"),
                      ("arccos", "acos"), ("arctan", "atan"), ("fix", "trunc")):
    _register(_alias, METHODS[_name])


def _relu(input):
    with op_scope("ReluBackward0"):
        return fa.relu(input)


relu = _dispatch.unary(_relu, "ReluBackward0", "relu")


def round(input, decimals: int = 0):  # noqa: A001
    with op_scope("RoundBackward0"):
        return fa.round(input, decimals=decimals)


def clamp(input, min=None, max=None):  # noqa: A002
    with op_scope("ClampBackward1"):
        if (is_float(input.dtype) and not isinstance(min, Tensor)
                and not isinstance(max, Tensor) and (min is not None or max is not None)):
            # One pass each way; the gradient flows where min <= x <= max, as in PyTorch.
            return _activation.clamp.bind(input, lo=None if min is None else float(min),
                                          hi=None if max is None else float(max),
                                          inclusive=True)
        out = input
        if min is not None:
            out = fa.maximum(out, min if isinstance(min, Tensor) else
                             fa.asarray(min, dtype=input.dtype))
        if max is not None:
            out = fa.minimum(out, max if isinstance(max, Tensor) else
                             fa.asarray(max, dtype=input.dtype))
        return out


for _name, _f in (("relu", relu), ("round", round), ("clamp", clamp), ("clip", clamp)):
    _register(_name, _f)

_BINARY = {
    "add": (fa.add, "AddBackward0"), "sub": (fa.subtract, "SubBackward0"),
    "mul": (fa.multiply, "MulBackward0"), "div": (fa.divide, "DivBackward0"),
    "true_divide": (fa.divide, "DivBackward0"), "pow": (fa.pow, "PowBackward0"),
    "remainder": (fa.remainder, "RemainderBackward0"), "fmod": (fa.fmod, "FmodBackward0"),
    "floor_divide": (fa.floor_divide, "FloorDivideBackward0"),
    "maximum": (fa.maximum, "MaximumBackward0"), "minimum": (fa.minimum, "MinimumBackward0"),
    "atan2": (fa.atan2, "Atan2Backward0"), "hypot": (fa.hypot, "HypotBackward0"),
    "eq": (fa.equal, ""), "ne": (fa.not_equal, ""), "lt": (fa.less, ""),
    "le": (fa.less_equal, ""), "gt": (fa.greater, ""), "ge": (fa.greater_equal, ""),
    "logical_and": (fa.logical_and, ""), "logical_or": (fa.logical_or, ""),
    "logical_xor": (fa.logical_xor, ""),
}


def _binary(fn, grad_name, torch_name):
    def op(input, other, *, alpha=None, rounding_mode=None, out=None):
        if out is not None:  # (taken here, so ``compat.out`` adds no wrapper frame)
            return write_out(torch_name, out, general(input, other, alpha, rounding_mode))
        if alpha is None and rounding_mode is None:
            return fast(input, other)
        return general(input, other, alpha, rounding_mode)

    def general(input, other, alpha=None, rounding_mode=None):
        with op_scope(grad_name):
            if alpha is not None and alpha != 1:
                other = fa.multiply(other, alpha)
            input, other = _pt_operands(input, other)
            if rounding_mode == "floor":
                return fa.floor_divide(input, other)
            if rounding_mode == "trunc" and not is_inexact(fa.result_type(input, other)):
                # integers stay integers (exactly, past 2**53): a - fmod(a, b) is a multiple of b
                return fa.floor_divide(fa.subtract(input, fa.fmod(input, other)), other)
            out = fn(input, other)
            if rounding_mode == "trunc":
                out = fa.trunc(out)
            return out

    fast = _dispatch.binary(general, grad_name)
    return op


for _name, (_f, _g) in _BINARY.items():
    _f = _float_valued(_f) if _name in _FLOAT_VALUED else _f
    _register(_name, _binary(_f, _g, _name))
for _alias, _name in (("subtract", "sub"), ("multiply", "mul"), ("divide", "div"),
                      ("greater", "gt"), ("less", "lt"), ("greater_equal", "ge"),
                      ("less_equal", "le"), ("not_equal", "ne"), ("arctan2", "atan2")):
    _register(_alias, METHODS[_name])


def _operator(fn, grad_name, reflected=False):
    def op(self, other):
        with op_scope(grad_name):
            a, b = _pt_operands(self, other)
            return fn(b, a) if reflected else fn(a, b)
    return op


_OPERATORS = {
    "__add__": (fa.add, "AddBackward0", False), "__radd__": (fa.add, "AddBackward0", True),
    "__sub__": (fa.subtract, "SubBackward0", False),
    "__rsub__": (fa.subtract, "RsubBackward1", True),
    "__mul__": (fa.multiply, "MulBackward0", False),
    "__rmul__": (fa.multiply, "MulBackward0", True),
    "__truediv__": (fa.divide, "DivBackward0", False),
    "__rtruediv__": (fa.divide, "DivBackward0", True),
    "__floordiv__": (fa.floor_divide, "FloorDivideBackward0", False),
    "__rfloordiv__": (fa.floor_divide, "FloorDivideBackward0", True),
    "__mod__": (fa.remainder, "RemainderBackward0", False),
    "__pow__": (fa.pow, "PowBackward0", False), "__rpow__": (fa.pow, "PowBackward1", True),
    "__neg__": (None, "NegBackward0", False),
}
for _name, (_f, _g, _r) in _OPERATORS.items():
    _f = _float_valued(_f) if _name in _FLOAT_VALUED else _f
    if _f is not None:
        METHODS[_name] = _dispatch.binary(_operator(_f, _g, _r), _g)
METHODS["__neg__"] = METHODS["neg"]


# --- linear algebra -------------------------------------------------------------------

_C10_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half",
              "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
              "uint8": "unsigned char", "bool": "bool", "complex64": "c10::complex<float>",
              "complex128": "c10::complex<double>"}


def matmul(input, other):
    if (input.dtype != other.dtype and _tape._op.autocast is None
            and (isinstance(input, Tensor) or isinstance(other, Tensor))):
        a, b = (_C10_NAMES.get(np.dtype(d).name, np.dtype(d).name)
                for d in (input.dtype, other.dtype))
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a} != {b} "
                           f"(matmul: convert one operand, e.g. other.to(input.dtype))")
    nd = (input.ndim, other.ndim)
    name = {(2, 2): "MmBackward0", (1, 1): "DotBackward0", (2, 1): "MvBackward0"}.get(
        nd, "BmmBackward0" if nd == (3, 3) else "UnsafeViewBackward0")
    with op_scope(name):
        return fa.matmul(input, other)


def _check_dims(name, want, *tensors):
    for t in tensors:
        if t.ndim != want:
            raise RuntimeError(f"{name}: expected {want}-D tensors, got a {t.ndim}-D tensor "
                               f"of shape {list(t.shape)}")


def mm(input, mat2):
    _check_dims("mm", 2, input, mat2)
    return matmul(input, mat2)


def bmm(input, mat2):
    _check_dims("bmm", 3, input, mat2)
    return matmul(input, mat2)


def mv(input, vec):
    return matmul(input, vec)


def dot(input, other):
    _check_dims("dot", 1, input, other)
    return matmul(input, other)


def outer(input, vec2):
    with op_scope("OuterBackward0"):
        return fa.outer(input, vec2)


for _name, _f in (("matmul", matmul), ("mm", mm), ("bmm", bmm), ("mv", mv), ("dot", dot),
                  ("outer", outer), ("ger", outer)):
    _register(_name, _f)
METHODS["__matmul__"] = matmul
METHODS["__rmatmul__"] = lambda self, other: matmul(_as_tensor(other), self)


# --- reductions -----------------------------------------------------------------------

def sum(input, dim=None, keepdim: bool = False, *, dtype=None):  # noqa: A001
    with op_scope("SumBackward0" if dim is None else "SumBackward1"):
        return fa.sum(input, axis=_dims(dim), keepdims=keepdim, dtype=dtype)


def mean(input, dim=None, keepdim: bool = False, *, dtype=None):
    with op_scope("MeanBackward0" if dim is None else "MeanBackward1"):
        x = input if dtype is None else fa.astype(input, dtype)
        if not is_inexact(x.dtype):
            raise RuntimeError(
                f"mean(): could not infer output dtype. Input dtype must be either a floating "
                f"point or complex dtype. Got: {x.dtype}. Convert with .float() first")
        return fa.mean(x, axis=_dims(dim), keepdims=keepdim)


def prod(input, dim=None, keepdim: bool = False, *, dtype=None):
    with op_scope("ProdBackward0" if dim is None else "ProdBackward1"):
        return fa.prod(input, axis=_dims(dim), keepdims=keepdim, dtype=dtype)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def _spread_dtype_check(input) -> None:
    if not is_inexact(input.dtype):
        raise RuntimeError(f"std and var only support floating point and complex dtypes, got "
                           f"{input.dtype}; convert with .float() first")


def var(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    if isinstance(dim, bool):  # var(x, False): the old positional ``unbiased``
        dim, unbiased = None, dim
    _spread_dtype_check(input)
    with op_scope("VarBackward0"):
        return fa.var(input, axis=_dims(dim), keepdims=keepdim,
                      correction=_correction(unbiased, correction))


def std(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    _spread_dtype_check(input)
    with op_scope("StdBackward0"):
        return fa.std(input, axis=_dims(dim), keepdims=keepdim,
                      correction=_correction(unbiased, correction))


def std_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return (std(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


def var_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


def _extremum(fa_reduce, fa_arg, fa_pair, name):
    result = getattr(return_types, name.lower())

    def op(input, dim=None, keepdim: bool = False):
        if isinstance(dim, Tensor):
            with op_scope(("Maximum" if name == "Max" else "Minimum") + "Backward0"):
                return fa_pair(input, dim)
        if dim is None:
            with op_scope(name + "Backward1"):
                return fa_reduce(input)
        with op_scope(name + "Backward0"):
            values = fa_reduce(input, axis=dim, keepdims=keepdim)
        idx = fa_arg(input.detach(), axis=dim, keepdims=keepdim)
        return result(values, idx)
    op.__name__ = name.lower()
    return op


max = _extremum(fa.max, fa.argmax, fa.maximum, "Max")  # noqa: A001
min = _extremum(fa.min, fa.argmin, fa.minimum, "Min")  # noqa: A001


def amax(input, dim=None, keepdim: bool = False):
    with op_scope("AmaxBackward0"):
        return fa.max(input, axis=_dims(dim), keepdims=keepdim)


def amin(input, dim=None, keepdim: bool = False):
    with op_scope("AminBackward0"):
        return fa.min(input, axis=_dims(dim), keepdims=keepdim)


def argmax(input, dim=None, keepdim: bool = False):
    return fa.argmax(input.detach(), axis=dim, keepdims=keepdim if dim is not None else False)


def argmin(input, dim=None, keepdim: bool = False):
    return fa.argmin(input.detach(), axis=dim, keepdims=keepdim if dim is not None else False)


def all(input, dim=None, keepdim: bool = False):  # noqa: A001
    return fa.all(input, axis=_dims(dim), keepdims=keepdim)


def any(input, dim=None, keepdim: bool = False):  # noqa: A001
    return fa.any(input, axis=_dims(dim), keepdims=keepdim)


def cumsum(input, dim, *, dtype=None):
    with op_scope("CumsumBackward0"):
        return fa.cumsum(input, axis=dim, dtype=dtype)


def cumprod(input, dim, *, dtype=None):
    with op_scope("CumprodBackward0"):
        return fa.cumprod(input, axis=dim, dtype=dtype)


def logsumexp(input, dim, keepdim: bool = False):
    with op_scope("LogsumexpBackward0"):
        return fa.logsumexp(input, axis=_dims(dim), keepdims=keepdim)


def norm(input, p="fro", dim=None, keepdim: bool = False):
    with op_scope("NormBackward1"):
        if p in ("fro", 2, 2.0):
            return fa.sqrt(fa.sum(input * input, axis=_dims(dim), keepdims=keepdim))
        if p in (float("inf"), "inf"):
            return fa.max(fa.abs(input), axis=_dims(dim), keepdims=keepdim)
        if p == 1:
            return fa.sum(fa.abs(input), axis=_dims(dim), keepdims=keepdim)
        return fa.sum(fa.abs(input) ** p, axis=_dims(dim), keepdims=keepdim) ** (1.0 / p)


def softmax(input, dim, dtype=None):
    with op_scope("SoftmaxBackward0"):
        x = input if dtype is None else fa.astype(input, dtype)
        z = x - stop_gradient(fa.max(x, axis=dim, keepdims=True))
        e = fa.exp(z)
        return e / fa.sum(e, axis=dim, keepdims=True)


def log_softmax(input, dim, dtype=None):
    with op_scope("LogSoftmaxBackward0"):
        x = input if dtype is None else fa.astype(input, dtype)
        return x - fa.logsumexp(x, axis=dim, keepdims=True)


for _name, _f in (("sum", sum), ("mean", mean), ("prod", prod), ("var", var), ("std", std),
                  ("max", max), ("min", min), ("amax", amax), ("amin", amin),
                  ("argmax", argmax), ("argmin", argmin), ("all", all), ("any", any),
                  ("cumsum", cumsum), ("cumprod", cumprod), ("logsumexp", logsumexp),
                  ("norm", norm), ("softmax", softmax), ("log_softmax", log_softmax)):
    _register(_name, _f)
_register("std_mean", std_mean, method=False)
_register("var_mean", var_mean, method=False)


# --- selection, joining, shape --------------------------------------------------------

def where(condition, input=None, other=None):
    """``where(c, x, y)`` selects; ``where(c)`` alone is ``nonzero(c, as_tuple=True)``."""
    if input is None and other is None:
        return tuple(_as_tensor(i) for i in fa.nonzero(_as_tensor(condition).detach()))
    with op_scope("WhereBackward0"):
        return fa.where(condition, input, other)


def masked_fill(input, mask, value):
    with op_scope("MaskedFillBackward0"):
        return fa.where(mask, fa.asarray(_raw(value), dtype=input.dtype), input)


def index_select(input, dim, index):
    with op_scope("IndexSelectBackward0"):
        return fa.take(input, _raw(index), axis=dim)


def gather(input, dim, index):
    with op_scope("GatherBackward0"):
        return fa.take_along_axis(input, _raw(index), axis=dim)


def cat(tensors, dim: int = 0):
    with op_scope("CatBackward0"):
        return fa.concatenate([_as_tensor(t) for t in tensors], axis=dim)


def stack(tensors, dim: int = 0):
    with op_scope("StackBackward0"):
        return fa.stack([_as_tensor(t) for t in tensors], axis=dim)


def hstack(tensors):
    with op_scope("CatBackward0"):
        return fa.hstack([_as_tensor(t) for t in tensors])


def vstack(tensors):
    with op_scope("CatBackward0"):
        return fa.vstack([_as_tensor(t) for t in tensors])


def dstack(tensors):
    with op_scope("CatBackward0"):
        return fa.dstack([_as_tensor(t) for t in tensors])


def flip(input, dims):
    with op_scope("FlipBackward0"):
        return fa.flip(input, axis=_dims(dims))


def roll(input, shifts, dims=None):
    with op_scope("RollBackward0"):
        return fa.roll(input, shifts, axis=_dims(dims))


def repeat(input, *sizes):
    """PyTorch's ``repeat`` tiles the tensor (NumPy's ``tile``)."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) \
        else sizes
    with op_scope("RepeatBackward0"):
        return fa.tile(input, sizes)


def repeat_interleave(input, repeats, dim=None):
    with op_scope("RepeatInterleaveBackward0"):
        return fa.repeat(input, _raw(repeats), axis=dim)


def tril(input, diagonal: int = 0):
    with op_scope("TrilBackward0"):
        return fa.tril(input, diagonal)


def triu(input, diagonal: int = 0):
    with op_scope("TriuBackward0"):
        return fa.triu(input, diagonal)


def diag(input, diagonal: int = 0):
    with op_scope("DiagBackward0"):
        return fa.diag(input, diagonal)


def trace(input):
    with op_scope("TraceBackward0"):
        return fa.trace(input)


def sort(input, dim: int = -1, descending: bool = False, *, stable: bool = False):
    """Sorted values and indices; always stable (ties keep their order), which is what
    ``stable=True`` asks for and a valid order for ``stable=False``."""
    idx = fa.argsort(input.detach(), axis=dim, descending=descending)
    with op_scope("SortBackward0"):
        return return_types.sort(fa.take_along_axis(input, _raw(idx), axis=dim), idx)


def argsort(input, dim: int = -1, descending: bool = False, *, stable: bool = False):
    return fa.argsort(input.detach(), axis=dim, descending=descending)


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    values, idx = sort(input, dim, descending=largest)
    return return_types.topk(values.narrow(dim, 0, k), idx.narrow(dim, 0, k))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    return builtin_bool(fa.allclose(input.detach(), _as_tensor(other).detach(), rtol=rtol,
                                    atol=atol, equal_nan=equal_nan))


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return fa.isclose(input.detach(), _as_tensor(other).detach(), rtol=rtol, atol=atol,
                      equal_nan=equal_nan)


def equal(input, other) -> bool:
    return tuple(input.shape) == tuple(other.shape) and builtin_bool(fa.all(input == other))


builtin_bool = bool

for _name, _f in (("where", where), ("masked_fill", masked_fill),
                  ("index_select", index_select), ("gather", gather), ("flip", flip),
                  ("roll", roll),
                  ("repeat_interleave", repeat_interleave), ("tril", tril), ("triu", triu),
                  ("diag", diag), ("trace", trace), ("sort", sort), ("argsort", argsort),
                  ("topk", topk), ("allclose", allclose), ("isclose", isclose),
                  ("equal", equal)):
    _register(_name, _f)
_register("repeat", repeat, function=False)
for _name, _f in (("cat", cat), ("concat", cat), ("concatenate", cat), ("stack", stack),
                  ("hstack", hstack), ("vstack", vstack), ("dstack", dstack)):
    _register(_name, _f, method=False)


def _dtype_method(dtype):
    def convert(self, memory_format=None):
        return self.to(dtype)
    return convert


for _name, _dt in (("float", np.float32), ("double", np.float64), ("half", np.float16),
                   ("long", np.int64), ("int", np.int32), ("short", np.int16),
                   ("char", np.int8), ("byte", np.uint8), ("bool", np.bool_)):
    METHODS[_name] = _dtype_method(np.dtype(_dt))


def _bfloat16(self, memory_format=None):
    """``x.bfloat16()`` (ml_dtypes' bfloat16, imported on first use: core/bfloat16.py)."""
    from fnarray.core.bfloat16 import bfloat16_dtype
    return self.to(bfloat16_dtype())


METHODS["bfloat16"] = _bfloat16


def _install():
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)


_install()
