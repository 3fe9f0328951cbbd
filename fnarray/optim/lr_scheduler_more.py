"""More of ``torch.optim.lr_scheduler``: ``ConstantLR``, ``PolynomialLR``,
``MultiplicativeLR``, ``CyclicLR`` and ``ChainedScheduler`` (split from ``lr_scheduler``
by size; importable from there).

Like the others these compute each epoch's rate in closed form from ``base_lrs``.
``ChainedScheduler`` multiplies its schedulers' factors (``lr / base_lr``), which is what
PyTorch's chained step gives for the multiplicative schedules it is meant for.
"""

from __future__ import annotations

import math
from typing import Callable

from fnarray.optim.lr_scheduler import LRScheduler


class ConstantLR(LRScheduler):
    """``base_lr * factor`` for the first ``total_iters`` epochs, then ``base_lr``."""

    def __init__(self, optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1):
        if not 0 <= factor <= 1:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        f = self.factor if epoch < self.total_iters else 1.0
        return [b * f for b in self.base_lrs]


class PolynomialLR(LRScheduler):
    """``base_lr * (1 - min(epoch, total_iters) / total_iters) ** power``."""

    def __init__(self, optimizer, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1):
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        f = (1.0 - min(epoch, self.total_iters) / self.total_iters) ** self.power
        return [b * f for b in self.base_lrs]


class MultiplicativeLR(LRScheduler):
    """The previous rate times ``lr_lambda(epoch)`` at each epoch after the first: the rate
    is ``base_lr * lr_lambda(1) * ... * lr_lambda(epoch)`` (products kept as it steps)."""

    def __init__(self, optimizer, lr_lambda: Callable | list, last_epoch: int = -1):
        n = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else \
            [lr_lambda] * n
        if len(self.lr_lambdas) != n:
            raise ValueError(f"Expected {n} lr_lambdas, but got {len(self.lr_lambdas)}")
        self._products = (0, [1.0] * n)  # (epoch, product of the lambdas up to it)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        done, products = self._products
        if epoch < done:
            done, products = 0, [1.0] * len(self.lr_lambdas)
        for e in range(done + 1, epoch + 1):
            products = [p * f(e) for p, f in zip(products, self.lr_lambdas)]
        self._products = (max(epoch, 0), products)
        return [b * p for b, p in zip(self.base_lrs, products)]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}


_SCALE_FNS = {"triangular": (lambda x: 1.0, "cycle"),
              "triangular2": (lambda x: 1 / (2.0 ** (x - 1)), "cycle")}


class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith 2017): between ``base_lr`` and ``max_lr`` in cycles of
    ``step_size_up + step_size_down`` steps, the amplitude kept (``triangular``), halved
    each cycle (``triangular2``) or scaled by ``gamma ** step`` (``exp_range``); with
    ``cycle_momentum`` the momentum (Adam's beta1) moves the opposite way between
    ``base_momentum`` and ``max_momentum``, as PyTorch's does."""

    def __init__(self, optimizer, base_lr, max_lr, step_size_up: int = 2000,
                 step_size_down: int | None = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Callable | None = None,
                 scale_mode: str = "cycle", cycle_momentum: bool = True,
                 base_momentum=0.8, max_momentum=0.9, last_epoch: int = -1):
        n = len(optimizer.param_groups)
        per_group = lambda v: list(v) if isinstance(v, (list, tuple)) else [v] * n  # noqa: E731
        base_lrs = per_group(base_lr)
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = group["initial_lr"] = lr
        self.max_lrs = per_group(max_lr)
        down = step_size_up if step_size_down is None else step_size_down
        self.total_size = float(step_size_up + down)
        self.step_ratio = step_size_up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        self.mode, self.gamma = mode, gamma
        if scale_fn is not None:
            self._scale_fn, self.scale_mode = scale_fn, scale_mode
        elif mode == "exp_range":
            self._scale_fn, self.scale_mode = (lambda x: gamma ** x), "iterations"
        else:
            self._scale_fn, self.scale_mode = _SCALE_FNS[mode]
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("optimizer must support momentum or beta1 with "
                                 "`cycle_momentum` option enabled")
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = per_group(base_momentum)
            self.max_momentums = per_group(max_momentum)
            if last_epoch == -1:
                for group, m in zip(optimizer.param_groups, self.max_momentums):
                    self._set_momentum(group, m)
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group, m) -> None:
        if self.use_beta1:
            group["betas"] = (m, *group["betas"][1:])
        else:
            group["momentum"] = m

    def _position(self, epoch):
        """``(scale factor within the cycle, argument of scale_fn)``."""
        cycle = math.floor(1 + epoch / self.total_size)
        x = 1.0 + epoch / self.total_size - cycle
        factor = x / self.step_ratio if x <= self.step_ratio else \
            (x - 1) / (self.step_ratio - 1)
        return factor, self._scale_fn(cycle if self.scale_mode == "cycle" else epoch)

    def lr_at(self, epoch):
        factor, scale = self._position(epoch)
        return [b + (m - b) * factor * scale for b, m in zip(self.base_lrs, self.max_lrs)]

    def step(self, epoch: int | None = None) -> None:
        super().step(epoch)
        if not self.cycle_momentum:
            return
        factor, scale = self._position(self.last_epoch)
        for group, lo, hi in zip(self.optimizer.param_groups, self.base_momentums,
                                 self.max_momentums):
            self._set_momentum(group, hi - (hi - lo) * factor * scale)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_scale_fn")}


class ChainedScheduler:
    """Step several schedulers together; the rate is the product of their factors
    (``lr / base_lr`` of each) times the base rate."""

    def __init__(self, schedulers: list, optimizer=None):
        if not schedulers:
            raise ValueError("ChainedScheduler expects at least one scheduler to be chained")
        self._schedulers = list(schedulers)
        self.optimizer = optimizer or schedulers[0].optimizer
        if any(s.optimizer is not self.optimizer for s in self._schedulers):
            raise ValueError("ChainedScheduler expects all schedulers to belong to the same "
                             "optimizer")
        self._combine()

    def _combine(self) -> None:
        base = self._schedulers[0].base_lrs
        lrs = list(base)
        for s in self._schedulers:
            lrs = [lr * (last / b if b else 0.0) for lr, last, b in
                   zip(lrs, s.get_last_lr(), s.base_lrs)]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs

    def step(self) -> None:
        for s in self._schedulers:
            s.step()
        self._combine()

    def get_last_lr(self) -> list:
        return self._last_lr

    def state_dict(self) -> dict:
        return {"_schedulers": [s.state_dict() for s in self._schedulers],
                "_last_lr": self._last_lr}

    def load_state_dict(self, state_dict: dict) -> None:
        for s, sd in zip(self._schedulers, state_dict["_schedulers"]):
            s.load_state_dict(sd)
        self._last_lr = state_dict["_last_lr"]
