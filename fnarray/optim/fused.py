"""Fused multi-tensor optimizer steps: a parameter group's whole update as one jitted program.

Run eagerly, an Adam step is ~13 elementwise operations per parameter, each a Python
dispatch, a fresh full-size output and a pass over memory.  ``FusedStep`` traces the
group's functional update (``optim.functional``) once per options and parameter signature
and runs it with ``fa.jit``: one call for the group, intermediates written into dead buffers
(``out=``), and — when the optimizer is the only holder of a state array — the old moment
buffers donated, so the new moments are written where the old ones were and a step allocates
only the new parameter values, which the user's tensors then hold.  On NumPy, a large
parameter's update (Adam, AdamW, RMSprop: many passes per buffer) runs cache-blocked, all
operations on one 64K-element block before the next (``transforms/blocked.py``), with the
same bits as the whole-array update.

The learning rate is an argument of the program (not baked into it), so schedulers never
trigger a retrace; every other option is static.  The arithmetic is the functional
optimizer's, primitive for primitive, so trajectories equal the eager ones.
"""

from __future__ import annotations

import sys
from typing import Callable

import fnarray as fa
from fnarray.core.array import Array

# References to a state buffer while ``_exclusively_owned`` looks at it, when only the
# optimizer holds it: its state tuple in ``Optimizer.state``, the tuple in ``buffers``, the
# loop variable and the argument of ``sys.getrefcount``.
_OWNED_REFS = 4


def _dynamic(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class FusedStep:
    """``step(options, grads, states, params) -> (new_params, new_states)`` for the
    functional optimizer ``factory``, jit-compiled per static options."""

    def __init__(self, factory: Callable):
        self.factory = factory
        self._cache: dict = {}
        self._lr: tuple = (None, None)  # (the Python lr, its float64 Array) of the last call

    def _programs(self, options: dict, kinds: tuple, layout: tuple):
        """The plain and the donating jitted update for these options, state types and
        state layout (per state, which buffer fields are None).  The programs take their
        arrays flat and positionally — ``lr, *grads, *steps, *params, *buffers`` — so a
        call costs no pytree flattening of the arguments."""
        static = tuple(sorted((k, v) for k, v in options.items() if k != "lr"))
        key = (static, kinds, layout)
        entry = self._cache.get(key)
        if entry is None:
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

            n_bufs = sum(not missing for fields in layout for missing in fields)
            donated = tuple(range(1 + 3 * n, 1 + 3 * n + n_bufs))
            entry = (fa.jit(update), fa.jit(update, donate_argnums=donated))
            self._cache[key] = entry
        return entry

    def __call__(self, options: dict, grads: list, states: list, params: list):
        lr = options["lr"]
        if not _dynamic(lr):  # an array lr (or anything else): the plain functional path
            return self.factory(**options).update(grads, states, params)
        buffers = [s[1:] for s in states]
        layout = tuple([tuple([b is None for b in fields]) for fields in buffers])
        plain, donating = self._programs(options, tuple([type(s) for s in states]), layout)
        # Nobody but the optimizer may hold a state tuple (its dict entry, the caller's
        # list, the loop variable, getrefcount's argument) or any of its buffers.
        owned = all(sys.getrefcount(s) <= _OWNED_REFS for s in states)
        run = donating if owned and _exclusively_owned(buffers) else plain
        flat = [b for fields in buffers for b in fields if b is not None]
        del buffers
        return run(self._lr_array(lr), *grads, *[s[0] for s in states], *params, *flat)

    def _lr_array(self, lr) -> Array:
        """``lr`` as the program's float64 argument; the same (immutable) Array while the
        group's lr is the same Python number, as between scheduler changes."""
        last, array = self._lr
        if lr is not last:
            array = fa.asarray(float(lr), dtype=fa.float64)
            self._lr = (lr, array)
        return array


def _exclusively_owned(buffers: list) -> bool:
    """Does the optimizer hold the only reference to every state buffer (so donating them
    can change nothing anyone else sees)?  A buffer shared between two fields (Adam's first
    state uses one zero array for both moments) or held by a user is not donated."""
    seen = set()
    for fields in buffers:
        for leaf in fields:
            if leaf is None:
                continue
            if not isinstance(leaf, Array) or id(leaf) in seen:
                return False
            seen.add(id(leaf))
            if sys.getrefcount(leaf) > _OWNED_REFS:
                return False
    return True
