"""Elementwise primitives.

Every elementwise primitive gets its shape inference, batching and (for differentiable ones)
both derivative modes from the family: a unary op declares its derivative ``d(x, out)`` once,
and a binary op declares, per operand, how its partial derivative applies to a tangent
``(t, x, y, out) -> contribution``.  Because the Jacobians are diagonal, the same function
serves the JVP and (summed back over broadcast axes) the VJP.

Complex numbers follow JAX's convention: a holomorphic op's JVP is ``f'(z) t`` and its VJP
``ct f'(z)`` (the transpose, without conjugation: cotangents pair with tangents through
``Re sum(ct * t)``), so the same ``deriv`` serves real and complex inputs.  The ops that
are not holomorphic (``abs``, ``real``, ``imag``, ``conj`` and complex/real conversion)
declare their real-linear JVPs and the transposes of those.
"""

from __future__ import annotations

import math

import numpy as np

from fnarray import api as fa
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray, bool_, broadcast_shapes, is_inexact
from fnarray.ops._util import move_bdim, unbroadcast
from fnarray.transforms.buffers import (declare_elementwise, declare_fresh, declare_out_kernel,
                                        declare_scalar_form)


# --- family rules ------------------------------------------------------------------------

def _kernel(kernel):
    return kernel if callable(kernel) else (lambda xp, *a, _n=kernel: getattr(xp, _n)(*a))


def _abstract(out_dtype=None):
    def rule(*avals, **_):
        shape = broadcast_shapes(*(a.shape for a in avals))
        dtype = out_dtype or avals[0].dtype
        return ShapedArray(shape, dtype, all(a.weak_type for a in avals))
    return rule


def batch_elementwise(prim):
    """Batching for any elementwise primitive with NumPy broadcasting between operands."""
    def rule(vals, dims, **params):
        rank = max(v.ndim - (d is not None) for v, d in zip(vals, dims))
        moved = []
        for v, d in zip(vals, dims):
            if d is None:
                moved.append(v)
            else:
                v = move_bdim(v, d, 0)
                pad = rank - (v.ndim - 1)
                if pad:
                    v = fa.reshape(v, (v.shape[0],) + (1,) * pad + v.shape[1:])
                moved.append(v)
        # Unbatched operands broadcast against the trailing axes; the batch axis is 0.
        out = prim.bind(*moved, **params)
        return out, 0
    return rule


def _nondiff_jvp(primals, tangents, **params):  # pragma: no cover - never called
    raise AssertionError("non-differentiable primitives are skipped by the transforms")


def _nondiff_vjp(ct, *primals, out, **params):
    return (None,) * len(primals)


def unary(name, kernel, deriv=None, out_dtype=None):
    """Declare ``name(x)``; ``deriv(x, out)`` is dout/dx, or None if not differentiable."""
    p = declare(name, impl=_kernel(kernel), abstract=_abstract(out_dtype),
                jvp=_nondiff_jvp, vjp=_nondiff_vjp, batch=None,
                differentiable=deriv is not None)
    p.batch = lambda vals, dims, **params: (p.bind(vals[0], **params), dims[0])
    p.ufunc = kernel if isinstance(kernel, str) else None
    if deriv is not None:
        def jvp(primals, tangents, **params):
            x, = primals
            out = p.bind(x, **params)
            return out, tangents[0] * deriv(x, out)

        def vjp(ct, x, out, **params):
            return (ct * deriv(x, out),)

        p.jvp, p.vjp = jvp, vjp
    return p


def nary(name, kernel, partials=None, out_dtype=None):
    """Declare an elementwise op of several operands with NumPy broadcasting.

    ``partials[i](t, *operands, out)`` applies d out / d operand_i to a tangent ``t``.
    """
    p = declare(name, impl=_kernel(kernel), abstract=_abstract(out_dtype),
                jvp=_nondiff_jvp, vjp=_nondiff_vjp, batch=None,
                differentiable=partials is not None)
    p.batch = batch_elementwise(p)
    p.ufunc = kernel if isinstance(kernel, str) and kernel != "where" else None
    if partials is not None:
        def jvp(primals, tangents, **params):
            out = p.bind(*primals, **params)
            t_out = None
            for t, partial in zip(tangents, partials):
                if t is not None and partial is not None:
                    c = partial(t, *primals, out)
                    t_out = c if t_out is None else t_out + c
            if t_out is None:
                return out, None
            if t_out.shape != out.shape:
                t_out = fa.broadcast_to(t_out, out.shape)
            return out, t_out

        def vjp(ct, *primals, out, needed=None, **params):
            return tuple(
                None if partial is None or not _float(x) or (needed is not None and not needed[i])
                else unbroadcast(partial(ct, *primals, out), x.shape)
                for i, (x, partial) in enumerate(zip(primals, partials)))

        p.jvp, p.vjp = jvp, vjp
        p.vjp_selective = True
    return p


