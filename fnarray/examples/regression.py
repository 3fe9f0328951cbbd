"""Fit a small MLP to a noisy sine curve with ``fa.value_and_grad`` and plain SGD.

Run: ``python -m fnarray.examples.regression [--steps N]``.  Prints the loss as it falls;
everything is pure functions of parameter pytrees.
"""

from __future__ import annotations

import argparse

import fnarray as fa


def init_params(key, sizes):
    params = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = fa.random.normal(fa.random.fold_in(key, i), (n_in, n_out)) * (1.0 / n_in) ** 0.5
        params.append({"w": w, "b": fa.zeros((n_out,))})
    return params


def predict(params, x):
    for layer in params[:-1]:
        x = fa.tanh(x @ layer["w"] + layer["b"])
    last = params[-1]
    return x @ last["w"] + last["b"]


def loss_fn(params, x, y):
    return fa.mean((predict(params, x) - y) ** 2)


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args(argv)
    key = fa.random.key(0)
    x = fa.reshape(fa.linspace(-3.0, 3.0, 256), (-1, 1))
    y = fa.sin(x) + 0.05 * fa.random.normal(fa.random.fold_in(key, 99), x.shape)
    params = init_params(key, [1, 32, 32, 1])
    step = fa.value_and_grad(loss_fn)
    loss = None
    for i in range(args.steps + 1):
        loss, grads = step(params, x, y)
        params = fa.tree.map(lambda p, g: p - args.lr * g, params, grads)
        if i % max(args.steps // 5, 1) == 0:
            print(f"step {i:5d}  loss {float(loss):.5f}")
    return float(loss)


if __name__ == "__main__":
    main()
