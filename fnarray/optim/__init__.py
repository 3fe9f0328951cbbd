"""Optimizers: pure update math (``fnarray.optim.functional``) and PyTorch-style classes."""

from fnarray.optim import functional  # noqa: F401
