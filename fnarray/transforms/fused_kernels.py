"""One compiled loop for a group of elementwise equations (the ``accel`` extra, numba).

NumPy runs each elementwise equation as its own pass over memory; a group of equations
over arrays of one shape (an optimizer's whole update of a parameter, 0-d operands such as
the learning rate broadcast) can instead run as a single loop that reads every input
element once, keeps the intermediates in registers and writes only the group's results.
This module turns such a group into the source of that loop, from the IR: each equation
becomes one scalar statement, in the same dtypes NumPy computes it in, so the loop gives
NumPy's values (to the rounding of the few functions numba and NumPy implement
differently, such as ``exp`` on float32; ``+ - * /`` and ``sqrt`` round the same), except
for the sign of a NaN result, which IEEE 754 leaves open (LLVM folds ``-x + 0`` to
``0 - x``, keeping ``x``'s NaN where NumPy's two passes negate it).  The source is compiled
by ``fnarray.backends.kernels.fusion`` (cached per source, on disk).

What a loop supports is a scalar form per primitive: the ufunc primitives by their ufunc
name, other primitives by the form they declare next to their other rules
(``buffers.declare_scalar_form``: ``select``, ``convert_element_type``); operands must share
the result's dtype (NumPy's own dtype rules then agree with the loop's), and every result
is cast to its declared dtype, so narrow integers wrap as in NumPy.  A group with anything
else keeps the NumPy path.

Aliasing: a loop first loads every input at an index, then computes, then stores every
result at that index, so a result may be written into the buffer of an input (a dead or
donated one, as the executor's buffer plan decides) without changing any value.
"""

from __future__ import annotations

import numpy as np

from fnarray.backends import accel
from fnarray.transforms.buffers import is_ufunc_call, scalar_form

_FLOAT, _INT, _BOOL = "f", "iu", "b"
_NUMBER = _FLOAT + _INT
_ANY = _NUMBER + _BOOL
_DTYPES = {np.dtype(t) for t in ("float32", "float64", "int8", "int16", "int32", "int64",
                                 "uint8", "uint16", "uint32", "uint64", "bool")}

# NumPy's rules: the first NaN wins, and of two equal values the second (x86 NumPy's
# ``maximum(-0.0, 0.0)`` is 0.0 and ``maximum(0.0, -0.0)`` is -0.0, whatever the layout)
_MAX = "({0} if {0} > {1} or {0} != {0} else {1})"
_MIN = "({0} if {0} < {1} or {0} != {0} else {1})"

# ufunc name -> (scalar template over operand names, dtype kinds its operands may have)
_UFUNCS: dict[str, tuple[str, str]] = {
    "add": ("{0} + {1}", _NUMBER), "subtract": ("{0} - {1}", _NUMBER),
    "multiply": ("{0} * {1}", _NUMBER), "divide": ("{0} / {1}", _FLOAT),
    "power": ("np.power({0}, {1})", _FLOAT), "negative": ("-{0}", _NUMBER),
    "maximum": (_MAX, _NUMBER), "minimum": (_MIN, _NUMBER),
    "equal": ("{0} == {1}", _ANY), "not_equal": ("{0} != {1}", _ANY),
    "less": ("{0} < {1}", _NUMBER), "less_equal": ("{0} <= {1}", _NUMBER),
    "greater": ("{0} > {1}", _NUMBER), "greater_equal": ("{0} >= {1}", _NUMBER),
    "logical_and": ("{0} and {1}", _BOOL), "logical_or": ("{0} or {1}", _BOOL),
    "logical_xor": ("{0} != {1}", _BOOL), "logical_not": ("not {0}", _BOOL),
    "bitwise_and": ("{0} & {1}", _INT + _BOOL), "bitwise_or": ("{0} | {1}", _INT + _BOOL),
    "bitwise_xor": ("{0} ^ {1}", _INT + _BOOL), "invert": ("~{0}", _INT),
    "abs": ("np.abs({0})", _NUMBER),
    "isnan": ("np.isnan({0})", _FLOAT), "isinf": ("np.isinf({0})", _FLOAT),
    "isfinite": ("np.isfinite({0})", _FLOAT),
    **{f: (f"np.{f}({{0}})", _FLOAT) for f in (
        "sqrt", "exp", "log", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh",
        "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "floor", "ceil", "trunc", "expm1",
        "log1p")},
}

