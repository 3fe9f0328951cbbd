"""``fnarray.nn.utils``: gradient clipping, flat parameter vectors, and ``rnn``
(padded and packed variable-length sequences)."""

from __future__ import annotations

import math
import sys

import fnarray as fa
from fnarray.compat.tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale all gradients together so that their joint ``norm_type`` norm is at most
    ``max_norm``; returns the norm before clipping."""
    params = _grads(parameters)
    if not params:
        return Tensor(fa.asarray(0.0))
    grads = [p.grad.array for p in params]
    norm_type = float(norm_type)  # PyTorch also takes 'inf'
    # the norm of the per-tensor norms, as PyTorch computes it
    total = _vector_norm(fa.stack([_vector_norm(g, norm_type) for g in grads]), norm_type)
    if error_if_nonfinite and not bool(fa.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is non-finite ({float(total)}), so it cannot be clipped")
    scale = fa.minimum(max_norm / (total + 1e-6), 1.0)
    for p in params:
        p.grad = Tensor(p.grad.array * fa.astype(scale, p.grad.dtype))
    return Tensor(total)


def _vector_norm(x, ord: float):
    if ord == math.inf:
        return fa.max(fa.abs(x))
    return fa.sum(fa.abs(x) ** ord) ** (1.0 / ord)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]``."""
    for p in _grads(parameters):
        p.grad = Tensor(fa.clip(p.grad.array, -clip_value, clip_value))


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated (recorded, so gradients flow)."""
    return fa.concatenate([fa.reshape(p, (-1,)) for p in parameters])


def vector_to_parameters(vec, parameters) -> None:
    """Copy consecutive slices of ``vec`` into the parameters (no gradient recorded)."""
    values = getattr(vec, "array", vec)
    if values.ndim != 1:
        raise TypeError(f"vector_to_parameters: expected a 1-D vector, got shape {tuple(values.shape)}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if values.shape[0] != total:
        raise ValueError(f"vector_to_parameters: vector has {values.shape[0]} entries but the "
                         f"parameters hold {total}")
    start = 0
    for p in params:
        n = p.numel()
        p.data = fa.reshape(values[start:start + n], tuple(p.shape))
        start += n


# ``nn.utils.rnn`` (also importable as ``fnarray.nn.utils.rnn``).
from fnarray.nn import rnn_utils as rnn  # noqa: E402,F401

sys.modules[__name__ + ".rnn"] = rnn
