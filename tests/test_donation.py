"""``jit(..., donate_argnums=...)`` never changes a result: a donated buffer that is also
reachable through another argument or pytree leaf (the same array, a view, a NumPy alias)
is not reused, so the computation reads the right values (JAX's answers below)."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa


def _donated(x) -> bool:
    try:
        np.asarray(x)
    except RuntimeError as e:
        assert "donated" in str(e)
        return True
    return False


def test_same_array_passed_twice():
    f = fa.jit(lambda a, b: fa.exp(a) + b, donate_argnums=0)
    x = fa.asarray([0.0, 1.0, 2.0])
    expected = np.exp([0.0, 1.0, 2.0]) + [0.0, 1.0, 2.0]  # JAX: [1, 3.718, 9.389]
    np.testing.assert_allclose(f(x, x), expected, rtol=1e-6)
    # x was not donated (its buffer is still needed by the second argument)
    np.testing.assert_allclose(x, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(f(x, x), expected, rtol=1e-6)


def test_both_arguments_donated_and_identical():
    f = fa.jit(lambda a, b: fa.sin(a) * 2.0 + fa.cos(b), donate_argnums=(0, 1))
    x = fa.asarray([0.5, 1.0, 1.5])
    h = np.asarray([0.5, 1.0, 1.5])
    np.testing.assert_allclose(f(x, x), np.sin(h) * 2 + np.cos(h), rtol=1e-6)


def test_ema_tree_sharing_arrays_with_donated_params():
    def step(params, ema):
        new = {k: params[k] - 0.1 * fa.tanh(params[k]) for k in params}
        return new, {k: 0.9 * ema[k] + 0.1 * new[k] for k in ema}

    f = fa.jit(step, donate_argnums=0)
    params = {"w": fa.asarray([1.0, -2.0, 3.0]), "b": fa.asarray([0.5, 0.25, 1.0])}
    ema = dict(params)  # the EMA starts as the very same arrays
    hp = {k: np.asarray(v) for k, v in params.items()}
    new, new_ema = f(params, ema)
    for k in hp:
        want = hp[k] - 0.1 * np.tanh(hp[k])
        np.testing.assert_allclose(new[k], want, rtol=1e-6)
        np.testing.assert_allclose(new_ema[k], 0.9 * hp[k] + 0.1 * want, rtol=1e-6)
        np.testing.assert_allclose(ema[k], hp[k])  # still readable: not donated


def test_view_of_a_donated_buffer_in_another_argument():
    f = fa.jit(lambda a, b: (fa.exp(a) * 2.0)[1:] + b, donate_argnums=0)
    x = fa.asarray([0.0, 1.0, 2.0])
    np.testing.assert_allclose(f(x, x[1:]), np.exp([1.0, 2.0]) * 2 + [1.0, 2.0], rtol=1e-6)


def test_numpy_alias_blocks_donation():
    f = fa.jit(lambda a: fa.exp(a) * 2.0, donate_argnums=0)
    x = fa.asarray([0.0, 1.0, 2.0])
    alias = np.asarray(x)
    np.testing.assert_allclose(f(x), np.exp([0.0, 1.0, 2.0]) * 2, rtol=1e-6)
    np.testing.assert_allclose(alias, [0.0, 1.0, 2.0])


@pytest.mark.parametrize("n", [2, 5])
def test_unaliased_donation_still_reuses_the_buffer(n):
    f = fa.jit(lambda a, b: fa.exp(a) * 2.0 + b, donate_argnums=0)
    x = fa.asarray(np.arange(n, dtype=np.float32))
    y = fa.asarray(np.ones(n, dtype=np.float32))
    np.testing.assert_allclose(f(x, y), np.exp(np.arange(n)) * 2 + 1, rtol=1e-6)
    assert _donated(x) and not _donated(y)


def test_donated_array_that_is_also_a_closed_over_constant():
    w = fa.asarray([0.0, 1.0, 2.0])
    f = fa.jit(lambda x: fa.exp(x) * 2.0 + w, donate_argnums=0)
    np.testing.assert_allclose(f(w), np.exp([0.0, 1.0, 2.0]) * 2 + [0.0, 1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(w, [0.0, 1.0, 2.0])
