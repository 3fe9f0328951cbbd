"""``fa.debug``: printing and callbacks that run when a traced program runs.

Python's ``print`` inside ``fa.jit`` runs once, while tracing, and shows tracers; these
run every time the compiled program runs, with the actual values, and also inside
``scan``/``while_loop`` bodies, under ``grad`` and (once per example) under ``vmap``.
"""

from __future__ import annotations

import builtins
from typing import Callable

import numpy as np

from fnarray.callbacks import bind_effect, split_static


def callback(fun: Callable, *args, ordered: bool = False, **kwargs) -> None:
    """Call ``fun(*args, **kwargs)`` with the arrays' values whenever the program runs.

    ``ordered`` is JAX's flag: here every effect already runs in program order (the
    executor runs one equation at a time), so both values behave the same.
    """
    operands, rebuild = split_static((args, kwargs))

    def run(*values):
        a, k = rebuild(list(values))
        fun(*a, **k)

    bind_effect(operands, run)


def print(fmt: str, *args, ordered: bool = False, **kwargs) -> None:  # noqa: A001 - JAX's name
    """``print(fmt.format(*args, **kwargs))`` with the arrays' values, whenever the program
    runs (arrays are shown as NumPy shows them); ``ordered`` as in ``callback``."""
    def show(*a, **k):
        host = lambda x: np.asarray(x) if hasattr(x, "__array__") else x  # noqa: E731
        builtins.print(fmt.format(*[host(x) for x in a], **{n: host(x) for n, x in k.items()}))

    callback(show, *args, ordered=ordered, **kwargs)
