"""DataLoader workers run what PyTorch's fork-started workers run on Linux (issue 16):
datasets defined inside functions, lambda collate_fns and worker_init_fns, and scripts
without an ``if __name__ == "__main__":`` guard (the workers must not re-run them)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fnarray.data import DataLoader, Dataset

pytest.importorskip("cloudpickle")


def test_local_dataset_and_lambdas_reach_the_workers():
    offset = 100

    class Local(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return i + offset, os.getpid()

    loader = DataLoader(Local(), batch_size=2, num_workers=2,
                        collate_fn=lambda b: (sorted(v for v, _ in b), {p for _, p in b}),
                        worker_init_fn=lambda wid: np.random.seed(wid))
    values, pids = [], set()
    for vals, ps in loader:
        values += vals
        pids |= ps
    assert values == [100, 101, 102, 103, 104, 105]
    assert os.getpid() not in pids and len(pids) == 2


SCRIPT = """
import os
import numpy as np
from fnarray.data import DataLoader, Dataset

print("script body ran in", "main" if __name__ == "__main__" else __name__, flush=True)

class Ramp(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return np.float32(i)

total = 0.0
for batch in DataLoader(Ramp(), batch_size=3, num_workers=2,
                        collate_fn=lambda b: float(np.sum(b))):
    total += batch
print("total", total, flush=True)
"""


def test_script_without_main_guard(tmp_path):
    path = tmp_path / "no_guard.py"
    path.write_text(textwrap.dedent(SCRIPT))
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The body ran once (not again in each worker) and the workers loaded every sample.
    assert proc.stdout.splitlines() == ["script body ran in main", "total 28.0"], proc.stdout
