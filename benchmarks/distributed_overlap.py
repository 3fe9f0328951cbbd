"""DistributedDataParallel: does all-reducing gradient buckets during backward pay?

Run from the repository root: ``OMP_NUM_THREADS=1 mpiexec -n 2 python
benchmarks/distributed_overlap.py [--layers 6] [--width 1024] [--rounds 15]`` (needs the
``distributed`` extra).  An MLP of ``layers`` float32 Linear(width, width) layers trains on
a batch of 64 per rank; each step (forward, backward, the gradient average) is timed for

* ``local``: the replica alone, no communication (the computation's cost);
* ``one bucket``: ``bucket_cap_mb`` above the model's size, so the only bucket is launched
  when backward has produced the last gradient (communication after the computation);
* ``per layer``: buckets of about one layer, each launched as soon as its gradients are
  final, while backward goes on with the layers below.

Configurations are interleaved round by round; rank 0 prints the medians.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    import fnarray.compat as torch
    import fnarray.distributed as dist
    from fnarray.nn.parallel import DistributedDataParallel
    dist.init_process_group("mpi")
    rank, size = dist.get_rank(), dist.get_world_size()

    def mlp():
        torch.manual_seed(0)
        layers = []
        for _ in range(args.layers):
            layers += [torch.nn.Linear(args.width, args.width), torch.nn.Tanh()]
        return torch.nn.Sequential(*layers)

    layer_mb = (args.width + 1) * args.width * 4 / 2**20
    models = {"local": mlp(),
              "one bucket": DistributedDataParallel(mlp(), bucket_cap_mb=1e6),
              "per layer": DistributedDataParallel(mlp(), bucket_cap_mb=1.01 * layer_mb)}
    x = torch.randn(64, args.width)
    times: dict[str, list[float]] = {name: [] for name in models}
    for step in range(args.rounds + 2):
        for name, model in models.items():
            dist.barrier()
            start = time.perf_counter()
            model(x).square().mean().backward()
            elapsed = time.perf_counter() - start
            for p in model.parameters():
                p.grad = None
            if step >= 2:  # two warm-up rounds
                times[name].append(elapsed)
    buckets = len(models["per layer"]._reducer.buckets)
    if rank == 0:
        total_mb = layer_mb * args.layers
        print(f"{size} ranks, MLP {args.layers} x Linear({args.width}, {args.width}) float32, "
              f"{total_mb:.1f} MB of gradients per step; per layer = {buckets} buckets")
        for name, ts in times.items():
            print(f"  {name:>10}: {np.median(ts) * 1e3:7.1f} ms / step (median of {len(ts)})")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
