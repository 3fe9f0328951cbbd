"""Array API data-type functions and namespace inspection."""

import numpy as np
import pytest

import fnarray as fa


def test_result_type_follows_promotion_with_weak_scalars():
    assert fa.result_type(fa.float32, fa.float64) == np.float64
    assert fa.result_type(fa.ones(2), 2.0) == np.float32
    assert fa.result_type(fa.arange(3), 1.5) == np.float32
    assert fa.result_type(fa.int8, fa.uint8) == np.int16
    with pytest.raises(ValueError):
        fa.result_type()


def test_can_cast_finfo_iinfo():
    assert fa.can_cast(fa.int32, fa.float64) and not fa.can_cast(fa.float64, fa.float32)
    assert fa.can_cast(fa.ones(2, dtype=fa.int8), fa.int16)
    assert fa.finfo(fa.float32).eps == np.finfo(np.float32).eps
    assert fa.iinfo(fa.ones(2, dtype=fa.int8)).max == 127


def test_isdtype_kinds():
    assert fa.isdtype(fa.float32, "real floating")
    assert fa.isdtype(fa.int8, ("bool", "integral"))
    assert not fa.isdtype(fa.complex64, "real floating")
    assert fa.isdtype(fa.uint16, fa.uint16)
    with pytest.raises(ValueError, match="unknown kind"):
        fa.isdtype(fa.float32, "floaty")


def test_namespace_info():
    info = fa.__array_namespace_info__()
    assert info.default_dtypes()["real floating"] == np.float32
    assert info.default_dtypes()["integral"] == np.int64
    assert "float64" in info.dtypes() and set(info.dtypes(kind="bool")) == {"bool"}
    assert str(info.default_device()) == "cpu" and info.devices()[0] is info.default_device()
    assert fa.ones(2).__array_namespace__() is fa
