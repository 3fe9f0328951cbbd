"""``Parameter``: a tensor that a ``Module`` registers as learnable when assigned to it."""

from __future__ import annotations

from fnarray.compat.tensor import Tensor


class Parameter(Tensor):
    """A compat ``Tensor`` that requires grad by default and is registered by ``Module``.

    ``Parameter(t)`` shares nothing mutable with ``t``: it holds the same immutable value.
    """

    def __init__(self, data=None, requires_grad: bool = True):
        super().__init__(data)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo):
        out = Parameter(self._value, requires_grad=self.requires_grad)
        memo[id(self)] = out
        return out

    def __reduce__(self):
        return (Parameter, (self.detach().numpy(), self.requires_grad))


class Buffer(Tensor):
    """Marks a tensor to be registered as a buffer when assigned to a ``Module`` attribute."""

    def __init__(self, data=None, *, persistent: bool = True):
        super().__init__(data)
        self.persistent = persistent
