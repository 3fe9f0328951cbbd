"""Fused multi-tensor optimizer steps: a parameter group's whole update as one jitted program.

Run eagerly, an Adam step is ~13 elementwise operations per parameter, each a Python
dispatch, a fresh full-size output and a pass over memory.  ``FusedStep`` traces the
group's functional update (``optim.functional``) once per options and parameter signature
and runs it with ``fa.jit``: one call for the group, intermediates written into dead buffers
(``out=``), and every full-size buffer whose old value is dead donated: the new moments and
parameter values may then be written where the old ones were (where each lands is the buffer
plan's choice: where the ``accel`` extra's compiled loops run, a step allocates nothing
proportional to the model; plain NumPy still makes temporaries, such as the scaled
gradients, up to about one model's size).  A buffer is donated only when
nothing but the optimizer (for a state) or the parameter tensor (for a parameter value) can
see it — no state read through ``optimizer.state``, ``state_dict()`` tensor, detached alias,
NumPy view, saved autograd residual or user variable refers to its array or to its memory —
so donation never changes anything a user can observe; otherwise that buffer is left as it
is and its new value freshly allocated.  On NumPy, a large parameter's update (Adam, AdamW,
RMSprop: many passes per buffer) runs cache-blocked, all operations on one 64K-element block
before the next (``transforms/blocked.py``), with the same bits as the whole-array update.

Which buffers are donated is decided per call; each choice is its own jitted program, built
on first use, so a training run, which makes the same choice every step (the first included:
``init`` gives every state field its own buffer), traces and compiles one program per
signature.  The learning rate is an argument of the program (not baked into it), so
schedulers never trigger a retrace; every other option is static.  The arithmetic is the
functional optimizer's, primitive for primitive, so trajectories equal the eager ones.
"""

from __future__ import annotations

import sys
from typing import Callable

import fnarray as fa
from fnarray.core.array import Array
from fnarray.transforms.jit import Jitted


