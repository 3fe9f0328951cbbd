"""LSTM(32, 64), T=50, batch 16, float32: the time loop as one ``fa.scan`` (what
``nn.LSTM`` runs) vs a Python loop over the same cell step, plus the jitted gradient.

Run: ``python benchmarks/lstm_scan.py``.  Prints the best of 5 timings in milliseconds:
forward + backward through the compat tape, forward only (no_grad), and
``fa.jit(fa.value_and_grad)`` through ``functional_call``.
"""

from __future__ import annotations

import timeit

import numpy as np

import fnarray as fa
import fnarray.compat as torch
from fnarray import nn
from fnarray.nn.layers.rnn import _cell_step

T, N, F, H = 50, 16, 32, 64


def main() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(F, H)
    x = torch.tensor(np.random.default_rng(0).normal(size=(T, N, F)).astype(np.float32))
    weights = lstm._weights(0, "")

    def python_loop(x):
        state, outs = (fa.zeros((N, H)), fa.zeros((N, H))), []
        for t in range(T):
            state = _cell_step("LSTM", x[t], state, *weights)
            outs.append(state[0])
        return fa.stack(outs)

    def train_step(forward):
        lstm.zero_grad()
        forward(x).sum().backward()

    def best(fn):
        return min(timeit.repeat(fn, number=1, repeat=5)) * 1e3

    print(f"compat forward+backward: scan {best(lambda: train_step(lambda v: lstm(v)[0])):.1f} ms"
          f", Python loop {best(lambda: train_step(python_loop)):.1f} ms")
    with torch.no_grad():
        print(f"compat forward (no_grad): scan {best(lambda: lstm(x)):.1f} ms, "
              f"Python loop {best(lambda: python_loop(x)):.1f} ms")
    params = {k: v.detach()._value for k, v in lstm.named_parameters()}
    step = fa.jit(fa.value_and_grad(
        lambda p, v: fa.sum(nn.functional_call(lstm, p, (v,))[0])))
    step(params, x._value)
    print(f"fa.jit(value_and_grad): {best(lambda: step(params, x._value)):.1f} ms "
          f"({len(fa.make_ir(step)(params, x._value))} equations for T={T})")


if __name__ == "__main__":
    main()
