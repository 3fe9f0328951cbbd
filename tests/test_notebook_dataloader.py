"""A Dataset defined in a notebook cell feeds a 2-worker DataLoader (issue 16): the cell's
class and a lambda collate_fn reach the workers by value, and no worker needs the
notebook's (file-less) ``__main__``."""

from __future__ import annotations

import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CELLS = [
    """
import numpy as np
from fnarray.data import DataLoader, Dataset

class Squares(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        import os
        return np.float32(i * i), os.getpid()
""",
    """
loader = DataLoader(Squares(), batch_size=4, num_workers=2,
                    collate_fn=lambda batch: ([v for v, _ in batch], {p for _, p in batch}))
values, pids = [], set()
for vals, ps in loader:
    values += vals
    pids |= ps
import os
assert os.getpid() not in pids, "batches were loaded in the notebook's own process"
print(sorted(float(v) for v in values), len(pids))
""",
]


def test_notebook_cell_dataset_with_two_workers(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.kernel_manager_class = _manager_for(sys.executable)
    client.execute()
    out = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    expected = [float(i * i) for i in range(10)]
    assert out.strip() == f"{expected} 2", out


def _manager_for(python: str):
    """A kernel manager that starts the kernel with this interpreter (the test's venv)."""
    from jupyter_client.manager import KernelManager

    class ThisPython(KernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            return [python, "-m", "ipykernel_launcher", "-f", self.connection_file]
    return ThisPython
