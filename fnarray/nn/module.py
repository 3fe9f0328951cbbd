"""``Module``: PyTorch's contract for stateful layers, on top of compat tensors.

A module keeps its ``Parameter`` handles, buffers and submodules in ordered dicts, filled by
``__setattr__``; attribute reads go through ``__getattr__``, which first consults the
per-thread substitution installed by ``functional_call`` (so a module can be run with other
values without any attribute being written), then the dicts.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from typing import Any, Callable, Iterator, NamedTuple

import fnarray as fa
from fnarray.compat.tensor import Tensor
from fnarray.core.shapes import canonical_dtype, is_inexact
from fnarray.nn.parameter import Buffer, Parameter


class _Substitution(threading.local):
    """Per-thread stack of ``{id(module): {name: value}}`` installed by ``functional_call``."""

    def __init__(self):
        self.stack: list[dict] = []


SUBSTITUTION = _Substitution()


def _substituted(module, name):
    """``(True, value)`` when ``functional_call`` substitutes ``module.name`` in this thread."""
    if SUBSTITUTION.stack:
        table = SUBSTITUTION.stack[-1].get(id(module))
        if table is not None and name in table:
            return True, table[name]
    return False, None


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``remove()`` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self.hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` did not match."""

    missing_keys: list
    unexpected_keys: list

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")

    __str__ = __repr__


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _as_tensor(value):
    return value if isinstance(value, Tensor) or value is None else Tensor(value)


