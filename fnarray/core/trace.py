"""The interpreter stack: traces, tracers, and ``bind``.

Each active transformation owns a ``MainTrace`` with a level; ``bind`` hands a primitive to
the highest-level trace among its arguments, and that trace's rule binds again on lower
levels.  With no tracer among the arguments — the common eager case — ``bind`` is a short
fast path: one kernel call and one ``Array`` construction.

The stack is per thread, so independent transformations in different threads never see
each other's tracers.
"""

from __future__ import annotations

import contextlib
import threading
import warnings

import numpy as np

from fnarray.core.array import Array, ArrayBase
from fnarray.core.shapes import ShapedArray, ShapeError


class UnexpectedTracerError(RuntimeError):
    """A traced value escaped the transformation that created it."""


class ConcretizationError(TypeError):
    """Python needed a concrete value (``if``, ``int()``, ...) but only a trace exists."""


class MainTrace:
    """One active transformation: its level, trace class and per-transform data."""

    __slots__ = ("level", "trace_type", "data", "alive", "name")

    def __init__(self, level: int, trace_type: type, name: str, data=None):
        self.level = level
        self.trace_type = trace_type
        self.name = name
        self.data = data
        self.alive = True

    def __repr__(self):
        return f"MainTrace({self.name}, level={self.level})"


class Trace:
    """How one transformation interprets primitives; subclasses fill in the rules."""

    __slots__ = ("main",)

    def __init__(self, main: MainTrace):
        self.main = main

    # Subclasses define ``pure(value)`` (embed an ``Array`` or lower-level tracer at this
    # level) and ``process_primitive(prim, tracers, params)``.

    def lift(self, value):
        return self.pure(value)

    def full_raise(self, value):
        if isinstance(value, Tracer):
            main = value._trace.main
            if main is self.main:
                return value
            if main.level < self.main.level:
                return self.lift(value)
            raise UnexpectedTracerError(
                f"a value traced by {main.name} (level {main.level}) met {self.main.name} "
                f"(level {self.main.level}) in the wrong order")
        return self.pure(value)


class Tracer(ArrayBase):
    """A value under transformation; it quacks like an ``Array``.

    Subclasses provide ``aval`` (a ``ShapedArray``) and, where a concrete value exists,
    ``concrete()`` so that Python control flow works (define-by-run).
    """

    __slots__ = ("_trace",)
    aval: ShapedArray

    @property
    def shape(self) -> tuple:
        return self.aval.shape

    @property
    def dtype(self):
        return self.aval.dtype

    @property
    def weak_type(self) -> bool:
        return self.aval.weak_type

    @property
    def device(self):
        return self.concrete().device

    def concrete(self, why: str = "a concrete value") -> Array:
        """The concrete value behind this tracer, for Python control flow; ``why`` names
        the Python operation that needs it (for the error message when there is none)."""
        raise ConcretizationError(
            f"{why}: this value is traced by {self._trace.main.name} and has no concrete value")

    def __bool__(self):
        return bool(self.concrete("bool() (e.g. `if x:` or `while x:`)"))

    def __int__(self):
        return int(self.concrete("int()"))

    def __float__(self):
        return float(self.concrete("float()"))

    def __complex__(self):
        return complex(self.concrete("complex()"))

    def __index__(self):
        return self.concrete("using the value as an index").__index__()

    def item(self, *args):
        return self.concrete(".item()").item(*args)

    def tolist(self):
        return self.concrete(".tolist()").tolist()

    def __array__(self, dtype=None, copy=None):
        return self.concrete("conversion to a NumPy array").__array__(dtype, copy)

    def __format__(self, spec):
        return format(self.concrete("formatting"), spec)

    def __repr__(self):
        return f"{type(self).__name__}<{self._trace.main.name}>({self.aval.str_short()})"


class PrimalTracer(Tracer):
    """A tracer wrapping a primal value (forward and reverse mode): its shape, dtype,
    device and concrete value are the primal's, so define-by-run control flow works."""

    __slots__ = ("primal",)

    @property
    def aval(self) -> ShapedArray:
        return self.primal.aval

    @property
    def device(self):
        return self.primal.device

    def concrete(self, why: str = "a concrete value"):
        p = self.primal
        return p.concrete(why) if isinstance(p, Tracer) else p


