"""Mixed precision with PyTorch's semantics: ``torch.autocast`` and ``GradScaler``.

``autocast(device_type, dtype)`` makes matrix products and convolutions on tensors of that
device run in ``dtype`` (the float inputs are cast first, and the cast is recorded, so
gradients reach float32 parameters in float32); other operations keep their dtypes and
promote as usual.  Asking for CUDA on a machine without a GPU disables the region with
PyTorch's warning, and training proceeds in full precision.

``GradScaler`` is dynamic loss scaling: ``scale(loss)`` multiplies by the scale,
``step(optimizer)`` unscales the gradients and skips the step when any is inf/NaN,
``update()`` halves the scale after a skipped step and doubles it after
``growth_interval`` clean steps.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from fnarray import api as fa
from fnarray.compat import tape
from fnarray.compat.promotion import torch_name
from fnarray.core.bfloat16 import bfloat16_dtype, is_bfloat16
from fnarray.core.shapes import canonical_dtype, is_float

# primitives that run in the lower precision (PyTorch's "lower_precision_fp" list: mm,
# matmul, bmm, linear, addmm, conv*)
LOWER_PRECISION = frozenset({"dot_general", "conv"})


def _cuda_available() -> bool:
    from fnarray.compat import cuda
    return cuda.is_available()


def _supported_dtype(device_type: str, dtype) -> bool:
    return np.dtype(np.float16) == dtype or is_bfloat16(dtype)


def _default_dtype(device_type: str):
    """PyTorch's defaults: float16 on CUDA, bfloat16 on CPU (which needs ml_dtypes)."""
    if device_type == "cuda":
        return np.dtype(np.float16)
    try:
        return bfloat16_dtype()
    except ImportError as e:
        raise ImportError(f"autocast('cpu') defaults to bfloat16, as in PyTorch: {e}; or "
                          f"pass dtype=torch.float16 (also supported on CPU)") from e


class autocast:  # noqa: N801 - PyTorch's name
    """``with torch.autocast("cpu", dtype=torch.bfloat16):`` (also a decorator)."""

    def __init__(self, device_type: str, dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: "
                             f"`{type(device_type)}`")
        self.device_type = device_type
        self.enabled = bool(enabled)
        self.fast_dtype = None
        if device_type not in ("cpu", "cuda"):
            raise RuntimeError(f"User specified an unsupported autocast device_type "
                               f"'{device_type}'")
        if device_type == "cuda" and self.enabled and not _cuda_available():
            warnings.warn("CUDA is not available or torch_xla is imported. Disabling "
                          "autocast.", stacklevel=2)  # PyTorch 2.4+'s text
            self.enabled = False
        if not self.enabled:
            return
        self.fast_dtype = canonical_dtype(dtype) if dtype is not None else \
            _default_dtype(device_type)
        if not _supported_dtype(device_type, self.fast_dtype):
            where = "CPU" if device_type == "cpu" else "CUDA"
            warnings.warn(f"In {where} autocast, but the target dtype is not supported. "
                          f"Disabling autocast.\n{where} Autocast only supports dtype of "
                          f"torch.bfloat16, torch.float16 currently.", stacklevel=2)
            self.enabled = False

    def _cast(self, prim, tracers):
        if prim.name not in LOWER_PRECISION:
            return tracers
        low = self.fast_dtype
        out = []
        for t in tracers:
            dev = getattr(t, "device", None)
            if (getattr(t, "dtype", None) is not None and is_float(t.dtype)
                    and t.dtype != low
                    and getattr(dev, "platform", "cpu") == self.device_type):
                t = fa.astype(t, low)
            out.append(t)
        return out

    def __enter__(self):
        self._prev = tape._op.autocast
        tape._op.autocast = self._cast if self.enabled else None
        return self

    def __exit__(self, *exc):
        tape._op.autocast = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self.enabled):
                return fn(*args, **kwargs)
        return wrapped


def check_linear_operands(input, weight, bias):
    """``F.linear``'s PyTorch behaviour for compat tensors: mismatched input and weight
    dtypes raise (as ``addmm`` does), and under autocast the bias is cast with the
    product's operands (so the result has the autocast dtype).  Returns the bias."""
    if tape._op.autocast is not None:
        return autocast_bias(bias)
    tensor_t = tape.TENSOR
    if (isinstance(input, tensor_t) or isinstance(weight, tensor_t)) \
            and input.dtype != weight.dtype:
        names = [torch_name(d) for d in (input.dtype, weight.dtype)]
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {names[0]} and "
                           f"{names[1]} (linear: convert the input with .to({weight.dtype}) "
                           f"or the layer with .to({input.dtype}))")
    return bias


