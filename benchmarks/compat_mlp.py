"""Eager compat forward+backward of a small MLP against hand-written NumPy; prints the ratio.

Run: python benchmarks/compat_mlp.py
"""

import time

import numpy as np

import fnarray.compat as torch

B, D, H, O = 64, 32, 64, 10
rng = np.random.default_rng(0)
X = rng.standard_normal((B, D)).astype(np.float32)
Y = rng.standard_normal((B, O)).astype(np.float32)
W1 = (rng.standard_normal((D, H)) * 0.1).astype(np.float32)
W2 = (rng.standard_normal((H, O)) * 0.1).astype(np.float32)


def numpy_step():
    h = X @ W1
    a = np.tanh(h)
    out = a @ W2
    diff = out - Y
    loss = (diff ** 2).mean()
    g_out = 2 * diff / diff.size
    g_w2 = a.T @ g_out
    g_a = g_out @ W2.T
    g_h = g_a * (1 - a * a)
    g_w1 = X.T @ g_h
    return loss, g_w1, g_w2


x, y = torch.tensor(X), torch.tensor(Y)
w1 = torch.tensor(W1, requires_grad=True)
w2 = torch.tensor(W2, requires_grad=True)


def compat_step():
    loss = ((torch.tanh(x @ w1) @ w2 - y) ** 2).mean()
    loss.backward()
    g = (w1.grad, w2.grad)
    w1.grad = w2.grad = None
    return loss, g


def bench(fn, n=2000):
    for _ in range(50):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


if __name__ == "__main__":
    _, (g1, g2) = compat_step()
    _, r1, r2 = numpy_step()
    assert np.allclose(g1.numpy(), r1, atol=1e-5) and np.allclose(g2.numpy(), r2, atol=1e-5)
    t_np, t_c = bench(numpy_step), bench(compat_step)
    print(f"numpy  {t_np * 1e6:8.1f} us/step")
    print(f"compat {t_c * 1e6:8.1f} us/step")
    print(f"ratio  {t_c / t_np:8.2f}x")
