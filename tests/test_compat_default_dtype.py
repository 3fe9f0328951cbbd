"""``torch.set_default_dtype`` / ``set_default_device`` in the compat layer.

Expected dtypes are PyTorch 2.x's documented behaviour (checked against PyTorch itself):
the default float decides float factories, Python floats meeting integer tensors, new
``nn`` parameters, the legacy ``Tensor(2, 3)`` constructor and the default complex dtype.
"""

import threading

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
from fnarray.compat import nn


@pytest.fixture(autouse=True)
def _restore_defaults():
    """Every test leaves the process defaults as it found them."""
    dtype, device = torch.get_default_dtype(), torch.get_default_device()
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_default_device(device)


@pytest.fixture
def f64():
    torch.set_default_dtype(torch.float64)


def test_defaults_start_as_pytorch():
    assert torch.get_default_dtype() is torch.float32
    assert repr(torch.get_default_device()) == "device(type='cpu')"


def test_float_factories_follow_default(f64):
    assert torch.get_default_dtype() is torch.float64
    made = {
        "tensor": torch.tensor([1.5]), "tensor scalar": torch.tensor(1.5),
        "zeros": torch.zeros(2), "ones": torch.ones(2, 3), "empty": torch.empty(2),
        "rand": torch.rand(2), "randn": torch.randn(2), "arange float": torch.arange(0., 3),
        "linspace": torch.linspace(0, 1, 3), "full float": torch.full((2,), 1.5),
        "eye": torch.eye(2), "Tensor(2, 3)": torch.Tensor(2, 3),
        "Tensor(list)": torch.Tensor([1, 2]),
    }
    assert {k: v.dtype for k, v in made.items()} == {k: torch.float64 for k in made}
    assert torch.tensor([1.1]).item() == 1.1  # converted directly, not through float32


def test_tensor_inference_from_mixed_data(f64):
    """Python floats count as the default dtype; NumPy scalars and tensors keep theirs."""
    t32 = torch.tensor(1.5, dtype=torch.float32)
    assert torch.tensor([t32]).dtype is torch.float32
    assert torch.tensor([t32, 2.5]).dtype is torch.float64
    assert torch.tensor([np.float32(1.5)]).dtype is torch.float32
    assert torch.tensor(np.float32(1.5)).dtype is torch.float32
    assert torch.tensor([[1, 2.5]]).dtype is torch.float64
    assert torch.tensor([[True, 2.5]]).dtype is torch.float64
    assert torch.tensor([1j, 1]).dtype is torch.complex128
    assert torch.tensor([]).dtype is torch.float64


def test_non_float_factories_unchanged(f64):
    assert torch.arange(3).dtype is torch.int64
    assert torch.full((2,), 1).dtype is torch.int64
    assert torch.tensor([1, 2]).dtype is torch.int64
    assert torch.tensor(True).dtype is torch.bool
    assert torch.tensor(np.array([1.5], np.float32)).dtype is torch.float32  # arrays keep theirs
    assert torch.zeros(2, dtype=torch.float32).dtype is torch.float32
    assert torch.randn(2, dtype=torch.float32).dtype is torch.float32


def test_complex_default_pairs_with_float(f64):
    assert torch.tensor([1j]).dtype is torch.complex128
    assert torch.full((2,), 1j).dtype is torch.complex128
    torch.set_default_dtype(torch.float32)
    assert torch.tensor([1j]).dtype is torch.complex64


def test_python_scalar_promotion(f64):
    i = torch.tensor([1, 2])
    assert (i * 2.5).dtype is torch.float64
    assert (2.5 * i).dtype is torch.float64
    assert (2.5 - i).dtype is torch.float64
    assert torch.mul(i, 2.5).dtype is torch.float64
    assert (i * 1j).dtype is torch.complex128
    assert torch.result_type(i, 2.5) is torch.float64
    np.testing.assert_allclose((i * 2.5).numpy(), [2.5, 5.0])
    f32 = torch.ones(2, dtype=torch.float32)
    assert (f32 * 2.5).dtype is torch.float32  # a scalar never widens a float tensor
    assert (f32 * 1j).dtype is torch.complex64
    assert (i * 2).dtype is torch.int64
    assert (torch.tensor([True]) + 1.5).dtype is torch.float64


