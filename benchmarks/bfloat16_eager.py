"""Eager cost of bfloat16 against float32, one BLAS thread, in one process.

bfloat16 kernels run in float32 on widened copies and round back (``core/bfloat16.py``),
so a bfloat16 op pays two casts and a cached dtype lookup on top of the float32 kernel.
Three workloads: a tiny elementwise chain (per-op overhead), a 256x256 matrix product, and
a compat MLP training step (Linear(256, 256), ReLU, Linear(256, 10), batch 64, forward +
cross-entropy + backward).

Run: ``python benchmarks/bfloat16_eager.py`` (needs the ``bfloat16`` extra).  Prints the
median of 7 rounds per workload, the two dtypes interleaved round by round.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

import fnarray as fa
import fnarray.compat as torch


def _workloads(dtype) -> dict:
    x = fa.ones((8,), dtype)
    a = fa.ones((256, 256), dtype)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10)).to(torch.dtype(dtype))
    xb, yb = torch.randn(64, 256).to(torch.dtype(dtype)), torch.randint(0, 10, (64,))

    def step():
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(xb), yb).backward()

    return {"x * 2 + 1 (8 elements)": (lambda: x * 2.0 + 1.0, 2000),
            "matmul 256x256": (lambda: a @ a, 50),
            "MLP step (fwd+bwd)": (step, 20)}


def main() -> None:
    dtypes = {"float32": fa.float32, "bfloat16": fa.bfloat16}
    work = {name: _workloads(dt) for name, dt in dtypes.items()}
    times = {(d, w): [] for d in dtypes for w in work["float32"]}
    with threadpool_limits(1):
        for _ in range(7):
            for w in work["float32"]:
                for d in dtypes:
                    fn, n = work[d][w]
                    t = time.perf_counter()
                    for _ in range(n):
                        fn()
                    times[d, w].append((time.perf_counter() - t) / n)
    for w in work["float32"]:
        f32, bf16 = (float(np.median(times[d, w])) * 1e6 for d in dtypes)
        print(f"{w:24s} float32 {f32:9.1f} us  bfloat16 {bf16:9.1f} us  ratio {bf16 / f32:.2f}")


if __name__ == "__main__":
    main()
