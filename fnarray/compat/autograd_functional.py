"""``torch.autograd.functional``: ``vjp``, ``jvp``, ``jacobian``, ``hessian``, ``vhp``,
``hvp`` on functions of tensors, computed with the compat tape itself.

Inputs are detached copies that require grad, so the caller's tensors are never touched;
``jvp`` uses the double-vjp identity (the vjp is linear in its cotangent ``u``, and
differentiating ``u -> J^T u`` against ``v`` gives ``J v``), as PyTorch does.
Results are detached unless ``create_graph=True``.
"""

from __future__ import annotations

from fnarray.compat import autograd, grad_mode
from fnarray.compat.tensor import Tensor


def _tuple(x) -> tuple[tuple, bool]:
    return (tuple(x), True) if isinstance(x, (tuple, list)) else ((x,), False)


def _prepare(inputs, create_graph: bool) -> tuple:
    out = []
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"autograd.functional: input {i} is a {type(x).__name__}; "
                            f"inputs must be tensors")
        x = x if create_graph and x.requires_grad else x.detach()
        out.append(x.clone().requires_grad_(True) if not x.requires_grad else x)
    return tuple(out)


def _grads(outputs, inputs, grad_outputs, create_graph: bool) -> tuple:
    """d(outputs)/d(inputs) weighted by ``grad_outputs``; zeros for unused inputs."""
    needed = [o for o in outputs if o.requires_grad]
    if not needed:
        return tuple(x.detach() * 0 for x in inputs)
    weights = [g for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    gs = autograd.grad(needed, inputs, weights, retain_graph=True,
                       create_graph=create_graph, allow_unused=True)
    return tuple(x.detach() * 0 if g is None else g for x, g in zip(inputs, gs))


def _finish(values: tuple, as_tuple: bool, create_graph: bool):
    if not create_graph:
        values = tuple(v.detach() if isinstance(v, Tensor) else v for v in values)
    return values if as_tuple else values[0]


def _run(func, inputs: tuple):
    with grad_mode.enable_grad():
        out = func(*inputs)
    return _tuple(out)


def _check_v(v, outputs: tuple, what: str) -> tuple:
    if v is None:
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError(f"The vector v can only be None if the {what} is a single "
                               f"element tensor")
        return (outputs[0].detach() * 0 + 1,)
    vs, _ = _tuple(v)
    for i, (a, b) in enumerate(zip(vs, outputs)):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(f"Mismatch in shape: v[{i}] has shape {list(a.shape)} but "
                               f"the {what} [{i}] has shape {list(b.shape)}")
    return vs


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(*inputs), v^T J)``."""
    inputs, in_tuple = _tuple(inputs)
    inputs = _prepare(inputs, create_graph)
    outputs, out_tuple = _run(func, inputs)
    vs = _check_v(v, outputs, "user-provided function's output")
    grads = _grads(outputs, inputs, vs, create_graph)
    return _finish(outputs, out_tuple, create_graph), _finish(grads, in_tuple, create_graph)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(*inputs), J v)``."""
    inputs, in_tuple = _tuple(inputs)
    inputs = _prepare(inputs, create_graph)
    vs = _check_v(v, inputs, "input")
    outputs, out_tuple = _run(func, inputs)
    with grad_mode.enable_grad():
        us = tuple(o.detach() * 0 for o in outputs)
        us = tuple(u.requires_grad_(True) for u in us)
        g = _grads(outputs, inputs, us, create_graph=True)
        pairs = [(gi, vi) for gi, vi in zip(g, vs) if gi.requires_grad]
        if pairs:
            jv = autograd.grad([p[0] for p in pairs], us, [p[1] for p in pairs],
                               create_graph=create_graph, allow_unused=True)
        else:
            jv = (None,) * len(us)
    jv = tuple(u.detach() * 0 if j is None else j for u, j in zip(us, jv))
    return _finish(outputs, out_tuple, create_graph), _finish(jv, out_tuple, create_graph)


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """The Jacobian, shaped ``output.shape + input.shape`` (tuples of them for tuple
    inputs/outputs, indexed ``[output][input]``), one reverse pass per output element."""
    inputs, in_tuple = _tuple(inputs)
    inputs = _prepare(inputs, create_graph)
    outputs, out_tuple = _run(func, inputs)
    from fnarray.compat import functional as F
    from fnarray.compat.ops import stack
    table = []
    for out in outputs:
        rows = [[] for _ in inputs]
        flat = out.reshape(-1)
        for k in range(flat.numel()):
            onehot = F.zeros(flat.numel(), dtype=out.dtype)
            onehot[k] = 1
            g = _grads((out,), inputs, (onehot.reshape(out.shape),), create_graph)
            for j, gj in enumerate(g):
                rows[j].append(gj)
        per_input = []
        for x, r in zip(inputs, rows):
            stacked = stack(r) if r else F.zeros((0,) + tuple(x.shape), dtype=x.dtype)
            per_input.append(stacked.reshape(tuple(out.shape) + tuple(x.shape)))
        table.append(_finish(tuple(per_input), in_tuple, create_graph))
    return tuple(table) if out_tuple else table[0]


def hessian(func, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a scalar function: ``input.shape + input.shape`` (a tuple of tuples
    ``[i][j]`` for tuple inputs)."""
    inputs, in_tuple = _tuple(inputs)

    def gradient(*xs):
        out = func(*xs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("The function given to hessian should return a single "
                               "element Tensor")
        return _grads((out.reshape(()),), xs, (out.detach().reshape(()) * 0 + 1,), True)

    h = jacobian(gradient, inputs if in_tuple else inputs[0], create_graph=create_graph)
    return h if in_tuple else h[0]


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(*inputs), v^T H)`` for a scalar ``func``."""
    inputs, in_tuple = _tuple(inputs)
    inputs = _prepare(inputs, True)
    vs = _check_v(v, inputs, "input")
    outputs, _ = _run(func, inputs)
    with grad_mode.enable_grad():
        g = _grads(outputs, inputs, (outputs[0].detach() * 0 + 1,), True)
        pairs = [(gi, vi) for gi, vi in zip(g, vs) if gi.requires_grad]
        hv = _grads(tuple(p[0] for p in pairs), inputs, tuple(p[1] for p in pairs),
                    create_graph) if pairs else tuple(x.detach() * 0 for x in inputs)
    return _finish(outputs, False, create_graph), _finish(hv, in_tuple, create_graph)


hvp = vhp  # the Hessian of a twice-differentiable scalar function is symmetric