def test_float_valued_functions_of_integers(f64):
    """``sqrt``, ``exp``, true division, ... of integer tensors give the default float,
    also after the float32 default planned their fast path."""
    torch.set_default_dtype(torch.float32)
    i, b = torch.tensor([1, 4]), torch.tensor([True, False])
    assert (i / i).dtype is torch.float32 and torch.sqrt(i).dtype is torch.float32
    torch.set_default_dtype(torch.float64)
    results = {"i / 2": i / 2, "2 / i": 2 / i, "i / i": i / i, "div": torch.div(i, 2),
               "true_divide": torch.true_divide(i, i), "sqrt": torch.sqrt(i),
               "method": i.sqrt(), "exp(bool)": torch.exp(b), "sigmoid": torch.sigmoid(i),
               "atan2": torch.atan2(i, i), "reciprocal": i.reciprocal()}
    assert {k: v.dtype for k, v in results.items()} == {k: torch.float64 for k in results}
    np.testing.assert_allclose(torch.sqrt(i).numpy(), [1.0, 2.0])
    assert torch.div(i, 2, rounding_mode="floor").dtype is torch.int64
    assert torch.abs(i).dtype is torch.int64 and (i * 2).dtype is torch.int64


def test_nn_parameters_follow_default(f64):
    assert nn.Linear(2, 3).weight.dtype is torch.float64
    assert nn.Linear(2, 3).bias.dtype is torch.float64
    bn = nn.BatchNorm1d(2)
    assert bn.weight.dtype is torch.float64 and bn.running_mean.dtype is torch.float64
    assert nn.PReLU().weight.dtype is torch.float64
    assert nn.Linear(2, 3, dtype=torch.float32).weight.dtype is torch.float32
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    assert mask.dtype is torch.float64
    out = nn.Linear(2, 3)(torch.tensor([[1.0, 2.0]]))
    assert out.dtype is torch.float64


def test_compiled_functions_restage_when_the_default_changes():
    make = torch.compile(lambda x: torch.zeros(2))
    assert make(torch.ones(2)).dtype is torch.float32
    torch.set_default_dtype(torch.float64)
    assert make(torch.ones(2)).dtype is torch.float64


def test_repr_omits_the_default_dtype(f64):
    assert repr(torch.tensor([1.5])) == "tensor([1.5000])"
    assert repr(torch.tensor([1.5], dtype=torch.float32)) == \
        "tensor([1.5000], dtype=torch.float32)"
    assert repr(torch.tensor([1j])) == "tensor([0.+1.j])"
    assert repr(torch.zeros(0)) == "tensor([])"
    assert repr(torch.zeros(0, dtype=torch.float32)) == "tensor([], dtype=torch.float32)"


def test_half_defaults():
    torch.set_default_dtype(torch.float16)
    assert torch.tensor([1.5]).dtype is torch.float16
    assert (torch.tensor([1, 2]) * 2.5).dtype is torch.float16
    assert nn.Linear(2, 2).weight.dtype is torch.float16


@pytest.mark.parametrize("bad", [torch.int32, torch.int64, torch.complex64, torch.bool])
def test_non_float_dtype_rejected(bad):
    with pytest.raises(TypeError, match="only floating-point types are supported as the "
                                        "default type"):
        torch.set_default_dtype(bad)
    assert torch.get_default_dtype() is torch.float32


@pytest.mark.parametrize("bad", [float, "float64"])
def test_python_type_or_name_rejected(bad):
    with pytest.raises(TypeError, match="invalid dtype object: only floating-point types"):
        torch.set_default_dtype(bad)


def test_restored_default_gives_float32_again(f64):
    torch.set_default_dtype(torch.float32)
    assert torch.tensor([1.5]).dtype is torch.float32
    assert (torch.tensor([1]) * 2.5).dtype is torch.float32
    assert nn.Linear(2, 2).weight.dtype is torch.float32


def test_core_default_unaffected(f64):
    """``set_default_dtype`` is the compat layer's: the functional core keeps float32."""
    assert fa.zeros(2).dtype == np.float32
    assert fa.asarray([1.5]).dtype == np.float32


def test_default_dtype_is_process_wide(f64):
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.tensor([1.5]).dtype))
    t.start()
    t.join()
    assert seen == [torch.float64]


def test_set_default_device_cpu():
    torch.set_default_device("cpu")
    assert torch.get_default_device() == torch.device("cpu")
    assert str(torch.zeros(2).device) == "cpu"
    torch.set_default_device(torch.device("cpu"))
    torch.set_default_device(None)
    assert torch.get_default_device() == torch.device("cpu")


@pytest.mark.skipif(len(fa.devices()) > 1, reason="a GPU is present")
def test_set_default_device_cuda_without_gpu():
    with pytest.raises(RuntimeError, match=r"set_default_device\('cuda'\): no NVIDIA GPU is "
                                           r"available.*use 'cpu'"):
        torch.set_default_device("cuda")
    assert torch.get_default_device() == torch.device("cpu")


def test_set_default_device_unknown_type():
    with pytest.raises(RuntimeError, match="expected a device type such as 'cpu'.*'foo'"):
        torch.set_default_device("foo")


def test_device_context_manager():
    with torch.device("cpu") as d:
        assert d == torch.device("cpu")
        assert torch.get_default_device() == torch.device("cpu")
        assert str(nn.Linear(2, 2).weight.device) == "cpu"
    assert torch.get_default_device() == torch.device("cpu")