# int64 arithmetic that wraps as NumPy's: numba emits signed integer operations as
# no-signed-wrap, so LLVM may assume an int64 sum or product never overflows (it folded
# ``x + 1 > x`` to True and ``abs(x * x)`` to ``x * x``); in uint64 the same bits wrap by
# definition.  (Narrower integers are widened to int64 by numba, where they cannot overflow.)
_WRAPPING = {"add": "np.uint64({0}) + np.uint64({1})",
             "subtract": "np.uint64({0}) - np.uint64({1})",
             "multiply": "np.uint64({0}) * np.uint64({1})",
             "negative": "np.uint64(0) - np.uint64({0})"}
_INT64 = np.dtype(np.int64)


def scalar_statement(eqn, ins: list[str]) -> str | None:
    """The scalar expression computing ``eqn`` from operand names ``ins``, in the dtypes
    NumPy computes it in, or None when the loop cannot reproduce NumPy's result."""
    if len(eqn.outvars) != 1 or eqn.prim.effectful:
        return None
    out = eqn.outvars[0].aval.dtype
    if out not in _DTYPES or any(v.aval.dtype not in _DTYPES for v in eqn.invars):
        return None
    if is_ufunc_call(eqn.prim, eqn.params):
        form = _UFUNCS.get(eqn.prim.ufunc)
        dtypes = {v.aval.dtype for v in eqn.invars}
        if form is None or len(dtypes) != 1 or dtypes.pop().kind not in form[1]:
            return None
        if out.kind != "b" and out != eqn.invars[0].aval.dtype:
            return None  # e.g. an integer true divide: NumPy's result has another dtype
        wrapping = _WRAPPING.get(eqn.prim.ufunc) if out == _INT64 else None
        expr = (wrapping or form[0]).format(*ins)
    else:
        rule = scalar_form(eqn.prim)
        expr = rule(eqn, ins) if rule is not None else None
        if expr is None:
            return None
    return expr if out.kind == "b" else f"np.{out.name}({expr})"


class FusedLoop:
    """A group of elementwise equations over arrays of one shape, as one compiled loop.

    ``arrays`` are the group's array inputs, ``scalars`` its 0-d inputs, ``results`` the
    values it hands out and ``held[k]`` the input (one of ``arrays``) whose buffer receives
    ``results[k]``, or None for a new buffer, all ``Var``s; ``source`` defines
    ``kernel(*arrays, *scalars, *new_buffers)`` over flat C-contiguous arrays (scalars as
    NumPy scalars).

    ``size`` is the elements of each array: the compiled loop runs when compiled kernels
    run for arrays of that size (``accel.kernels``; small arrays stay on NumPy, and a
    program on small arrays alone never imports numba nor compiles).  Loops of one
    structure share their source, hence one compiled kernel, whatever their shape."""

    def __init__(self, arrays: list, scalars: list, results: list, held: list, source: str,
                 size: int):
        self.arrays, self.scalars, self.results, self.held = arrays, scalars, results, held
        self.source, self.size = source, size
        self._kernel = None

    def kernel(self, xp):
        """The compiled loop when compiled kernels should run for this size now (compiling
        it on first use), else None.  Below the size threshold it still runs compiled when
        its source is compiled in this process already (by a larger group of the same
        structure: an optimizer's update of a model's small parameters shares the large
        ones' loop), as one call costs less than NumPy's call per equation (the tutorial
        ConvNet's Adam step: seven small parameters, about ninety NumPy calls); nothing is
        imported or compiled for it."""
        fusion = accel.kernels("fusion", xp, self.size)
        if fusion is None:
            fusion = accel.loaded("fusion", xp)
            return None if fusion is None else fusion.loaded_loop(self.source)
        if self._kernel is None:
            self._kernel = fusion.loop(self.source)
        return self._kernel


