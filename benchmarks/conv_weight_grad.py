"""The two orders of a convolution's weight-cotangent product, timed on NumPy's BLAS.

``ops/conv.py`` (``_weight_cotangent``) computes a convolution's weight cotangent either as
``(O, N*out) @ (N*out, C*K)`` or as ``((C*K, N*out) @ (N*out, O)).T``; it takes the second
when the patch side is the longer one and the contraction at least as long as it.  This
script times both orders (the second with the small transpose copy the reshape to the
weight's shape makes) for convolution-shaped products, alternating them call by call with
the caches flushed in between, as in a training step; it prints the medians and the median
of the per-pair ratios, and says which order the rule picks.

Run::

    python benchmarks/conv_weight_grad.py [--pairs 25] [--write benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import write_section  # noqa: E402

SHAPES = [  # (O, C*K, N*out): first the MNIST ConvNet's two layers
    (32, 9, 43264), (64, 288, 36864), (64, 27, 32768), (128, 576, 8192), (256, 1152, 2048),
    (16, 144, 6272), (64, 576, 2048), (512, 2304, 512), (128, 1152, 512)]
START, END = "<!-- conv_weight_grad.py: start -->", "<!-- conv_weight_grad.py: end -->"


def timed(fn, flush: np.ndarray) -> float:
    flush.sum()  # evict the operands, as the rest of a training step does
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=25)
    parser.add_argument("--write", help="write the table (markdown) into this file")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    flush = rng.standard_normal(20_000_000).astype(np.float32)
    lines = ["## Convolution weight gradient: product order (`benchmarks/conv_weight_grad.py`)",
             "", "float32, NumPy's BLAS with its default threads; medians of "
             f"{args.pairs} alternating pairs.", "",
             "| O | C*K | N*out | cotangent first | patches first | ratio | rule picks |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for o, ck, n in SHAPES:
        g = rng.standard_normal((o, n)).astype(np.float32)
        p = rng.standard_normal((ck, n)).astype(np.float32)
        first = lambda: g @ p.T  # noqa: E731
        second = lambda: np.ascontiguousarray((p @ g.T).T)  # noqa: E731
        a, b = [], []
        for _ in range(args.pairs):
            a.append(timed(first, flush))
            b.append(timed(second, flush))
        ratio = statistics.median(y / x for x, y in zip(a, b))
        pick = "patches first" if ck > o and n >= ck else "cotangent first"
        lines.append(f"| {o} | {ck} | {n} | {statistics.median(a) * 1e3:.3f} ms | "
                     f"{statistics.median(b) * 1e3:.3f} ms | {ratio:.2f} | {pick} |")
        print(lines[-1], flush=True)
    if args.write:
        write_section(Path(args.write), "\n".join(lines) + "\n", START, END)


if __name__ == "__main__":
    main()
