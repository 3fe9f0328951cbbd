"""The stateful optimizer classes: options and defaults as in ``torch.optim``; the math is
``optim.functional``."""

from __future__ import annotations

from fnarray.optim import functional as of
from fnarray.optim.optimizer import Optimizer


def _make(name: str, factory, defaults: dict, doc: str) -> type:
    options = tuple(defaults)

    def __init__(self, params, **kwargs):
        unknown = set(kwargs) - set(options)
        if unknown:
            raise TypeError(f"{name}: unexpected option(s) {sorted(unknown)}; options are "
                            f"{list(options)}")
        merged = {**defaults, **kwargs}
        factory(**merged)  # validate the options now, with PyTorch's messages
        Optimizer.__init__(self, params, merged)

    def positional(self, params, *args, **kwargs):
        if len(args) > len(options):
            raise TypeError(f"{name}: too many positional arguments")
        kwargs.update(zip(options, args))
        __init__(self, params, **kwargs)

    positional.__doc__ = doc
    return type(name, (Optimizer,), {"functional": staticmethod(factory), "options": options,
                                     "__init__": positional, "__doc__": doc})


SGD = _make("SGD", of.sgd, dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                                nesterov=False, maximize=False),
            "SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, "
            "maximize=False)")
Adam = _make("Adam", of.adam, dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                   amsgrad=False, maximize=False),
             "Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, "
             "maximize=False)")
AdamW = _make("AdamW", of.adamw, dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                                      amsgrad=False, maximize=False),
              "AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, "
              "amsgrad=False, maximize=False)")
RMSprop = _make("RMSprop", of.rmsprop, dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                                            momentum=0.0, centered=False, maximize=False),
                "RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, "
                "centered=False, maximize=False)")
Adagrad = _make("Adagrad", of.adagrad, dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                                            initial_accumulator_value=0.0, eps=1e-10,
                                            maximize=False),
                "Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, "
                "initial_accumulator_value=0, eps=1e-10, maximize=False)")
Adadelta = _make("Adadelta", of.adadelta, dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
                                               maximize=False),
                 "Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)")
Adamax = _make("Adamax", of.adamax, dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                         maximize=False),
               "Adamax(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, "
               "maximize=False)")
NAdam = _make("NAdam", of.nadam, dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                      momentum_decay=4e-3, decoupled_weight_decay=False,
                                      maximize=False),
              "NAdam(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, "
              "momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False)")