def _float(x) -> bool:
    return is_inexact(x.dtype)


# --- unary ops -----------------------------------------------------------------------------

neg = unary("neg", "negative", lambda x, o: -1.0)
sin = unary("sin", "sin", lambda x, o: fa.cos(x))
cos = unary("cos", "cos", lambda x, o: -fa.sin(x))
tan = unary("tan", "tan", lambda x, o: 1.0 + o * o)
asin = unary("asin", "arcsin", lambda x, o: fa.rsqrt(1.0 - x * x))
acos = unary("acos", "arccos", lambda x, o: -fa.rsqrt(1.0 - x * x))
atan = unary("atan", "arctan", lambda x, o: 1.0 / (1.0 + x * x))
sinh = unary("sinh", "sinh", lambda x, o: fa.cosh(x))
cosh = unary("cosh", "cosh", lambda x, o: fa.sinh(x))
tanh = unary("tanh", "tanh", lambda x, o: 1.0 - o * o)
asinh = unary("asinh", "arcsinh", lambda x, o: fa.rsqrt(x * x + 1.0))
# 1/sqrt(x-1)/sqrt(x+1), not 1/sqrt(x*x-1): equal for real x > 1, and on the principal
# branch for complex x too.
acosh = unary("acosh", "arccosh", lambda x, o: fa.rsqrt(x - 1.0) * fa.rsqrt(x + 1.0))
atanh = unary("atanh", "arctanh", lambda x, o: 1.0 / (1.0 - x * x))
exp = unary("exp", "exp", lambda x, o: o)
exp2 = unary("exp2", "exp2", lambda x, o: o * math.log(2.0))
expm1 = unary("expm1", "expm1", lambda x, o: o + 1.0)
log = unary("log", "log", lambda x, o: 1.0 / x)
log1p = unary("log1p", "log1p", lambda x, o: 1.0 / (1.0 + x))
log2 = unary("log2", "log2", lambda x, o: 1.0 / (x * math.log(2.0)))
log10 = unary("log10", "log10", lambda x, o: 1.0 / (x * math.log(10.0)))
sqrt = unary("sqrt", "sqrt", lambda x, o: 0.5 / o)
rsqrt = unary("rsqrt", lambda xp, x: 1 / xp.sqrt(x), lambda x, o: -0.5 * o / x)
# |x| has subgradient 0 at 0 (sign(0) == 0), as in JAX and PyTorch.
abs_ = unary("abs", "abs", lambda x, o: fa.sign(x))
abs_.abstract = lambda a, **_: ShapedArray(a.shape, _real_of(a.dtype), a.weak_type)
logistic = unary("logistic", lambda xp, x: _stable_sigmoid(xp, x), lambda x, o: o * (1.0 - o))
erf = unary("erf", lambda xp, x: _erf(xp, x),
            lambda x, o: (2.0 / math.sqrt(math.pi)) * fa.exp(-x * x))
sign = unary("sign", "sign")
floor = unary("floor", "floor")
ceil = unary("ceil", "ceil")
trunc = unary("trunc", "trunc")
round_ = unary("round", lambda xp, x, decimals=0: xp.round(x, decimals))
logical_not = unary("logical_not", "logical_not", out_dtype=bool_)
bitwise_invert = unary("bitwise_invert", "invert")
isnan = unary("isnan", "isnan", out_dtype=bool_)
isinf = unary("isinf", "isinf", out_dtype=bool_)
isfinite = unary("isfinite", "isfinite", out_dtype=bool_)
signbit = unary("signbit", "signbit", out_dtype=bool_)


def _stable_sigmoid(xp, x):
    if x.dtype.kind == "c":  # no overflow-free form for complex x; JAX's definition
        return 1 / (1 + xp.exp(-x))
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _erf(xp, x):
    """erf through Python's ``math.erf`` (NumPy has no erf and fnarray needs no SciPy):
    exact to double precision, at about 50 ns per element."""
    if x.dtype.kind == "c":
        raise TypeError(f"erf: complex input ({x.dtype}) is not supported; erf is defined "
                        f"here for real x only")
    vec = np.frompyfunc(math.erf, 1, 1)
    host = x if xp is np else xp.asnumpy(x)
    out = np.asarray(vec(host), dtype=host.dtype) if host.size else host.copy()
    return out if xp is np else xp.asarray(out)


def _real_of(dtype) -> np.dtype:
    return np.dtype(np.zeros((), dtype).real.dtype)


def _complex_part(kernel):
    def impl(xp, x):
        out = getattr(xp, kernel)(x)
        return xp.asarray(out)
    return impl


