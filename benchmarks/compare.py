"""fnarray next to PyTorch and JAX, in one process, for every row of issue 10's table.

Run (PyTorch and JAX are optional and never fnarray dependencies; use an environment where
they are installed, e.g. a separate venv with fnarray installed editable)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare.py \
        [--rounds 7] [--only eager,mlp,convnet,mnist] [--write benchmarks/RESULTS.md]

Workloads (float32 throughout):

* ``eager``   — ``sin(x) * x + 1`` on 16 floats: per-op dispatch cost;
* ``mlp``     — one SGD step of a 784-512-256-10 ReLU MLP with softmax cross-entropy, batch 128;
* ``convnet`` — one Adam step of the PyTorch MNIST tutorial ConvNet, batch 64, training mode;
* ``mnist``   — one epoch of the MNIST main job (``python -m fnarray.examples.mnist``) against
  ``benchmarks/mnist_torch_reference.py`` (both as subprocesses, one after the other).

The machine is shared, so every workload is measured in interleaved rounds: in each round
every variant runs one timing window, and the ratios are taken within the round (the
variants saw the same load); the table reports per-variant medians and best windows, and the
median of the per-round ratios.  Missing libraries are reported and their rows skipped.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

# fnarray first, as in a script that starts with ``import fnarray.compat as torch``: it sets
# OpenBLAS's thread timeout before NumPy loads OpenBLAS (fnarray/_openblas.py)
import fnarray  # noqa: F401,I001
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_workloads as wl  # noqa: E402


def _window(fn, number: int) -> float:
    t = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t) / number


SETTLE_SECONDS = 0.2


def measure(variants: dict, rounds: int, number: int, warmup: int = 2) -> dict:
    """``{name: [seconds per call, one per round]}``, variants interleaved in each round.

    Before each timed window the machine idles ``SETTLE_SECONDS`` and the variant runs once
    untimed: the previous variant's thread pool (OpenBLAS's or PyTorch's OpenMP workers)
    keeps spinning for a while after its last call and would otherwise take a core from
    the next one, and a PyTorch variant coming after a one-thread one first rebuilds its
    pool.  Without this, PyTorch's two-thread ConvNet step measured 60-66 ms here against
    42-57 ms in a process of its own."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            time.sleep(SETTLE_SECONDS)
            fn()
            times[name].append(_window(fn, number))
    return times


def summarise(times: dict, pairs: list) -> tuple[list, list]:
    """Rows ``(variant, median, best)`` and ``(numerator, denominator, median ratio,
    best-window ratio)`` for each pair present."""
    rows = [(n, statistics.median(t), min(t)) for n, t in times.items()]
    ratios = []
    for a, b in pairs:
        if a in times and b in times:
            per_round = [x / y for x, y in zip(times[a], times[b])]
            ratios.append((a, b, statistics.median(per_round), min(times[a]) / min(times[b])))
    return rows, ratios


def _fmt_time(s: float) -> str:
    if s >= 1.0:
        return f"{s:.1f} s"
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def section(title: str, note: str, rows: list, ratios: list, targets: dict) -> str:
    lines = [f"### {title}", "", note, "", "| variant | median | best window |",
             "| --- | --- | --- |"]
    lines += [f"| {n} | {_fmt_time(m)} | {_fmt_time(b)} |" for n, m, b in rows]
    if ratios:
        lines += ["", "| ratio | median of per-round ratios | best / best | target |",
                  "| --- | --- | --- | --- |"]
        for a, b, r, rb in ratios:
            target = targets.get((a, b))
            verdict = "" if target is None else (f"≤ {target}× " + ("met" if r <= target
                                                                    else "**missed**"))
            lines.append(f"| {a} / {b} | {r:.2f}× | {rb:.2f}× | {verdict} |")
    return "\n".join(lines) + "\n"


def run_mnist(python_fa: str, python_torch: str | None, repeats: int) -> str:
    """The MNIST epoch with default threads, and again with one BLAS/OpenMP thread."""
    default = _mnist_section(python_fa, python_torch, repeats, None)
    single = _mnist_section(python_fa, python_torch, repeats, "1")
    return default + "\n" + single


