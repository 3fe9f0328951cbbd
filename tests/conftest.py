"""Test configuration: ``--device cpu|cuda`` and hypothesis profiles.

``pytest --device cuda`` runs the suite with CuPy arrays by default (via
``fa.default_device``); without a GPU those runs are skipped cleanly.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=10, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption("--device", action="store", default="cpu",
                     help="device to run array tests on: cpu (default) or cuda")


@pytest.fixture(autouse=True)
def _default_device(request):
    import fnarray as fa
    name = request.config.getoption("--device")
    if name == "cpu":
        yield
        return
    if not any(str(d).startswith("cuda") for d in fa.devices()):
        pytest.skip("--device cuda: no GPU visible to CuPy on this machine")
    with fa.default_device(name):
        yield


@pytest.fixture
def device(request):
    """The device under test, as a string."""
    return request.config.getoption("--device")


@pytest.fixture(params=["numpy", "compiled"])
def kernel_path(request):
    """Run the test twice: on the NumPy kernels, and on the compiled (numba) kernels at every
    array size; the compiled run is skipped where numba is not installed."""
    from fnarray.backends import accel
    on = request.param == "compiled"
    if on and not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    with accel.forced(on):
        yield request.param
