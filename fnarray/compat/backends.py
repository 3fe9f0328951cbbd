"""``torch.backends``: the switches PyTorch code sets (``cudnn.benchmark``,
``cudnn.deterministic``, ``cuda.matmul.allow_tf32``) and the availability queries
(``mps.is_available()``, ``cudnn.is_available()``).

fnarray has no cuDNN autotuner, TF32 mode or Metal backend, so the switches are plain
settable attributes that change nothing, and the queries answer truthfully.
"""

from __future__ import annotations


class _Switches:
    """A namespace of settable flags (reading an unknown name raises AttributeError)."""

    def __init__(self, **flags):
        self.__dict__.update(flags)

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not callable(v))
        return f"{type(self).__name__}({inner})"


def _cuda_available() -> bool:
    from fnarray.compat import cuda as _cuda
    return _cuda.is_available()


cudnn = _Switches(benchmark=False, deterministic=False, enabled=True, allow_tf32=True,
                  is_available=_cuda_available, version=lambda: None)
mps = _Switches(is_available=lambda: False, is_built=lambda: False)
cuda = _Switches(matmul=_Switches(allow_tf32=False,
                                  allow_fp16_reduced_precision_reduction=True),
                 is_built=_cuda_available)
mkldnn = _Switches(enabled=True, is_available=lambda: False)
openmp = _Switches(is_available=lambda: True)
