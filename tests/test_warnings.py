"""No NumPy ``RuntimeWarning`` reaches the user from kernels whose special values are
intended (exp overflowing to inf, sqrt of negatives inside ``where``, 0/0), eagerly, under
``jit`` and under differentiation -- as in JAX.  The project's pytest configuration ignores
RuntimeWarning, so each test turns warnings into errors itself."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import fnarray as fa

X = np.array([-1.0, 0.0, 4.0, 1000.0], dtype=np.float32)


def _safe_sqrt(x):
    return fa.where(x > 0, fa.sqrt(x), 0.0)


CASES = {
    "exp overflow": (lambda x: fa.exp(x), lambda x: np.exp(x)),
    "sqrt inside where": (_safe_sqrt, lambda x: np.where(x > 0, np.sqrt(np.abs(x)), 0.0)),
    "log of zero and negatives": (lambda x: fa.log(x), lambda x: np.log(x)),
    "division by zero": (lambda x: x / fa.zeros_like(x), lambda x: x / np.zeros_like(x)),
    "inf times zero": (lambda x: fa.exp(x) * 0.0, lambda x: np.exp(x) * 0.0),
}


def _reference(fn, x):
    with np.errstate(all="ignore"):
        return fn(x)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_special_values_are_silent(name, mode):
    fn, ref = CASES[name]
    f = fa.jit(fn) if mode == "jit" else fn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = f(fa.asarray(X))
    np.testing.assert_array_equal(np.asarray(got), _reference(ref, X))


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_gradient_through_where_is_silent(mode):
    g = fa.grad(lambda x: fa.sum(_safe_sqrt(x)))
    g = fa.jit(g) if mode == "jit" else g
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = np.asarray(g(fa.asarray([-1.0, 0.0, 4.0])))
    # JAX's answer: nan where sqrt' is nan or inf (multiplied by a zero cotangent), 1/4 at 4
    np.testing.assert_array_equal(got, [np.nan, np.nan, 0.25])


def test_nothing_shows_with_pythons_default_filters():
    # A fresh interpreter (pytest's own filters ignore RuntimeWarning): what a user sees.
    code = ("import numpy as np, fnarray as fa\n"
            "x = fa.asarray([-1.0, 0.0, 1000.0])\n"
            "fa.exp(x); fa.where(x > 0, fa.sqrt(x), 0.0)\n"
            "fa.jit(lambda v: fa.log(v) + fa.exp(v))(x)\n"
            "fa.grad(lambda v: fa.sum(fa.where(v > 0, fa.sqrt(v), 0.0)))(x)\n"
            "np.log(np.zeros(1))  # the user's own NumPy code still warns\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "RuntimeWarning" in ln]
    assert len(lines) == 1 and "divide by zero encountered in log" in lines[0], proc.stderr


def test_users_own_numpy_code_still_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fa.exp(fa.asarray(X))
        with pytest.raises(RuntimeWarning, match="overflow encountered in exp"):
            np.exp(X)


def test_kernel_errors_still_raise():
    with pytest.raises(ValueError, match="matmul"):
        fa.asarray(np.ones((2, 3))) @ fa.asarray(np.ones((2, 3)))
