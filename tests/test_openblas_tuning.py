"""``fnarray/_openblas.py``: importing fnarray before NumPy sets OpenBLAS's thread timeout,
and never overrides the user's choice or acts once NumPy (and with it OpenBLAS) is loaded."""

import os
import subprocess
import sys

import pytest

_PROBE = "import os, fnarray; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), fnarray._openblas.tuned)"


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT", "FNARRAY_BLAS_TUNING")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, text=True,
                         capture_output=True, check=True)
    return out.stdout.strip()


def test_fnarray_first_sets_the_timeout_before_numpy_loads():
    assert _run(_PROBE) == "20 True"
    # NumPy, imported by fnarray, saw it (OpenBLAS reads it when NumPy loads it)
    assert _run("import fnarray, numpy, os; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])") == "20"


def test_numpy_first_leaves_openblas_alone():
    assert _run("import numpy; " + _PROBE) == "None False"


@pytest.mark.parametrize("name", ["OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT"])
def test_the_users_value_wins(name):
    code = f"import os, fnarray; print(os.environ.get({name!r}), fnarray._openblas.tuned)"
    assert _run(code, **{name: "28"}) == "28 False"


def test_opt_out():
    assert _run(_PROBE, FNARRAY_BLAS_TUNING="0") == "None False"