def fuse(eqns: list, results: list, into: dict) -> FusedLoop | None:
    """The loop computing ``results`` (values produced by ``eqns``, all of one shape) from
    the equations ``eqns`` (in program order), or None when an equation has no scalar form
    or an operand is neither of the group's shape nor 0-d.  ``into`` maps a result's id to
    the input whose (dead or donated) buffer receives it.

    A result written over an input is stored through that input's own argument: the loop
    then provably reads and writes one index per step, and LLVM vectorizes it (given two
    arguments that happen to be one buffer, it must assume overlap and runs scalar code,
    measured 4x slower on Adam)."""
    shape = tuple(eqns[0].outvars[0].aval.shape)
    local: dict[int, str] = {}
    arrays, scalars, body = [], [], []

    def operand(v) -> str | None:
        if id(v) not in local:
            if tuple(v.aval.shape) == shape:
                local[id(v)] = f"a{len(arrays)}"
                arrays.append(v)
            elif not v.aval.shape:
                local[id(v)] = f"s{len(scalars)}"
                scalars.append(v)
            else:
                return None
        return local[id(v)]

    for e in eqns:
        ins = [operand(v) for v in e.invars]
        if None in ins or tuple(e.outvars[0].aval.shape) != shape:
            return None
        stmt = scalar_statement(e, ins)
        if stmt is None:
            return None
        local[id(e.outvars[0])] = f"t{len(body)}"
        body.append(f"        t{len(body)} = {stmt}")
    if not arrays or not results:
        return None
    position = {id(v): k for k, v in enumerate(arrays)}
    held = [into.get(id(v)) for v in results]
    held = [h if h is not None and id(h) in position else None for h in held]
    fresh = [v for v, h in zip(results, held) if h is None]
    params = [f"i{k}" for k in range(len(arrays))] + [f"s{k}" for k in range(len(scalars))]
    params += [f"o{k}" for k in range(len(fresh))]
    lines = [f"def kernel({', '.join(params)}):",
             "    for j in range(i0.shape[0]):"]
    lines += [f"        a{k} = i{k}[j]" for k in range(len(arrays))]  # every load first
    lines += body
    stores = iter(range(len(fresh)))
    lines += [f"        {'o%d' % next(stores) if h is None else 'i%d' % position[id(h)]}[j] = "
              f"{local[id(v)]}" for v, h in zip(results, held)]
    size = 1
    for d in shape:
        size *= d
    return FusedLoop(arrays, scalars, list(results), held, "\n".join(lines) + "\n", size)


def contiguous(buf: str, indent: str) -> list[str]:
    """Lines rebinding ``buf`` to a C-contiguous copy of itself unless it is one."""
    return [f"{indent}if not {buf}.flags.c_contiguous:",
            f"{indent}    {buf} = xp.ascontiguousarray({buf})"]


def call_lines(env: dict, name, key: str, loop: FusedLoop, fallback: list[str], bind: dict,
               spare: dict) -> list[str]:
    """Generated lines (in a function taking ``xp``) running ``loop`` as one compiled kernel
    when compiled kernels run for its size, else the ``fallback`` lines.

    ``name(v)`` names a value's buffer and ``env`` receives the objects the lines use
    (``loop`` under ``key``).  A result ``loop.held`` puts over an input is stored through
    that input; another goes into the dead buffer named ``spare[id(result)]`` when there is
    one and it is C-contiguous, else into a new buffer.  Both branches bind each result to
    the name ``bind[id(result)]``."""
    env[key] = loop
    lines = [f"    fk = {key}.kernel(xp)", "    if fk is not None:"]
    for v in loop.arrays:  # the loop runs over flat views
        lines += contiguous(name(v), "        ")
    call = [f"{name(v)}.reshape(-1)" for v in loop.arrays]
    call += [f"{name(v)}[()]" for v in loop.scalars]
    bufs = []
    for v, held in zip(loop.results, loop.held):
        if held is not None:
            bufs.append(name(held))
            continue
        env[f"d{name(v)}"] = v.aval.dtype
        new = f"xp.empty({tuple(v.aval.shape)!r}, d{name(v)})"
        dead = spare.get(id(v))
        lines.append(f"        f{name(v)} = " + (new if dead is None else
                     f"{dead} if {dead}.flags.c_contiguous else {new}"))
        call.append(f"f{name(v)}.reshape(-1)")
        bufs.append(f"f{name(v)}")
    lines.append(f"        fk({', '.join(call)})")
    lines += [f"        {bind[id(v)]} = {buf}" for v, buf in zip(loop.results, bufs)
              if bind[id(v)] != buf]
    lines.append("    else:")
    return lines + ["    " + line for line in fallback]
