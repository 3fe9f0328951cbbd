"""Optimizer update math as pure functions on pytrees of arrays.

Each factory (``sgd``, ``adam``, ...) takes the hyperparameters and returns an
``Optimizer`` pair of pure functions::

    opt = adam(lr=1e-3)
    state = opt.init(params)
    params, state = opt.update(grads, state, params)

``params`` and ``grads`` are pytrees of the same structure; ``state`` is a pytree with one
small ``NamedTuple`` of arrays per parameter leaf (so the stateful classes in
``fnarray.optim`` can keep it per parameter, as PyTorch does).  The arithmetic is PyTorch's
documented algorithm for each optimizer.  Nothing branches on array values, so ``update``
runs inside ``fa.jit``; the Python ``if``s below choose code paths from hyperparameters
(``momentum != 0``, ``amsgrad``, ...), which are static.  ``lr`` (and other rates that only
scale values) may also be passed as arrays, e.g. to feed a schedule into a jitted step.

The step counter of every parameter is an ``int64`` scalar; step-dependent factors (bias
corrections) are computed in float64 and cast to the parameter's dtype at use, so float32
parameters stay float32.  ``init`` gives every full-size state field a buffer of its own
(as PyTorch does), so the fused step (``optim.fused``) can write each field's new value
over its old one from the first step on.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from fnarray import api as fa
from fnarray.core import shapes
from fnarray.core import tree


class Optimizer(NamedTuple):
    """``init(params) -> state`` and ``update(grads, state, params) -> (params, state)``."""

    init: Callable
    update: Callable


def _is_leaf_state(x) -> bool:
    return getattr(type(x), "_leaf_state", False)


def _per_leaf(init_leaf: Callable, update_leaf: Callable, name: str) -> Optimizer:
    """Lift per-parameter ``init_leaf(p)`` / ``update_leaf(g, s, p) -> (p, s)`` to pytrees."""

    def init(params):
        return tree.map(init_leaf, params)

    def update(grads, state, params):
        p_leaves, p_def = tree.flatten(params)
        g_leaves, g_def = tree.flatten(grads)
        s_leaves, s_def = tree.flatten(state, is_leaf=_is_leaf_state)
        if g_def != p_def:
            raise ValueError(f"optim.{name}.update: grads have structure {g_def} but params "
                             f"have {p_def}; pass one gradient per parameter")
        if s_def != p_def:
            raise ValueError(f"optim.{name}.update: state has structure {s_def} but params "
                             f"have {p_def}; build the state with {name}(...).init(params)")
        for g, p in zip(g_leaves, p_leaves):
            if tuple(g.shape) != tuple(p.shape):
                raise ValueError(f"optim.{name}.update: a gradient of shape {tuple(g.shape)} "
                                 f"for a parameter of shape {tuple(p.shape)}")
        outs = [(_componentwise(update_leaf) if p.dtype.kind == "c" else update_leaf)(g, s, p)
                for g, s, p in zip(g_leaves, s_leaves, p_leaves)]
        return (tree.unflatten(p_def, [o[0] for o in outs]),
                tree.unflatten(p_def, [o[1] for o in outs]))

    return Optimizer(init, update)


def _as_real(x):
    """``torch.view_as_real``: a complex array as real pairs along a new last axis."""
    return fa.stack([fa.real(x), fa.imag(x)], axis=-1)


def _as_complex(x):
    """The inverse of ``_as_real``."""
    return x[..., 0] + 1j * x[..., 1]


def _componentwise(update_leaf: Callable) -> Callable:
    """``update_leaf`` for a complex parameter as PyTorch runs it: on ``view_as_real`` of the
    parameter, its gradient and its parameter-shaped state, so each real and imaginary
    component is a separate coordinate (Adam's second moment is ``re(g)^2`` and ``im(g)^2``,
    not the complex square ``g * g``).  State buffers stay complex, as PyTorch keeps them;
    scalar fields (the step counter) pass through."""

    def update(g, s, p):
        def real(x):
            full = x is not None and x.dtype.kind == "c" and tuple(x.shape) == tuple(p.shape)
            return _as_real(x) if full else x

        new_p, new_s = update_leaf(_as_real(g), type(s)(*map(real, s)), _as_real(p))
        back = [f if f is None or f.ndim <= p.ndim else _as_complex(f) for f in new_s]
        return _as_complex(new_p), type(s)(*back)

    return update


# --- small helpers shared by the update rules


def _step0():
    return fa.asarray(0, dtype=shapes.int64)


def _f64(step):
    return fa.astype(step, shapes.float64)


def _like(factor, p):
    """A scalar factor (Python number or float64 array) in ``p``'s dtype."""
    return fa.astype(factor, p.dtype) if hasattr(factor, "shape") else factor


