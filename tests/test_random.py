"""fa.random: Threefry known answers, reproducibility, independence, distributions,
batching over keys, and behaviour under transformations."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fnarray as fa
import fnarray.random as fr
from fnarray.ops.random_bits import threefry2x32

N = 20_000


def _u32(*words):
    return [fa.asarray(np.uint32(w)) for w in words]


@pytest.mark.parametrize("key, counter, expected", [
    # Random123 known-answer vectors for Threefry-2x32, 20 rounds.
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_threefry_known_answers(key, counter, expected):
    y0, y1 = threefry2x32.bind(*_u32(*key, *counter))
    assert (int(y0), int(y1)) == expected
    # Broadcast against a batch of counters, the same answer appears in the same place.
    c1 = fa.asarray(np.array([counter[1], 7], dtype=np.uint32))
    b0, b1 = threefry2x32.bind(*_u32(*key, counter[0]), c1)
    assert (int(b0[0]), int(b1[0])) == expected


def test_keys_and_reproducibility():
    k = fr.key(0)
    assert k.dtype == fa.uint32 and k.shape == (2,)
    np.testing.assert_array_equal(np.asarray(fr.key(2 ** 64 - 1)), [2 ** 32 - 1] * 2)
    np.testing.assert_array_equal(np.asarray(fr.key(-1)), [2 ** 32 - 1] * 2)
    np.testing.assert_array_equal(np.asarray(fr.key(5 * 2 ** 32 + 3)), [5, 3])
    a, b = fr.normal(k, (5,)), fr.normal(fr.key(0), (5,))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(fr.uniform(fr.key(1), (5,))),
                              np.asarray(fr.uniform(k, (5,))))
    # The bits of key 0 are fixed forever (they are part of the reproducibility contract).
    np.testing.assert_array_equal(np.asarray(fr.bits(k, (2,))), [0x6B200159, 0x99BA4EFE])


def test_split_and_fold_in_give_independent_streams():
    k = fr.key(42)
    keys = fr.split(k, 4)
    assert keys.shape == (4, 2) and keys.dtype == fa.uint32
    rows = {tuple(np.asarray(r)) for r in keys} | {tuple(np.asarray(k))}
    assert len(rows) == 5
    a, b = (np.asarray(fr.normal(keys[i], (N,), fa.float64)) for i in (0, 1))
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.03
    f1, f2 = fr.fold_in(k, 1), fr.fold_in(k, 2)
    assert not np.array_equal(np.asarray(f1), np.asarray(f2))
    np.testing.assert_array_equal(np.asarray(f1), np.asarray(fr.fold_in(k, 1)))
    assert fr.split(k).shape == (2, 2)


@pytest.mark.parametrize("dtype", [fa.float16, fa.float32, fa.float64])
def test_uniform_and_normal_statistics(dtype):
    k1, k2 = fr.split(fr.key(7))
    u = np.asarray(fr.uniform(k1, (N,), dtype, minval=-1.0, maxval=3.0), dtype=np.float64)
    assert fr.uniform(k1, (3,), dtype).dtype == dtype
    assert u.min() >= -1.0 and u.max() < 3.0
    assert abs(u.mean() - 1.0) < 0.05 and abs(u.var() - 16 / 12) < 0.05
    z = fr.normal(k2, (N,), dtype)
    assert z.dtype == dtype
    z = np.asarray(z, dtype=np.float64)
    assert abs(z.mean()) < 0.03 and abs(z.var() - 1.0) < 0.05
    assert abs(np.mean(np.abs(z) < 1.0) - 0.6827) < 0.02


def test_integer_and_discrete_distributions():
    keys = fr.split(fr.key(3), 6)
    r = np.asarray(fr.randint(keys[0], (N,), -3, 4))
    assert r.dtype == np.int64 and r.min() == -3 and r.max() == 3
    np.testing.assert_allclose(np.bincount(r + 3) / N, 1 / 7, atol=0.015)
    assert fr.randint(keys[0], (2,), 0, 10, dtype=fa.int32).dtype == fa.int32
    b = np.asarray(fr.bernoulli(keys[1], 0.3, (N,)))
    assert b.dtype == np.bool_ and abs(b.mean() - 0.3) < 0.02
    logits = fa.asarray([0.0, 1.0, 2.0])
    c = np.asarray(fr.categorical(keys[2], logits, shape=(N,)))
    p = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    np.testing.assert_allclose(np.bincount(c, minlength=3) / N, p, atol=0.02)
    assert fr.categorical(keys[2], fa.zeros((4, 3, 5)), axis=1).shape == (4, 5)
    e = np.asarray(fr.exponential(keys[3], (N,)))
    assert e.min() >= 0 and abs(e.mean() - 1.0) < 0.05
    g = np.asarray(fr.gumbel(keys[4], (N,), fa.float64))
    assert abs(g.mean() - 0.5772156649) < 0.05 and np.all(np.isfinite(g))
    t = np.asarray(fr.truncated_normal(keys[5], -1.0, 2.0, (N,), fa.float64))
    assert t.min() > -1.0 and t.max() < 2.0
    # Mean of N(0, 1) truncated to (-1, 2): (phi(-1) - phi(2)) / (Phi(2) - Phi(-1)).
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
    assert abs(t.mean() - (phi(-1) - phi(2)) / (cdf(2) - cdf(-1))) < 0.02


def test_truncated_normal_far_tails_and_bounds_shape():
    t = np.asarray(fr.truncated_normal(fr.key(0), fa.asarray([-3.0, 4.0]), 6.0, dtype=fa.float64))
    assert t.shape == (2,) and t[0] > -3.0 and 4.0 < t[1] < 6.0


def test_permutation_and_choice():
    k = fr.key(11)
    p = np.asarray(fr.permutation(k, 10))
    np.testing.assert_array_equal(np.sort(p), np.arange(10))
    x = np.arange(12.0).reshape(3, 4)
    px = np.asarray(fr.permutation(k, fa.asarray(x), axis=1))
    np.testing.assert_array_equal(np.sort(px, axis=1), x)
    assert not np.array_equal(px, x)
    no_rep = np.asarray(fr.choice(k, 10, (2, 3), replace=False))
    assert no_rep.shape == (2, 3) and len(set(no_rep.ravel())) == 6
    weighted = np.asarray(fr.choice(k, 4, (N,), p=fa.asarray([0.1, 0.0, 0.6, 0.3])))
    np.testing.assert_allclose(np.bincount(weighted, minlength=4) / N, [0.1, 0.0, 0.6, 0.3],
                               atol=0.02)
    wn = np.asarray(fr.choice(k, 5, (3,), replace=False, p=fa.asarray([0.2] * 5)))
    assert len(set(wn)) == 3
    rows = np.asarray(fr.choice(k, fa.asarray(x), (5,), axis=1))
    assert rows.shape == (3, 5) and set(rows[0]) <= set(x[0])


@pytest.mark.parametrize("draw", [
    lambda k: fr.uniform(k, (3, 2)),
    lambda k: fr.normal(k, (4,), fa.float64),
    lambda k: fr.randint(k, (5,), 0, 100),
    lambda k: fr.permutation(k, 6),
    lambda k: fr.split(k, 3),
    lambda k: fr.fold_in(k, 9),
    lambda k: fr.categorical(k, fa.asarray([0.5, 1.0, 2.0]), shape=(4,)),
    lambda k: fr.bits(k, (3,), fa.uint64),
])
def test_vmap_over_keys_equals_loop(draw):
    keys = fr.split(fr.key(5), 4)
    got = fa.vmap(draw)(keys)
    loop = np.stack([np.asarray(draw(keys[i])) for i in range(4)])
    np.testing.assert_array_equal(np.asarray(got), loop)


def test_vmap_over_fold_in_data_and_jit():
    k = fr.key(1)
    got = fa.vmap(lambda d: fr.fold_in(k, d))(fa.arange(3, dtype=fa.uint32))
    loop = np.stack([np.asarray(fr.fold_in(k, i)) for i in range(3)])
    np.testing.assert_array_equal(np.asarray(got), loop)
    jitted = fa.jit(lambda k: fr.normal(k, (3,)))
    np.testing.assert_array_equal(np.asarray(jitted(k)), np.asarray(fr.normal(k, (3,))))


def test_random_values_are_constants_under_grad():
    k = fr.key(2)
    noise = fr.normal(k, (3,), fa.float64)
    g = fa.grad(lambda x: fa.sum(x * fr.normal(k, (3,), fa.float64)))(fa.ones(3, fa.float64))
    np.testing.assert_array_equal(np.asarray(g), np.asarray(noise))
    gu = fa.grad(lambda lo: fa.sum(fr.uniform(k, (3,), fa.float64, lo, 5.0)))(
        fa.asarray(1.0, dtype=fa.float64))
    assert np.isfinite(float(gu))


@pytest.mark.parametrize("call, exc, match", [
    (lambda: fr.normal(fa.zeros(2), (3,)), TypeError, r"random.normal: expected a key"),
    (lambda: fr.uniform(fr.split(fr.key(0)), (3,)), TypeError, r"fa.vmap over them"),
    (lambda: fr.key(2 ** 64), ValueError, r"random.key: seed"),
    (lambda: fr.key(1.5), TypeError, r"seed must be an int"),
    (lambda: fr.uniform(fr.key(0), (2,), fa.int32), TypeError, r"float dtype"),
    (lambda: fr.randint(fr.key(0), (2,), 0, 5, dtype=fa.float32), TypeError, r"integer dtype"),
    (lambda: fr.choice(fr.key(0), 3, (4,), replace=False), ValueError, r"without replacement"),
    (lambda: fr.categorical(fr.key(0), fa.zeros((2, 3)), shape=(4,)), ValueError,
     r"must end with"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
