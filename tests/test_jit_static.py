"""JAX idioms around jit/vmap arguments: jit on methods, static arguments by position or
keyword, vmap with keyword arguments, random keys from traced seeds."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

import fnarray as fa


def _concrete_only(x, n):
    # range(n) needs a Python int: fails under jit unless n is static.
    out = x
    for _ in range(n):
        out = out * 2.0
    return out


@fa.tree.register_dataclass
@dataclasses.dataclass
class Scale:
    w: fa.Array

    @fa.jit
    def apply(self, x):
        return self.w * x


class Hashable:
    def __init__(self, k):
        self.k = k

    def __hash__(self):
        return hash(self.k)

    def __eq__(self, other):
        return isinstance(other, Hashable) and other.k == self.k

    @functools.partial(fa.jit, static_argnums=0)
    def power(self, x):
        return x ** self.k  # self.k is a Python int only if self is static


def test_jit_method_on_pytree_instance():
    s = Scale(fa.asarray([1.0, 2.0]))
    np.testing.assert_allclose(s.apply(fa.asarray([3.0, 4.0])), [3.0, 8.0])
    # the instance is an ordinary (traced) argument: new values reuse the trace
    np.testing.assert_allclose(Scale(fa.asarray([2.0, 2.0])).apply(fa.ones(2)), [2.0, 2.0])
    assert Scale.apply.trace_count == 1


def test_jit_method_static_self():
    x = fa.asarray([2.0, 3.0])
    np.testing.assert_allclose(Hashable(2).power(x), [4.0, 9.0])
    np.testing.assert_allclose(Hashable(3).power(x), [8.0, 27.0])
    np.testing.assert_allclose(Hashable(2).power(x), [4.0, 9.0])
    assert Hashable.power.trace_count == 2  # equal instances share a trace
    assert Hashable.power.__get__(None, Hashable) is Hashable.power


def test_jit_method_unregistered_self_names_the_fix():
    class Plain:
        @fa.jit
        def f(self, x):
            return x

    with pytest.raises(TypeError, match="static_argnums"):
        Plain().f(fa.ones(2))


@pytest.mark.parametrize("kw", [dict(static_argnums=1), dict(static_argnames="n"),
                                dict(static_argnums=-1)])
def test_static_by_position_or_keyword(kw):
    f = fa.jit(_concrete_only, **kw)
    x = fa.asarray([1.0, 3.0])
    np.testing.assert_allclose(f(x, 2), [4.0, 12.0])
    np.testing.assert_allclose(f(x, n=3), [8.0, 24.0])
    np.testing.assert_allclose(f(x=x, n=2), [4.0, 12.0])
    assert f.static_argnums == (1,) and f.static_argnames == ("n",)


def test_static_negative_argnum_counts_from_the_signature():
    # static_argnums=-1 means ``n`` even when ``n`` is passed by keyword (not ``x``).
    f = fa.jit(_concrete_only, static_argnums=-1)
    np.testing.assert_allclose(f(fa.ones(2), n=1), [2.0, 2.0])


def test_static_unhashable_still_named():
    f = fa.jit(lambda x, opts: x * len(opts), static_argnames="opts")
    with pytest.raises(TypeError, match="not hashable"):
        f(fa.ones(2), [1, 2])
    np.testing.assert_allclose(f(fa.ones(2), (1, 2)), [2.0, 2.0])


def test_vmap_keyword_arguments_batch_along_axis_0():
    def f(x, y, scale=1.0):
        return (x * y).sum() * scale

    x = fa.asarray(np.arange(6.0, dtype=np.float32).reshape(3, 2))
    y = fa.asarray(np.arange(6.0, 12.0, dtype=np.float32).reshape(3, 2))
    expected = (np.asarray(x) * np.asarray(y)).sum(1)
    np.testing.assert_allclose(fa.vmap(f)(x, y=y), expected)
    # in_axes applies to positional arguments only; keywords are always axis 0
    np.testing.assert_allclose(fa.vmap(f, in_axes=(1,))(x.T, y=y), expected)
    np.testing.assert_allclose(fa.vmap(f, in_axes=(0, None))(x, fa.ones(2), scale=fa.ones(3) * 2),
                               np.asarray(x).sum(1) * 2)
    with pytest.raises(ValueError, match="different sizes"):
        fa.vmap(f)(x, y=fa.ones((4, 2)))


@pytest.mark.parametrize("seed", [0, 7, -5, 2 ** 40 + 3, -2 ** 40 - 1, 2 ** 63 - 1])
def test_key_from_traced_seed(seed):
    expected = np.asarray(fa.random.key(seed))
    np.testing.assert_array_equal(fa.jit(fa.random.key)(seed), expected)
    np.testing.assert_array_equal(fa.random.key(fa.asarray(seed)), expected)
    np.testing.assert_array_equal(fa.jit(fa.random.PRNGKey)(seed), expected)


def test_key_under_vmap_matches_per_seed_keys():
    seeds = fa.asarray([0, 1, 42])
    expected = np.stack([np.asarray(fa.random.key(s)) for s in (0, 1, 42)])
    np.testing.assert_array_equal(fa.vmap(fa.random.key)(seeds), expected)
    np.testing.assert_array_equal(fa.vmap(fa.random.PRNGKey)(seeds), expected)
    draws = fa.vmap(lambda s: fa.random.normal(fa.random.key(s), (3,)))(seeds)
    np.testing.assert_array_equal(draws[2], fa.random.normal(fa.random.key(42), (3,)))


def test_key_from_narrow_and_unsigned_seeds():
    # As in JAX: a 32-bit seed has a zero high word; uint64 seeds use all 64 bits.
    np.testing.assert_array_equal(fa.random.key(fa.asarray(-5, dtype=fa.int32)), [0, 2 ** 32 - 5])
    np.testing.assert_array_equal(fa.random.key(fa.asarray(2 ** 64 - 1, dtype=fa.uint64)),
                                  [2 ** 32 - 1, 2 ** 32 - 1])
    with pytest.raises(TypeError, match="integer scalar"):
        fa.random.key(fa.asarray([1, 2]))
    with pytest.raises(TypeError, match="integer scalar"):
        fa.jit(fa.random.key)(1.5)
