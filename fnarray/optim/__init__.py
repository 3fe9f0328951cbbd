"""Optimizers: pure update math (``fnarray.optim.functional``) and PyTorch-style classes."""

from fnarray.optim import functional, lr_scheduler  # noqa: F401
from fnarray.optim.algorithms import (  # noqa: F401
    SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam, RMSprop)
from fnarray.optim.lbfgs import LBFGS  # noqa: F401
from fnarray.optim.optimizer import Optimizer  # noqa: F401
