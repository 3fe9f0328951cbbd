"""Transformations in concurrent threads: each thread has its own interpreter stack, so
independent ``grad``/``jvp``/``vmap`` computations never see each other's tracers."""

from __future__ import annotations

import threading

import numpy as np

import fnarray as fa

ITERATIONS = 40


def _x(seed):
    return fa.asarray(np.random.default_rng(seed).uniform(0.5, 1.5, 5))


def _jobs():
    """(name, computation, expected) per thread; each computation differs."""
    def poly(x):
        return fa.sum(x ** 3 + 2 * x)

    def hvp(x):
        return fa.jvp(fa.grad(poly), (x,), (fa.ones_like(x),))[1]

    return [
        ("grad", lambda x: fa.grad(poly)(x), lambda h: 3 * h ** 2 + 2),
        ("jvp", lambda x: fa.jvp(fa.sin, (x,), (fa.ones_like(x),))[1], np.cos),
        ("vmap", lambda x: fa.vmap(lambda r: r * fa.sum(r))(fa.stack([x, 2 * x])),
         lambda h: np.stack([h * h.sum(), 4 * h * h.sum()])),
        ("hvp", hvp, lambda h: 6 * h),
        ("vmap-grad", lambda x: fa.vmap(fa.grad(lambda r: fa.sum(fa.exp(r))))(fa.stack([x, x])),
         lambda h: np.stack([np.exp(h), np.exp(h)])),
        ("grad-grad", lambda x: fa.vmap(fa.grad(fa.grad(fa.sin)))(x), lambda h: -np.sin(h)),
        ("jacrev", lambda x: fa.jacrev(fa.tanh)(x), lambda h: np.diag(1 - np.tanh(h) ** 2)),
        ("vjp", lambda x: fa.vjp(fa.log, x)[1](fa.ones_like(x))[0], lambda h: 1 / h),
    ]


def test_eight_threads_compute_correct_results_concurrently():
    errors: list = []
    barrier = threading.Barrier(8)

    def run(i, name, compute, expected):
        try:
            barrier.wait()
            for it in range(ITERATIONS):
                x = _x(i * 1000 + it)
                got = np.asarray(compute(x))
                want = expected(np.asarray(x, dtype=np.float64))
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5,
                                           err_msg=f"{name}, iteration {it}")
        except Exception as e:  # reported by the main thread
            errors.append(f"{name}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=run, args=(i, *job)) for i, job in enumerate(_jobs())]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, "\n".join(errors)
