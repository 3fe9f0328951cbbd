"""Print the optimised IR of one SGD step of the benchmark MLP (used in docs/jit.md).

Run: ``python benchmarks/print_mlp_ir.py``.
"""

from __future__ import annotations

import numpy as np
from mlp_jit import BATCH, SIZES, init, sgd_step_fa

import fnarray as fa


def main() -> None:
    rng = np.random.default_rng(0)
    params = [(fa.asarray(w), fa.asarray(b)) for w, b in init(rng)]
    x = fa.asarray(rng.normal(size=(BATCH, SIZES[0])).astype(np.float32))
    y = fa.asarray(np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], BATCH)])
    print(fa.make_ir(sgd_step_fa)(params, x, y))


if __name__ == "__main__":
    main()
