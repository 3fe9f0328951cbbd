"""Optimizer steps with and without the fused compiled loops (``transforms/fused_kernels.py``).

Times ``opt.step()`` of the tutorial ConvNet (Adam) and of the 784-512-256-10 MLP (SGD),
with the NumPy path (``accel.forced(False)``), the default choice (compiled loops for
arrays of at least ``accel.MIN_SIZE`` elements) and compiled loops at every size,
interleaved in one process; medians in ms.

Run: ``python benchmarks/accel_fusion.py [rounds]`` (needs the ``accel`` extra).
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext

import numpy as np

import fnarray.compat as torch
import fnarray.nn.functional as F
from fnarray import optim
from fnarray.backends import accel
from fnarray.compat import nn
from fnarray.examples.mnist import Net


def convnet_adam(rng):
    x = torch.tensor(rng.standard_normal((64, 1, 28, 28)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 10, 64))
    torch.manual_seed(0)
    model = Net()
    opt = optim.Adam(model.parameters())
    F.nll_loss(model(x), y).backward()
    return opt


def mlp_sgd(rng):
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    opt = optim.SGD(model.parameters(), lr=0.01)
    x = torch.tensor(rng.standard_normal((128, 784)).astype(np.float32))
    F.cross_entropy(model(x), torch.tensor(rng.integers(0, 10, 128))).backward()
    return opt


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    modes = {"numpy": lambda: accel.forced(False), "default": nullcontext,
             "compiled": lambda: accel.forced(True)}
    rng = np.random.default_rng(0)
    for name, make in (("ConvNet Adam step", convnet_adam), ("MLP SGD step", mlp_sgd)):
        opt = make(rng)
        for mode in modes.values():  # trace, compile (or load the cached loops), settle
            with mode():
                opt.step()
                opt.step()
        times = {k: [] for k in modes}
        for _ in range(rounds):
            for k, mode in modes.items():
                with mode():
                    t0 = time.perf_counter()
                    opt.step()
                    times[k].append(time.perf_counter() - t0)
        print(f"{name}: " + "  ".join(f"{k} {1e3 * np.median(v):.3f} ms"
                                      for k, v in times.items()))


if __name__ == "__main__":
    main()
