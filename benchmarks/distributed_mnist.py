"""MNIST epoch time on 1 rank versus N MPI ranks, and the gradient traffic per step.

Run from the repository root: ``python benchmarks/distributed_mnist.py [--ranks 2]
[--epochs 1]`` (needs the ``distributed`` extra).  It runs ``python -m
fnarray.examples.mnist`` once alone (default BLAS threads) and once under ``mpiexec -n
RANKS`` (one BLAS thread per rank, so the ranks share the cores instead of oversubscribing
them), and reports each run's seconds per epoch and test accuracy as the example prints
them.  Each rank trains on its shard with batch 64, so the global batch is 64 × ranks and
an epoch has that many times fewer steps.  Communication: DistributedDataParallel
all-reduces every gradient once per step (one bucket under the 25 MB cap; the model has no
buffers to broadcast), i.e. parameters × 4 bytes per rank per step.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def run(cmd: list[str], env: dict) -> tuple[float, float]:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(out.stdout + out.stderr)
    epochs = re.findall(r"test accuracy ([\d.]+)%  \(([\d.]+) s\)", out.stdout)
    return float(epochs[-1][1]), float(epochs[-1][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    from fnarray.examples.mnist import Net
    params = sum(p.numel() for p in Net().parameters())
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                           + os.environ.get("PATH", ""))
    job = [sys.executable, "-m", "fnarray.examples.mnist", "--no-progress",
           "--epochs", str(args.epochs)]
    with tempfile.TemporaryDirectory() as tmp:
        alone = run(job + ["--out", f"{tmp}/one"], dict(os.environ))
        spread = run([mpiexec, "-n", str(args.ranks)] + job + ["--out", f"{tmp}/many"],
                     dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))
    print(f"1 rank:  {alone[0]:.1f} s per epoch, test accuracy {alone[1]:.2f}%")
    print(f"{args.ranks} ranks: {spread[0]:.1f} s per epoch, test accuracy {spread[1]:.2f}% "
          f"(global batch {64 * args.ranks})")
    print(f"gradient all-reduce per step: {params:,} float32 = {4 * params:,} bytes per rank")


if __name__ == "__main__":
    main()
