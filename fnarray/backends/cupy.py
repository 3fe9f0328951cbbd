"""The CuPy (GPU) backend; importable only where CuPy and a CUDA device exist."""

try:  # pragma: no cover - exercised only on machines with a GPU
    import cupy

    cupy.cuda.runtime.getDeviceCount()
    xp = cupy
except Exception:  # noqa: BLE001 - any failure means "no usable GPU here"
    cupy = None
    xp = None

name = "cuda"


def device_count() -> int:
    if xp is None:
        return 0
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # noqa: BLE001  # pragma: no cover
        return 0


def to_host(value):  # pragma: no cover
    return cupy.asnumpy(value)


def from_host(value, index: int = 0):  # pragma: no cover
    with cupy.cuda.Device(index):
        return cupy.asarray(value)


def synchronize(value) -> None:  # pragma: no cover
    """Wait until the work queued on ``value``'s device has finished."""
    with cupy.cuda.Device(value.device.id):
        cupy.cuda.get_current_stream().synchronize()
