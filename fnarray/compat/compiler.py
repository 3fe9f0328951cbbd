"""``fnarray.compat.compile``: ``torch.compile``'s face over fnarray's staged programs.

``compile(model)`` returns a module (or function) that runs the forward pass as one
compiled program and records it on the tape as **one node** whose backward is one compiled
program (``fnarray.transforms.staged``): no per-primitive Python dispatch, no per-primitive
tape nodes, and the forward keeps exactly the residuals the backward reads.

* The forward is traced through ``nn.functional_call`` with the module's parameters and
  buffers as inputs, once per input signature (shapes, dtypes, which tensors require
  grad, training mode, non-tensor arguments, grad mode); a new signature compiles anew.
* Randomness (dropout) draws from the global generator exactly as eager code does: its
  state goes in as an input and comes back as an output, so compiled and eager runs give
  the same numbers from the same seed.
* Buffers the forward rebinds (BatchNorm's running statistics in training mode) come out of
  the program as extra outputs and are written back to the module, as eager code does.
* Code that cannot be traced — Python control flow on tensor values — runs eagerly instead,
  after one warning that names the line.
* Inside ``torch.autocast`` the call runs eagerly, so the region's casts apply exactly as
  in eager code (autocast acts on the tape's recorded operations, which a staged program
  does not go through).
"""

from __future__ import annotations

import warnings
from operator import is_

from fnarray.compat import grad_mode
from fnarray.compat import random as compat_random
from fnarray.compat import tape
from fnarray.compat.defaults import default_float
from fnarray.compat.tensor import Tensor
from fnarray.core import tree as tree_util
from fnarray.core.array import Array
from fnarray.core.trace import ConcretizationError
from fnarray.transforms.ir import EscapedTracer
from fnarray.nn.functional_call import functional_call
from fnarray.nn.module import SUBSTITUTION, Module
from fnarray.transforms.staged import Staged, staged_call

_EAGER = object()  # cache marker: this signature runs eagerly