# --- the per-thread stack --------------------------------------------------------------

class _Stack(threading.local):
    def __init__(self):
        self.mains: list[MainTrace] = []


_stack = _Stack()
BASE_LEVEL = 1  # level 0 is reserved for the compat layer's global tape


@contextlib.contextmanager
def new_main(trace_type: type, name: str, data=None):
    """Push a new transformation level for the duration of the block."""
    mains = _stack.mains
    main = MainTrace(BASE_LEVEL + len(mains), trace_type, name, data)
    mains.append(main)
    try:
        yield main
    finally:
        mains.pop()
        main.alive = False


# --- floating-point special values ------------------------------------------------------
# exp overflowing to inf, sqrt of a negative number inside a ``where``, 0/0: these are
# results fnarray produces on purpose and, as JAX, without NumPy's RuntimeWarnings.  Wrapping
# every kernel in ``np.errstate`` would cost microseconds per op, so instead NumPy's
# floating-point warnings raised from fnarray's kernel modules become exceptions (a filter
# costs nothing until a special value appears) and ``bind`` re-runs that kernel (kernels are
# pure) under ``np.errstate(all="ignore")``.  A filter the user adds later takes precedence:
# "ignore" stays silent, "error" is caught and re-run the same way; only a later "always" or
# "default" filter lets NumPy's warning show.  Compiled (jit) programs run under
# ``quiet_fp_errors`` instead: they may reuse buffers, so they are never re-run.

FP_WARNING = r"(overflow|invalid value|divide by zero|underflow) encountered"
warnings.filterwarnings("error", message=FP_WARNING, category=RuntimeWarning,
                        module=r"fnarray\.(ops\.|backends\.|core\.trace$)")


def quiet_fp_errors():
    """A context in which NumPy kernels produce inf/nan without warnings."""
    return np.errstate(all="ignore")


def _impl_quietly(prim, xp, vals, params):
    with quiet_fp_errors():
        return prim.impl(xp, *vals, **params)


_KERNEL_FAILURES = (ValueError, IndexError, np.linalg.LinAlgError)
_KERNEL_SIGNALS = (RuntimeWarning, *_KERNEL_FAILURES)


def _kernel_signal(prim, dev, args, params, err):
    """The kernel raised ``err``: an intended inf/nan (the kernel is re-run quietly and its
    result returned) or a failure (raised again naming the op, shapes and dtypes)."""
    if isinstance(err, RuntimeWarning):
        try:
            return _impl_quietly(prim, dev.xp, [a._value for a in args], params)
        except _KERNEL_FAILURES as e:
            err = e
    raise _kernel_error(prim, args, params, err) from None


# --- bind ------------------------------------------------------------------------------
# Operands that are all exactly ``Array`` never involve a trace, whatever is active (a
# transformation sees only its own tracers), so they go straight to the kernel.  This is the
# hot path of every eager operation, and on tiny arrays building ``bind``'s argument tuple
# and keyword dict is much of its cost: one and two operands therefore go through
# ``bind_unary``/``bind_binary``, whose fixed signatures build neither, and the elementwise
# API functions call those directly.

_NO_PARAMS: dict = {}  # their default; never handed on to a trace (which may keep it)


def bind(prim, *args, **params):
    """Apply ``prim`` to ``args``: eagerly when no tracer is involved, else via its trace."""
    n = len(args)
    if n == 2:
        return bind_binary(prim, args[0], args[1], params)
    if n == 1:
        return bind_unary(prim, args[0], params)
    dev = None
    for a in args:
        if type(a) is not Array:
            return _bind_traced(prim, args, params)
        if a._device is not dev:
            if dev is not None:
                raise _mixed_devices(prim, args)
            dev = a._device
    try:
        out = prim.impl(dev.xp, *[a._value for a in args], **params)
    except _KERNEL_SIGNALS as e:
        out = _kernel_signal(prim, dev, args, params, e)
    if prim.multiple_results:
        return _arrays(out, dev)
    return Array(out, dev, any(a.weak_type for a in args) and _weak_result(prim, args, params))


