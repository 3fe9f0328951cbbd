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


def empty_cache() -> None:
    """Return cached GPU memory to the device (CuPy's pool; nothing without a GPU)."""
    if is_available():
        import cupy
        cupy.get_default_memory_pool().free_all_blocks()


def memory_allocated(device=None) -> int:
    """Bytes held by live GPU arrays (CuPy's pool); 0 without a GPU, as PyTorch reports."""
    if not is_available():
        return 0
    import cupy
    return int(cupy.get_default_memory_pool().used_bytes())


def memory_reserved(device=None) -> int:
    """Bytes the GPU memory pool holds, used or cached; 0 without a GPU."""
    if not is_available():
        return 0
    import cupy
    return int(cupy.get_default_memory_pool().total_bytes())


def get_device_name(device=None) -> str:
    if not is_available():
        raise RuntimeError("torch.cuda.get_device_name: no CUDA device is available (fnarray "
                           "sees 0 CUDA devices)")
    import cupy
    return cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """False: fnarray runs no bfloat16 GPU kernels of its own."""
    return False


def manual_seed(seed: int) -> None:
    from fnarray.compat.random import manual_seed as seed_all
    seed_all(seed)


manual_seed_all = manual_seed


from fnarray.compat.cuda import amp  # noqa: E402,F401 - torch.cuda.amp
