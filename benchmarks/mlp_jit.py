"""MLP training step (784-512-256-10, batch 128, float32, SGD): fnarray vs hand-written NumPy.

Run: ``python benchmarks/mlp_jit.py``.  Times, in one process, one SGD step as
(1) eager ``fa.value_and_grad``, (2) ``fa.jit(value_and_grad)``, (3) a hand-written NumPy
forward + backward; then per-example gradients with ``fa.vmap(fa.grad)`` (eager and jitted)
vs a hand-written batched NumPy version.  Prints milliseconds and ratios to NumPy.
"""

from __future__ import annotations

import timeit

import numpy as np

import fnarray as fa

SIZES = (784, 512, 256, 10)
BATCH = 128
LR = 0.01


def init(rng):
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        params.append((rng.normal(0, n_in ** -0.5, (n_in, n_out)).astype(np.float32),
                       np.zeros(n_out, np.float32)))
    return params


def loss_fa(params, x, y):
    h = x
    for w, b in params[:-1]:
        h = fa.maximum(h @ w + b, 0.0)
    w, b = params[-1]
    logits = h @ w + b
    logp = logits - fa.logsumexp(logits, axis=1, keepdims=True)
    return -fa.mean(fa.sum(logp * y, axis=1))


def sgd_step_fa(params, x, y):
    loss, grads = fa.value_and_grad(loss_fa)(params, x, y)
    return loss, fa.tree.map(lambda p, g: p - LR * g, params, grads)


def forward_np(params, x):
    """Hand-written forward pass: the activations, pre-activations and softmax pieces."""
    acts, pre = [x], []
    h = x
    for w, b in params[:-1]:
        z = h @ w + b
        pre.append(z)
        h = np.maximum(z, 0)
        acts.append(h)
    w, b = params[-1]
    logits = h @ w + b
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    return acts, pre, logits - m - np.log(s), e / s


def backward_np(params, acts, pre, g):
    """Hand-written backward pass from the logits' cotangent ``g``; per layer, the
    cotangent at its output and its input activation."""
    out = []
    for i in range(len(params) - 1, -1, -1):
        out.append((acts[i], g))
        if i:
            g = (g @ params[i][0].T) * (pre[i - 1] > 0)
    return out[::-1]


def sgd_step_np(params, x, y):
    """Hand-written forward and backward pass of the same network."""
    acts, pre, logp, probs = forward_np(params, x)
    loss = -(logp * y).sum(axis=1).mean()
    layers = backward_np(params, acts, pre, (probs - y) / x.shape[0])
    new = [(w - LR * (a.T @ g), b - LR * g.sum(axis=0))
           for (w, b), (a, g) in zip(params, layers)]
    return loss, new


def per_example_np(params, x, y):
    """Per-example gradients of the same loss, batched by hand with einsum."""
    acts, pre, _, probs = forward_np(params, x)
    layers = backward_np(params, acts, pre, probs - y)
    return [(np.einsum("bi,bj->bij", a, g), g) for a, g in layers]


def best_ms(f, number=5, repeat=5) -> float:
    return min(timeit.repeat(f, number=number, repeat=repeat)) / number * 1e3


def main() -> None:
    rng = np.random.default_rng(0)
    params_np = init(rng)
    x_np = rng.normal(size=(BATCH, SIZES[0])).astype(np.float32)
    y_np = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, 10, BATCH)]
    params = [(fa.asarray(w), fa.asarray(b)) for w, b in params_np]
    x, y = fa.asarray(x_np), fa.asarray(y_np)

    jitted = fa.jit(sgd_step_fa)
    l_fa, _ = jitted(params, x, y)
    l_np, _ = sgd_step_np(params_np, x_np, y_np)
    assert abs(float(l_fa) - float(l_np)) < 1e-4, (float(l_fa), float(l_np))

    t_np = best_ms(lambda: sgd_step_np(params_np, x_np, y_np))
    t_eager = best_ms(lambda: sgd_step_fa(params, x, y))
    t_jit = best_ms(lambda: jitted(params, x, y))
    print("MLP 784-512-256-10, batch 128, float32, one SGD step")
    print(f"  numpy (hand-written)        {t_np:8.2f} ms")
    print(f"  fa.value_and_grad (eager)   {t_eager:8.2f} ms   ratio {t_eager / t_np:5.2f}")
    print(f"  fa.jit(value_and_grad)      {t_jit:8.2f} ms   ratio {t_jit / t_np:5.2f}")

    small = 32
    xs, ys = x[:small], y[:small]
    pe = fa.vmap(fa.grad(lambda p, a, b: loss_fa(p, a[None], b[None])), in_axes=(None, 0, 0))
    pe_jit = fa.jit(pe)
    ref = per_example_np(params_np, x_np[:small], y_np[:small])
    got = pe_jit(params, xs, ys)
    np.testing.assert_allclose(np.asarray(got[0][0]), ref[0][0], rtol=1e-3, atol=1e-5)
    t_pe_np = best_ms(lambda: per_example_np(params_np, x_np[:small], y_np[:small]), number=2)
    t_pe = best_ms(lambda: pe(params, xs, ys), number=2)
    t_pe_jit = best_ms(lambda: pe_jit(params, xs, ys), number=2)
    print(f"Per-example gradients, batch {small}")
    print(f"  numpy (hand-batched einsum) {t_pe_np:8.2f} ms")
    print(f"  fa.vmap(fa.grad) eager      {t_pe:8.2f} ms   ratio {t_pe / t_pe_np:5.2f}")
    print(f"  fa.jit(vmap(grad))          {t_pe_jit:8.2f} ms   ratio {t_pe_jit / t_pe_np:5.2f}")


if __name__ == "__main__":
    main()
