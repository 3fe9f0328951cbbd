"""Elementwise functions of the Array API (and NumPy aliases)."""

from __future__ import annotations

import math

from fnarray.api._convert import as_operand, astype, promote, to_inexact
from fnarray.core.shapes import DEFAULT_FLOAT, bool_, is_inexact
from fnarray.core.trace import bind_binary, bind_unary
from fnarray.ops import elementwise as ew


def _unary(prim, convert=as_operand, note=""):
    """The user function for a unary primitive; ``convert`` prepares the operand."""
    def f(x):
        return bind_unary(prim, convert(x))  # the fixed-signature bind: no args tuple/dict
    f.__name__ = prim.name
    f.__doc__ = f"Elementwise {prim.name}{note}."
    return f


def _unary_float(prim):
    return _unary(prim, to_inexact, "; integer input is computed in the default float")


def _binary(prim, name):
    def f(x1, x2):
        a, b = promote(name, x1, x2)
        return bind_binary(prim, a, b)
    f.__name__ = name
    f.__doc__ = f"Elementwise {name} with broadcasting and type promotion."
    return f


def _binary_float(prim, name):
    def f(x1, x2):
        a, b = promote(name, x1, x2)
        if not is_inexact(a.dtype):
            a, b = astype(a, DEFAULT_FLOAT), astype(b, DEFAULT_FLOAT)
        return bind_binary(prim, a, b)
    f.__name__ = name
    f.__doc__ = f"Elementwise {name}; integer operands are computed in the default float."
    return f


sin, cos, tan = _unary_float(ew.sin), _unary_float(ew.cos), _unary_float(ew.tan)
asin, acos, atan = _unary_float(ew.asin), _unary_float(ew.acos), _unary_float(ew.atan)
sinh, cosh = _unary_float(ew.sinh), _unary_float(ew.cosh)
asinh, acosh, atanh = _unary_float(ew.asinh), _unary_float(ew.acosh), _unary_float(ew.atanh)
exp, exp2 = _unary_float(ew.exp), _unary_float(ew.exp2)


def expm1(x):
    """Elementwise ``exp(x) - 1``, accurate near 0; integer input is computed in the default
    float.  Complex input follows the Array API's special cases (NumPy's kernel does not:
    e.g. ``expm1(inf+0j)`` is ``inf+0j`` and ``expm1(-inf+2j)`` is ``-1+0j``)."""
    x = to_inexact(x)
    out = ew.expm1.bind(x)
    if x.dtype.kind != "c":
        return out
    a, b = real(x), imag(x)
    b_neg = signbit(b)
    zero_im = b == 0
    inf, nan = math.inf, math.nan
    fixes = [  # (mask, value for b >= +0, value for b <= -0), first match wins
        ((a == 0) & zero_im, complex(0.0, 0.0), complex(0.0, -0.0)),
        ((a == inf) & zero_im, complex(inf, 0.0), complex(inf, -0.0)),
        ((a == -inf) & ~isnan(b), complex(-1.0, 0.0), complex(-1.0, -0.0)),
        ((a == -inf) & isnan(b), complex(-1.0, 0.0), complex(-1.0, 0.0)),
        ((a == inf) & ~isfinite(b), complex(inf, nan), complex(inf, nan)),
        (isnan(a) & zero_im, complex(nan, 0.0), complex(nan, -0.0)),
    ]
    for mask, pos, neg in reversed(fixes):
        out = where(mask, where(b_neg, neg, pos), out)
    return out


def tanh(x):
    """Elementwise hyperbolic tangent; integer input is computed in the default float.
    Complex input follows the Array API's special cases (``tanh(±inf + bj)`` for finite
    ``b`` is ``±1`` with an imaginary zero carrying the sign of ``b``)."""
    x = to_inexact(x)
    out = ew.tanh.bind(x)
    if x.dtype.kind != "c":
        return out
    a, b = real(x), imag(x)
    a_neg, b_neg = signbit(a), signbit(b)
    limit = where(a_neg, where(b_neg, complex(-1.0, -0.0), complex(-1.0, 0.0)),
                  where(b_neg, complex(1.0, -0.0), complex(1.0, 0.0)))
    return where(isinf(a) & isfinite(b), limit, out)
log, log1p, log2, log10 = (_unary_float(ew.log), _unary_float(ew.log1p), _unary_float(ew.log2),
                           _unary_float(ew.log10))
sqrt, rsqrt = _unary_float(ew.sqrt), _unary_float(ew.rsqrt)
sigmoid = _unary_float(ew.logistic)
erf = _unary_float(ew.erf)
arcsin, arccos, arctan = asin, acos, atan
arcsinh, arccosh, arctanh = asinh, acosh, atanh
negative, abs, sign = _unary(ew.neg), _unary(ew.abs_), _unary(ew.sign)
absolute = abs
logical_not = _unary(ew.logical_not)
bitwise_invert = _unary(ew.bitwise_invert)
invert = bitwise_not = bitwise_invert
isnan, isinf, isfinite, signbit = (_unary(ew.isnan), _unary(ew.isinf), _unary(ew.isfinite),
                                   _unary(ew.signbit))
real, imag, conj = _unary(ew.real), _unary(ew.imag), _unary(ew.conj)
conjugate = conj


def _integer_passthrough(prim):
    def f(x):
        x = as_operand(x)
        return x if x.dtype.kind in "biu" else prim.bind(x)
    f.__name__ = prim.name
    f.__doc__ = f"Elementwise {prim.name} (integers are returned unchanged)."
    return f