class _Compiler:
    """Per-signature staged programs of ``fn(*args)`` with ``module``'s parameters and
    buffers as extra inputs (``module`` is None for plain functions)."""

    def __init__(self, fn, module: Module | None, name: str):
        self.fn, self.module, self.name = fn, module, name
        self.cache: dict = {}
        self.warned = False
        self.walk = None  # (submodules, names, handles, their tables' entries) of state()
        # arity -> (structure, leaf kinds) of ``n`` positional tensors
        self.flat_trees: dict = {}

    def state(self) -> tuple[list, list, tuple]:
        """Qualified names and handles of the module's parameters and buffers, and every
        submodule's training flag (read on every call: an optimizer or ``load_state_dict``
        may have rebound them, ``train()``/``eval()`` flipped a flag)."""
        module = self.module
        if module is None:
            return [], [], ()
        cls = type(module)
        if (cls.named_parameters is not Module.named_parameters
                or cls.named_buffers is not Module.named_buffers
                or cls.named_modules is not Module.named_modules):
            named = list(module.named_parameters()) + list(module.named_buffers())
            return [n for n, _ in named], [t for _, t in named], _training(module)
        walk = self.walk
        if walk is not None:
            # The last walk's result stands while every table it read holds the same
            # entries (compared by identity; the walk keeps them alive, so no id is reused).
            mods, names, handles, snapshot = walk
            now = _tables(mods)
            if len(now) == len(snapshot) and all(map(is_, now, snapshot)):
                return names, handles, tuple([m.training for m in mods])
        # One walk over the submodules gives what named_parameters(), named_buffers() and
        # modules() would give in three (same order, shared tensors listed once).
        named = list(module.named_modules())
        names, handles = [], []
        for table in ("_parameters", "_buffers"):
            seen = set()
            for prefix, mod in named:
                for name, value in mod.__dict__[table].items():
                    if value is not None and id(value) not in seen:
                        seen.add(id(value))
                        names.append(prefix + "." + name if prefix else name)
                        handles.append(value)
        mods = [m for _, m in named]
        self.walk = (mods, names, handles, _tables(mods))
        return names, handles, tuple([m.training for m in mods])

    def __call__(self, *args, **kwargs):
        if tape._op.autocast is not None:
            return self.fn(*args, **kwargs)
        names, handles, training = self.state()
        tensor_t = Tensor
        if not kwargs and all([isinstance(x, tensor_t) for x in args]):
            # Tensors only, positionally (the usual ``model(x)``): the structure is known
            # by the arity.
            flat = self.flat_trees.get(len(args))
            if flat is None:
                flat = self.flat_trees[len(args)] = (tree_util.flatten(
                    (args, {}), is_leaf=_is_tensor)[1], (True,) * len(args))
            in_tree, is_tensor = flat
            tensors, statics = list(args), ()
        else:
            # Tensors stay leaves (they are pytree nodes around their arrays).
            leaves, in_tree = tree_util.flatten((args, kwargs), is_leaf=_is_tensor)
            is_tensor = tuple([isinstance(x, (Tensor, Array)) for x in leaves])
            tensors = [x for x, t in zip(leaves, is_tensor) if t]
            statics = tuple((i, x) for i, (x, t) in enumerate(zip(leaves, is_tensor))
                            if not t)
        inputs = handles + tensors
        if grad_mode._state.enabled:
            diff = tuple([isinstance(x, tensor_t) and x._node is not None for x in inputs])
        else:
            diff = (False,) * len(inputs)
        values = [x._value if isinstance(x, tensor_t) else x for x in inputs]  # (``_raw``)
        try:
            key = (in_tree, is_tensor, _hashable(statics), diff, training,
                   tuple([(v._value.shape, v._value.dtype) if type(v) is Array
                          else (v.shape, v.dtype) for v in values]), default_float())
        except TypeError:  # unhashable non-tensor arguments: no signature to cache under
            return self.fn(*args, **kwargs)
        staged = self.cache.get(key)
        if staged is None:
            staged = self.cache[key] = self._stage(names, inputs, in_tree, is_tensor, statics,
                                                   diff)
        if staged is _EAGER:
            return self.fn(*args, **kwargs)
        return self._run(staged, inputs, values, any(diff))

    def _stage(self, names, inputs, in_tree, is_tensor, statics, diff):
        n_state = len(names)
        owners = _owners(self.module)
        static_at = dict(statics)
        updates: list = []  # (module, attribute) of each buffer the forward rebinds

        def pure(rng_key, *flat):
            state, tensors = flat[:n_state], iter(flat[n_state:])
            leaves = [next(tensors) if t else static_at[i] for i, t in enumerate(is_tensor)]
            args, kwargs = tree_util.unflatten(in_tree, leaves)
            generator = compat_random.default_generator
            saved = generator.get_state()
            generator.set_state(rng_key)
            try:
                if self.module is None:
                    out, rebound = self.fn(*args, **kwargs), []
                else:
                    out, rebound = _call_module(self.module, names, state, args, kwargs, owners)
                new_key = generator.get_state()
            finally:
                generator.set_state(saved)
            out_leaves, out_tree = tree_util.flatten(out)
            out_trees.append(out_tree)
            updates[:] = [owner for owner, _ in rebound]
            # The generator's new key is an output only if the forward drew from it: a
            # deterministic forward's program has no key output (nothing to write back,
            # and no cotangent slot for the backward walk to fill).
            drew[:] = [new_key is not rng_key]
            return [_raw(o) for o in out_leaves] + [new_key] * drew[0] + \
                [_raw(v) for _, v in rebound]

        out_trees: list = []
        drew: list = []
        rng = _rng_state()
        avals = [(rng.aval, rng.device)] + [(_raw(x).aval, _raw(x).device) for x in inputs]
        try:
            with grad_mode.no_grad():
                staged = Staged(pure, avals, (False,) + diff, name=self.name)
        except ConcretizationError as e:
            return self._fall_back(str(e).splitlines()[0])
        except EscapedTracer:
            # A compat tensor the function does not take as an argument (closed over, or
            # made by a factory inside it) can change in place between calls and may carry
            # a gradient history, so it is never frozen into the program as a constant.
            return self._fall_back(
                "it reads a tensor it does not take as an argument (closed over, or made "
                "inside it, e.g. torch.zeros); pass that tensor as an argument, or compile "
                "the module that owns it")
        staged.out_tree = out_trees[-1]
        staged.buffer_updates = list(updates)
        staged.draws = drew[0]
        return staged

    def _fall_back(self, why: str):
        if not self.warned:
            self.warned = True
            warnings.warn(f"fnarray.compat.compile: {self.name} cannot be compiled ({why}); "
                          f"it runs eagerly instead",
                          stacklevel=6 if self.module is not None else 5)  # the user's call
        return _EAGER

    def _run(self, staged: Staged, inputs: list, values: list, record: bool):
        rng = _rng_state()
        vals = [rng, *values]
        if record:  # one node on the tape; its backward is the compiled backward program
            if (all([type(v) is Array for v in vals])
                    and staged.signature[0] == (rng._value.shape, rng._value.dtype)):
                # concrete values of the cached signature (the key holds the inputs'
                # shapes and dtypes, not the generator's): recorded directly
                outs = list(tape.record_staged(staged_call, staged, [rng, *inputs], vals))
            else:
                outs = list(staged_call.bind(rng, *inputs, staged=staged))
        else:
            outs = [Tensor(o) for o in staged.plain(vals)]
        out_tree = staged.out_tree
        n = out_tree.num_leaves
        if staged.draws:
            compat_random.default_generator.set_state(_raw(outs[n]))
        if staged.buffer_updates:
            # Buffers the forward rebinds (running statistics) are written back as eager
            # code writes them: new values without a gradient history.
            for (module, attr), value in zip(staged.buffer_updates, outs[n + staged.draws:]):
                setattr(module, attr, _raw(value))
        if out_tree is tree_util.LEAF:  # one tensor (the usual module output)
            return outs[0]
        return tree_util.unflatten(out_tree, outs[:n])


