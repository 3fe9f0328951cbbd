"""The seed tutorials' code runs with only the imports changed.

Every ```python block of ``../shared/seeds/*.txt`` (relative to the repository root) runs,
in order, in one namespace per tutorial, with ``torch`` replaced by ``fnarray.compat`` in
its import statements (``import torch`` -> ``import fnarray.compat as torch``,
``import torch.nn as nn`` -> ``import fnarray.compat.nn as nn``, ``from torch.X import``
-> ``from fnarray.compat.X import``) and nothing else.  Blocks that cannot run offline on a
CPU-only machine, or that belong to other issues, are skipped with the reason recorded in
``SKIPPED``; the test checks that every recorded skip still names a block, so the list
cannot rot.

Two tutorials use names their text never defines (the CIFAR loop's ``net``/``trainloader``
and, after the skipped MNIST download, ``model``/``train_loader``).  ``SETUP`` supplies
them — small synthetic stand-ins written in the same PyTorch style and run through the
same import rewrite — before the block that first needs them.
"""

from __future__ import annotations

import contextlib
import io
import re
import textwrap
import warnings
from pathlib import Path

import pytest

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"

# (seed file prefix, how the block begins) -> why it does not run here
SKIPPED = {
    ("001", "for epoch in range(2):  # Two epochs"):
        "a fragment: the first line of the loop above, quoted alone (not valid Python)",
    ("001", "for i, data in enumerate(trainloader, 0):\n"):
        "a fragment: one line of the loop above, quoted alone (not valid Python)",
    ("001", "inputs, labels = data  # Load data"):
        "a fragment of the loop above (its names exist only inside that loop)",
    ("001", "optimizer.zero_grad()  # Reset gradients"):
        "a fragment of the loop above (its names exist only inside that loop)",
    ("001", "running_loss += loss.item()  # Accumulate loss"):
        "a fragment of the loop above (its names exist only inside that loop)",
    ("002", "import torch\nimport torch.nn as nn\nimport torch.optim as optim\n"):
        "downloads the MNIST training split (no network here) and trains 3 full epochs "
        "with matplotlib windows; SETUP stands in for its model and loaders",
    ("002", "import torchvision\n"):
        "needs torchvision's pretrained ResNet weights (network) and PIL images",
    ("002", "from torchtext"): "needs torchtext and the IMDB download",
    ("002", "import torchaudio"): "needs torchaudio and an audio file",
    ("002", "# Convert model to TorchScript"):
        "TorchScript is not part of the compat layer (fnarray.compat.compile is its face)",
    ("002", "# Export the model to ONNX"): "ONNX export is another issue (fnarray.onnx)",
    ("002", "# Optimize the model for mobile"):
        "TorchScript mobile optimisation has no fnarray analogue",
    ("002", "# Clear GPU cache"):
        "queries GPU memory (get_device_properties(0) raises without a GPU in PyTorch "
        "too); its checkpoint helper is exercised by test_seed_checkpoint_helper",
}

# names a tutorial uses without defining them: run before the block that begins so
SETUP = {
    ("001", "for epoch in range(2):  # loop over the dataset multiple times"): '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(6 * 14 * 14, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        return self.fc1(torch.flatten(x, 1))

torch.manual_seed(0)
trainloader = DataLoader(TensorDataset(torch.randn(24, 3, 32, 32),
                                       torch.randint(0, 10, (24,))), batch_size=4)
net = Net()
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
''',
    ("002", "# Use mixed precision training"): '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
torch.manual_seed(0)
train_loader = DataLoader(TensorDataset(torch.randn(16, 1, 28, 28),
                                        torch.randint(0, 10, (16,))), batch_size=8)
model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                      nn.Linear(4 * 26 * 26, 10), nn.LogSoftmax(dim=1)).to(device)
criterion = F.nll_loss
optimizer = optim.Adam(model.parameters(), lr=0.001)
''',
}

