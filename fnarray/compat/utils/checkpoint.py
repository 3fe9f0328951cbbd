"""``torch.utils.checkpoint.checkpoint``: keep a segment's inputs, recompute its
intermediates in the backward pass.

The forward runs once with recording on, only to learn which tensors from outside the
segment (parameters, closed-over tensors) its result depends on; that graph is dropped
and the outputs are recorded as one node reading the inputs and those tensors.  Its
backward re-runs the segment (with the random state of the first run, so dropout masks
repeat) and differentiates the fresh graph — PyTorch's ``use_reentrant=False``
semantics: parameters get gradients even when no input requires grad, and both
``backward()`` and ``autograd.grad`` see them.
"""

from __future__ import annotations

import warnings

from fnarray.compat import autograd, grad_mode, tape
from fnarray.compat.function import record_call
from fnarray.compat.random import default_generator
from fnarray.compat.tensor import Tensor


def _external_parents(outputs: list, first_group: int) -> list:
    """``(node, index)`` of the recorded tensors outside the segment that ``outputs``
    depend on: leaves, and nodes recorded before the segment started."""
    found, seen, stack = {}, set(), [(o._node, o._index) for o in outputs if o._node]
    while stack:
        node, idx = stack.pop()
        if node.prim is None or node.group < first_group:
            found[(id(node), idx)] = (node, idx)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(p for p in node.parents or () if p is not None)
    return list(found.values())


def _handle(node, idx) -> Tensor:
    """A tensor handle for output ``idx`` of ``node`` (the leaf tensor itself for leaves)."""
    if node.prim is None:
        return node.tensor()
    value = node.outs[idx] if node.prim.multiple_results else node.outs
    return Tensor._make(value, node, idx)


def checkpoint(function, *args, use_reentrant: bool | None = None, context_fn=None,
               determinism_check: str = "default", debug: bool = False,
               preserve_rng_state: bool = True, **kwargs):
    """``function(*args, **kwargs)`` whose intermediates are recomputed during backward."""
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint: the use_reentrant parameter should be passed "
            "explicitly; fnarray implements use_reentrant=False semantics for both values",
            stacklevel=2)
    if not grad_mode.is_grad_enabled():
        return function(*args, **kwargs)
    rng = default_generator.get_state()
    first_group = next(tape._groups)
    detached = [a.detach() if isinstance(a, Tensor) else a for a in args]
    result = function(*detached, **kwargs)
    single = not isinstance(result, (tuple, list))
    outs = [result] if single else list(result)
    tracked = [o for o in outs if isinstance(o, Tensor) and o.requires_grad]
    externals = [_handle(n, i) for n, i in _external_parents(tracked, first_group)]
    inputs = [a for a in args if isinstance(a, Tensor)]
    operands = [t for t in inputs + externals if t is not None and t.requires_grad]
    if not operands:
        return result

    def bwd(_res, cts):
        create = grad_mode.is_grad_enabled()
        fresh = [a.detach().requires_grad_(a.requires_grad) if isinstance(a, Tensor) else a
                 for a in args]
        saved = default_generator.get_state()
        if preserve_rng_state:
            default_generator.set_state(rng)
        try:
            with grad_mode.enable_grad():
                again = function(*fresh, **kwargs)
        finally:
            default_generator.set_state(saved)
        again = [again] if single else list(again)
        pairs = [(o, c) for o, c in zip([again[i] for i in tensor_pos], cts)
                 if isinstance(o, Tensor) and o.requires_grad and c is not None]
        wrt = [f for f in fresh if isinstance(f, Tensor) and f.requires_grad] + \
            [t for t in externals if t is not None and t.requires_grad]
        grads = autograd.grad([p[0] for p in pairs], wrt, [p[1] for p in pairs],
                              retain_graph=True, create_graph=create, allow_unused=True)
        return [g if g is None or create else g._value for g in grads]

    values = [o._value if isinstance(o, Tensor) else o for o in outs]
    tensor_pos = [i for i, o in enumerate(outs) if isinstance(o, Tensor)]
    recorded = record_call("CheckpointFunctionBackward", operands,
                           [values[i] for i in tensor_pos], bwd)
    final = list(outs)
    for i, r in zip(tensor_pos, recorded):
        final[i] = r
    return final[0] if single else type(result)(final)


def checkpoint_sequential(functions, segments: int, input, use_reentrant: bool | None = None,
                          **kwargs):
    """Run ``functions`` (an ``nn.Sequential`` or a list of modules) in ``segments``
    checkpointed chunks; the last chunk runs normally, as in PyTorch."""
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter "
            "should be passed explicitly", stacklevel=2)
    funcs = list(functions.children()) if hasattr(functions, "children") else list(functions)
    size = max(1, len(funcs) // segments)

    def run(chunk):
        def forward(x):
            for f in chunk:
                x = f(x)
            return x
        return forward

    end = 0
    for start in range(0, size * (segments - 1), size):
        end = start + size
        input = checkpoint(run(funcs[start:end]), input, use_reentrant=False, **kwargs)
    return run(funcs[end:])(input)
