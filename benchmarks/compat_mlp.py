"""Eager compat forward+backward of an MLP against hand-written NumPy; prints the ratio.

Run: python benchmarks/compat_mlp.py            (small: 32-64-10, batch 64)
     python benchmarks/compat_mlp.py --large    (784-512-256-10, batch 64: kernels dominate)

The model is tanh hidden layers and a mean-squared-error loss; both versions compute the
loss and the gradients of every weight matrix, and the script checks they agree.
"""

import sys
import time

import numpy as np

import fnarray.compat as torch

LARGE = "--large" in sys.argv
B = 64
WIDTHS = (784, 512, 256, 10) if LARGE else (32, 64, 10)
rng = np.random.default_rng(0)
X = rng.standard_normal((B, WIDTHS[0])).astype(np.float32)
Y = rng.standard_normal((B, WIDTHS[-1])).astype(np.float32)
WS = [(rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32)
      for i, o in zip(WIDTHS[:-1], WIDTHS[1:])]


def numpy_step():
    acts = [X]
    for w in WS[:-1]:
        acts.append(np.tanh(acts[-1] @ w))
    diff = acts[-1] @ WS[-1] - Y
    loss = (diff ** 2).mean()
    g = 2 * diff / diff.size
    grads = []
    for i in range(len(WS) - 1, -1, -1):
        grads.append(acts[i].T @ g)
        if i:
            g = (g @ WS[i].T) * (1 - acts[i] * acts[i])
    return loss, grads[::-1]


x, y = torch.tensor(X), torch.tensor(Y)
ws = [torch.tensor(w, requires_grad=True) for w in WS]


def compat_step():
    h = x
    for w in ws[:-1]:
        h = torch.tanh(h @ w)
    loss = ((h @ ws[-1] - y) ** 2).mean()
    loss.backward()
    grads = [w.grad for w in ws]
    for w in ws:
        w.grad = None
    return loss, grads


def bench(fn, seconds=2.0):
    """Mean time per call, from repeated timing windows (the best window wins, which
    filters out interference from other processes on a shared machine)."""
    for _ in range(20):
        fn()
    t0 = time.perf_counter()
    fn()
    n = max(1, int(0.2 / max(time.perf_counter() - t0, 1e-7)))
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


if __name__ == "__main__":
    loss_c, grads_c = compat_step()
    loss_n, grads_n = numpy_step()
    assert np.isclose(loss_c.item(), loss_n, rtol=1e-5)
    for gc, gn in zip(grads_c, grads_n):
        assert np.allclose(gc.numpy(), gn, atol=1e-5)
    t_np, t_c = bench(numpy_step), bench(compat_step)
    print(f"widths {WIDTHS}, batch {B}")
    print(f"numpy  {t_np * 1e6:8.1f} us/step")
    print(f"compat {t_c * 1e6:8.1f} us/step")
    print(f"ratio  {t_c / t_np:8.2f}x")
