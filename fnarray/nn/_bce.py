"""Elementwise binary cross entropy with PyTorch's value *and* derivatives.

PyTorch clamps each log at -100 in the forward pass, but its backward is not the derivative
of that clamped expression: it is ``(x - y) / max((1 - x) x, 1e-12)`` for the input (finite
at ``x`` = 0 or 1, and much smaller than the true derivative for ``x`` below ~1e-12), with
``(x^2 - 2xy + y) / max((1 - x) x, 1e-12)^2`` as its second derivative. Training code that
relies on those numbers (a sigmoid saturating to exactly 0.0 in float32 still gets a push
back) behaves the same only if the rules are the same, so both orders are custom rules
here rather than derivatives of the clamped logs.

The target's derivative is ``log(1 - x) - log(x)`` with the same -100 clamps (PyTorch
evaluates the unclamped logit there, giving +-inf at ``x`` = 0 or 1; a finite value is kept
so that nothing here ever evaluates ``log(0)``).
"""

from __future__ import annotations

import fnarray as fa
from fnarray.transforms import custom_jvp

#: PyTorch's ``EPSILON`` in ``binary_cross_entropy_backward``.
EPS = 1e-12


def _log_clamped(v, log):
    """``max(log(v), -100)`` (``log`` is ``fa.log``, or ``fa.log1p`` with ``v`` as its
    argument) that never evaluates the log at its pole: -100 there."""
    pole = 0 if log is fa.log else -1
    ok = v > pole
    safe = fa.where(ok, v, pole + 1)
    return fa.where(ok, fa.maximum(log(safe), -100.0), -100.0)


def _logs(x):
    return _log_clamped(x, fa.log), _log_clamped(-x, fa.log1p)


def _denominator(x):
    return fa.maximum((1 - x) * x, EPS)


@custom_jvp
def bce_elementwise(x, y):
    """``-(y log x + (1 - y) log(1 - x))`` with both logs clamped at -100."""
    log_x, log_1mx = _logs(x)
    return -(y * log_x + (1 - y) * log_1mx)


@custom_jvp
def _input_derivative(x, y):
    """PyTorch's ``d bce / dx``: ``(x - y) / max((1 - x) x, eps)``."""
    return (x - y) / _denominator(x)


@bce_elementwise.defjvp
def _bce_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    log_x, log_1mx = _logs(x)
    out = -(y * log_x + (1 - y) * log_1mx)
    return out, _input_derivative(x, y) * tx + (log_1mx - log_x) * ty


@_input_derivative.defjvp
def _input_derivative_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    d = _denominator(x)
    return (x - y) / d, (x * x - 2 * x * y + y) / (d * d) * tx - ty / d
