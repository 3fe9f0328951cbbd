"""``torch.autograd.Function``: a user-written forward and backward recorded as one node.

``MyFn.apply(*args)`` runs ``MyFn.forward(ctx, *args)`` once, without recording (as
PyTorch does), then — when an input tensor requires grad — records the outputs as the
result of one ``custom_vjp_call`` on the tensor inputs, whose backward calls
``MyFn.backward(ctx, *grad_outputs)``.  The recorded rule hands back the outputs the
forward already computed, so the forward is never run twice.  ``backward`` receives
and returns gradients in PyTorch's complex convention (``record_call`` converts).
"""

from __future__ import annotations

from fnarray.compat import grad_mode
from fnarray.compat.autograd import conj_cotangent
from fnarray.compat.tape import op_scope
from fnarray.compat.tensor import Tensor
from fnarray.transforms.custom import custom_vjp_call


class FunctionCtx:
    """The ``ctx`` handed to ``forward`` and ``backward``: ``save_for_backward``,
    ``saved_tensors``, ``needs_input_grad``, ``mark_non_differentiable``,
    ``set_materialize_grads`` and any attribute the forward stores."""

    def __init__(self, needs_input_grad: tuple):
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple = ()
        self.non_differentiable: set = set()
        self.materialize_grads = True

    def save_for_backward(self, *tensors) -> None:
        self.saved_tensors = tuple(tensors)

    def mark_non_differentiable(self, *tensors) -> None:
        self.non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors) -> None:
        """Accepted for compatibility: in-place changes are functionalised anyway."""

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)


class Function:
    """Subclass with ``@staticmethod forward(ctx, *args)`` and ``@staticmethod
    backward(ctx, *grad_outputs)`` (one gradient per forward argument, ``None`` for
    arguments without one); call ``MyFn.apply(*args)``."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise RuntimeError("a Function subclass must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise RuntimeError("a Function subclass must define backward(ctx, *grads) "
                                  "to be differentiated")

    @classmethod
    def apply(cls, *args):
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        with grad_mode.no_grad():
            result = cls.forward(ctx, *args)
        single = not isinstance(result, (tuple, list))
        outs = [result] if single else list(result)
        if not (grad_mode.is_grad_enabled() and any(needs)):
            return result
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                raise TypeError(f"{cls.__name__}.forward: output {i} is a "
                                f"{type(o).__name__}; a Function returns tensors")
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        out_values = [o._value for o in outs]
        n_args = len(args)

        def bwd(_res, cts):
            grads_in = []
            for o, ct in zip(outs, cts):
                if ct is None and ctx.materialize_grads:
                    ct = o._value * 0
                grads_in.append(ct if ct is None or isinstance(ct, Tensor)
                                else Tensor._make(ct, None, 0))
            grads = cls.backward(ctx, *grads_in)
            grads = list(grads) if isinstance(grads, (tuple, list)) else [grads]
            while len(grads) > n_args and grads[-1] is None:  # PyTorch ignores trailing
                grads.pop()  # Nones (a backward written for an optional argument not given)
            if len(grads) != n_args:
                raise RuntimeError(
                    f"function {cls.__name__}Backward returned an incorrect number of "
                    f"gradients (expected {n_args}, got {len(grads)})")
            return [None if grads[i] is None else
                    (grads[i] if grad_mode.is_grad_enabled() else _value(grads[i]))
                    for i in positions]

        recorded = record_call(f"{cls.__name__}Backward", [args[i] for i in positions],
                               out_values, bwd)
        final = []
        for o, r in zip(outs, recorded):
            final.append(o if id(o) in ctx.non_differentiable else r)
        return final[0] if single else tuple(final)


def once_differentiable(backward):
    """Decorator for a ``backward`` that is not itself differentiable: it runs without
    recording (its result carries no graph), as PyTorch's ``once_differentiable``."""
    import functools

    @functools.wraps(backward)
    def wrapped(ctx, *grads):
        with grad_mode.no_grad():
            return backward(ctx, *grads)
    return wrapped


def record_call(name: str, operands: list, out_values: list, bwd) -> list:
    """Record ``out_values`` (already computed) as the outputs of one node named ``name``
    reading the tensors ``operands``; its backward is ``bwd(None, cotangents) -> one
    cotangent (or None) per operand``, both in PyTorch's complex convention (the engine's
    JAX-convention cotangents are conjugated on the way in and out)."""
    def engine_bwd(res, cts):
        grads = bwd(res, [conj_cotangent(c) for c in cts])
        return [conj_cotangent(g) for g in grads]

    with op_scope(name):
        return list(custom_vjp_call.bind(*operands, fun=lambda *_: out_values,
                                         fwd=lambda *_: (out_values, None), bwd=engine_bwd))


def _value(x):
    return x._value if isinstance(x, Tensor) else x