def _is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def _owners(module) -> dict:
    """``{qualified buffer name: (submodule, attribute)}`` (shared buffers under every name)."""
    if module is None:
        return {}
    return {(prefix + "." if prefix else "") + name: (mod, name)
            for prefix, mod in module.named_modules(remove_duplicate=False)
            for name in mod.__dict__["_buffers"]}


def _call_module(module, names, state, args, kwargs, owners):
    """``module(*args, **kwargs)`` through ``functional_call`` with ``state`` for ``names``;
    returns the output and ``[((submodule, attribute), new value)]`` for every buffer the
    forward rebound.  functional_call keeps rebound buffers in its per-call table, which a
    forward hook reads while the call is still in progress."""
    tables = []
    handle = module.register_forward_hook(
        lambda mod, a, out: tables.append(SUBSTITUTION.stack[-1]))
    try:
        out = functional_call(module, dict(zip(names, state)), args, kwargs)
    finally:
        handle.remove()
    given = dict(zip(names, state))
    rebound, seen = [], set()
    for name, (mod, attr) in owners.items():
        value = tables[-1].get(id(mod), {}).get(attr) if tables else None
        if value is not None and value is not given.get(name) and (id(mod), attr) not in seen:
            seen.add((id(mod), attr))
            rebound.append(((mod, attr), value))
    return out, rebound


def _raw(x):
    return x.array if isinstance(x, Tensor) else x


def _rng_state():
    """The global generator's key, created as its first draw would create it."""
    generator = compat_random.default_generator
    if generator.get_state() is None:
        from fnarray.api import random as fr
        generator.set_state(fr.key(generator.initial_seed()))
    return generator.get_state()


def _tables(mods: list) -> list:
    """What ``state()``'s walk over ``mods`` reads, flat: each submodule's parameter,
    buffer and child tables, their sizes, keys and values."""
    out: list = []
    for mod in mods:
        d = mod.__dict__
        p, b, m = d["_parameters"], d["_buffers"], d["_modules"]
        out += (p, len(p), *p, *p.values(), b, len(b), *b, *b.values(),
                m, len(m), *m, *m.values())
    return out


def _training(module) -> tuple:
    return () if module is None else tuple(m.training for m in module.modules())


def _hashable(statics: tuple) -> tuple:
    hash(statics)
    return statics


class CompiledModule(Module):
    """What ``compile(module)`` returns: shares the original's parameters (``_orig_mod``,
    as in PyTorch) and runs its forward through the compiled programs."""

    def __init__(self, module: Module):
        super().__init__()
        self._orig_mod = module
        object.__setattr__(self, "_compiler",
                           _Compiler(module, module, type(module).__name__ + ".forward"))

    def forward(self, *args, **kwargs):
        return self._compiler(*args, **kwargs)


def compile(model=None, *, fullgraph: bool = False, dynamic=None, backend="inductor",  # noqa: A001
            mode=None, options=None, disable: bool = False):
    """Compile a module or function (``torch.compile``'s signature; ``backend``, ``mode``,
    ``dynamic`` and ``options`` are accepted and ignored: there is one backend).  Without
    ``model``, returns a decorator."""
    if model is None:
        return lambda m: compile(m, fullgraph=fullgraph, dynamic=dynamic, backend=backend,
                                 mode=mode, options=options, disable=disable)
    if disable:
        return model
    if isinstance(model, Module):
        return CompiledModule(model)
    if not callable(model):
        raise TypeError(f"compile: expected a Module or a function, got {type(model).__name__}")
    compiler = _Compiler(model, None, getattr(model, "__qualname__", repr(model)))

    def compiled(*args, **kwargs):
        return compiler(*args, **kwargs)

    compiled.__wrapped__ = model
    compiled.__doc__ = model.__doc__
    return compiled
