"""Import names under ``fnarray.compat`` for modules that live elsewhere in fnarray.

PyTorch code imports ``torch.nn.functional``, ``torch.optim.lr_scheduler`` or
``torch.utils.data``; under ``import fnarray.compat as torch`` (and in ``from
fnarray.compat.nn import functional``) those names must reach ``fnarray.nn``,
``fnarray.optim`` and ``fnarray.data`` themselves — the same module objects, never a
second copy.  A meta-path finder answers for the aliased prefixes by importing the real
module and handing that object to the import system.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

ALIASES = {
    "fnarray.compat.nn": "fnarray.nn",
    "fnarray.compat.optim": "fnarray.optim",
    "fnarray.compat.distributed": "fnarray.distributed",
    "fnarray.compat.utils.data": "fnarray.data",
    "fnarray.compat.autograd.functional": "fnarray.compat.autograd_functional",
    "fnarray.compat.autograd.function": "fnarray.compat.function",
}


def real_name(fullname: str) -> str | None:
    """The module ``fullname`` stands for, or None when it is not an alias."""
    for alias, real in ALIASES.items():
        if fullname == alias or fullname.startswith(alias + "."):
            return real + fullname[len(alias):]
    return None


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, real: str):
        self.real = real

    def create_module(self, spec):
        module = importlib.import_module(self.real)
        self.spec = module.__spec__
        return module

    def exec_module(self, module):
        """The real module ran when it was imported; keep its own ``__spec__`` (the
        import system set the alias's)."""
        module.__spec__ = self.spec


class AliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``fnarray.compat.<alias>[.sub]`` as the real module (see the module doc)."""

    def find_spec(self, fullname, path=None, target=None):
        real = real_name(fullname)
        if real is None:
            return None
        if importlib.util.find_spec(real) is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real))


def install() -> None:
    if not any(isinstance(f, AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, AliasFinder())
