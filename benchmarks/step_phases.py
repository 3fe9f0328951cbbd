"""Where a training step's time goes, phase by phase: ``zero_grad``, forward, loss,
``backward`` and the optimizer step of the MLP and ConvNet workloads of ``compare.py``, for
the compat layer (eager and ``compat.compile``) and PyTorch eager, in one process.

Run (PyTorch optional, as for ``compare.py``)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/step_phases.py \\
        [--rounds 15] [--only mlp,convnet] [--write benchmarks/RESULTS.md]

Each round runs every variant for a block of steps after the same settling pause as
``compare.py`` (the previous variant's thread pool must stop spinning first), timing the
five phases of every step with ``perf_counter``; the table gives per-phase medians over all
timed steps.  The phases add up to the whole step up to the timer's own cost (well under a
microsecond per phase).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fnarray  # noqa: E402,F401,I001 - before NumPy: OpenBLAS's thread timeout (fnarray/_openblas.py)
import bench_workloads as wl  # noqa: E402
from compare import SETTLE_SECONDS, environment, write_section  # noqa: E402

PHASES = ("zero_grad", "forward", "loss", "backward", "step")
VARIANTS = ("compat eager", "compat.compile", "PyTorch eager")
START, END = "<!-- step_phases.py: start -->", "<!-- step_phases.py: end -->"


def timed_step(functional, model, opt, x, y) -> list[float]:
    """One training step; the seconds each phase took."""
    clock = time.perf_counter
    t0 = clock()
    opt.zero_grad()
    t1 = clock()
    out = model(x)
    t2 = clock()
    loss = functional.cross_entropy(out, y)
    t3 = clock()
    loss.backward()
    t4 = clock()
    opt.step()
    t5 = clock()
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4]


def measure(parts: dict, rounds: int, block: int) -> dict:
    """``{variant: [per-step phase times]}``, variants interleaved round by round."""
    for args in parts.values():
        for _ in range(2):
            timed_step(*args)
    samples: dict = {name: [] for name in parts}
    for _ in range(rounds):
        for name, args in parts.items():
            time.sleep(SETTLE_SECONDS)
            timed_step(*args)
            samples[name] += [timed_step(*args) for _ in range(block)]
    return samples


def table(title: str, samples: dict) -> str:
    lines = [f"### {title}: time per phase (ms, medians)", "",
             "| variant | " + " | ".join(PHASES) + " | sum |",
             "| --- |" + " --- |" * (len(PHASES) + 1)]
    for name, steps in samples.items():
        medians = [statistics.median(s[i] for s in steps) * 1e3 for i in range(len(PHASES))]
        cells = " | ".join(f"{m:.3f}" for m in medians)
        lines.append(f"| {name} | {cells} | {sum(medians):.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", default="mlp,convnet")
    parser.add_argument("--write", help="write the report (markdown) into this file")
    args = parser.parse_args()
    parts = ["## Training step by phase (`benchmarks/step_phases.py`)", "", environment()]
    for key, build, block in (("mlp", wl.mlp, 10), ("convnet", wl.convnet, 3)):
        if key not in args.only.split(","):
            continue
        spec = build()
        chosen = {name: spec["variants"][name].parts for name in VARIANTS
                  if name in spec["variants"]}
        parts.append(table(spec["title"], measure(chosen, args.rounds, block)))
        print(parts[-1], flush=True)
    if args.write:
        write_section(Path(args.write), "\n".join(parts), START, END)


if __name__ == "__main__":
    main()
