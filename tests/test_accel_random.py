"""The compiled Threefry kernels (``fnarray/backends/kernels/random.py``) give exactly the
bits of the NumPy code: random streams are part of fnarray's contract, so every test
here compares words for equality, on both kernel paths (``kernel_path``), against the
NumPy path, against Random123's known answers and against the pinned bits of key 0."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
import fnarray.nn.functional as F
from fnarray.api import random as fr
from fnarray.backends import accel
from fnarray.ops.random_bits import random_bits, threefry2x32

KEYS = np.array([[0, 0], [0xFFFFFFFF, 0xFFFFFFFF], [0x13198A2E, 0x03707344], [7, 2 ** 31 + 5]],
                dtype=np.uint32)


def _numpy_path(fn, *args, **params):
    """``fn`` evaluated on the NumPy kernels, as host arrays."""
    with accel.forced(False):
        out = fn(*args, **params)
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else np.asarray(out)


def _assert_same_words(got, expected):
    got = np.asarray(got)
    assert got.dtype == expected.dtype and got.shape == expected.shape, (
        f"{got.dtype}{got.shape} vs {expected.dtype}{expected.shape}")
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shape", [(), (0,), (1,), (2,), (3,), (7,), (3, 5), (4, 0, 3), (33, 17),
                                   (2, 1, 9)])
@pytest.mark.parametrize("batch", [(), (4,), (2, 2), (0,)])
def test_random_bits_equal_the_numpy_path(kernel_path, shape, batch):
    """Odd sizes (a last half-used block), 0-d and empty draws, batches of keys."""
    keys = fa.asarray(np.resize(KEYS, (*batch, 2)))
    got = random_bits.bind(keys, shape=shape)
    _assert_same_words(got, _numpy_path(random_bits.bind, keys, shape=shape))


def test_random_bits_pinned_and_known_answers(kernel_path):
    """Key 0's first words (pinned in test_random.py) and, since random_bits hashes the
    counters (0, j), the Random123 answer for counter (0, 0) under each key."""
    np.testing.assert_array_equal(np.asarray(fr.bits(fr.key(0), (3,))),
                                  [0x6B200159, 0x99BA4EFE, 0x375F238F])
    words = np.asarray(random_bits.bind(fa.asarray(KEYS[:1]), shape=(2,)))
    np.testing.assert_array_equal(words, [[0x6B200159, 0x99BA4EFE]])


def test_random_bits_with_non_contiguous_keys(kernel_path):
    host = np.arange(24, dtype=np.uint32).reshape(2, 6, 2)[:, ::2].transpose(1, 0, 2)
    keys = fa.asarray(host)
    got = random_bits.bind(keys, shape=(5,))
    _assert_same_words(got, _numpy_path(random_bits.bind, fa.asarray(host.copy()), shape=(5,)))


def test_large_draw_equals_the_numpy_path(kernel_path):
    """The ConvNet's dropout mask size (64*64*12*12 words: many full vector iterations)."""
    key = fr.key(123)
    got = fr.bits(key, (64, 64, 12, 12))
    _assert_same_words(got, _numpy_path(fr.bits, key, (64, 64, 12, 12)))


