"""Per-equation profile of the jitted MLP SGD step of ``benchmarks/compare.py``.

Run: ``python benchmarks/profile_mlp_jit.py [--threads 1] [--steps 300]``.

Compiles the step with ``fa.jit``, then re-executes the compiled straight-line source
(``run.source``, see ``fnarray/transforms/executor.py``) with a timer after every line,
on the same buffers, and prints per equation and per primitive where the step's time goes,
next to the whole jitted call (argument flattening, signature lookup and output wrapping
included).  BLAS threads are limited with threadpoolctl when it is installed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import time

import numpy as np
from bench_workloads import MLP_BATCH, SIZES, _mlp_init, _mlp_step_fa, optional

import fnarray as fa


def instrumented(entry):
    """The compiled step with ``T[i] += seconds`` after line ``i`` of its body, and labels."""
    lines = entry.run.source.split("\n")
    body, labels = [lines[0], "    _t = _pc()"], []
    for i, line in enumerate(lines[1:-1]):
        m = re.search(r"\b[uk](\d+)\(", line)
        eqn = entry.program.eqns[int(m.group(1))]
        shapes = " ".join(str(list(v.aval.shape)) for v in eqn.invars)
        labels.append((eqn.prim.name, f"{eqn.prim.name}{' (out=)' if 'out=' in line else ''}"
                                      f" {shapes}"))
        body += [line, f"    _T[{i}] += _pc() - _t; _t = _pc()"]
    body.append(lines[-1])
    env = dict(entry.run.__globals__, _T=[0.0] * len(labels), _pc=time.perf_counter)
    exec("\n".join(body), env)  # noqa: S102
    return env["run"], env["_T"], labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="BLAS threads (0: default)")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    params = [(fa.asarray(w), fa.asarray(b)) for w, b in _mlp_init(rng)]
    x = fa.asarray(rng.normal(size=(MLP_BATCH, SIZES[0])).astype(np.float32))
    y = fa.asarray(rng.integers(0, SIZES[-1], MLP_BATCH))
    jitted = fa.jit(_mlp_step_fa)
    jitted(params, x, y)
    entry = next(iter(jitted._cache.values()))
    run, timers, labels = instrumented(entry)
    leaves = fa.tree.leaves((params, x, y))
    bufs = [*entry.const_bufs, *[leaf._value for leaf in leaves]]
    limits = optional("threadpoolctl")
    scope = (limits.threadpool_limits(args.threads) if limits and args.threads
             else contextlib.nullcontext())
    n = args.steps
    with scope:
        for _ in range(20):
            run(*bufs)
        timers[:] = [0.0] * len(timers)
        t0 = time.perf_counter()
        for _ in range(n):
            run(*bufs)
        program = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for _ in range(n):
            jitted(params, x, y)
        call = (time.perf_counter() - t0) / n
    print(f"jitted call {call * 1e3:.3f} ms; compiled program {program * 1e3:.3f} ms "
          f"(threads: {args.threads or 'default'})")
    for (_, label), t in zip(labels, timers):
        print(f"  {t / n * 1e6:8.1f} us  {label}")
    by_prim = collections.Counter()
    for (prim, _), t in zip(labels, timers):
        by_prim[prim] += t / n
    total = sum(by_prim.values())
    print("per primitive: " + ", ".join(f"{p} {t * 1e6:.0f} us ({t / total:.0%})"
                                        for p, t in by_prim.most_common()))


if __name__ == "__main__":
    main()