class Module:
    """Base class of every layer and model; subclasses define ``__init__`` and ``forward``."""

    training: bool
    _version = 1

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments; "
                            f"Module.__init__ takes none")
        setattr_ = object.__setattr__
        setattr_(self, "training", True)
        setattr_(self, "_parameters", OrderedDict())
        setattr_(self, "_buffers", OrderedDict())
        setattr_(self, "_non_persistent_buffers_set", set())
        setattr_(self, "_modules", OrderedDict())
        setattr_(self, "_forward_hooks", OrderedDict())
        setattr_(self, "_forward_pre_hooks", OrderedDict())
        setattr_(self, "_backward_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise TypeError(f"Module [{type(self).__name__}] is missing the required \"forward\" "
                        f"function; define forward(self, ...) in the subclass")

    # ------------------------------------------------------------------ registration

    def _check_name(self, name, kind: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"{kind} name can't be empty or contain \".\", got {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or ``None``, a declared but absent parameter) under ``name``."""
        self._check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a non-learnable tensor saved in ``state_dict`` unless ``persistent=False``."""
        self._check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        self._buffers[name] = _as_tensor(tensor)
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Add a child module under ``name``."""
        self._check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value) -> None:
        if SUBSTITUTION.stack:
            # functional_call never writes to the module: a substituted name, or any buffer
            # (e.g. running statistics, whose new value may be a transformation's tracer),
            # is rebound in the call's own table and read back from there
            table = SUBSTITUTION.stack[-1].get(id(self))
            if (table is not None and name in table) or name in self.__dict__.get("_buffers", ()):
                SUBSTITUTION.stack[-1].setdefault(id(self), {})[name] = value
                return
        d = self.__dict__
        if isinstance(value, Parameter):
            self._remove_from(name, d, "_buffers", "_modules")
            self.register_parameter(name, value)
        elif "_parameters" in d and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                f"(nn.Parameter or None expected)")
            self._parameters[name] = None
        elif isinstance(value, Module):
            self._remove_from(name, d, "_parameters", "_buffers")
            self.add_module(name, value)
        elif "_modules" in d and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (nn.Module or None expected)")
            self._modules[name] = None
        elif isinstance(value, Buffer):
            self._remove_from(name, d, "_parameters", "_modules")
            self.register_buffer(name, value, value.persistent)
        elif "_buffers" in d and name in self._buffers:
            if value is not None and not isinstance(value, (Tensor, fa.Array)):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                f"(Tensor or None expected)")
            self._buffers[name] = _as_tensor(value)
        else:
            object.__setattr__(self, name, value)

    def _remove_from(self, name, d, *tables) -> None:
        d.pop(name, None)
        for t in tables:
            if t in d:
                d[t].pop(name, None)

    def __getattr__(self, name: str):
        found, value = _substituted(self, name)
        if found:
            return value
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(table, {}):
                del self.__dict__[table][name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # ------------------------------------------------------------------ traversal

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """``(qualified name, module)`` for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            yield from child.named_modules(memo, prefix + ("." if prefix else "") + name,
                                           remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator["Module"]:
        for _, c in self.named_children():
            yield c

    def _named_members(self, table: str, prefix: str, recurse: bool, remove_duplicate: bool,
                       skip: Callable | None = None):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in mod.__dict__[table].items():
                if value is None or (skip is not None and skip(mod, name)):
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> "Module":
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules:
                raise AttributeError(f"{mod._get_name()} has no attribute `{part}`")
            mod = mod._modules[part]
        return mod

    def get_parameter(self, target: str) -> Parameter:
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise AttributeError(f"{mod._get_name()} has no parameter `{name}`")
        return mod._parameters[name]

    def apply(self, fn: Callable[["Module"], Any]) -> "Module":
        """Call ``fn`` on every submodule (children first) and then on this module."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and state

    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        object.__setattr__(self, "training", mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is None:
                continue
            p.grad = None if set_to_none else Tensor(fa.zeros_like(p.grad.array))

    def _apply_values(self, fn: Callable) -> "Module":
        """Replace every parameter's, gradient's and buffer's value by ``fn(value)``, keeping
        the handles (optimizers hold them)."""
        for mod in self.modules():
            for p in mod._parameters.values():
                if p is None:
                    continue
                p.data = fn(p.array)
                if p.grad is not None:
                    p.grad = Tensor(fn(p.grad.array))
            for name, b in mod._buffers.items():
                if b is not None:
                    mod._buffers[name] = Tensor(fn(b.array))
        return self

    def to(self, *args, **kwargs) -> "Module":
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(tensor)``; dtype
        changes apply to floating-point values only."""
        from fnarray.compat.tensor import _is_dtype
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif _is_dtype(a):  # before devices: a NumPy dtype has a ``type`` attribute
                dtype = a
            elif isinstance(a, str) or hasattr(a, "platform") or hasattr(a, "type"):
                device = a
            elif a is not None:
                dtype = a
        if dtype is not None:
            dtype = canonical_dtype(dtype)
            if not is_inexact(dtype):
                raise TypeError(f"nn.Module.to only accepts floating point or complex dtypes, "
                                f"but got desired dtype={dtype}")

        def convert(v):
            if dtype is not None and is_inexact(v.dtype):
                v = fa.astype(v, dtype)
            return v if device is None else fa.device_put(v, str(device))
        return self._apply_values(convert)

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, device=None) -> "Module":
        return self.to("cuda" if device is None else
                       (f"cuda:{device}" if isinstance(device, int) else device))

    def float(self) -> "Module":
        return self.to(dtype=fa.float32)

    def double(self) -> "Module":
        return self.to(dtype=fa.float64)

    def half(self) -> "Module":
        return self.to(dtype=fa.float16)

    def bfloat16(self) -> "Module":
        """Floating parameters and buffers to bfloat16 (imports ml_dtypes on first use)."""
        return self.to(dtype=fa.bfloat16)

    def type(self, dst_type) -> "Module":
        return self.to(dtype=dst_type)

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Parameters and persistent buffers by qualified name (detached unless ``keep_vars``)."""
        out = OrderedDict() if destination is None else destination
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def _local_state(self):
        for name, p in self._parameters.items():
            if p is not None:
                yield name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                yield name, b

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False) -> IncompatibleKeys:
        """Copy values in by qualified name.  Shape mismatches are always errors; missing
        and unexpected keys are errors when ``strict`` (and are returned either way)."""
        missing, errors, expected = [], [], set()
        for mod_prefix, mod in self.named_modules():
            base = mod_prefix + "." if mod_prefix else ""
            for name, handle in mod._local_state():
                key = base + name
                expected.add(key)
                if key not in state_dict:
                    missing.append(key)
                    continue
                value = state_dict[key]
                value = value.array if isinstance(value, Tensor) else fa.asarray(value)
                if tuple(value.shape) != tuple(handle.shape):
                    errors.append(f"size mismatch for {key}: copying a param with shape "
                                  f"torch.Size({list(value.shape)}) from checkpoint, the shape "
                                  f"in current model is torch.Size({list(handle.shape)}).")
                    continue
                handle.data = fa.device_put(fa.astype(value, handle.dtype), str(handle.device))
        unexpected = [k for k in state_dict if k not in expected]
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {self._get_name()}:\n\t"
                               + "\n\t".join(errors))
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ calling and hooks

    def register_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, args)`` runs before ``forward``; a non-None result replaces args."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, args, output)`` runs after ``forward``; a non-None result replaces
        the output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_full_backward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` runs when the gradients with respect to
        the module's tensor inputs are computed; a non-None result replaces grad_input."""
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks:  # (checked first: most modules have no hooks)
            for hook in list(self._forward_pre_hooks.values()):
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        if self._backward_hooks:
            from fnarray.nn.hooks import run_with_backward_hooks
            out = run_with_backward_hooks(self, args, kwargs)
        else:
            out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                result = hook(self, args, out)
                if result is not None:
                    out = result
        return out

    # ------------------------------------------------------------------ printing

    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The text between the parentheses of this module's one-line ``repr``."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(m), 2) for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                body = extra_lines[0]
            else:
                body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"