def _mnist_section(python_fa: str, python_torch: str | None, repeats: int,
                   threads: str | None) -> str:
    """Epoch seconds of the MNIST main job and of the PyTorch reference, alternating;
    ``threads`` (when given) goes to OPENBLAS_NUM_THREADS and OMP_NUM_THREADS."""
    env = dict(os.environ)
    if threads is not None:
        env.update(OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
    data = HERE.parent.parent / "shared" / "data" / "mnist"
    fa_cmd = [python_fa, "-m", "fnarray.examples.mnist", "--no-progress", "--epochs", "1",
              "--out", "/tmp/fnarray-bench-mnist", "--data", str(data)]
    torch_cmd = None if python_torch is None else [
        python_torch, str(HERE / "mnist_torch_reference.py"), "--epochs", "1", "--data",
        str(data)]
    fa_s, torch_s = [], []
    for _ in range(repeats):
        out = subprocess.run(fa_cmd, capture_output=True, text=True, cwd=HERE.parent, env=env)
        m = re.search(r"\(([\d.]+) s\)", out.stdout)
        if m is None:
            return f"MNIST main job failed:\n```\n{out.stdout[-800:]}{out.stderr[-800:]}\n```\n"
        fa_s.append(float(m.group(1)))
        if torch_cmd is not None:
            out = subprocess.run(torch_cmd, capture_output=True, text=True, cwd=HERE.parent,
                                 env=env)
            m = re.search(r"epoch 1: ([\d.]+) s", out.stdout)
            if m:
                torch_s.append(float(m.group(1)))
    rows = [("fnarray MNIST main job", statistics.median(fa_s), min(fa_s))]
    ratios = []
    if torch_s:
        rows.append(("PyTorch reference", statistics.median(torch_s), min(torch_s)))
        per = [a / b for a, b in zip(fa_s, torch_s)]
        ratios.append(("fnarray MNIST main job", "PyTorch reference", statistics.median(per),
                       min(fa_s) / min(torch_s)))
    note = (f"One training epoch (8,000 images, batch 64, Adam) as printed by each program; "
            f"{repeats} alternating run(s).")
    title = "MNIST main job, one epoch" + ("" if threads is None else f", {threads} thread")
    targets = {("fnarray MNIST main job", "PyTorch reference"): 1.2} if threads is None else {}
    return section(title, note, rows, ratios, targets)


def environment() -> str:
    lines = ["| item | value |", "| --- | --- |",
             f"| machine | {platform.machine()}, {os.cpu_count()} cores, "
             f"{platform.platform()} |",
             f"| python | {platform.python_version()} |", f"| numpy | {np.__version__} |"]
    try:
        from threadpoolctl import threadpool_info
        for info in threadpool_info():
            lines.append(f"| {info['user_api']} | {info['internal_api']} {info['version']} "
                         f"({info.get('architecture')}), {info['num_threads']} threads |")
    except ImportError:
        lines.append("| blas | threadpoolctl not installed |")
    for mod in ("torch", "jax"):
        lib = wl.optional(mod)
        if lib is None:
            lines.append(f"| {mod} | not installed: rows skipped |")
        else:
            extra = f", {lib.get_num_threads()} threads" if mod == "torch" else ""
            lines.append(f"| {mod} | {lib.__version__}{extra} |")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        lines.append(f"| ${var} | {os.environ.get(var, 'unset')} |")
    timeout = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "unset (OpenBLAS default 28)")
    by = " (set by fnarray before NumPy loaded)" if fnarray._openblas.tuned else ""
    lines.append(f"| $OPENBLAS_THREAD_TIMEOUT | {timeout}{by} |")
    try:
        load = os.getloadavg()
        lines.append(f"| load average at start | {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} |")
    except OSError:
        pass
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="eager,mlp,convnet,mnist")
    parser.add_argument("--mnist-repeats", type=int, default=2)
    parser.add_argument("--torch-python", default=sys.executable,
                        help="interpreter with torch for the MNIST reference")
    parser.add_argument("--write", help="write the report (markdown) to this file")
    args = parser.parse_args()
    only = set(args.only.split(","))
    parts = ["## Environment", "", environment()]
    for key, build in (("eager", wl.eager), ("mlp", wl.mlp), ("convnet", wl.convnet)):
        if key not in only:
            continue
        spec = build()
        times = measure(spec["variants"], args.rounds, spec["number"])
        rows, ratios = summarise(times, list(spec["targets"]) + spec.get("extra_pairs", []))
        parts.append(section(spec["title"], spec["note"], rows, ratios, spec["targets"]))
        print(parts[-1], flush=True)
    if "mnist" in only:
        torch_python = args.torch_python if wl.optional("torch") else None
        parts.append(run_mnist(sys.executable, torch_python, args.mnist_repeats))
        print(parts[-1], flush=True)
    if args.write:
        write_section(Path(args.write), "\n".join(parts))


START, END = "<!-- compare.py: start -->", "<!-- compare.py: end -->"


def write_section(path: Path, report: str, start: str = START, end: str = END) -> None:
    """Replace a script's section of ``path`` (between its markers ``start`` and ``end``,
    this script's by default), keeping whatever else the file holds (other benchmarks write
    their own sections)."""
    text = path.read_text() if path.exists() else ""
    block = f"{start}\n{report}\n{end}"
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
