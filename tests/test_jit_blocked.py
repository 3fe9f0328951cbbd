"""Cache-blocked evaluation of elementwise programs (``transforms/blocked.py``): the same
bits as the whole-array code on every size around the block size, inputs and outputs a
caller can see never written, donated buffers still receive the updates, non-contiguous
inputs fall back to the whole-array code."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
from fnarray.compat import nn
from fnarray.transforms import blocked

BLOCK = 8
SIZES = (0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 1, 5 * BLOCK + 3)
OPTIMIZERS = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3),
    "adamw-amsgrad": lambda ps: torch.optim.AdamW(ps, lr=1e-3, amsgrad=True),
    "sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2),
    "sgd-nesterov": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "rmsprop-centered": lambda ps: torch.optim.RMSprop(ps, lr=1e-2, momentum=0.5, centered=True),
}


def _train(make, shapes, block, monkeypatch, steps=3):
    monkeypatch.setattr(blocked, "BLOCK", block)
    rng = np.random.default_rng(0)
    params = [nn.Parameter(torch.tensor(rng.standard_normal(s).astype(np.float32)))
              for s in shapes]
    opt = make(params)
    values = []
    for _ in range(steps):
        for p in params:
            p.grad = torch.tensor(rng.standard_normal(p.shape).astype(np.float32))
        opt.step()
        values.append([p.detach().numpy().copy() for p in params])
    state = [{k: np.asarray(v).copy() for k, v in opt.state_dict()["state"][i].items()}
             for i in range(len(params))]
    return values, state, opt


def _sources(opt) -> str:
    return "\n".join(c.run.source + (c.run_donating.source if c.run_donating else "")
                     for j in opt._fused.programs() for c in j._cache.values())


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_steps_are_bit_identical_blocked_and_whole(name, monkeypatch):
    shapes = [(n,) for n in SIZES] + [(3, 7), (2, 3, 5)]
    whole, whole_state, opt = _train(OPTIMIZERS[name], shapes, 10**12, monkeypatch)
    assert "for lo in range" not in _sources(opt)
    got, got_state, opt = _train(OPTIMIZERS[name], shapes, BLOCK, monkeypatch)
    for step_whole, step_got in zip(whole, got):
        for a, b in zip(step_whole, step_got):
            assert a.tobytes() == b.tobytes()
    for a, b in zip(whole_state, got_state):
        assert a.keys() == b.keys()
        assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    if name == "adam":  # enough passes per buffer for blocking to pay
        assert "for lo in range" in _sources(opt)


def _chain(x, y, s):
    t = fa.exp(-x * x) * s + fa.log1p(y * y)
    u = fa.where(x > 0, fa.sqrt(fa.abs(t)), fa.tanh(t))
    return (u * s - t) / (1.5 + y * y), fa.sin(u) * fa.cos(x) + t


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_program_bit_identical_on_sizes_around_the_block(n, dtype, monkeypatch):
    rng = np.random.default_rng(n)
    x_np, y_np = (rng.standard_normal((n, 3)).astype(dtype) for _ in range(2))
    x, y, s = fa.asarray(x_np), fa.asarray(y_np), fa.asarray(dtype(0.75))
    monkeypatch.setattr(blocked, "BLOCK", 10**12)
    want = fa.jit(_chain)(x, y, s)
    monkeypatch.setattr(blocked, "BLOCK", BLOCK)
    f = fa.jit(_chain)
    got = f(x, y, s)
    for a, b in zip(want, got):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    assert ("for lo in range" in _source(f)) == (3 * n > BLOCK)
    assert np.array_equal(np.asarray(x), x_np) and np.array_equal(np.asarray(y), y_np)


def _source(jitted) -> str:
    return next(iter(jitted._cache.values())).run.source


def test_donated_buffers_receive_blocked_updates(monkeypatch):
    monkeypatch.setattr(blocked, "BLOCK", BLOCK)

    def update(m, g):
        m2 = 0.9 * m + 0.1 * g
        for _ in range(6):  # enough passes per buffer for blocking to pay
            g = g * 0.5 + m2
        return m2, g

    f = fa.jit(update, donate_argnums=(0,))
    g_np = np.arange(5 * BLOCK + 3, dtype=np.float32)
    m = fa.asarray(np.ones_like(g_np))
    address = m._value.__array_interface__["data"][0]
    m2, out = f(m, fa.asarray(g_np))
    assert "for lo in range" in next(iter(f._cache.values())).run_donating.source
    want_m2 = np.float32(0.9) * np.ones_like(g_np) + np.float32(0.1) * g_np
    assert np.array_equal(np.asarray(m2), want_m2)
    assert address in {np.asarray(r).__array_interface__["data"][0] for r in (m2, out)}
    monkeypatch.setattr(blocked, "BLOCK", 10**12)
    _, want_out = fa.jit(update)(fa.asarray(np.ones_like(g_np)), fa.asarray(g_np))
    assert np.asarray(out).tobytes() == np.asarray(want_out).tobytes()


def test_non_contiguous_inputs_are_copied_row_major_and_blocked(monkeypatch):
    monkeypatch.setattr(blocked, "BLOCK", BLOCK)
    f = fa.jit(_chain)
    base = np.random.default_rng(1).standard_normal((6 * BLOCK, 6)).astype(np.float32)
    x, y, s = fa.asarray(base), fa.asarray(base * 2), fa.asarray(np.float32(0.5))
    f(x, y, s)
    assert "for lo in range" in _source(f)
    assert "ascontiguousarray" in _source(f)
    strided = fa.asarray(np.asfortranarray(base))  # same shape, not C-contiguous
    got = f(strided, y, s)
    assert not np.shares_memory(np.asarray(got[0]), base)  # the user's buffer is never written
    assert np.asarray(strided).tobytes() == np.asfortranarray(base).tobytes()
    monkeypatch.setattr(blocked, "BLOCK", 10**12)
    want = fa.jit(_chain)(x, y, s)
    for a, b in zip(want, got):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