def autocast_bias(bias):
    """Under autocast, the bias of a linear layer or convolution cast with the product's
    operands (PyTorch's addmm/conv take it as an input), so the result keeps the autocast
    dtype; otherwise ``bias`` unchanged."""
    cast = tape._op.autocast
    if cast is None or bias is None:
        return bias
    return cast(_PRODUCT, [bias])[0]


class _Product:
    name = "dot_general"  # what ``autocast`` casts: the bias joins the product


_PRODUCT = _Product()


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether an enabled autocast region is active."""
    cast = tape._op.autocast
    if cast is None:
        return False
    return device_type is None or cast.__self__.device_type == device_type


# --- GradScaler ---------------------------------------------------------------------------

_READY, _UNSCALED, _STEPPED = 0, 1, 2


class GradScaler:
    """Dynamic loss scaling (``torch.amp.GradScaler(device, init_scale=2.**16,
    growth_factor=2.0, backoff_factor=0.5, growth_interval=2000, enabled=True)``)."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        self._device = str(device)
        self._enabled = bool(enabled)
        if self._enabled and self._device.startswith("cuda") and not _cuda_available():
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not "
                          "available.  Disabling.", stacklevel=2)
            self._enabled = False
        if growth_factor <= 1.0:
            raise ValueError("The growth factor must be > 1.0.")
        if backoff_factor >= 1.0:
            raise ValueError("The backoff factor must be < 1.0.")
        self._init_scale = float(init_scale)
        self._scale = None
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer: dict = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def _state(self, optimizer) -> dict:
        return self._per_optimizer.setdefault(id(optimizer),
                                              {"stage": _READY, "found_inf": None})

    def scale(self, outputs):
        """``outputs`` (a tensor or nested lists/tuples of them) times the scale."""
        if not self._enabled:
            return outputs
        if self._scale is None:
            self._scale = self._init_scale
        from fnarray.compat.tensor import Tensor
        if isinstance(outputs, Tensor):
            return outputs * fa.asarray(self._scale, dtype=np.float32)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def unscale_(self, optimizer) -> None:
        """Divide the gradients of ``optimizer``'s parameters by the scale (in place) and
        note whether any of them is inf or NaN."""
        if not self._enabled:
            return
        if self._scale is None:
            raise RuntimeError("Attempted unscale_ but _scale is None.  This may indicate "
                               "your script did not use scaler.scale(loss or outputs) "
                               "earlier in the iteration.")
        state = self._state(optimizer)
        if state["stage"] == _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since "
                               "the last update().")
        if state["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv = 1.0 / self._scale
        found = False
        from fnarray.compat import grad_mode
        with grad_mode.no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    if g.dtype == np.float16:
                        raise ValueError("Attempting to unscale FP16 gradients.")
                    g.mul_(inv)
                    if not bool(np.isfinite(np.asarray(g.numpy())).all()):
                        found = True
        state["found_inf"] = found
        state["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """``optimizer.step()`` on unscaled gradients, skipped when any is inf/NaN."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is "
                               "enabled.")
        state = self._state(optimizer)
        if state["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] == _READY:
            self.unscale_(optimizer)
        result = None if state["found_inf"] else optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale=None) -> None:
        """Back off after a skipped step, grow after ``growth_interval`` clean ones."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if hasattr(new_scale, "item")
                                else new_scale)
        else:
            infs = [s["found_inf"] for s in self._per_optimizer.values()
                    if s["found_inf"] is not None]
            if not infs:
                raise AssertionError("No inf checks were recorded prior to update.")
            if any(infs):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def get_scale(self) -> float:
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else float(np.float32(self._scale))

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, value: float) -> None:
        self._growth_factor = float(value)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, value: float) -> None:
        self._backoff_factor = float(value)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, value: int) -> None:
        self._growth_interval = int(value)

    def state_dict(self) -> dict:
        """PyTorch's keys; empty when disabled."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was "
                               "saved from a disabled instance of GradScaler.")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale = self._init_scale
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
