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

    def _programs(self, options: dict, kinds: tuple):
        static = tuple(sorted((k, v) for k, v in options.items() if k != "lr"))
        entry = self._cache.get((static, kinds))
        if entry is None:
            factory = self.factory

            def update(lr, grads, buffers, steps, params):
                # States travel as step counters and buffers so that only the (full-size)
                # buffers are donated; each state tuple is rebuilt inside the program.
                states = [kind(step, *bufs) for kind, step, bufs in zip(kinds, steps, buffers)]
                return factory(lr=lr, **dict(static)).update(grads, states, params)

            entry = (fa.jit(update), fa.jit(update, donate_argnums=(2,)))
            self._cache[(static, kinds)] = entry
        return entry

    def __call__(self, options: dict, grads: list, states: list, params: list):
        lr = options["lr"]
        if not _dynamic(lr):  # an array lr (or anything else): the plain functional path
            return self.factory(**options).update(grads, states, params)
        plain, donating = self._programs(options, tuple(type(s) for s in states))
        # Nobody but the optimizer may hold a state tuple (its dict entry, the caller's
        # list, the loop variable, getrefcount's argument) or any of its buffers.
        owned = all(sys.getrefcount(s) <= _OWNED_REFS for s in states)
        buffers = [tuple(s[1:]) for s in states]
        steps = [s[0] for s in states]
        run = donating if owned and _exclusively_owned(buffers) else plain
        return run(fa.asarray(float(lr), dtype=fa.float64), grads, buffers, steps, params)


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
