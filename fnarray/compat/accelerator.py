"""``torch.accelerator``: the device-generic accelerator API PyTorch's quickstart uses
(``torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else
"cpu"``).  fnarray's only accelerator is CUDA (through CuPy), so this reads ``torch.cuda``;
on a machine without a GPU there is no accelerator and ``current_accelerator()`` is None.
"""

from __future__ import annotations

from fnarray.compat import cuda


def is_available() -> bool:
    return cuda.is_available()


def device_count() -> int:
    return cuda.device_count()


def current_accelerator(check_available: bool = False):
    """``torch.device('cuda')`` when a GPU is present, else None."""
    from fnarray.compat import device
    return device("cuda") if cuda.is_available() else None


def current_device_index() -> int:
    """The current accelerator's index (-1 without one, as PyTorch returns)."""
    return cuda.current_device() if cuda.is_available() else -1


current_device_idx = current_device_index


def set_device_index(device) -> None:
    """Only device 0 exists to the compat layer; other indices are refused."""
    index = getattr(device, "index", device)
    if index not in (None, 0, -1):
        raise RuntimeError(f"set_device_index: only accelerator 0 is supported, got {index}")


set_device_idx = set_device_index


def synchronize(device=None) -> None:
    cuda.synchronize()
