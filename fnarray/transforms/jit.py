"""``jit``: trace once per input signature, optimise, compile, cache, execute.

The signature is the pytree structure of the arguments plus, for every array leaf, its
shape, dtype, weak type and device, plus the values of the static arguments.  A call with
a known signature skips tracing entirely and runs the compiled straight-line code on the
raw buffers.

Python side effects in the jitted function (printing, appending to a list, reading a
global) happen only while tracing, i.e. on the first call for each signature.  Under other
transformations (``grad(jit(f))``, ``vmap(jit(f))``) the cached program is evaluated
primitive by primitive, so those transformations see every equation.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from typing import Callable, Sequence

from fnarray.core import tree as tree_util
from fnarray.core.array import Array, ArrayBase
from fnarray.core.device import CPU
from fnarray.core.trace import Tracer, quiet_fp_errors
from fnarray.transforms import ir, passes
from fnarray.transforms.disable_jit import jit_disabled
from fnarray.transforms.executor import compile_program
from fnarray.transforms.out_builder import output_builder


class _Compiled:
    """One cached program: its compiled runs, its constants, and per call what is fixed by
    the signature (the donated leaf positions, the output builder).

    The plain run and the donating run are each compiled on first use: a function whose
    donated buffers are always free compiles only the donating one, and one never given
    donations (or on a device that cannot reuse them) only the plain one."""

    __slots__ = ("program", "out_tree", "_run", "_run_donating", "const_bufs", "device",
                 "donated", "build")

    def __init__(self, program, out_tree, device, donated: frozenset):
        self.program = program
        self.out_tree = out_tree
        self.device = device
        self.const_bufs = [c._value for c in program.consts]
        self._run = self._run_donating = None
        # Only host buffers are reused; elsewhere a donating call runs the plain program.
        self.donated = tuple(sorted(donated)) if device.platform == "cpu" else ()
        self.build = output_builder(out_tree, device)

    @property
    def run(self):
        """``run(*consts, *buffers)``: the compiled program, writing no input buffer."""
        if self._run is None:
            self._run = compile_program(self.program, self.device.xp)
        return self._run

    @property
    def run_donating(self):
        """The compiled program that may write into the donated inputs' buffers (None
        when nothing is donated)."""
        if self._run_donating is None and self.donated:
            self._run_donating = compile_program(self.program, self.device.xp,
                                                 frozenset(self.donated))
        return self._run_donating


class DonatedBuffer:
    """Stands in for the buffer of an array donated to a jitted call."""

    __slots__ = ()

    def __getattr__(self, name):
        raise RuntimeError("this array was donated to a jit-compiled function "
                           "(donate_argnums) and its buffer was reused; use the function's "
                           "outputs instead of the donated input")


_DONATED = DonatedBuffer()
_NO_STATIC: frozenset = frozenset()


class Jitted:
    """A jit-compiled function; call it like the original."""

    def __init__(self, fun: Callable, static_argnums=(), static_argnames=(), donate_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.static_argnums, self.static_argnames = _static_args(
            fun, _as_tuple(static_argnums), _as_tuple(static_argnames))
        self.donate_argnums = _as_tuple(donate_argnums)
        self._cache: dict = {}
        self._flat_trees: dict = {}
        # The common call: only positional concrete ``Array``s, no static arguments.  Its
        # cache key is fixed by the leaves' (shape, dtype, weak type, device) alone (the
        # structure follows from the arity), so such calls look their entry up by that
        # tuple directly (``_cache`` holds the same entries under their full keys).
        self._plain = not (self.static_argnums or self.static_argnames)
        self._by_avals: dict = {}
        self.trace_count = 0
        #: Set by a caller that itself establishes, before every call, what ``_execute``
        #: would check of the donated arguments (nothing else refers to them or their
        #: buffers, which own writable memory): the per-call check is then skipped.
        self.donation_checked = False

    def __get__(self, obj, objtype=None):
        """As a method decorator, bind the instance as the first argument (``self`` is
        then argument 0, e.g. for ``static_argnums=0``), as a plain function would."""
        return self if obj is None else types.MethodType(self, obj)

    def _cache_size(self) -> int:
        return len(self._cache)

    def _split(self, args, kwargs):
        if not (self.static_argnums or self.static_argnames):  # the common case, per call
            return [], _NO_STATIC, args, kwargs
        nargs = len(args)
        static_pos = {i % nargs for i in self.static_argnums if -nargs <= i < nargs}
        static = []
        for i in sorted(static_pos):
            static.append(("pos", i, args[i]))
        for k in self.static_argnames:
            if k in kwargs:
                static.append(("kw", k, kwargs[k]))
        for _, where, value in static:
            try:
                hash(value)
            except TypeError:
                raise TypeError(
                    f"jit: static argument {where!r} of type {type(value).__name__} is not "
                    f"hashable, so it cannot be part of the cache key; pass a hashable value "
                    f"(e.g. a tuple instead of a list) or make the argument non-static") from None
        dyn_args = tuple(a for i, a in enumerate(args) if i not in static_pos)
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        return static, static_pos, dyn_args, dyn_kwargs

    def _leaves(self, dyn_args, dyn_kwargs):
        if not dyn_kwargs and all(type(x) is Array for x in dyn_args):
            # Positional Arrays flatten to themselves: one tree definition per arity.
            in_tree = self._flat_trees.get(len(dyn_args))
            if in_tree is None:
                in_tree = self._flat_trees[len(dyn_args)] = tree_util.flatten((dyn_args, {}))[1]
            return list(dyn_args), in_tree
        from fnarray import api as fa
        leaves, in_tree = tree_util.flatten((dyn_args, dyn_kwargs))
        out = []
        for x in leaves:
            if isinstance(x, ArrayBase):
                out.append(x)
            elif isinstance(x, (bool, int, float, complex)) or hasattr(x, "__array__"):
                out.append(fa.asarray(x))
            else:
                raise TypeError(
                    f"jit: argument leaf of type {type(x).__name__} is not an array; mark the "
                    f"argument static with static_argnums=/static_argnames=")
        return out, in_tree

    def _signature(self, args, kwargs):
        static, static_pos, dyn_args, dyn_kwargs = self._split(args, kwargs)
        leaves, in_tree = self._leaves(dyn_args, dyn_kwargs)
        sig = tuple([(x.shape, x.dtype, x.weak_type, x.device) for x in leaves])
        key = (in_tree, sig, tuple((kind, w, v) for kind, w, v in static))
        return key, leaves, in_tree, static, static_pos, len(args)

    def _compile(self, key, leaves, in_tree, static, static_pos, nargs):
        static_pos_vals = {w: v for kind, w, v in static if kind == "pos"}
        static_kw_vals = {w: v for kind, w, v in static if kind == "kw"}
        out_store: list = []

        def flat_fun(*flat):
            dyn_args, dyn_kwargs = tree_util.unflatten(in_tree, flat)
            it = iter(dyn_args)
            full = [static_pos_vals[i] if i in static_pos else next(it) for i in range(nargs)]
            out = self.fun(*full, **dyn_kwargs, **static_kw_vals)
            o_leaves, o_tree = tree_util.flatten(out)
            out_store.append(o_tree)
            return o_leaves

        self.trace_count += 1
        prog = ir.trace_flat(flat_fun, [(x.aval, x.device) for x in leaves], name="jit")
        prog = passes.optimize(prog)
        device = leaves[0].device if leaves else _default_device()
        mask = self._donated_leaf_mask(in_tree, static_pos, nargs)
        donated = frozenset(i for i, leaf in enumerate(mask) if leaf)
        entry = _Compiled(prog, out_store[-1], device, donated)
        self._cache[key] = entry
        return entry

    def _donated_leaf_mask(self, in_tree, static_pos, nargs):
        """Per flat leaf: does it belong to a donated positional argument?"""
        donate = {i % nargs for i in self.donate_argnums if -nargs <= i < nargs} if nargs else set()
        dyn_positions = [i for i in range(nargs) if i not in static_pos]
        mask = []
        args_def = in_tree.children[0]
        for pos, child in zip(dyn_positions, args_def.children):
            mask += [pos in donate] * child.num_leaves
        mask += [False] * in_tree.children[1].num_leaves
        return mask

    def lower(self, *args, **kwargs) -> ir.Program:
        """The optimised program for these arguments (traced if not cached)."""
        key, leaves, in_tree, static, static_pos, nargs = self._signature(args, kwargs)
        entry = self._cache.get(key) or self._compile(key, leaves, in_tree, static, static_pos, nargs)
        return entry.program

    def __call__(self, *args, **kwargs):
        if jit_disabled():
            return self.fun(*args, **kwargs)
        if self._plain and not kwargs:
            avals = tuple([(x._value.shape, x._value.dtype, x.weak_type, x._device)
                           for x in args if type(x) is Array])
            if len(avals) == len(args):  # every argument a concrete Array
                entry = self._by_avals.get(avals)
                if entry is not None:
                    with quiet_fp_errors():  # intended inf/nan warn no more than eagerly
                        bufs = _execute(entry, args, self.donation_checked)
                    return entry.build(bufs)
        key, leaves, in_tree, static, static_pos, nargs = self._signature(args, kwargs)
        entry = self._cache.get(key)
        if entry is None:
            try:
                entry = self._compile(key, leaves, in_tree, static, static_pos, nargs)
            except ir.EscapedTracer:
                # The function closes over a value traced by an enclosing transformation;
                # run it directly so that transformation sees every operation.
                return self.fun(*args, **kwargs)
        if any(isinstance(x, Tracer) for x in leaves):
            outs = ir.eval_program(entry.program, leaves)
            return tree_util.unflatten(entry.out_tree, outs)
        if self._plain and not kwargs and all(type(x) is Array for x in args):
            self._by_avals[key[1]] = entry
        with quiet_fp_errors():  # intended inf/nan warn no more than eagerly (trace.py)
            bufs = _execute(entry, leaves, self.donation_checked)
        return entry.build(bufs)


def _execute(entry: _Compiled, leaves, checked: bool = False) -> list:
    """Run ``entry`` on the buffers of the concrete ``leaves``; the raw result buffers.
    ``checked``: the caller has established that the donated leaves may be reused."""
    donated = entry.donated
    # Reuse a donated buffer only if nothing else can see it: it owns its (writable)
    # memory, no view, NumPy alias or second Array refers to it, and the same Array is not
    # also passed as another argument or leaf (``f(x, x)``, an EMA tree sharing arrays
    # with the donated params): donation must never change a result.
    if donated and (checked or (all([_unaliased(leaves[i]) for i in donated])
                                and _donated_leaves_distinct(leaves, donated))):
        run = entry._run_donating or entry.run_donating  # compiled before any is taken
        bufs = [x._value for x in leaves]
        for i in donated:
            leaves[i]._value = _DONATED
        return run(*entry.const_bufs, *bufs)
    return (entry._run or entry.run)(*entry.const_bufs, *[x._value for x in leaves])


def _buffer_refs(holder) -> int:
    return sys.getrefcount(holder._value)


def _unaliased(x) -> bool:
    """True if ``x``'s buffer owns its memory, may be written (a read-only buffer, say
    one a user froze, must stay as it is; 0-d buffers, which NumPy returns as read-only
    scalars, are never written), and only ``x`` refers to it."""
    flags = getattr(x._value, "flags", None)
    owns = getattr(flags, "owndata", False) and (getattr(flags, "writeable", False)
                                                 or not x._value.ndim)
    del flags
    return owns and _buffer_refs(x) <= _BASELINE_REFS


def _donated_leaves_distinct(leaves, donated: tuple) -> bool:
    """True if no donated leaf (positions ``donated``) appears twice among ``leaves``
    (views and second Arrays on one buffer are caught by ``_unaliased``; this catches one
    Array passed twice)."""
    ids = [id(x) for x in leaves]
    if len(set(ids)) == len(ids):
        return True
    return all(ids.count(ids[i]) == 1 for i in donated)


def _default_device():
    from fnarray.core.device import default
    return default()


def _static_args(fun, argnums: tuple, argnames: tuple) -> tuple[tuple, tuple]:
    """Complete ``static_argnums`` and ``static_argnames`` from each other through
    ``fun``'s signature, so a static parameter is static whether it is passed by position
    or by keyword (as JAX does)."""
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):  # builtins and other callables without a signature
        return argnums, argnames
    positional = [p for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    fixed_arity = not any(p.kind is p.VAR_POSITIONAL for p in params)
    # Negative indices count from the end of the signature, not of one call's arguments.
    nums = [i + len(positional) if i < 0 and fixed_arity else i for i in argnums]
    names = list(argnames)
    for j in nums:
        if (0 <= j < len(positional) and positional[j].kind is positional[j].POSITIONAL_OR_KEYWORD
                and positional[j].name not in names):
            names.append(positional[j].name)
    for j, p in enumerate(positional):
        if p.name in argnames and p.kind is p.POSITIONAL_OR_KEYWORD and j not in nums:
            nums.append(j)
    return tuple(nums), tuple(names)


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    if isinstance(x, (int, str)):
        return (x,)
    return tuple(x)


def jit(fun: Callable | None = None, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = (), donate_argnums: int | Sequence[int] = ()):
    """Compile ``fun``: trace once per input signature, optimise, cache, execute.

    Usable as ``jit(f, ...)`` or as a decorator ``@jit`` / ``@partial(jit, ...)``.
    """
    if fun is None:
        return lambda f: Jitted(f, static_argnums, static_argnames, donate_argnums)
    return Jitted(fun, static_argnums, static_argnames, donate_argnums)


_BASELINE_REFS = _buffer_refs(Array(CPU.xp.empty(1)))
