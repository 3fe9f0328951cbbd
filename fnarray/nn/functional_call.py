"""``functional_call``: run a module with substituted parameters and buffers.

The substitution is a per-thread table consulted by ``Module.__getattr__``; nothing is
written to the module, so the call is safe under every transformation (the values may be
tracers of ``fa.grad``, ``fa.jvp``, ``fa.vmap`` or ``fa.jit``) and from several threads.
"""

from __future__ import annotations

from fnarray.nn.module import SUBSTITUTION, Module


def functional_call(module: Module, parameters_and_buffers, args=(), kwargs=None, *,
                    tie_weights: bool = True, strict: bool = False):
    """``module(*args, **kwargs)`` with the values of ``parameters_and_buffers`` (a dict
    keyed like ``state_dict()``, or a tuple of such dicts) in place of the module's own.
    Names not given keep the module's values; ``strict=True`` requires every one."""
    if isinstance(parameters_and_buffers, (tuple, list)):
        merged = {}
        for d in parameters_and_buffers:
            clash = set(merged) & set(d)
            if clash:
                raise ValueError(f"functional_call: {sorted(clash)} appear in more than one dict")
            merged.update(d)
        parameters_and_buffers = merged
    owners = {}
    for prefix, mod in module.named_modules(remove_duplicate=False):
        for table in ("_parameters", "_buffers"):
            for name in mod.__dict__[table]:
                owners[(prefix + "." if prefix else "") + name] = (mod, name)
    unknown = [k for k in parameters_and_buffers if k not in owners]
    if unknown:
        raise ValueError(f"functional_call: unexpected key(s) {unknown}; the module "
                         f"{type(module).__name__} has {sorted(owners)}")
    if strict:
        missing = [k for k in owners if k not in parameters_and_buffers]
        if missing:
            raise ValueError(f"functional_call: missing key(s) {missing} (strict=True)")
    table: dict = {}
    for key, value in parameters_and_buffers.items():
        mod, name = owners[key]
        table.setdefault(id(mod), {})[name] = value
    if tie_weights:  # a parameter shared by several modules follows its substitute everywhere
        by_handle = {}
        for key, (mod, name) in owners.items():
            by_handle.setdefault(id(mod.__dict__["_parameters"].get(name,
                                  mod.__dict__["_buffers"].get(name))), []).append((mod, name, key))
        for group in by_handle.values():
            given = [parameters_and_buffers[k] for _, _, k in group if k in parameters_and_buffers]
            if given:
                for mod, name, _ in group:
                    table.setdefault(id(mod), {}).setdefault(name, given[0])
    if not isinstance(args, tuple):
        args = (args,)
    SUBSTITUTION.stack.append(table)
    try:
        return module(*args, **(kwargs or {}))
    finally:
        SUBSTITUTION.stack.pop()
