"""PyTorch-style stateful optimizers over the pure update math of ``optim.functional``.

An optimizer keeps ``param_groups`` (lists of parameter handles plus per-group options) and
``state`` (one leaf-state ``NamedTuple`` per parameter).  ``step()`` builds the functional
optimizer from each group's current options (so a scheduler's new ``lr`` takes effect),
runs its ``update`` on the parameters that have a gradient, and rebinds the handles.
"""

from __future__ import annotations

from typing import Callable

import fnarray as fa
from fnarray.compat.grad_mode import enable_grad
from fnarray.compat.tensor import Tensor
from fnarray.optim.fused import FusedStep
from fnarray.optim.state import OptimizerState, from_pytorch_dict, to_pytorch_dict


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class: ``Optimizer(params, defaults)`` where ``params`` is an iterable of
    tensors or of dicts (param groups with their own options)."""

    #: the factory in ``optim.functional`` and the options it takes (set by subclasses)
    functional: Callable | None = None
    options: tuple = ()

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state = OptimizerState()
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a Tensor")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group; options it does not give come from the optimizer's defaults."""
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else Tensor(fa.zeros_like(p.grad.array))

    def _init_state(self, options: dict, p):
        return type(self).functional(**options).init(p.array)

    @property
    def _fused(self) -> FusedStep:
        """The jit-compiled multi-tensor update (one per optimizer, compiled per options and
        parameter signature): see ``optim.fused``."""
        fused = self.__dict__.get("_fused_step")
        if fused is None:
            fused = self.__dict__["_fused_step"] = FusedStep(type(self).functional)
        return fused

    def step(self, closure: Callable | None = None):
        """One update of every parameter that has a gradient; ``closure`` (re-evaluating the
        loss) is called first when given, and its result returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        state = self.state
        for group in self.param_groups:
            params, grads = [], []
            for p in group["params"]:
                g = p.grad
                if g is not None:
                    params.append(p)
                    grads.append(g.array)
            if not params:
                continue
            options = {k: group[k] for k in self.options}
            states = [state.leaf(p) if p in state else self._init_state(options, p)
                      for p in params]
            # The parameters are passed as their holders too: a value only its tensor
            # holds is dead once the tensor is rebound below, so its buffer may take the
            # new value (``optim.fused``).
            new_values, new_states = self._fused(options, grads, states,
                                                 [p.array for p in params], params)
            del states, grads
            for p, v, s in zip(params, new_values, new_states):
                p.data = v
                state.set_leaf(p, s)
        return loss

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        """``{"state": {index: {key: tensor}}, "param_groups": [options + "params":
        indices]}`` with parameters numbered in group order and state keyed as
        ``torch.optim`` keys it (``step`` a float32 tensor; no private keys)."""
        index, groups = {}, []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = to_pytorch_dict(self.state.leaf(p))
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and per-parameter state saved by ``state_dict``."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved)} parameter groups, the optimizer "
                             f"has {len(self.param_groups)}")
        by_index = {}
        for group, sg in zip(self.param_groups, saved):
            if len(group["params"]) != len(sg["params"]):
                raise ValueError(f"loaded state dict contains a parameter group with "
                                 f"{len(sg['params'])} parameters that doesn't match the size of "
                                 f"optimizer's group ({len(group['params'])})")
            for p, i in zip(group["params"], sg["params"]):
                by_index[i] = p
            group.update({k: v for k, v in sg.items() if k != "params"})
        self.state = OptimizerState()
        for i, fields in state_dict["state"].items():
            p = by_index[int(i)]
            options = {k: group[k] for group in self.param_groups
                       if any(q is p for q in group["params"]) for k in self.options}
            self.state.set_leaf(p, from_pytorch_dict(fields, self._init_state(options, p)))

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)
