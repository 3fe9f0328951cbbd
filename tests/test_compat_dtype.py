"""Compat dtypes print as PyTorch prints them and still work wherever a NumPy dtype did."""

import pickle

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch


@pytest.mark.parametrize("dt, text", [
    (torch.float32, "torch.float32"), (torch.float64, "torch.float64"),
    (torch.float16, "torch.float16"), (torch.int64, "torch.int64"),
    (torch.int32, "torch.int32"), (torch.uint8, "torch.uint8"),
    (torch.bool, "torch.bool"), (torch.complex64, "torch.complex64"),
])
def test_dtypes_print_as_pytorch(dt, text):
    assert str(dt) == repr(dt) == f"{dt}" == text


def test_aliases_are_the_same_object_and_tensor_dtype_is_it():
    assert torch.float is torch.float32 and torch.double is torch.float64
    assert torch.long is torch.int64 and torch.half is torch.float16
    x = torch.ones(2)
    assert x.dtype is torch.float32
    assert repr(x.dtype) == "torch.float32"
    assert repr(torch.arange(3).dtype) == "torch.int64"
    assert isinstance(x.dtype, torch.dtype)


def test_tensor_reprs_name_torch_dtypes():
    assert repr(torch.tensor([1., 2.], dtype=torch.float64)) == \
        "tensor([1., 2.], dtype=torch.float64)"
    assert repr(torch.tensor([1, 2], dtype=torch.int32)) == "tensor([1, 2], dtype=torch.int32)"
    assert repr(torch.zeros(0, dtype=torch.int64)) == "tensor([], dtype=torch.int64)"


def test_equality_and_hashing_match_numpy_dtypes():
    x = torch.ones(2)
    assert x.dtype == torch.float32 and x.dtype == np.float32
    assert x.dtype == np.dtype("float32") and np.dtype("float32") == x.dtype
    assert np.float32 == x.dtype and x.dtype != torch.float64
    assert x.dtype != np.int32 and not (x.dtype == None)  # noqa: E711
    table = {torch.float32: "f", np.dtype(np.int64): "i"}
    assert table[np.dtype(np.float32)] == "f" and table[torch.int64] == "i"
    assert table[x.dtype] == "f"
    assert hash(torch.float32) == hash(np.dtype(np.float32))
    assert len({torch.float32, np.dtype(np.float32), x.dtype}) == 1


def test_numpy_and_core_accept_compat_dtypes():
    assert np.dtype(torch.float32) == np.dtype(np.float32)
    assert type(np.dtype(torch.float32)) is type(np.dtype(np.float32))
    assert np.zeros(3, torch.float32).dtype == np.float32
    assert np.arange(3).astype(torch.float16).dtype == np.float16
    assert fa.zeros(2, dtype=torch.float64).dtype == np.float64
    assert fa.astype(fa.ones(2), torch.int32).dtype == np.int32
    assert fa.result_type(torch.float32, torch.float64) == np.float64
    assert float(np.finfo(torch.float32).eps) == pytest.approx(1.1920929e-07)


def test_dtype_attributes_as_pytorch_and_numpy():
    assert torch.float32.is_floating_point and not torch.int64.is_floating_point
    assert torch.complex64.is_complex and not torch.float32.is_complex
    assert torch.int8.is_signed and not torch.uint8.is_signed and not torch.bool.is_signed
    assert torch.float32.itemsize == 4 and torch.float64.itemsize == 8
    assert torch.float32.kind == "f" and torch.int64.name == "int64"
    assert torch.complex64.to_real() is torch.float32
    assert torch.float64.to_complex() is torch.complex128
    with pytest.raises(RuntimeError, match="to_complex is defined for floating dtypes, "
                                           "not torch.int64"):
        torch.int64.to_complex()


def test_conversions_take_compat_dtypes():
    x = torch.ones(2)
    assert x.to(torch.float16).dtype is torch.float16
    assert x.to("cpu", torch.float64).dtype is torch.float64
    assert x.type(torch.int32).dtype is torch.int32
    assert torch.zeros(2, dtype=x.dtype).dtype is torch.float32
    assert float(torch.finfo(torch.float32).eps) == pytest.approx(1.1920929e-07)
    layer = torch.nn.Linear(2, 2).to(torch.float64)
    assert layer.weight.dtype is torch.float64
    assert layer(torch.ones(1, 2, dtype=torch.float64)).dtype is torch.float64


def test_pickle_and_save_roundtrip(tmp_path):
    for dt in (torch.float32, torch.int64, torch.bool, torch.complex128):
        assert pickle.loads(pickle.dumps(dt)) is dt
    path = tmp_path / "t.pt"
    torch.save({"w": torch.ones(2, dtype=torch.float64)}, path)
    loaded = torch.load(path)["w"]
    assert loaded.dtype is torch.float64 and repr(loaded.dtype) == "torch.float64"


def test_core_promotion_reads_compat_tensor_dtypes():
    """Core promotion sees a tensor's compat dtype as the strong NumPy dtype it stands for
    (not as a weak Python scalar, which once turned int64 targets into complex64)."""
    target = torch.tensor([1, 0, 2])
    assert fa.where(target > 0, target, 0).dtype == np.int64
    assert fa.add(torch.ones(2), torch.ones(2, dtype=torch.float64)).dtype == np.float64
    assert fa.result_type(torch.int32, torch.int64) == np.int64
    assert torch.nn.functional.cross_entropy(torch.zeros(3, 4), target).dtype is torch.float32
