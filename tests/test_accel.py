"""The switch between NumPy and compiled (numba) kernels: ``fnarray.backends.accel``."""

import numpy as np
import pytest

from fnarray.backends import accel


@pytest.fixture
def fresh_mode(monkeypatch):
    """Forget the mode read from the environment, so a test can set FNARRAY_ACCEL."""
    monkeypatch.setattr(accel, "_mode", None)
    return monkeypatch


def test_off_by_environment_uses_numpy(fresh_mode):
    fresh_mode.setenv("FNARRAY_ACCEL", "0")
    assert accel.kernels("anything", np, 1 << 30) is None
    assert not accel.enabled()


def test_small_arrays_and_other_backends_stay_on_numpy(fresh_mode):
    fresh_mode.delenv("FNARRAY_ACCEL", raising=False)
    assert accel.kernels("anything", np, accel.MIN_SIZE - 1) is None
    assert accel.kernels("anything", object(), 1 << 30) is None


def test_loaded_gives_only_modules_already_loaded_and_imports_nothing(fresh_mode):
    fresh_mode.delenv("FNARRAY_ACCEL", raising=False)
    fresh_mode.setattr(accel, "_modules", {})
    assert accel.loaded("activation", np) is None and accel._modules == {}
    if not accel.available():
        return
    module = accel.kernels("activation", np, 1 << 30)
    assert module is not None and accel.loaded("activation", np) is module
    assert accel.loaded("activation", object()) is None  # another backend
    with accel.forced(False):
        assert accel.loaded("activation", np) is None


def test_missing_numba_names_the_extra(fresh_mode):
    fresh_mode.setattr(accel, "_numba", False)
    fresh_mode.setenv("FNARRAY_ACCEL", "1")
    with pytest.raises(ImportError, match=r"FNARRAY_ACCEL=1.*fnarray\[accel\]"):
        accel.kernels("anything", np, 1 << 30)
    with pytest.raises(ImportError, match="accel"), accel.forced(True):
        pass


def test_missing_numba_falls_back_silently_when_not_required(fresh_mode):
    fresh_mode.setattr(accel, "_numba", False)
    fresh_mode.delenv("FNARRAY_ACCEL", raising=False)
    assert accel.kernels("anything", np, 1 << 30) is None
    assert not accel.enabled()


def test_forced_restores_the_previous_choice(fresh_mode):
    fresh_mode.setenv("FNARRAY_ACCEL", "0")
    with accel.forced(False):
        assert not accel.enabled()
    assert accel._current_mode() == "off"
    if accel.available():
        with accel.forced(True):
            assert accel.enabled() and accel._min_size == 0
        assert accel._current_mode() == "off" and accel._min_size == accel.MIN_SIZE


def test_set_num_threads_reaches_numba():
    if not accel.available():
        pytest.skip("needs numba")
    import numba
    import fnarray.compat as torch
    before = numba.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert numba.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
