"""``torch.cuda``: what the compat layer can tell about GPUs (through CuPy)."""

from fnarray.core import device as _device


def device_count() -> int:
    return sum(1 for d in _device.devices() if d.platform == "cuda")


def is_available() -> bool:
    return device_count() > 0


def current_device() -> int:
    return 0


def synchronize() -> None:
    """Wait for queued GPU work (a no-op without a GPU)."""
    if is_available():
        import cupy
        cupy.cuda.Device().synchronize()


def manual_seed(seed: int) -> None:
    from fnarray.compat.random import manual_seed as seed_all
    seed_all(seed)


manual_seed_all = manual_seed


from fnarray.compat.cuda import amp  # noqa: E402,F401 - torch.cuda.amp
