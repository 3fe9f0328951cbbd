"""Normalisation layers: BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm1d/2d/3d, LayerNorm,
GroupNorm."""

from __future__ import annotations

import fnarray as fa
from fnarray.compat.defaults import default_float
from fnarray.nn import functional as F, init
from fnarray.nn.layers._util import ShapeMismatchError, check_features, empty_parameter
from fnarray.nn.module import Module


class _NormBase(Module):
    """Affine parameters (weight 1, bias 0) and optional running statistics as buffers:
    ``running_mean`` 0, ``running_var`` 1, ``num_batches_tracked`` 0 (int64)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = empty_parameter((num_features,), dtype, device)
            self.bias = empty_parameter((num_features,), dtype, device)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            dt = default_float() if dtype is None else dtype
            self.register_buffer("running_mean", fa.zeros((num_features,), dtype=dt))
            self.register_buffer("running_var", fa.ones((num_features,), dtype=dt))
            self.register_buffer("num_batches_tracked", fa.asarray(0, dtype=fa.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked = fa.asarray(0, dtype=fa.int64)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")

    def _blend_running_stats(self, mean, var, n: int, momentum: float) -> None:
        """Blend batch statistics (``var`` biased, over ``n`` values per channel) into the
        buffers, with the unbiased variance as PyTorch does.  By assignment, so that under
        ``functional_call`` the module itself is never written to; gradient-free."""
        mean, var = fa.stop_gradient(mean), fa.stop_gradient(var)
        unbiased = var * (n / (n - 1)) if n > 1 else var
        rm, rv = self.running_mean, self.running_var
        self.running_mean = (1 - momentum) * _raw(rm) + momentum * fa.astype(mean, rm.dtype)
        self.running_var = (1 - momentum) * _raw(rv) + momentum * fa.astype(unbiased, rv.dtype)


class _BatchNorm(_NormBase):
    dims = (2, 3)

    def _check_input(self, input) -> None:
        if input.ndim not in self.dims:
            raise ValueError(f"{self!r}: expected {' or '.join(f'{d}D' for d in self.dims)} "
                             f"input, got input of shape {tuple(input.shape)}")
        check_features(self, input, 1, self.num_features, "channels")

    def _count_batch(self) -> float:
        """Count a training batch; the momentum its statistics are blended with."""
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked = self.num_batches_tracked + 1
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        return momentum

    def forward(self, input):
        self._check_input(input)
        use_batch = self.training or not self.track_running_stats
        momentum = self._count_batch()
        if not use_batch:
            return F.batch_norm(input, self.running_mean, self.running_var, self.weight,
                                self.bias, False, momentum, self.eps)
        out = F.batch_norm(input, None, None, self.weight, self.bias, True, momentum, self.eps)
        if self.training and self.track_running_stats:
            self._blend_running_stats(*F.batch_norm_stats(input), momentum)
        return out


def _raw(x):
    """The core value of a tensor buffer (so updates are never recorded for backward)."""
    return getattr(x, "array", x)


class BatchNorm1d(_BatchNorm):
    dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    dims = (4,)


class BatchNorm3d(_BatchNorm):
    dims = (5,)


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over (N, C, ...) inputs whose training statistics are computed over the
    batches of every rank of ``process_group`` (the world by default), as PyTorch's.

    Each rank sums its values per channel; ``fnarray.distributed.psum`` adds the sums (and
    the ranks' counts) across ranks, then the squared deviations from the global mean the
    same way, so the batch may differ in size between ranks.  ``psum`` is a primitive whose
    transpose is itself, so backward sends each rank's contribution to the statistics'
    gradient back to every rank: the input gradients are those of single-process BatchNorm
    on the union of the batches (for the sum of the ranks' losses).  In eval mode, or in a
    one-process job, it is plain BatchNorm.
    """

    dims = (2, 3, 4, 5)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype)
        self.process_group = process_group

    def forward(self, input):
        from fnarray import distributed as dist
        group = self.process_group
        if not (self.training and dist.is_initialized()
                and dist.get_world_size(group) > 1):
            return super().forward(input)
        self._check_input(input)
        momentum = self._count_batch()
        axes = (0,) + tuple(range(2, input.ndim))
        count = fa.full((1,), input.size // input.shape[1], input.dtype, input.device)
        sums = dist.psum(fa.concatenate([fa.sum(input, axis=axes), count]), group)
        total = float(sums[-1])
        if total <= 1:
            raise ValueError(f"{self!r}: expected more than 1 value per channel when "
                             f"training, got input shape {tuple(input.shape)} ({total:g} "
                             f"values per channel over all ranks)")
        shape = F._channel_shape(input)
        mean = sums[:-1] / total
        centered = input - fa.reshape(mean, shape)
        var = dist.psum(fa.sum(centered * centered, axis=axes), group) / total
        out = F._affine(centered / fa.sqrt(fa.reshape(var, shape) + self.eps), self.weight,
                        self.bias, shape)
        if self.track_running_stats:
            self._blend_running_stats(mean, var, int(total), momentum)
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """``module`` with every BatchNorm1d/2d/3d (itself or nested) replaced by a
        SyncBatchNorm holding the same parameters, buffers and mode."""
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats, process_group)
            if module.affine:
                sync.weight, sync.bias = module.weight, module.bias
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(sync, name, getattr(module, name))
            sync.train(module.training)
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                converted = cls.convert_sync_batchnorm(child, process_group)
                if converted is not child:
                    setattr(module, name, converted)
        return module


class _InstanceNorm(_NormBase):
    spatial = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)

    def forward(self, input):
        if input.ndim not in (self.spatial + 1, self.spatial + 2):
            raise ValueError(f"{self!r}: expected {self.spatial + 1}D or {self.spatial + 2}D "
                             f"input, got input of shape {tuple(input.shape)}")
        unbatched = input.ndim == self.spatial + 1
        x = fa.expand_dims(input, 0) if unbatched else input
        check_features(self, x, 1, self.num_features, "channels")
        use_stats = self.training or not self.track_running_stats
        if use_stats and self.track_running_stats:
            axes = tuple(range(2, x.ndim))
            n = x.size // (x.shape[0] * x.shape[1])
            self._blend_running_stats(fa.mean(fa.mean(x, axis=axes), axis=0),
                                      fa.mean(fa.var(x, axis=axes), axis=0), n, self.momentum)
        running = (None, None) if use_stats else (self.running_mean, self.running_var)
        out = F.instance_norm(x, *running, self.weight, self.bias, use_stats, self.momentum,
                              self.eps)
        return fa.squeeze(out, axis=0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    spatial = 1


class InstanceNorm2d(_InstanceNorm):
    spatial = 2


class InstanceNorm3d(_InstanceNorm):
    spatial = 3


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` axes; weight 1, bias 0."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = empty_parameter(shape, dtype, device)
            if bias:
                self.bias = empty_parameter(shape, dtype, device)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        k = len(self.normalized_shape)
        if tuple(input.shape[input.ndim - k:]) != self.normalized_shape:
            raise ShapeMismatchError(f"{self!r}: expected input with trailing shape "
                                     f"{self.normalized_shape}, got input of shape "
                                     f"{tuple(input.shape)}")
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Normalise groups of channels per sample; weight 1, bias 0."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device=None, dtype=None):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        if affine:
            self.weight = empty_parameter((num_channels,), dtype, device)
            self.bias = empty_parameter((num_channels,), dtype, device)
            init.ones_(self.weight)
            init.zeros_(self.bias)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input):
        check_features(self, input, 1, self.num_channels, "channels")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