@pytest.mark.parametrize("key, counter, expected", [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_threefry_known_answers(kernel_path, key, counter, expected):
    """Random123's Threefry-2x32-20 vectors, with the operands broadcast to a batch."""
    words = [fa.asarray(np.full((3, 1), w, np.uint32)) for w in (*key, counter[0])]
    y0, y1 = threefry2x32.bind(*words, fa.asarray(np.full((2,), counter[1], np.uint32)))
    np.testing.assert_array_equal(np.asarray(y0), np.full((3, 2), expected[0]))
    np.testing.assert_array_equal(np.asarray(y1), np.full((3, 2), expected[1]))


@pytest.mark.parametrize("shapes", [[(), (), (), ()], [(5,), (), (5,), (1,)], [(0,), (), (1,), ()],
                                    [(2, 3), (3,), (2, 1), (1, 3)], [(7,), (7,), (7,), (7,)]])
def test_threefry_equals_the_numpy_path(kernel_path, shapes):
    rng = np.random.default_rng(len(shapes[0]))
    words = [fa.asarray(rng.integers(0, 2 ** 32, s, dtype=np.uint32)) for s in shapes]
    for got, expected in zip(threefry2x32.bind(*words), _numpy_path(threefry2x32.bind, *words)):
        _assert_same_words(got, expected)


def test_threefry_with_non_contiguous_operands(kernel_path):
    rng = np.random.default_rng(3)
    host = [rng.integers(0, 2 ** 32, (6, 8), dtype=np.uint32)[::2, 1::3].T for _ in range(4)]
    got = threefry2x32.bind(*map(fa.asarray, host))
    expected = _numpy_path(threefry2x32.bind, *[fa.asarray(h.copy()) for h in host])
    for g, e in zip(got, expected):
        _assert_same_words(g, e)


def test_vmap_over_keys_equals_a_loop(kernel_path):
    """Batched draws (random_bits' batching rule) and batched fold_in (threefry2x32's)."""
    keys = fr.split(fr.key(9), 5)
    drawn = fa.vmap(lambda k: fr.bits(k, (3, 7)))(keys)
    _assert_same_words(drawn, np.stack([np.asarray(fr.bits(keys[i], (3, 7))) for i in range(5)]))
    folded = fa.vmap(lambda d: fr.fold_in(keys[0], d))(fa.arange(6))
    _assert_same_words(folded, np.stack([np.asarray(fr.fold_in(keys[0], i)) for i in range(6)]))
    _assert_same_words(drawn, _numpy_path(fa.vmap(lambda k: fr.bits(k, (3, 7))), keys))


def test_under_jit_equals_the_numpy_path(kernel_path):
    draw = fa.jit(lambda k: (fr.uniform(k, (40, 9)), fr.split(k, 3)))
    key = fr.key(77)
    for got, expected in zip(draw(key), _numpy_path(draw, key)):
        _assert_same_words(got, expected)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("p", [0.25, 0.5])
def test_dropout_values_and_gradient_equal_the_numpy_path(kernel_path, dtype, p):
    """F.dropout with an explicit key: the same outputs and the same input gradient."""
    x = fa.asarray(np.random.default_rng(0).standard_normal((64, 4, 12, 12)).astype(dtype))
    key = fr.key(5)

    def loss(x):
        return fa.sum(F.dropout(x, p, key=key) * x)

    out, grad = F.dropout(x, p, key=key), fa.grad(loss)(x)
    _assert_same_words(out, _numpy_path(F.dropout, x, p, key=key))
    _assert_same_words(grad, _numpy_path(fa.grad(loss), x))


def test_compat_dropout_stream_equals_the_numpy_path(kernel_path):
    """nn.Dropout on the global generator: the same masks after the same seed."""
    import fnarray.compat as torch

    layer = torch.nn.Dropout(0.5)
    x = torch.ones(64, 128)

    def two_draws():
        torch.manual_seed(3)
        return [layer(x).numpy(), layer(x).numpy()]

    got = two_draws()
    for g, e in zip(got, _numpy_path(two_draws)):
        _assert_same_words(g, e)
    assert not np.array_equal(got[0], got[1])


def test_auto_mode_compiles_mask_sized_draws_and_key_splits_once_loaded(monkeypatch):
    """Unforced, the kernels are asked for with the NumPy work a draw replaces: dropout's
    (64, 128) mask runs compiled; a key split (four words) stays on NumPy, loading nothing,
    until a larger draw has loaded the kernels, and runs compiled from then on (same words
    on both paths)."""
    if not accel.available():
        pytest.skip("compiled kernels need the 'accel' extra (numba)")
    from fnarray.backends.kernels import random as kernels

    calls = []
    compiled = kernels.random_bits
    monkeypatch.setattr(accel, "_mode", "auto")
    monkeypatch.setattr(accel, "_min_size", accel.MIN_SIZE)
    monkeypatch.delitem(accel._modules, "random", raising=False)
    monkeypatch.setattr(kernels, "random_bits", lambda *a: calls.append(a[1]) or compiled(*a))
    key = fr.key(1)
    on_numpy = np.asarray(fr.split(key))
    assert calls == [] and "random" not in accel._modules
    fr.bits(key, (64, 128))
    assert calls == [64 * 128]
    _assert_same_words(np.asarray(fr.split(key)), on_numpy)
    assert calls == [64 * 128, 4]
    with accel.forced(False):  # off: NumPy, loaded or not
        fr.split(key)
    assert calls == [64 * 128, 4]
