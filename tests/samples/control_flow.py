"""Samples for the control-flow primitives: ``scan``, ``cond`` and ``while``.

Their parameters are closed programs, traced here from small functions:

* ``scan``: a tensor carry and a scalar carry (a pytree carry, flattened), a closed-over
  constant, drawn lengths including zero, both directions, unrolled or not;
* ``cond``: three branches selected by a drawn index (out-of-range indices are clamped);
* ``while``: an integer counter and a float tensor carry whose body holds a ``cond`` that
  holds a ``scan`` (nested control flow).  Reverse mode of ``while`` is refused by design,
  so its sample checks forward mode only.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import fnarray as fa
from fnarray.core.shapes import ShapedArray
from fnarray.transforms import subprogram as sp
from tests.samples import Sample, floats, shapes

F64, I32 = np.dtype("float64"), np.dtype("int32")


def _aval(shape, dtype=F64):
    return ShapedArray(tuple(shape), dtype)


def scan_body(w, c1, c2, x):
    """``(consts, carry, x) -> (carry, y)`` of the scan sample."""
    c1n = fa.sin(c1 * w) + x
    c2n = c2 * 0.9 + fa.sum(x * c1)
    return [c1n, c2n, c1 * x, c2]


@st.composite
def _scan(draw):
    shape = draw(shapes(max_dims=2, max_side=3))
    length = draw(st.integers(0, 3))
    w, c1 = draw(floats(shape)), draw(floats(shape))
    c2 = draw(floats(()))
    xs = draw(floats((length, *shape)))
    body = sp.trace_avals(scan_body, [_aval(shape), _aval(shape), _aval(()), _aval(shape)],
                          "scan")
    params = dict(body=body, n_consts=1, n_carry=2, length=length,
                  reverse=draw(st.booleans()), unroll=draw(st.integers(1, 2)))
    return Sample((w, c1, c2, xs), params, diff=(0, 1, 2, 3))


BRANCHES = (lambda x, y: [fa.sin(x) * y], lambda x, y: [x + y * y],
            lambda x, y: [fa.exp(x) - y])


@st.composite
def _cond(draw):
    shape = draw(shapes(max_dims=2, max_side=3))
    index = np.asarray(draw(st.integers(-1, 3)), dtype=I32)
    x, y = draw(floats(shape)), draw(floats(shape))
    branches = tuple(sp.trace_avals(b, [_aval(shape), _aval(shape)], "cond")
                     for b in BRANCHES)
    return Sample((index, x, y), dict(branches=branches), diff=(1, 2))


def while_body(w, i, x):
    """One step of the while sample: a ``cond`` on the data holding a ``scan``."""
    def smooth(v):
        return fa.scan(lambda c, _: (0.5 * c + 0.1 * fa.sin(c * w), None), v, None,
                       length=2)[0]

    # The branch depends on the carried counter (a data-dependent float predicate would
    # make finite differences straddle the branch boundary).
    x = fa.cond(i % 2 == 0, smooth, lambda v: v * 0.7 + w, x)
    return [i + 1, x]


@st.composite
def _while(draw):
    shape = draw(shapes(max_dims=2, max_side=3))
    n = np.asarray(draw(st.integers(0, 3)), dtype=I32)
    w, x = draw(floats(shape)), draw(floats(shape))
    i0 = np.asarray(0, dtype=I32)
    cond_prog = sp.trace_avals(lambda n, i, x: [i < n], [_aval((), I32), _aval((), I32),
                                                         _aval(shape)], "while_loop")
    body_prog = sp.trace_avals(while_body, [_aval(shape), _aval((), I32), _aval(shape)],
                               "while_loop")
    params = dict(cond_prog=cond_prog, body_prog=body_prog, n_cc=1, n_bc=1)
    return Sample((n, w, i0, x), params, diff=(1, 3), modes=("fwd",))


SAMPLES = {"scan": _scan, "cond": _cond, "while": _while}