def _direction(g, p, weight_decay, maximize):
    """The gradient as the algorithms use it: negated to maximise, plus L2 decay."""
    g = -g if maximize else g
    return g + weight_decay * p if weight_decay else g


def _check(name: str, **conditions) -> None:
    for what, ok in conditions.items():
        if not ok:
            raise ValueError(f"optim.{name}: invalid {what.replace('__', ' ')}")


# --- SGD


class SGDState(NamedTuple):
    step: object
    momentum_buffer: object
    _leaf_state = True


def sgd(lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
        weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False) -> Optimizer:
    """Stochastic gradient descent with optional (Nesterov) momentum, as in ``torch.optim.SGD``.

    ``b_1 = g_1``; ``b_t = momentum * b_{t-1} + (1 - dampening) * g_t``; the step uses
    ``g_t + momentum * b_t`` (Nesterov) or ``b_t``.
    """
    _check("sgd", learning_rate=_nonneg(lr), momentum=momentum >= 0,
           weight_decay=weight_decay >= 0,
           nesterov__needs_momentum_and_zero_dampening=(not nesterov or
                                                       (momentum > 0 and dampening == 0)))

    def init_leaf(p):
        return SGDState(_step0(), fa.zeros_like(p) if momentum else None)

    def update_leaf(g, s, p):
        g = _direction(g, p, weight_decay, maximize)
        step = s.step + 1
        buf = None
        if momentum:
            buf = fa.where(step == 1, g, momentum * s.momentum_buffer + (1 - dampening) * g)
            g = g + momentum * buf if nesterov else buf
        return p - _like(lr, p) * g, SGDState(step, buf)

    return _per_leaf(init_leaf, update_leaf, "sgd")


def _nonneg(x) -> bool:
    return not isinstance(x, (int, float)) or x >= 0


# --- Adam / AdamW


class AdamState(NamedTuple):
    step: object
    exp_avg: object
    exp_avg_sq: object
    max_exp_avg_sq: object
    _leaf_state = True


def _adam(name: str, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled) -> Optimizer:
    beta1, beta2 = betas
    _check(name, learning_rate=_nonneg(lr), epsilon=eps >= 0, beta1=0 <= beta1 < 1,
           beta2=0 <= beta2 < 1, weight_decay=weight_decay >= 0)

    def init_leaf(p):
        return AdamState(_step0(), fa.zeros_like(p), fa.zeros_like(p),
                         fa.zeros_like(p) if amsgrad else None)

    def update_leaf(g, s, p):
        if decoupled:
            g = -g if maximize else g
            if weight_decay:
                p = p * (1 - _like(lr, p) * weight_decay)
        else:
            g = _direction(g, p, weight_decay, maximize)
        step = s.step + 1
        t = _f64(step)
        m = beta1 * s.exp_avg + (1 - beta1) * g
        v = beta2 * s.exp_avg_sq + (1 - beta2) * g * g
        vmax = fa.maximum(s.max_exp_avg_sq, v) if amsgrad else None
        bc1 = 1 - beta1 ** t
        bc2_sqrt = fa.sqrt(1 - beta2 ** t)
        denom = fa.sqrt(vmax if amsgrad else v) / _like(bc2_sqrt, p) + eps
        new_p = p - _like(lr / bc1, p) * m / denom
        return new_p, AdamState(step, m, v, vmax)

    return _per_leaf(init_leaf, update_leaf, name)