_FENCE = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```", re.S | re.M)


def port(code: str) -> str:
    """``code`` with ``torch`` replaced by ``fnarray.compat`` in its import statements."""
    code = re.sub(r"^(\s*)import torch(\.[\w.]+)?(\s+as\s+\w+)?\s*$",
                  lambda m: (f"{m[1]}import fnarray.compat{m[2] or ''}"
                             f"{m[3] or (' as torch' if not m[2] else '')}"),
                  code, flags=re.M)
    return re.sub(r"^(\s*)from torch(\.[\w.]+)? import", r"\1from fnarray.compat\2 import",
                  code, flags=re.M)


def blocks(path: Path) -> list[str]:
    return [textwrap.dedent(body) for _, body in _FENCE.findall(path.read_text())]


def _seed_files() -> list[Path]:
    return sorted(SEEDS.glob("*.txt")) if SEEDS.is_dir() else []


def _match(table: dict, prefix: str, block: str):
    for (pre, start), value in table.items():
        if pre == prefix and block.startswith(start):
            return value
    return None


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"seed texts not found at {SEEDS}")
@pytest.mark.parametrize("path", _seed_files(), ids=lambda p: p.name[:3])
def test_seed_code_runs_with_only_the_imports_changed(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a block saves lands here
    prefix, namespace, ran = path.name[:3], {"__name__": "__seed__"}, 0
    for i, block in enumerate(blocks(path)):
        if _match(SKIPPED, prefix, block) is not None:
            continue
        setup = _match(SETUP, prefix, block)
        for label, code in (("setup", setup), (f"block {i}", block)):
            if code is None:
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # e.g. cuda.amp's "not available" ones
                    exec(compile(port(code), f"{path.name}:{label}", "exec"), namespace)
            except Exception as e:  # noqa: BLE001 - report which block failed and how
                first = code.strip().splitlines()[0]
                pytest.fail(f"{path.name} {label} ({first!r}) raised {type(e).__name__}: {e}")
        ran += 1
    assert ran or not blocks(path), f"{path.name}: every block was skipped"


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"seed texts not found at {SEEDS}")
def test_every_skip_and_setup_names_a_block():
    texts = {p.name[:3]: blocks(p) for p in _seed_files()}
    for table in (SKIPPED, SETUP):
        for prefix, start in table:
            hits = [b for b in texts.get(prefix, []) if b.startswith(start)]
            assert len(hits) == 1, (prefix, start, len(hits))


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"seed texts not found at {SEEDS}")
def test_seed_checkpoint_helper():
    """The gradient-checkpointing part of the skipped GPU-memory block, called on a model:
    ``checkpoint(model, input)`` gives plain backward's gradients."""
    block = next(b for b in blocks(SEEDS / "002_7037ecec93cb1fb3.txt")
                 if "from torch.utils.checkpoint import checkpoint" in b)
    code = block[block.index("# Use gradient checkpointing"):]
    namespace: dict = {}
    exec(compile(port(code), "002:checkpoint", "exec"), namespace)
    import fnarray.compat as torch
    from fnarray import nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    x = torch.randn(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's "pass use_reentrant explicitly"
        namespace["forward_with_checkpoint"](model, x).sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x).sum().backward()
    for g, p in zip(got, model.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_port_rewrites_only_import_statements():
    src = ("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
           "from torch.utils.data import DataLoader\nfrom torch import optim\n"
           "x = torch.ones(2)  # import torch in a comment stays\n")
    assert port(src) == (
        "import fnarray.compat as torch\nimport fnarray.compat.nn as nn\n"
        "import fnarray.compat.nn.functional as F\n"
        "from fnarray.compat.utils.data import DataLoader\nfrom fnarray.compat import optim\n"
        "x = torch.ones(2)  # import torch in a comment stays\n")


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"seed texts not found at {SEEDS}")
def test_seed_mnist_model_saves_and_loads(tmp_path, monkeypatch):
    """The skipped MNIST block's model definition and its save/load lines, run as written
    (without the download and the 3 training epochs between them)."""
    monkeypatch.chdir(tmp_path)
    block = next(b for b in blocks(SEEDS / "002_7037ecec93cb1fb3.txt")
                 if "class ConvNet(nn.Module):" in b)
    code = ("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
            "device = torch.device('cpu')\n"
            + block[block.index("# Define a Convolutional Neural Network"):
                    block.index("# Define loss function and optimizer")]
            + block[block.index("# Save the model"):block.index("# Visualize model predictions")])
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(port(code), "002:save-load", "exec"), namespace)
    assert "Model loaded successfully!" in out.getvalue()
    saved, loaded = namespace["model"].state_dict(), namespace["loaded_model"].state_dict()
    assert list(saved) == list(loaded)
    for k in saved:
        assert saved[k].tolist() == loaded[k].tolist()
