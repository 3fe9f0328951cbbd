"""The MNIST example's training loop written with PyTorch, to time an epoch side by side.

Run (PyTorch is NOT a dependency of fnarray; use a separate environment where it is
installed): ``python benchmarks/mnist_torch_reference.py [--data ../shared/data/mnist]``.
It reads the same IDX files with NumPy, uses the same split (first 8,000 train, last 2,000
test), model, optimizer (Adam, lr 1e-3), batch size 64 and thread count, and prints the
wall time of each epoch and the test accuracy.  Compare with
``python -m fnarray.examples.mnist --no-progress``.
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = np.frombuffer(data, ">u4", ndim, 4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Net(nn.Module):
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
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/mnist")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    root = Path(args.data)
    x = read_idx(root / "t10k-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255.0
    x = (x - 0.1307) / 0.3081
    y = read_idx(root / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    xtr, ytr = torch.from_numpy(x[:8000]), torch.from_numpy(y[:8000])
    xte, yte = torch.from_numpy(x[8000:]), torch.from_numpy(y[8000:])
    torch.manual_seed(1)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(8000)
        for i in range(0, 8000, 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = F.nll_loss(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch}: {seconds:.1f} s, test accuracy {100 * acc:.2f}% "
              f"(threads: {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