def adam(lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False,
         decoupled_weight_decay: bool = False) -> Optimizer:
    """Adam (``torch.optim.Adam``): L2 weight decay added to the gradient, or with
    ``decoupled_weight_decay`` AdamW's decay."""
    return _adam("adam", lr, betas, eps, weight_decay, amsgrad, maximize,
                 decoupled=decoupled_weight_decay)


def adamw(lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False,
          decoupled_weight_decay: bool = True) -> Optimizer:
    """AdamW (``torch.optim.AdamW``): ``p *= 1 - lr * weight_decay`` before the Adam step."""
    return _adam("adamw", lr, betas, eps, weight_decay, amsgrad, maximize,
                 decoupled=decoupled_weight_decay)


# --- RMSprop


class RMSpropState(NamedTuple):
    step: object
    square_avg: object
    grad_avg: object
    momentum_buffer: object
    _leaf_state = True


def rmsprop(lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
            momentum: float = 0.0, centered: bool = False, maximize: bool = False) -> Optimizer:
    """RMSprop (``torch.optim.RMSprop``), optionally centered and with momentum."""
    _check("rmsprop", learning_rate=_nonneg(lr), epsilon=eps >= 0, alpha=alpha >= 0,
           momentum=momentum >= 0, weight_decay=weight_decay >= 0)

    def init_leaf(p):
        return RMSpropState(_step0(), fa.zeros_like(p), fa.zeros_like(p) if centered else None,
                            fa.zeros_like(p) if momentum else None)

    def update_leaf(g, s, p):
        g = _direction(g, p, weight_decay, maximize)
        sq = alpha * s.square_avg + (1 - alpha) * g * g
        avg_g = alpha * s.grad_avg + (1 - alpha) * g if centered else None
        denom = fa.sqrt(sq - avg_g * avg_g if centered else sq) + eps
        buf = None
        if momentum:
            buf = momentum * s.momentum_buffer + g / denom
            new_p = p - _like(lr, p) * buf
        else:
            new_p = p - _like(lr, p) * g / denom
        return new_p, RMSpropState(s.step + 1, sq, avg_g, buf)

    return _per_leaf(init_leaf, update_leaf, "rmsprop")


# --- Adagrad


class AdagradState(NamedTuple):
    step: object
    sum: object
    _leaf_state = True


def adagrad(lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
            initial_accumulator_value: float = 0.0, eps: float = 1e-10,
            maximize: bool = False) -> Optimizer:
    """Adagrad (``torch.optim.Adagrad``): ``lr / (1 + (t-1) * lr_decay)`` over ``sqrt(sum g^2)``."""
    _check("adagrad", learning_rate=_nonneg(lr), lr_decay=lr_decay >= 0,
           weight_decay=weight_decay >= 0, initial_accumulator_value=initial_accumulator_value >= 0,
           epsilon=eps >= 0)

    def init_leaf(p):
        return AdagradState(_step0(), fa.full_like(p, initial_accumulator_value))

    def update_leaf(g, s, p):
        g = _direction(g, p, weight_decay, maximize)
        step = s.step + 1
        clr = lr / (1 + (_f64(step) - 1) * lr_decay)
        acc = s.sum + g * g
        return p - _like(clr, p) * g / (fa.sqrt(acc) + eps), AdagradState(step, acc)

    return _per_leaf(init_leaf, update_leaf, "adagrad")


# --- Adadelta


class AdadeltaState(NamedTuple):
    step: object
    square_avg: object
    acc_delta: object
    _leaf_state = True