def bind_unary(prim, x, params: dict = _NO_PARAMS):
    """``bind(prim, x, **params)`` through a fixed signature (see above)."""
    if type(x) is not Array:
        return _bind_traced(prim, (x,), params or {})
    dev = x._device
    try:
        out = prim.impl(dev.xp, x._value, **params)
    except _KERNEL_SIGNALS as e:
        out = _kernel_signal(prim, dev, (x,), params, e)
    if prim.multiple_results:
        return _arrays(out, dev)
    return Array(out, dev, x.weak_type and _weak_result(prim, (x,), params))


def bind_binary(prim, x, y, params: dict = _NO_PARAMS):
    """``bind(prim, x, y, **params)`` through a fixed signature (see above)."""
    if type(x) is not Array or type(y) is not Array:
        return _bind_traced(prim, (x, y), params or {})
    dev = x._device
    if y._device is not dev:
        raise _mixed_devices(prim, (x, y))
    try:
        out = prim.impl(dev.xp, x._value, y._value, **params)
    except _KERNEL_SIGNALS as e:
        out = _kernel_signal(prim, dev, (x, y), params, e)
    if prim.multiple_results:
        return _arrays(out, dev)
    if x.weak_type or y.weak_type:  # (a Python scalar operand: ``x + 1``) see _weak_result
        key = (prim, x._value.dtype, x.weak_type, y._value.dtype, y.weak_type)
        weak = _WEAK_RESULTS.get(key) if params is _NO_PARAMS else None
        if weak is None:
            weak = _weak_result(prim, (x, y), params)
            if params is _NO_PARAMS:
                _WEAK_RESULTS[key] = weak
        return Array(out, dev, weak)
    return Array(out, dev)


# (primitive, operand dtypes and weak flags, parameters) -> is the result weakly typed?
_WEAK_RESULTS: dict = {}


def _weak_result(prim, args, params) -> bool:
    """Whether ``prim``'s abstract rule makes its result weakly typed, asked only when an
    operand is weak: eager results carry the flag a traced program sees, so eager and jit
    promote alike (``float16_x * where(c, 1.0, 0.5)`` stays float16 in both).  Cached per
    signature; the flag depends on dtypes, weak flags and parameters, never on values."""
    try:
        key = (prim, tuple((a.dtype, a.weak_type) for a in args), tuple(params.items()))
        weak = _WEAK_RESULTS.get(key)
    except TypeError:  # unhashable parameters: ask the rule every time
        key, weak = None, None
    if weak is None:
        weak = bool(prim.abstract(*[a.aval for a in args], **params).weak_type)
        if key is not None and len(_WEAK_RESULTS) < 4096:
            _WEAK_RESULTS[key] = weak
    return weak


def _arrays(outs, dev) -> tuple:
    """A multiple-results kernel's buffers as ``Array``s."""
    return tuple(Array(o, dev) for o in outs)


def _bind_traced(prim, args, params):
    top = None
    for a in args:
        if isinstance(a, Tracer):
            main = a._trace.main
            if not main.alive:
                raise UnexpectedTracerError(
                    f"{prim.name}: an intermediate value from {main.name} leaked out of that "
                    f"transformation and was used after it finished. Return the value from "
                    f"the transformed function instead of storing it (e.g. in a global or "
                    f"closure) and using it later")
            if top is None or main.level > top.level:
                top = main
        elif not isinstance(a, Array):
            raise TypeError(f"{prim.name}: expected fnarray arrays, got {type(a).__name__}")
    if top is None:  # only Arrays; reached when the fast path saw a non-exact type
        return bind(prim, *[Array(a._value, a._device, a.weak_type) for a in args], **params)
    trace = top.trace_type(top)
    tracers = [trace.full_raise(a) for a in args]
    return trace.process_primitive(prim, tracers, params)


def _mixed_devices(prim, args):
    devs = sorted({str(a._device) for a in args})
    return ValueError(
        f"{prim.name}: operands are on different devices ({' and '.join(devs)}); move them "
        f"to one device first with fa.device_put(x, device) or x.to(device)")


def _kernel_error(prim, args, params, err):
    shapes = " and ".join(f"{a.dtype.name}{list(a.shape)}" for a in args)
    extra = f" with {params}" if params else ""
    cls = ShapeError if type(err) is ValueError else type(err)  # operands that do not fit
    return cls(f"{prim.name}: cannot apply to operands {shapes}{extra}: {err}")


def current_level() -> int:
    return BASE_LEVEL + len(_stack.mains) - 1