def _linear_unary(name, kernel, transpose):
    """A real-linear unary op ``f`` (``real``, ``imag``, ``conj``): its JVP is ``f(t)``;
    ``transpose(ct, x)`` is its transpose under the pairing ``Re sum(ct * t)``."""
    p = unary(name, kernel)
    p.differentiable = True
    p.jvp = lambda primals, tangents, **_: (p.bind(primals[0]), p.bind(tangents[0]))
    p.vjp = lambda ct, x, *, out, **_: (transpose(ct, x),)
    return p


def _part_abstract(a, **_):
    return ShapedArray(a.shape, _real_of(a.dtype), a.weak_type)


def _to_input_dtype(ct, x):
    return ct if ct.dtype == x.dtype else convert_element_type.bind(ct, dtype=x.dtype)


# real(t) pairs with ct as Re(ct t) for real ct, so its transpose is ct itself (as x's
# dtype); imag(t) pairs as Re(-i ct t), so its transpose is -i ct (zero for real x).
real = _linear_unary("real", _complex_part("real"), _to_input_dtype)
imag = _linear_unary("imag", _complex_part("imag"), lambda ct, x: (
    _to_input_dtype(ct, x) * (-1j) if x.dtype.kind == "c" else None))
conj = _linear_unary("conj", "conj", lambda ct, x: conj.bind(ct))
real.abstract = imag.abstract = _part_abstract


def _abs_jvp(primals, tangents, **_):
    x, = primals
    out = abs_.bind(x)
    if x.dtype.kind != "c":
        return out, tangents[0] * fa.sign(x)
    # d|z| = Re(conj(z) dz) / |z|, taken as 0 at z == 0 (as for real inputs).
    return out, real.bind(conj.bind(_unit(x, out)) * tangents[0])


def _abs_vjp(ct, x, *, out, **_):
    if x.dtype.kind != "c":
        return (ct * fa.sign(x),)
    return (_to_input_dtype(ct, x) * conj.bind(_unit(x, out)),)


def _unit(x, out):
    """``x / |x|``, 0 where ``x == 0``."""
    zero = out == 0
    return fa.where(zero, 0.0, x / fa.where(zero, 1.0, out).astype(x.dtype))


abs_.jvp, abs_.vjp = _abs_jvp, _abs_vjp


# --- binary and ternary ops -----------------------------------------------------------------

def _first(t, *_):
    return t


def _negate(t, *_):
    return -t


add = nary("add", "add", (_first, _first))
sub = nary("sub", "subtract", (_first, _negate))
mul = nary("mul", "multiply", (lambda t, x, y, o: t * y, lambda t, x, y, o: t * x))
div = nary("div", "divide", (lambda t, x, y, o: t / y, lambda t, x, y, o: -t * o / y))
pow_ = nary("pow", "power", (
    lambda t, x, y, o: t * y * fa.power(x, y - 1),
    # d/dy x**y = log(x) x**y, taken as 0 where x == 0 (the limit used by JAX/PyTorch).
    lambda t, x, y, o: t * fa.where(x == 0, 0.0, o * fa.log(fa.where(x == 0, 1.0, x)))))
# Ties split the derivative evenly between the operands (as JAX does).  The partials
# select from ``t`` itself (Python scalars are weak), so they keep its dtype: an eager
# ``where`` of two Python floats would be a strong float32 and widen float16/bfloat16.
def _tie_partial(t, win, tie):
    return fa.where(win, t, fa.where(tie, t * 0.5, 0.0))


maximum = nary("max", "maximum", (
    lambda t, x, y, o: _tie_partial(t, x > y, x == y),
    lambda t, x, y, o: _tie_partial(t, y > x, x == y)))
minimum = nary("min", "minimum", (
    lambda t, x, y, o: _tie_partial(t, x < y, x == y),
    lambda t, x, y, o: _tie_partial(t, y < x, x == y)))
atan2 = nary("atan2", "arctan2", (
    lambda t, x, y, o: t * y / (x * x + y * y),
    lambda t, x, y, o: -t * x / (x * x + y * y)))


def _over_hypot(t, v, o):
    """``t * v / o`` for hypot's partials, taken as 0 at the origin (``o == 0``): the
    minimum-norm subgradient, which is also what JAX's ``grad(hypot)(0., 0.)`` gives."""
    return t * fa.where(o == 0, 0.0, v / fa.where(o == 0, 1.0, o))


hypot = nary("hypot", "hypot", (lambda t, x, y, o: _over_hypot(t, x, o),
                                lambda t, x, y, o: _over_hypot(t, y, o)))
copysign = nary("copysign", "copysign", (
    lambda t, x, y, o: fa.where(fa.signbit(x) == fa.signbit(y), t, -t), None))