def adadelta(lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
             maximize: bool = False) -> Optimizer:
    """Adadelta (``torch.optim.Adadelta``)."""
    _check("adadelta", learning_rate=_nonneg(lr), rho=0 <= rho <= 1, epsilon=eps >= 0,
           weight_decay=weight_decay >= 0)

    def init_leaf(p):
        return AdadeltaState(_step0(), fa.zeros_like(p), fa.zeros_like(p))

    def update_leaf(g, s, p):
        g = _direction(g, p, weight_decay, maximize)
        sq = rho * s.square_avg + (1 - rho) * g * g
        delta = fa.sqrt(s.acc_delta + eps) / fa.sqrt(sq + eps) * g
        acc = rho * s.acc_delta + (1 - rho) * delta * delta
        return p - _like(lr, p) * delta, AdadeltaState(s.step + 1, sq, acc)

    return _per_leaf(init_leaf, update_leaf, "adadelta")


# --- Adamax


class AdamaxState(NamedTuple):
    step: object
    exp_avg: object
    exp_inf: object
    _leaf_state = True


def adamax(lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
           weight_decay: float = 0.0, maximize: bool = False) -> Optimizer:
    """Adamax (``torch.optim.Adamax``): Adam with the infinity norm."""
    beta1, beta2 = betas
    _check("adamax", learning_rate=_nonneg(lr), epsilon=eps >= 0, beta1=0 <= beta1 < 1,
           beta2=0 <= beta2 < 1, weight_decay=weight_decay >= 0)

    def init_leaf(p):
        return AdamaxState(_step0(), fa.zeros_like(p), fa.zeros_like(p))

    def update_leaf(g, s, p):
        g = _direction(g, p, weight_decay, maximize)
        step = s.step + 1
        m = beta1 * s.exp_avg + (1 - beta1) * g
        u = fa.maximum(beta2 * s.exp_inf, fa.abs(g) + eps)
        bc1 = 1 - beta1 ** _f64(step)
        return p - _like(lr / bc1, p) * m / u, AdamaxState(step, m, u)

    return _per_leaf(init_leaf, update_leaf, "adamax")


# --- NAdam


class NAdamState(NamedTuple):
    step: object
    mu_product: object
    exp_avg: object
    exp_avg_sq: object
    _leaf_state = True


def nadam(lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 0.0, momentum_decay: float = 4e-3,
          decoupled_weight_decay: bool = False, maximize: bool = False) -> Optimizer:
    """NAdam (``torch.optim.NAdam``): Adam with Nesterov momentum and a momentum schedule
    ``mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``."""
    beta1, beta2 = betas
    _check("nadam", learning_rate=_nonneg(lr), epsilon=eps >= 0, beta1=0 <= beta1 < 1,
           beta2=0 <= beta2 < 1, weight_decay=weight_decay >= 0, momentum_decay=momentum_decay >= 0)

    def init_leaf(p):
        return NAdamState(_step0(), fa.asarray(1.0, dtype=shapes.float64), fa.zeros_like(p),
                          fa.zeros_like(p))

    def update_leaf(g, s, p):
        g = -g if maximize else g
        if weight_decay:
            if decoupled_weight_decay:
                p = p * (1 - _like(lr, p) * weight_decay)
            else:
                g = g + weight_decay * p
        step = s.step + 1
        t = _f64(step)
        mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product = s.mu_product * mu
        m = beta1 * s.exp_avg + (1 - beta1) * g
        v = beta2 * s.exp_avg_sq + (1 - beta2) * g * g
        denom = fa.sqrt(v / _like(1 - beta2 ** t, p)) + eps
        c_grad = lr * (1 - mu) / (1 - mu_product)
        c_avg = lr * mu_next / (1 - mu_product * mu_next)
        new_p = p - _like(c_grad, p) * g / denom - _like(c_avg, p) * m / denom
        return new_p, NAdamState(step, mu_product, m, v)

    return _per_leaf(init_leaf, update_leaf, "nadam")


LEAF_STATES = {cls.__name__: cls for cls in
               (SGDState, AdamState, RMSpropState, AdagradState, AdadeltaState, AdamaxState,
                NAdamState)}
