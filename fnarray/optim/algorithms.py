"""The stateful optimizer classes: options and defaults as in ``torch.optim``; the math is
``optim.functional``."""

from __future__ import annotations

from fnarray.optim import functional as of
from fnarray.optim.optimizer import Optimizer


# PyTorch's implementation switches: accepted and kept in the param groups (code reads and
# checkpoints them), with no effect on the math -- every step here is one fused program.
_SWITCHES = {"foreach": None, "capturable": False, "differentiable": False, "fused": None}


def _make(name: str, factory, defaults: dict, doc: str, switches=("foreach", "differentiable",
                                                                   "fused")) -> type:
    options = tuple(defaults)
    extras = {k: _SWITCHES[k] for k in switches}

    def __init__(self, params, **kwargs):
        unknown = set(kwargs) - set(options) - set(extras)
        if unknown:
            raise TypeError(f"{name}: unexpected option(s) {sorted(unknown)}; options are "
                            f"{list(options) + list(extras)}")
        if kwargs.get("differentiable"):
            raise RuntimeError(f"{name}(differentiable=True): the optimizer step is not "
                               f"recorded for autograd here; differentiate through an "
                               f"update written with tensor operations instead")
        merged = {**defaults, **extras, **kwargs}
        factory(**{k: merged[k] for k in options})  # validate now, with PyTorch's messages
        Optimizer.__init__(self, params, merged)

    def positional(self, params, *args, **kwargs):
        if len(args) > len(options):
            raise TypeError(f"{name}: too many positional arguments")
        kwargs.update(zip(options, args))
        __init__(self, params, **kwargs)

    positional.__doc__ = doc
    return type(name, (Optimizer,), {"functional": staticmethod(factory), "options": options,
                                     "__init__": positional, "__doc__": doc})


SGD = _make("SGD", of.sgd, dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                                nesterov=False, maximize=False),
            "SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, "
            "maximize=False)")
_ADAM_SWITCHES = ("foreach", "capturable", "differentiable", "fused")
Adam = _make("Adam", of.adam, dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                   amsgrad=False, maximize=False, decoupled_weight_decay=False),
             "Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, "
             "maximize=False, decoupled_weight_decay=False)", _ADAM_SWITCHES)
AdamW = _make("AdamW", of.adamw, dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                                      amsgrad=False, maximize=False, decoupled_weight_decay=True),
              "AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, "
              "amsgrad=False, maximize=False)", _ADAM_SWITCHES)
RMSprop = _make("RMSprop", of.rmsprop, dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0,
                                            momentum=0, centered=False, maximize=False),
                "RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, "
                "centered=False, maximize=False)", ("capturable", "foreach", "differentiable"))
Adagrad = _make("Adagrad", of.adagrad, dict(lr=1e-2, lr_decay=0, weight_decay=0,
                                            initial_accumulator_value=0, eps=1e-10,
                                            maximize=False),
                "Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, "
                "initial_accumulator_value=0, eps=1e-10, maximize=False)")
Adadelta = _make("Adadelta", of.adadelta, dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0,
                                               maximize=False),
                 "Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)",
                 ("capturable", "foreach", "differentiable"))
Adamax = _make("Adamax", of.adamax, dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                         maximize=False),
               "Adamax(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, "
               "maximize=False)", ("foreach", "differentiable", "capturable"))
NAdam = _make("NAdam", of.nadam, dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                      momentum_decay=4e-3, decoupled_weight_decay=False,
                                      maximize=False),
              "NAdam(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, "
              "momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False)",
              ("foreach", "capturable", "differentiable"))