floor, ceil, trunc = (_integer_passthrough(ew.floor), _integer_passthrough(ew.ceil),
                      _integer_passthrough(ew.trunc))


def round(x, decimals: int = 0):  # noqa: A001 - Array API name
    """Round half to even, like NumPy."""
    x = as_operand(x)
    if x.dtype.kind in "biu" and decimals >= 0:
        return x
    return ew.round_.bind(x, decimals=decimals)


def positive(x):
    return as_operand(x)


def square(x):
    x = as_operand(x)
    return ew.mul.bind(x, x)


def reciprocal(x):
    return divide(1.0, x)


add = _binary(ew.add, "add")
subtract = _binary(ew.sub, "subtract")
multiply = _binary(ew.mul, "multiply")
divide = _binary_float(ew.div, "divide")
true_divide = divide
floor_divide = _binary(ew.floor_divide, "floor_divide")
remainder = _binary(ew.rem, "remainder")
fmod = _binary(ew.fmod, "fmod")  # sign of the dividend (C fmod); remainder: of the divisor
mod = remainder
maximum = _binary(ew.maximum, "maximum")
minimum = _binary(ew.minimum, "minimum")
atan2 = arctan2 = _binary_float(ew.atan2, "atan2")
hypot = _binary_float(ew.hypot, "hypot")
copysign = _binary_float(ew.copysign, "copysign")
nextafter = _binary_float(ew.nextafter, "nextafter")
equal = _binary(ew.equal, "equal")
not_equal = _binary(ew.not_equal, "not_equal")
less = _binary(ew.less, "less")
less_equal = _binary(ew.less_equal, "less_equal")
greater = _binary(ew.greater, "greater")
greater_equal = _binary(ew.greater_equal, "greater_equal")
logical_and = _binary(ew.logical_and, "logical_and")
logical_or = _binary(ew.logical_or, "logical_or")
logical_xor = _binary(ew.logical_xor, "logical_xor")
bitwise_and = _binary(ew.bitwise_and, "bitwise_and")
bitwise_or = _binary(ew.bitwise_or, "bitwise_or")
bitwise_xor = _binary(ew.bitwise_xor, "bitwise_xor")
bitwise_left_shift = left_shift = _binary(ew.left_shift, "bitwise_left_shift")
bitwise_right_shift = right_shift = _binary(ew.right_shift, "bitwise_right_shift")


def pow(x1, x2):  # noqa: A001 - Array API name
    """``x1 ** x2``; a negative integer power of an integer array is an error, as in NumPy."""
    a, b = promote("pow", x1, x2)
    return ew.pow_.bind(a, b)


power = pow


def where(condition, x1=None, x2=None, *, size=None, fill_value=None):
    """Elementwise select: ``x1`` where ``condition`` holds, else ``x2``.  With only
    ``condition``, ``nonzero(condition, size=size, fill_value=fill_value)``."""
    if x1 is None and x2 is None:
        from fnarray.api.searching import nonzero
        return nonzero(condition, size=size, fill_value=fill_value)
    if size is not None or fill_value is not None:
        raise TypeError("where: size= and fill_value= apply only to the one-argument form "
                        "where(condition)")
    c = as_operand(condition)
    if c.dtype != bool_:
        c = astype(c, bool_)
    a, b = promote("where", x1, x2)
    return ew.select.bind(c, a, b)


def clip(x, min=None, max=None):  # noqa: A002 - Array API names
    """Clamp ``x`` into ``[min, max]`` (either bound may be None)."""
    x = as_operand(x)
    if min is not None:
        x = maximum(x, min)
    if max is not None:
        x = minimum(x, max)
    return x


def logaddexp(x1, x2):
    """``log(exp(x1) + exp(x2))`` without overflow."""
    a, b = promote("logaddexp", x1, x2)
    a, b = to_inexact(a), to_inexact(b)
    m = maximum(a, b)
    from fnarray.transforms.custom import stop_gradient
    m = stop_gradient(where(isfinite(m), m, 0.0))
    return m + log(exp(a - m) + exp(b - m))


def isclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    a, b = promote("isclose", a, b)
    a, b = to_inexact(a), to_inexact(b)
    close = abs(a - b) <= atol + rtol * abs(b)
    close = logical_or(close, equal(a, b))
    if equal_nan:
        close = logical_or(close, logical_and(isnan(a), isnan(b)))
    return close


def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    from fnarray.api.reductions import all as all_
    return bool(all_(isclose(a, b, rtol, atol, equal_nan)))


def array_equal(a1, a2, equal_nan: bool = False) -> bool:
    from fnarray.api.reductions import all as all_
    a1, a2 = as_operand(a1), as_operand(a2)
    if a1.shape != a2.shape:
        return False
    eq = equal(a1, a2)
    if equal_nan:
        eq = logical_or(eq, logical_and(isnan(a1), isnan(a2)))
    return bool(all_(eq))


def deg2rad(x):
    return to_inexact(x) * (math.pi / 180.0)


def rad2deg(x):
    return to_inexact(x) * (180.0 / math.pi)


radians, degrees = deg2rad, rad2deg


def angle(z, deg: bool = False):
    """The argument of each (complex) element, ``atan2(imag(z), real(z))``, in radians (or
    degrees with ``deg=True``); 0 or pi for real input, as NumPy.  Differentiable, with
    JAX's complex convention."""
    z = to_inexact(z)
    out = atan2(imag(z), real(z))
    return out * (180.0 / math.pi) if deg else out
