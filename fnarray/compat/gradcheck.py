"""``torch.autograd.gradcheck``: compare the Jacobians autograd computes with central finite
differences, as PyTorch's does (the check its "Extending PyTorch" guide runs on custom
``autograd.Function``s).

For every input that requires grad and every output, the analytical Jacobian is built row
by row with ``autograd.grad`` and the numerical one column by column from
``(f(x + eps e_j) - f(x - eps e_j)) / (2 eps)``; they must agree within
``atol + rtol * |numerical|``.  Inputs should be float64, as PyTorch recommends (float32
differences are too coarse for the default tolerances).
"""

from __future__ import annotations

import numpy as np

from fnarray.compat import grad_mode
from fnarray.compat.tensor import Tensor


class GradcheckError(RuntimeError):
    """A Jacobian computed by autograd disagrees with finite differences."""


def _outputs(func, inputs) -> list:
    out = func(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _float_outputs(outs) -> list:
    return [o for o in outs if isinstance(o, Tensor) and o.is_floating_point()]


def _numerical(func, inputs, k: int, eps: float, n_out: list) -> list:
    """One ``(output size, input size)`` finite-difference Jacobian per output."""
    x = inputs[k]
    base = np.array(x.detach().numpy(), dtype=x.detach().numpy().dtype)
    cols = [np.zeros((m, base.size)) for m in n_out]
    for j in range(base.size):
        values = []
        for sign in (1, -1):
            moved = base.copy().reshape(-1)
            moved[j] += sign * eps
            args = list(inputs)
            args[k] = Tensor(moved.reshape(base.shape))
            with grad_mode.no_grad():
                values.append([np.asarray(o.detach().numpy(), dtype=np.float64).reshape(-1)
                               for o in _float_outputs(_outputs(func, args))])
        for i, (plus, minus) in enumerate(zip(*values)):
            cols[i][:, j] = (plus - minus) / (2 * eps)
    return cols


def _analytical(outs, x) -> list:
    from fnarray.compat import autograd
    jacobians = []
    for o in outs:
        flat = o.reshape(-1)
        rows = np.zeros((flat.shape[0], x.numel()))
        for i in range(flat.shape[0]):
            (g,) = autograd.grad(flat[i], (x,), retain_graph=True, allow_unused=True)
            if g is not None:
                rows[i] = np.asarray(g.detach().numpy(), dtype=np.float64).reshape(-1)
        jacobians.append(rows)
    return jacobians


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, **_options) -> bool:
    """True when every analytical Jacobian matches finite differences; otherwise raise
    ``GradcheckError`` naming the output and input (or return False when
    ``raise_exception=False``)."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    outs = _float_outputs(_outputs(func, inputs))
    for k, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        if x.is_complex():
            raise ValueError("gradcheck: complex inputs are not supported here; check the real "
                             "and imaginary parts as separate real inputs")
        numerical = _numerical(func, inputs, k, eps, [o.numel() for o in outs])
        for i, (a, n) in enumerate(zip(_analytical(outs, x), numerical)):
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                if not raise_exception:
                    return False
                raise GradcheckError(f"Jacobian mismatch for output {i} with respect to input "
                                     f"{k},\nnumerical:{n}\nanalytical:{a}\n")
    return True
