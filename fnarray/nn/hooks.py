"""Full backward hooks: ``hook(module, grad_input, grad_output)`` on the recorded graph.

The module's tensor inputs and outputs pass through recorded identities, so the gradients
that reach those fresh nodes are exactly the module's ``grad_output`` and ``grad_input``
(not mixed with other uses of the same tensors).  Tensor hooks on them collect the
gradients and call the module's hooks once the input gradients are known.
"""

from __future__ import annotations

import fnarray as fa
from fnarray.compat.tensor import Tensor
from fnarray.core import tree


def _mark(x):
    """A fresh graph node equal to ``x`` (for tensors that require grad)."""
    if isinstance(x, Tensor) and x.requires_grad:
        return fa.multiply(x, 1)
    return x


def run_with_backward_hooks(module, args, kwargs):
    """Run ``module.forward`` with its backward hooks attached to the recorded graph."""
    args = tuple(_mark(a) for a in args)
    inputs = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
    out = module.forward(*args, **kwargs)
    out_leaves, out_def = tree.flatten(out, is_leaf=lambda v: isinstance(v, Tensor))
    marked = [_mark(o) for o in out_leaves]
    outputs = [o for o in marked if isinstance(o, Tensor) and o.requires_grad]
    if not outputs:
        return out
    grads = {"out": [None] * len(outputs), "in": [None] * len(inputs), "pending": len(inputs)}

    def fire():
        g_in = tuple(grads["in"]) if inputs else (None,)
        for hook in list(module._backward_hooks.values()):
            result = hook(module, g_in, tuple(grads["out"]))
            if result is not None:
                g_in = tuple(result)
        return g_in

    def on_output(i):
        def hook(g):
            grads["out"][i] = g
            if not inputs and all(x is not None for x in grads["out"]):
                fire()
        return hook

    def on_input(i):
        def hook(g):
            grads["in"][i] = g
            grads["pending"] -= 1
            if grads["pending"] == 0:
                replaced = fire()
                return replaced[i]
            return None
        return hook

    for i, o in enumerate(outputs):
        o.register_hook(on_output(i))
    for i, a in enumerate(inputs):
        a.register_hook(on_input(i))
    return tree.unflatten(out_def, marked)
