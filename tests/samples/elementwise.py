"""Samples for the elementwise primitives (``fnarray/ops/elementwise.py``).

Inputs stay inside each op's domain and away from its kinks: logs see positive values,
``asin`` sees (-1, 1), ``abs``/``copysign`` never see 0, ``maximum``/``minimum`` operands
lie on interleaved grids so they never tie, and ``remainder`` never meets an exact multiple.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.samples import Sample, away_from_zero, broadcastable_pair, floats, shapes


def grid(shape, offset=0.0, step=0.25, k=8):
    """float64 values ``offset + step * i`` for integers ``|i| <= k``."""
    return hnp.arrays(np.float64, shape,
                      elements=st.integers(-k, k).map(lambda i: offset + step * i))


@st.composite
def unary(draw, lo=-2.0, hi=2.0, make=None, params=None):
    shape = draw(shapes())
    if make is None:
        x = draw(floats(shape, lo, hi, noncontiguous=draw(st.booleans())))
    else:
        x = draw(make(shape))
    return Sample((x,), dict(params or {}))


@st.composite
def binary(draw, make_x=floats, make_y=floats, diff=(0, 1)):
    sx, sy = draw(broadcastable_pair())
    return Sample((draw(make_x(sx)), draw(make_y(sy))), diff=diff)


@st.composite
def _select(draw):
    shapes3 = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3))
    sc, sx, sy = shapes3.input_shapes
    c = draw(hnp.arrays(np.bool_, sc))
    return Sample((c, draw(floats(sx)), draw(floats(sy))), diff=(1, 2))


def _ints(lo=-20, hi=20, dtype=np.int64):
    return lambda s: hnp.arrays(dtype, s, elements=st.integers(lo, hi))


def _bools(s):
    return hnp.arrays(np.bool_, s)


def _special_floats(s):
    return hnp.arrays(np.float64, s, elements=st.sampled_from(
        [0.0, -0.0, 1.5, -2.5, np.inf, -np.inf, np.nan, 1e300]))


def _complex(s):
    return hnp.arrays(np.complex128, s, elements=st.complex_numbers(max_magnitude=4,
                                                                    allow_nan=False))


def _positive(lo, hi):
    return lambda s: floats(s, lo, hi)


_WIDE = {"neg", "sin", "cos", "atan", "sinh", "cosh", "tanh", "asinh", "exp", "exp2",
         "expm1", "logistic", "erf", "real", "conj"}
_RANGES = {"tan": (-1.2, 1.2), "asin": (-0.9, 0.9), "acos": (-0.9, 0.9), "atanh": (-0.9, 0.9),
           "acosh": (1.2, 3.0), "log": (0.3, 3.0), "log2": (0.3, 3.0), "log10": (0.3, 3.0),
           "sqrt": (0.3, 3.0), "rsqrt": (0.3, 3.0), "log1p": (-0.7, 2.0)}

SAMPLES = {name: (lambda: unary()) for name in _WIDE}
SAMPLES.update({name: (lambda lo=lo, hi=hi: unary(lo, hi)) for name, (lo, hi) in _RANGES.items()})
SAMPLES.update({
    "abs": lambda: unary(make=away_from_zero),
    "sign": lambda: unary(make=lambda s: grid(s, step=0.5)),
    "floor": lambda: unary(-3.0, 3.0),
    "ceil": lambda: unary(-3.0, 3.0),
    "trunc": lambda: unary(-3.0, 3.0),
    "round": lambda: st.integers(0, 2).flatmap(
        lambda d: unary(-3.0, 3.0, params={"decimals": d})),
    "logical_not": lambda: unary(make=_bools),
    "bitwise_invert": lambda: unary(make=_ints()),
    "isnan": lambda: unary(make=_special_floats),
    "isinf": lambda: unary(make=_special_floats),
    "isfinite": lambda: unary(make=_special_floats),
    "signbit": lambda: unary(make=_special_floats),
    "imag": lambda: unary(make=_complex),
    # binary, differentiable
    "add": lambda: binary(),
    "sub": lambda: binary(),
    "mul": lambda: binary(),
    "div": lambda: binary(make_y=away_from_zero),
    "pow": lambda: binary(make_x=_positive(0.3, 2.0)),
    "max": lambda: binary(make_x=grid, make_y=lambda s: grid(s, offset=0.125)),
    "min": lambda: binary(make_x=grid, make_y=lambda s: grid(s, offset=0.125)),
    "atan2": lambda: binary(make_x=away_from_zero),
    "hypot": lambda: binary(make_x=away_from_zero),
    "copysign": lambda: binary(make_x=away_from_zero, make_y=away_from_zero, diff=(0,)),
    "rem": lambda: binary(make_x=lambda s: grid(s, offset=0.25, step=0.5),
                          make_y=lambda s: hnp.arrays(np.float64, s, elements=st.sampled_from(
                              [-2.0, -1.0, 1.0, 2.0]))),
    "fmod": lambda: binary(make_x=lambda s: grid(s, offset=0.25, step=0.5),
                           make_y=lambda s: hnp.arrays(np.float64, s, elements=st.sampled_from(
                               [-2.0, -1.0, 1.0, 2.0]))),
    "select": _select,
    # binary, not differentiable
    "floor_divide": lambda: binary(make_y=away_from_zero),
    "nextafter": lambda: binary(),
    **{name: (lambda: binary(make_x=grid, make_y=grid))
       for name in ("eq", "ne", "lt", "le", "gt", "ge")},
    **{name: (lambda: binary(make_x=_bools, make_y=_bools))
       for name in ("logical_and", "logical_or", "logical_xor")},
    **{name: (lambda: binary(make_x=_ints(-100, 100), make_y=_ints(-100, 100)))
       for name in ("bitwise_and", "bitwise_or", "bitwise_xor")},
    **{name: (lambda: binary(make_x=_ints(0, 1000), make_y=_ints(0, 8)))
       for name in ("left_shift", "right_shift")},
    "convert_element_type": lambda: st.sampled_from(
        [np.dtype(np.float64), np.dtype(np.complex128), np.dtype(np.int32),
         np.dtype(np.bool_)]).flatmap(lambda dt: unary(-3.0, 3.0, params={"dtype": dt})),
})

# NumPy references for the primitives that are not differentiable: their values are
# checked against these (the differentiable ones are checked through their derivatives).
REFERENCES = {
    "sign": np.sign, "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc,
    "round": lambda x, decimals: np.round(x, decimals),
    "logical_not": np.logical_not, "bitwise_invert": np.invert, "isnan": np.isnan,
    "isinf": np.isinf, "isfinite": np.isfinite, "signbit": np.signbit, "imag": np.imag,
    "floor_divide": np.floor_divide, "nextafter": np.nextafter, "eq": np.equal,
    "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_xor": np.logical_xor, "bitwise_and": np.bitwise_and,
    "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor,
    "left_shift": np.left_shift, "right_shift": np.right_shift,
}