rem = nary("rem", "remainder", (_first, lambda t, x, y, o: -t * fa.floor_divide(x, y)))
# C's fmod: the result has the sign of the dividend (PyTorch's torch.fmod), exact like rem
fmod = nary("fmod", "fmod", (_first, lambda t, x, y, o: -t * fa.trunc(x / y)))
floor_divide = nary("floor_divide", "floor_divide")
nextafter = nary("nextafter", "nextafter")
equal = nary("eq", "equal", out_dtype=bool_)
not_equal = nary("ne", "not_equal", out_dtype=bool_)
less = nary("lt", "less", out_dtype=bool_)
less_equal = nary("le", "less_equal", out_dtype=bool_)
greater = nary("gt", "greater", out_dtype=bool_)
greater_equal = nary("ge", "greater_equal", out_dtype=bool_)
logical_and = nary("logical_and", "logical_and", out_dtype=bool_)
logical_or = nary("logical_or", "logical_or", out_dtype=bool_)
logical_xor = nary("logical_xor", "logical_xor", out_dtype=bool_)
bitwise_and = nary("bitwise_and", "bitwise_and")
bitwise_or = nary("bitwise_or", "bitwise_or")
bitwise_xor = nary("bitwise_xor", "bitwise_xor")
left_shift = nary("left_shift", "left_shift")
right_shift = nary("right_shift", "right_shift")
select = nary("select", "where", (
    None,
    lambda t, c, x, y, o: fa.where(c, t, fa.zeros((), t.dtype)),
    lambda t, c, x, y, o: fa.where(c, fa.zeros((), t.dtype), t)))
select.abstract = lambda c, x, y, **_: ShapedArray(
    broadcast_shapes(c.shape, x.shape, y.shape), x.dtype, x.weak_type and y.weak_type)


# --- dtype conversion ----------------------------------------------------------------------

def _convert_jvp(primals, tangents, *, dtype):
    x, = primals
    out = convert_element_type.bind(x, dtype=dtype)
    if not is_inexact(dtype):
        return out, None
    t = tangents[0]
    if t.dtype.kind == "c" and dtype.kind != "c":  # complex -> real keeps the real part
        t = real.bind(t)
    return out, convert_element_type.bind(t, dtype=dtype)


def _convert_vjp(ct, x, *, out, dtype):
    if not is_inexact(x.dtype) or ct is None:
        return (None,)
    if ct.dtype.kind == "c" and x.dtype.kind != "c":  # real -> complex: Re pairs with t
        ct = real.bind(ct)
    return (convert_element_type.bind(ct, dtype=x.dtype),)


convert_element_type = declare(
    "convert_element_type",
    impl=lambda xp, x, *, dtype: x.astype(dtype),
    abstract=lambda a, *, dtype: ShapedArray(a.shape, dtype, False),
    jvp=_convert_jvp, vjp=_convert_vjp, batch=None)
convert_element_type.batch = (
    lambda vals, dims, **params: (convert_element_type.bind(vals[0], **params), dims[0]))


def _select_into(xp, c, x, y, *, out):
    """``where(c, x, y)`` written into ``out`` (jit's buffer reuse): a 0-d predicate picks
    one operand to copy; otherwise ``y`` then ``x`` where ``c``.  Operands of another dtype
    than ``out`` go through ``where`` so that the values are those of the impl."""
    if x.dtype != out.dtype or y.dtype != out.dtype:
        xp.copyto(out, xp.where(c, x, y))
    elif c.ndim == 0:
        xp.copyto(out, x if c else y)
    else:
        xp.copyto(out, y)
        xp.copyto(out, x, where=c)
    return out


def _select_scalar(eqn, names):
    """One element of ``select`` in a compiled loop: operands of the result's dtype only."""
    c, x, y = (v.aval.dtype for v in eqn.invars)
    out = eqn.outvars[0].aval.dtype
    if c != np.dtype(bool) or x != out or y != out:
        return None
    return f"{names[1]} if {names[0]} else {names[2]}"


def _convert_scalar(eqn, names):
    """One element of ``convert_element_type`` in a compiled loop (numba's casts round, wrap
    and widen as ``astype``); float to integer is left to NumPy, whose out-of-range and NaN
    results are its own."""
    src, dst = eqn.invars[0].aval.dtype, np.dtype(eqn.params["dtype"])
    if dst.kind == "b":
        return f"{names[0]} != 0"
    if dst.kind in "iu" and src.kind not in "iub":
        return None
    return f"np.{dst.name}({names[0]})"


declare_fresh(select, convert_element_type)  # np.where and astype always allocate
declare_out_kernel(select, _select_into)
declare_elementwise(select, convert_element_type)  # may run block by block (jit)
declare_scalar_form(select, _select_scalar)
declare_scalar_form(convert_element_type, _convert_scalar)
