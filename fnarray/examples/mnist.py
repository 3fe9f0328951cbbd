"""Train the PyTorch-tutorial ConvNet on MNIST with fnarray's compat layer.

Run: ``python -m fnarray.examples.mnist [--data DIR] [--epochs N] [--resume]``.

The code is the PyTorch MNIST example with only the imports changed.  It splits the
available images deterministically (the first 8,000 train, the last 2,000 test), trains
with Adam (lr 1e-3, batch 64, dropout), shows a progress bar with the running loss,
evaluates under ``no_grad`` after every epoch, saves a checkpoint (model, optimizer and
epoch) after every epoch, resumes from it with ``--resume``, and writes a plot of test
accuracy and loss.

Where the data comes from, in order: ``--data DIR``; ``$FNARRAY_DATA``; ``../shared/data/mnist``
next to the working directory; the cache directory (``~/.cache/fnarray/mnist``); a
download from the MNIST mirrors into the cache.  If none of those work (a fresh offline
machine), it falls back to synthetic digits drawn from a built-in 5x7 bitmap font
(``fnarray/examples/synthetic_digits.py``), so the command always runs.  It prints which
data it used.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import fnarray.compat as torch
import fnarray.nn.functional as F
from fnarray import nn, optim
from fnarray.data import DataLoader, Subset, TensorDataset
from fnarray.data import datasets, transforms

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fnarray" / "mnist"
N_TRAIN, N_TEST = 8000, 2000


class Net(nn.Module):
    """The ConvNet of PyTorch's MNIST example."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def mnist_splits(root: Path):
    """(train, test, description) from the IDX files under ``root``."""
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    full = datasets.MNIST(str(root), train=False, transform=tf)
    n = len(full)
    n_test = min(N_TEST, n // 5)
    train = Subset(full, range(0, min(N_TRAIN, n - n_test)))
    test = Subset(full, range(n - n_test, n))
    return train, test, f"MNIST from {root} ({len(train)} train / {len(test)} test images)"


def synthetic_splits():
    """Procedurally drawn digits (see ``synthetic_digits``): the offline last resort."""
    from fnarray.examples.synthetic_digits import make_digits
    images, labels = make_digits(N_TRAIN // 4 + N_TEST // 4, seed=0)
    x = (images[:, None].astype(np.float32) / 255.0 - 0.1307) / 0.3081
    n_test = N_TEST // 4
    train = TensorDataset(torch.tensor(x[:-n_test]), torch.tensor(labels[:-n_test]))
    test = TensorDataset(torch.tensor(x[-n_test:]), torch.tensor(labels[-n_test:]))
    return train, test, (f"synthetic digits drawn from a bitmap font ({len(train)} train / "
                         f"{len(test)} test images): no MNIST files were found")


def resolve_data(arg: str | None):
    candidates = [Path(arg)] if arg else []
    if os.environ.get("FNARRAY_DATA"):
        candidates.append(Path(os.environ["FNARRAY_DATA"]))
    candidates += [Path("..") / "shared" / "data" / "mnist", CACHE]
    for root in candidates:
        try:
            return mnist_splits(root)
        except (OSError, RuntimeError, ValueError):
            continue
    try:
        datasets.MNIST(str(CACHE), train=False, download=True)
        return mnist_splits(CACHE)
    except Exception as e:  # noqa: BLE001 - offline: fall back, and say why
        print(f"download failed ({type(e).__name__}: {e}); using the bundled fallback")
    return synthetic_splits()


def train_epoch(model, loader, optimizer, epoch, progress):
    model.train()
    running, seen = 0.0, 0
    bar = progress(loader, desc=f"epoch {epoch}", leave=False)
    for data, target in bar:
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        running += loss.item() * len(data)
        seen += len(data)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{running / seen:.4f}")
    return running / max(seen, 1)


def evaluate(model, loader):
    model.eval()
    loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for data, target in loader:
            out = model(data)
            loss += F.nll_loss(out, target, reduction="sum").item()
            correct += (out.argmax(dim=1) == target).sum().item()
            n += len(data)
    return loss / n, correct / n


def plot(history, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax1.plot(epochs, [h["test_loss"] for h in history], "o-", label="test")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(epochs, [100 * h["test_acc"] for h in history], "o-")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("test accuracy (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Train the tutorial ConvNet on MNIST.")
    parser.add_argument("--data", help="directory with the MNIST IDX files (raw or .gz)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="runs/mnist", help="checkpoint and plot directory")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    train_set, test_set, description = resolve_data(args.data)
    print(f"data: {description}")
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              generator=args.seed)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = Net()
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.fa"
    start, history = 1, []
    if args.resume and ckpt.exists():
        state = torch.load(ckpt)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = state["epoch"] + 1, list(state["history"])
        print(f"resumed from {ckpt} after epoch {state['epoch']}")

    progress = _progress(args.no_progress)
    for epoch in range(start, start + args.epochs):
        t0 = time.perf_counter()
        train_loss = train_epoch(model, train_loader, optimizer, epoch, progress)
        seconds = time.perf_counter() - t0
        test_loss, acc = evaluate(model, test_loader)
        history.append({"epoch": epoch, "train_loss": train_loss, "test_loss": test_loss,
                        "test_acc": acc, "seconds": seconds})
        print(f"epoch {epoch}: train loss {train_loss:.4f}  test loss {test_loss:.4f}  "
              f"test accuracy {100 * acc:.2f}%  ({seconds:.1f} s)")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "epoch": epoch, "history": history}, ckpt)
    plot(history, out / "accuracy_loss.png")
    print(f"checkpoint: {ckpt}   plot: {out / 'accuracy_loss.png'}")
    return history[-1]


def _progress(disabled: bool):
    if not disabled:
        try:
            from tqdm import tqdm
            return tqdm
        except ImportError:
            pass
    return lambda it, **_: it


if __name__ == "__main__":
    main()
