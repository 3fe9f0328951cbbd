"""Eager calls of a pure tensor function recorded as one node (``staged_call``).

A loss such as class-weighted ``nll_loss`` is a dozen small operations; run eagerly on
compat tensors each is a Python dispatch, a tape node, and later a backward rule.  ``StagedEager(fn)`` runs a
*recorded* call (grad mode on, an operand requiring grad, all operands concrete compat
tensors) as the staged programs of ``fn`` for that signature — the same machinery as
``compat.compile`` (``transforms.staged``): one forward program, one node on the tape whose
backward is one program.  The node takes the name of the open ``op_scope``
(``NllLossBackward0``) and the call's tensors as its inputs, so ``grad_fn`` and
``next_functions`` read as before, and double backward goes through the node's
differentiable joint program.

A signature (shapes, dtypes, which operands require grad, the static arguments) is staged
the second time it is seen — a shape seen once (a ragged last batch, a new sequence length)
runs eagerly and costs no tracing (~2 ms) — and at most ``LIMIT`` signatures are staged per
function: past that, new signatures run eagerly, so ever-changing shapes never trace more
than ``LIMIT`` times.  Staged and eager calls give the same bits (the programs run the same
kernels in the same order); ``next_functions`` of a staged node lists each tensor operand
once, where an eager call lists the constants its operations read as well.
Anything else (tracers, autocast, no recording) runs ``fn`` eagerly.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from fnarray.core.array import Array

LIMIT = 16  # signatures staged per function
_COMPAT: list = []  # (grad_mode, tape, staged_call), imported on first use (compat imports nn)


def _compat():
    if not _COMPAT:
        from fnarray.compat import grad_mode, tape
        from fnarray.transforms.staged import staged_call
        _COMPAT[:] = [grad_mode, tape, staged_call]
    return _COMPAT


class StagedEager:
    """``fn(*operands, **static)``: operands are compat tensors, arrays or None;
    ``static`` are hashable options."""

    def __init__(self, fn: Callable, name: str):
        self.fn, self.name = fn, name
        self.cache: dict = {}  # signature -> Staged
        self.seen: OrderedDict = OrderedDict()  # signatures met once

    def __call__(self, *operands, **static):
        key = self._key(operands, static)
        if key is None:
            return self.fn(*operands, **static)
        staged = self.cache.get(key)
        if staged is None:
            if key not in self.seen:
                self.seen[key] = None
                if len(self.seen) > 4 * LIMIT:
                    self.seen.popitem(last=False)
                return self.fn(*operands, **static)
            if len(self.cache) >= LIMIT:  # no more tracing: many shapes run eagerly
                return self.fn(*operands, **static)
            staged = self.cache[key] = self._stage(operands, static)
        # ``_key`` found grad mode on, no autocast, an operand requiring grad and every
        # value a concrete Array on one device: the node is recorded directly.
        _, tape, staged_call = _compat()
        present = [t for t in operands if t is not None]
        vals = [t._value if isinstance(t, tape.TENSOR) else t for t in present]
        return tape.record_staged(staged_call, staged, present, vals)[0]

    @staticmethod
    def _key(operands, static):
        """The signature of a call to stage, or None when the call runs eagerly."""
        grad_mode, tape, _ = _compat()
        if not grad_mode._state.enabled or tape._op.autocast is not None:
            return None
        tensor_t = tape.TENSOR
        sig, records, device = [], False, None
        for t in operands:
            if t is None:
                sig.append(None)
                continue
            v = t._value if isinstance(t, tensor_t) else t
            if type(v) is not Array:
                return None
            if device is None:
                device = v._device
            elif v._device is not device:
                return None
            grad = v is not t and t._node is not None
            records = records or grad
            sig.append((v.shape, v.dtype, grad))
        if not records:
            return None
        try:
            return (tuple(sig), tuple(sorted(static.items())), device)
        except TypeError:  # unorderable or unhashable options
            return None

    def _stage(self, operands, static):
        from fnarray.compat import grad_mode
        from fnarray.transforms.staged import Staged
        present = [t for t in operands if t is not None]
        slots = [t is not None for t in operands]

        def pure(*values):
            it = iter(values)
            return [self.fn(*[next(it) if s else None for s in slots], **static)]

        values = [getattr(t, "_value", t) for t in present]
        diff = tuple(v is not t and t._node is not None for t, v in zip(present, values))
        with grad_mode.no_grad():
            return Staged(pure, [(v.aval, v.device) for v in values], diff, name=self.name)
