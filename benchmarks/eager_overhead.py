"""Per-op eager overhead of fnarray over raw NumPy on 16-element float32 arrays.

Run: ``python benchmarks/eager_overhead.py``.  For each op it times the fnarray call and
the equivalent NumPy call in the same process and prints both plus the difference in
microseconds (the project target is <= 2 us over NumPy per op).
"""

from __future__ import annotations

import timeit

import numpy as np

import fnarray as fa


def measure(stmt, number=20000, repeat=7) -> float:
    """Best-of-``repeat`` time per call, in microseconds."""
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    a_np = np.linspace(0.1, 1.0, 16, dtype=np.float32)
    b_np = np.linspace(1.0, 2.0, 16, dtype=np.float32)
    m_np = a_np.reshape(4, 4)
    a, b, m = fa.asarray(a_np), fa.asarray(b_np), fa.asarray(m_np)
    cases = [
        ("add (a + b)", lambda: a + b, lambda: a_np + b_np),
        ("multiply by scalar (a * 2.0)", lambda: a * 2.0, lambda: a_np * np.float32(2.0)),
        ("sin", lambda: fa.sin(a), lambda: np.sin(a_np)),
        ("exp", lambda: fa.exp(a), lambda: np.exp(a_np)),
        ("sum", lambda: fa.sum(a), lambda: np.sum(a_np)),
        ("sum(axis=0)", lambda: fa.sum(m, axis=0), lambda: np.sum(m_np, axis=0)),
        ("reshape", lambda: fa.reshape(a, (4, 4)), lambda: np.reshape(a_np, (4, 4))),
        ("matmul 4x4", lambda: m @ m, lambda: m_np @ m_np),
        ("index a[3]", lambda: a[3], lambda: a_np[3:4].reshape(())),
        ("maximum", lambda: fa.maximum(a, b), lambda: np.maximum(a_np, b_np)),
    ]
    print(f"{'op':32s} {'fnarray us':>11s} {'numpy us':>9s} {'overhead us':>12s} {'ratio':>6s}")
    overheads = []
    for name, f, ref in cases:
        t_fa, t_np = measure(f), measure(ref)
        overheads.append(t_fa - t_np)
        print(f"{name:32s} {t_fa:11.2f} {t_np:9.2f} {t_fa - t_np:12.2f} {t_fa / t_np:6.1f}")
    overheads.sort()
    print(f"median overhead over NumPy: {overheads[len(overheads) // 2]:.2f} us per op")


if __name__ == "__main__":
    main()