def _dynamic(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _refcounts(objects: list) -> list:
    """Each object's reference count as seen from here."""
    return [sys.getrefcount(x) for x in objects]


# The count ``_refcounts`` gives an object held once outside the call (by a parameter
# tensor's slot, by the optimizer's state) and listed once in the list it is given: more
# means someone else holds it too.  Measured rather than assumed, as the interpreter's
# counting of its own temporaries varies between versions.
_SAMPLE = object()
_HELD_ONCE = _refcounts([_SAMPLE])[0]
del _SAMPLE


class FusedStep:
    """``step(options, grads, states, params, holders) -> (new_params, new_states)`` for
    the functional optimizer ``factory``, jit-compiled per static options."""

    def __init__(self, factory: Callable):
        self.factory = factory
        # (static options, state types, state layout) -> (update, {donated positions: jitted})
        self._cache: dict = {}
        # (options other than lr in the caller's order, state types, state layout, donated
        # positions) -> jitted: the per-call lookup, without ``_program``'s sorting
        self._by_call: dict = {}
        self._lr: tuple = (None, None)  # (the Python lr, its float64 Array) of the last call

    def programs(self) -> list[Jitted]:
        """Every jitted update built so far (one per signature and donation choice)."""
        return [j for _, by_donation in self._cache.values() for j in by_donation.values()]

    def _program(self, options: dict, kinds: tuple, layout: tuple, donated: tuple) -> Jitted:
        """The jitted update for these options, state types and state layout (per state,
        which buffer fields are None), donating the arguments at positions ``donated``.
        The programs take their arrays flat and positionally — ``lr, *grads, *steps,
        *params, *buffers`` — so a call costs no pytree flattening of the arguments."""
        static = tuple(sorted((k, v) for k, v in options.items() if k != "lr"))
        key = (static, kinds, layout)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._cache[key] = (self._update(static, kinds, layout), {})
        update, by_donation = entry
        jitted = by_donation.get(donated)
        if jitted is None:
            jitted = by_donation[donated] = fa.jit(update, donate_argnums=donated)
            # ``_free_params``/``_free_buffers`` check per call what jit would check, and
            # more (that nobody holds the arrays either)
            jitted.donation_checked = True
        return jitted

    def _update(self, static: tuple, kinds: tuple, layout: tuple) -> Callable:
        factory = self.factory
        n = len(kinds)

        def update(lr, *flat):
            # States travel as step counters and buffers so that only the (full-size)
            # buffers are donated; each state tuple is rebuilt inside the program.
            grads, steps, params = flat[:n], flat[n:2 * n], flat[2 * n:3 * n]
            bufs = iter(flat[3 * n:])
            states = [kind(step, *[None if missing else next(bufs) for missing in fields])
                      for kind, step, fields in zip(kinds, steps, layout)]
            return factory(lr=lr, **dict(static)).update(list(grads), states, list(params))
        return update

    def __call__(self, options: dict, grads: list, states: list, params: list,
                 holders: list | None = None):
        """One update.  ``holders``: per parameter, the tensor whose value (``_value``)
        the parameter array is, which the caller rebinds to the new value; without them no
        parameter buffer is donated.  The caller holds each state only in the optimizer's
        state and in ``states``, and each parameter array only in its holder and in
        ``params``: any further reference is taken for someone else's."""
        lr = options["lr"]
        if not _dynamic(lr):  # an array lr (or anything else): the plain functional path
            return self.factory(**options).update(grads, states, params)
        buffers = [s[1:] for s in states]
        layout = tuple([tuple([b is None for b in fields]) for fields in buffers])
        flat = [b for fields in buffers for b in fields if b is not None]
        del buffers
        n = len(params)
        donated = _free_buffers(states, layout, flat, 1 + 3 * n)
        if holders is not None:
            donated = _free_params(params, holders, 1 + 2 * n) + donated
        kinds = tuple([type(s) for s in states])
        call_key = (tuple([item for item in options.items() if item[0] != "lr"]), kinds,
                    layout, tuple(donated))
        run = self._by_call.get(call_key)
        if run is None:
            run = self._by_call[call_key] = self._program(options, kinds, layout,
                                                          call_key[3])
        return run(self._lr_array(lr), *grads, *[s[0] for s in states], *params, *flat)

    def _lr_array(self, lr) -> Array:
        """``lr`` as the program's float64 argument; the same (immutable) Array while the
        group's lr is the same Python number, as between scheduler changes."""
        last, array = self._lr
        if lr is not last:
            array = fa.asarray(float(lr), dtype=fa.float64)
            self._lr = (lr, array)
        return array


def _free(arrays: list) -> list:
    """Per array: may its buffer take a new value?  Only one holder outside the call refers
    to the array, it is a full-size host ``Array``, and nothing but the array refers to its
    buffer, which owns its memory and may be written (no NumPy view, memoryview or second
    Array on it): what ``jit`` checks before reusing a donated buffer, and more."""
    counts = _refcounts(arrays)
    bufs = [a._value if type(a) is Array else None for a in arrays]  # None: never free
    buf_counts = _refcounts(bufs)  # each held by its Array and by ``bufs``
    return [c <= _HELD_ONCE and bc <= _HELD_ONCE and b.ndim > 0 and b.base is None
            and getattr(b.flags, "writeable", False)  # (CuPy's buffers are never reused)
            for c, bc, b in zip(counts, buf_counts, bufs)]


def _free_params(params: list, holders: list, first: int) -> list:
    """The argument positions (``first`` + index) of the parameters whose arrays only
    their holder refers to; donating them changes nothing anyone else sees."""
    free = _free(params)
    return [first + i for i, (ok, p, h) in enumerate(zip(free, params, holders))
            if ok and h._value is p]


def _free_buffers(states: list, layout: tuple, flat: list, first: int) -> list:
    """The argument positions (``first`` + index into ``flat``) of the state buffers only
    the optimizer holds: their state tuple is referenced by the optimizer alone (not by a
    ``optimizer.state[p]`` read or a ``state_dict()``), and the buffer by that tuple alone
    (a buffer shared between two fields or two states, or held by a user, is not donated)."""
    if not flat:
        return []
    state_counts, free = _refcounts(states), _free(flat)
    out, j = [], 0
    for count, fields in zip(state_counts, layout):
        k = fields.count(False)
        if count <= _HELD_ONCE:
            out += [first + b for b in range(j, j + k) if free[b]]
        j += k
    return out
