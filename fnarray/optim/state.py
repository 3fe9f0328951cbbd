"""``optimizer.state`` as PyTorch shows it: ``state[p]`` is a dict of tensors keyed as in
``torch.optim`` (``"step"``, ``"exp_avg"``, ``"momentum_buffer"``, ...).

Internally each parameter's state stays the immutable leaf ``NamedTuple`` of arrays that
the functional update takes (``OptimizerState.leaf``).  ``state[p]`` holds the leaf current
when it was read (so, like any reference to the state, it keeps its values, and the fused
step will not reuse those buffers while it is held); reading a key gives a tensor of that
array, and attribute access (``state[p].exp_avg``) the functional state's array itself.
Assigning a key (``state[k] = v.to(device)``, the usual resume loop) replaces that field
of the optimizer's current state.  ``step`` is a
float32 0-d tensor, as PyTorch stores it; SGD shows only ``momentum_buffer`` (``None``
without momentum), other optimizers omit fields they do not use (``max_exp_avg_sq``
without ``amsgrad``).  Because arrays never change, an in-place method called on a
tensor read from the state changes that tensor only: assign it back to update the state.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from fnarray import api as fa
from fnarray.compat.tensor import Tensor

# fields PyTorch does not keep for that optimizer
_HIDDEN = {"SGDState": ("step",)}
# fields PyTorch keeps even when unset (None)
_ALWAYS = {"SGDState": ("momentum_buffer",)}


def _is_leaf_state(value) -> bool:
    return getattr(value, "_leaf_state", False)


def pytorch_keys(leaf) -> list[str]:
    """The keys PyTorch's ``state[p]`` has for this leaf state."""
    kind = type(leaf).__name__
    hidden, always = _HIDDEN.get(kind, ()), _ALWAYS.get(kind, ())
    return [f for f in leaf._fields if f not in hidden
            and (getattr(leaf, f) is not None or f in always)]


def exposed(leaf, key: str):
    """Field ``key`` as PyTorch holds it: a tensor (``step`` as float32), or None."""
    value = getattr(leaf, key)
    if value is None:
        return None
    if key == "step":
        value = fa.astype(value, np.float32)
    return Tensor._make(value, None, 0)


def to_pytorch_dict(leaf) -> dict:
    """The per-parameter entry of ``state_dict()["state"]``."""
    return {k: exposed(leaf, k) for k in pytorch_keys(leaf)}


def from_pytorch_dict(fields: dict, template):
    """A leaf state shaped like ``template`` (what ``init`` gives for the parameter) with
    the values of a saved ``state_dict`` entry; each field keeps the template's dtype."""
    values = {}
    for name in template._fields:
        ref = getattr(template, name)
        v = fields.get(name)
        if v is None:
            if name == "step" and name not in fields and ref is not None:
                # SGD's state has no step; a saved momentum buffer means steps were taken
                has_buffers = any(fields.get(f) is not None for f in template._fields)
                v = fa.asarray(1 if has_buffers else 0, dtype=ref.dtype)
            values[name] = v if v is not None else (ref if name not in fields else None)
            continue
        v = fa.asarray(v.array if isinstance(v, Tensor) else v)
        if ref is not None and v.dtype != ref.dtype:
            v = fa.astype(v, ref.dtype)
        if ref is not None and v.device is not ref.device:
            v = fa.device_put(v, ref.device)
        values[name] = v
    return type(template)(**values)


class ParamState(MutableMapping):
    """``optimizer.state[p]``: one parameter's leaf state as a dict of tensors."""

    def __init__(self, owner: "OptimizerState", param):
        self._owner, self._param = owner, param
        self._snapshot = owner.leaf(param)

    def _leaf(self):
        return self._snapshot

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._snapshot, name)

    def __getitem__(self, key: str):
        leaf = self._leaf()
        if key not in pytorch_keys(leaf):
            raise KeyError(key)
        return exposed(leaf, key)

    def __setitem__(self, key: str, value) -> None:
        leaf = self._owner.leaf(self._param)
        if key not in leaf._fields or key in _HIDDEN.get(type(leaf).__name__, ()):
            raise KeyError(f"{type(leaf).__name__[:-len('State')]} keeps no state "
                           f"{key!r}; its keys are {pytorch_keys(leaf)}")
        if value is not None:
            ref = getattr(leaf, key)
            value = fa.asarray(value.array if isinstance(value, Tensor) else value)
            if ref is not None and value.dtype != ref.dtype:
                value = fa.astype(value, ref.dtype)
        self._snapshot = leaf._replace(**{key: value})
        self._owner.set_leaf(self._param, self._snapshot)

    def __delitem__(self, key: str) -> None:
        raise TypeError("optimizer state fields cannot be deleted; assign a new value")

    def __iter__(self):
        return iter(pytorch_keys(self._leaf()))

    def __len__(self) -> int:
        return len(pytorch_keys(self._leaf()))

    def __repr__(self):
        return repr(dict(self.items()))


class OptimizerState(MutableMapping):
    """``optimizer.state``: parameter -> ``ParamState`` (other keys, such as LBFGS's,
    hold whatever was stored)."""

    def __init__(self):
        self._data: dict = {}

    def leaf(self, param):
        """The leaf ``NamedTuple`` the functional update takes (KeyError if none)."""
        return self._data[param]

    def set_leaf(self, param, leaf) -> None:
        self._data[param] = leaf

    def __getitem__(self, key):
        value = self._data[key]
        return ParamState(self, key) if _is_leaf_state(value) else value

    def __setitem__(self, key, value) -> None:
        if isinstance(value, (dict, ParamState)) and key in self._data \
                and _is_leaf_state(self._data[key]):
            view = ParamState(self, key)
            for k, v in dict(value).items():
                view[k] = v
        else:
            self._data[key] = value

    def __delitem__(self, key) -> None:
        del self._data[key]

    def __contains__(self, key) -> bool:
        return key in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self):
        return repr({k: self[k] for k in self._data})
