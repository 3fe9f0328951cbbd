"""Train the PyTorch-tutorial ConvNet on MNIST with fnarray's compat layer.

Run: ``python -m fnarray.examples.mnist [--data DIR] [--epochs N] [--resume] [--gamma G]
[--tensorboard DIR]``.  Data-parallel: ``mpiexec -n 2 python -m fnarray.examples.mnist``
(needs the ``distributed`` extra): each rank trains on its ``DistributedSampler`` shard
with the model wrapped in ``DistributedDataParallel``; rank 0 alone evaluates, prints,
plots and writes the checkpoint (the unwrapped model's state, so it resumes on any number
of ranks); the printed train loss is the mean over the ranks.

The code is the PyTorch MNIST example with only the imports changed.  It splits the
available images deterministically (the first 8,000 train, the last 2,000 test), trains
with Adam (lr 1e-3, batch 64, dropout; ``--gamma`` adds a per-epoch StepLR), shows a
progress bar with the running loss, evaluates under ``no_grad`` after every epoch, saves a
checkpoint (model, optimizer, scheduler, epoch and the whole history down to per-step
losses) after every epoch, resumes from it with ``--resume``, and draws two figures next
to the checkpoint (see ``mnist_plots``): the training curves and a page of test digits.
``--tensorboard DIR`` also logs to TensorBoard (``torch.utils.tensorboard.SummaryWriter``):
the loss and lr per step, test loss/accuracy and weight histograms per epoch, and the graph.

Where the data comes from, in order: ``--data DIR``; ``$FNARRAY_DATA``; ``../shared/data/mnist``
next to the working directory; the cache directory (``$XDG_CACHE_HOME/fnarray/mnist``, by
default ``~/.cache/fnarray/mnist``); a download from the MNIST mirrors into the cache.  If
none of those work (a fresh offline machine), it falls back to digits rendered from vector
stroke fonts (``synthetic_digits``: 12,000 train / 2,000 test images), so the command always
runs and learns.  It prints which data it used.
"""

from __future__ import annotations

import argparse
import builtins
import os
import time
from pathlib import Path

import numpy as np

import fnarray.compat as torch
import fnarray.nn.functional as F
from fnarray import nn, optim
from fnarray.data import DataLoader, DistributedSampler, Subset, TensorDataset
from fnarray.data import datasets, transforms
from fnarray.examples import mnist_plots

N_TRAIN, N_TEST = 8000, 2000
MEAN, STD = 0.1307, 0.3081


def cache_dir() -> Path:
    """Where downloads go, read from the environment at call time."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fnarray" / "mnist"


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
    """(train, test, description, short source name) from the IDX files under ``root``."""
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    full = datasets.MNIST(str(root), train=False, transform=tf)
    n = len(full)
    n_test = min(N_TEST, n // 5)
    train = Subset(full, range(0, min(N_TRAIN, n - n_test)))
    test = Subset(full, range(n - n_test, n))
    return (train, test, f"MNIST from {root} ({len(train)} train / {len(test)} test images)",
            f"MNIST ({len(train):,} train / {len(test):,} test)")


def synthetic_splits(n_train: int = 12000, n_test: int = 2000):
    """Digits rendered from stroke fonts (see ``synthetic_digits``): the offline last resort.
    Train and test images come from different seeds."""
    from fnarray.examples.synthetic_digits import make_digits

    def tensors(n, seed):
        images, labels = make_digits(n, seed=seed)
        x = (images[:, None].astype(np.float32) / 255.0 - MEAN) / STD
        return TensorDataset(torch.tensor(x), torch.tensor(labels))

    train, test = tensors(n_train, seed=0), tensors(n_test, seed=1)
    return (train, test, f"synthetic digits rendered from stroke fonts ({n_train} train / "
                         f"{n_test} test images): no MNIST files were found",
            f"synthetic stroke-font digits, offline fallback ({n_train:,} train / {n_test:,} test)")


def resolve_data(arg: str | None, fallback_sizes: tuple[int, int] = (12000, 2000)):
    """The first data source that works, in the order of the module docstring."""
    candidates = [Path(arg)] if arg else []
    if os.environ.get("FNARRAY_DATA"):
        candidates.append(Path(os.environ["FNARRAY_DATA"]))
    candidates += [Path("..") / "shared" / "data" / "mnist", cache_dir()]
    for root in candidates:
        try:
            return mnist_splits(root)
        except (OSError, RuntimeError, ValueError):
            continue
    try:
        datasets.MNIST(str(cache_dir()), train=False, download=True, timeout=10.0)
        return mnist_splits(cache_dir())
    except Exception as e:  # noqa: BLE001 - offline: fall back, and say why
        print(f"download failed ({type(e).__name__}: {e}); using the bundled fallback")
    return synthetic_splits(*fallback_sizes)


def digit_arrays(fallback_sizes: tuple[int, int] = (12000, 2000)):
    """The main job's data as NumPy arrays, for notebooks and experiments: ``(x_train,
    y_train, x_test, y_test, source)`` with normalised float32 images (N, 1, 28, 28) and
    int64 labels, found exactly as the main job finds them (run from the repository root)."""
    train, test, _, source = resolve_data(None, fallback_sizes)
    arrays = []
    for dataset in (train, test):
        x, y = next(iter(DataLoader(dataset, batch_size=len(dataset))))
        arrays += [np.asarray(x.numpy(), np.float32), np.asarray(y.numpy(), np.int64)]
    return (*arrays, source)


def train_epoch(model, loader, optimizer, epoch, progress, history, writer=None):
    """One pass over ``loader``; appends each step's loss, batch accuracy and lr to
    ``history`` (and logs loss and lr to ``writer``, a SummaryWriter, when given).
    Returns the mean training loss."""
    model.train()
    running, seen = 0.0, 0
    bar = progress(loader, desc=f"epoch {epoch}", leave=False)
    for data, target in bar:
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        value = loss.item()
        history["step_loss"].append(value)
        history["step_acc"].append((output.detach().argmax(dim=1) == target).float().mean().item())
        history["step_lr"].append(optimizer.param_groups[0]["lr"])
        if writer is not None:
            step = len(history["step_loss"])
            writer.add_scalar("loss/train", value, step)
            writer.add_scalar("lr", history["step_lr"][-1], step)
        running += value * len(data)
        seen += len(data)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{running / seen:.4f}")
    return running / max(seen, 1)


def evaluate(model, loader):
    """(mean test loss, accuracy, predicted labels as a NumPy array)."""
    model.eval()
    loss, correct, n, predictions = 0.0, 0, 0, []
    with torch.no_grad():
        for data, target in loader:
            out = model(data)
            loss += F.nll_loss(out, target, reduction="sum").item()
            predicted = out.argmax(dim=1)
            correct += (predicted == target).sum().item()
            predictions.append(predicted.numpy())
            n += len(data)
    return loss / n, correct / n, np.concatenate(predictions)


def new_history(source: str, parameters: int, scheduled: bool) -> dict:
    """What the checkpoint carries besides the weights: enough to redraw every curve."""
    return {"source": source, "parameters": parameters, "scheduled": scheduled, "epochs": [],
            "step_loss": [], "step_acc": [], "step_lr": []}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Train the tutorial ConvNet on MNIST.")
    parser.add_argument("--data", help="directory with the MNIST IDX files (raw or .gz)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--gamma", type=float, help="multiply the lr by this after every epoch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="runs/mnist", help="checkpoint and plot directory")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--fallback-size", type=int, nargs=2, default=(12000, 2000),
                        metavar=("TRAIN", "TEST"), help="images in the offline fallback")
    parser.add_argument("--tensorboard", metavar="DIR",
                        help="also log to TensorBoard event files under DIR")
    parser.add_argument("--export-onnx", metavar="PATH",
                        help="after training, write the model (eval mode, any batch size) as ONNX")
    args = parser.parse_args(argv)

    rank, world = join_mpi_job()
    print = builtins.print if rank == 0 else (lambda *a, **k: None)  # noqa: A001
    torch.manual_seed(args.seed)
    train_set, test_set, description, source = resolve_data(args.data, tuple(args.fallback_size))
    print(f"data: {description}" + (f"  (data-parallel on {world} MPI ranks)" if world > 1 else ""))
    sampler = DistributedSampler(train_set, seed=args.seed) if world > 1 else None
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=sampler is None,
                              sampler=sampler, generator=None if sampler else args.seed)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = Net()
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = None if args.gamma is None else optim.lr_scheduler.StepLR(optimizer, 1, args.gamma)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.fa"
    parameters = sum(p.numel() for p in model.parameters())
    history = new_history(source, parameters, scheduler is not None)
    if args.resume and ckpt.exists():
        state = torch.load(ckpt)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        history["scheduled"] = history["scheduled"] or scheduler is not None
        print(f"resumed from {ckpt} after epoch {state['epoch']}")
    start = len(history["epochs"]) + 1
    core = model
    if world > 1:
        model = nn.parallel.DistributedDataParallel(core)

    writer = None
    if args.tensorboard and rank == 0:
        writer = torch.utils.tensorboard.SummaryWriter(args.tensorboard)
        writer.add_graph(model, next(iter(test_loader))[0][:1])
    progress, predicted = _progress(args.no_progress or rank > 0), None
    for epoch in range(start, start + args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        train_loss = train_epoch(model, train_loader, optimizer, epoch, progress, history,
                                 writer)
        seconds = time.perf_counter() - t0
        if world > 1:
            from fnarray import distributed
            train_loss = float(distributed.all_reduce(
                np.float64(train_loss), distributed.ReduceOp.AVG))
            if rank > 0:
                if scheduler is not None:
                    scheduler.step()
                continue
        test_loss, acc, predicted = evaluate(core, test_loader)
        if scheduler is not None:
            scheduler.step()
        history["epochs"].append({"epoch": epoch, "step": len(history["step_loss"]),
                                  "train_loss": train_loss, "test_loss": test_loss,
                                  "test_acc": acc, "seconds": seconds})
        if writer is not None:
            log_epoch(writer, model, history["epochs"][-1])
        print(f"epoch {epoch}: train loss {train_loss:.4f}  test loss {test_loss:.4f}  "
              f"test accuracy {100 * acc:.2f}%  ({seconds:.1f} s)")
        torch.save({"model": core.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": None if scheduler is None else scheduler.state_dict(),
                    "epoch": epoch, "history": history}, ckpt)
    if rank > 0:
        return {}
    if predicted is None:  # --epochs 0: redraw the figures from the checkpoint
        if not history["epochs"]:
            raise SystemExit("nothing to plot: --epochs 0 and no checkpoint to resume from")
        predicted = evaluate(core, test_loader)[2]
    curves = mnist_plots.plot_training(history, out / "accuracy_loss.png")
    digits = mnist_plots.plot_test_digits(test_set, predicted, out / "test_digits.png", MEAN, STD)
    print(f"checkpoint: {ckpt}   plots: {curves}, {digits}")
    if args.export_onnx:
        core.eval()
        example = next(iter(test_loader))[0][:1]
        torch.onnx.export(core, (example,), args.export_onnx, input_names=["image"],
                          output_names=["log_probs"],
                          dynamic_axes={"image": {0: "batch"}, "log_probs": {0: "batch"}})
        print(f"onnx: {args.export_onnx} (input 'image' N x 1 x 28 x 28, normalised as in training)")
    if writer is not None:
        writer.close()
        print(f"tensorboard: tensorboard --logdir {args.tensorboard}")
    return history["epochs"][-1]


def join_mpi_job() -> tuple[int, int]:
    """``(rank, world size)``: joins the MPI job when launched by ``mpiexec`` with more than
    one process (MPICH's ``PMI_SIZE`` or Open MPI's ``OMPI_COMM_WORLD_SIZE``), else (0, 1)."""
    size = int(os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE") or 1)
    if size <= 1:
        return 0, 1
    from fnarray import distributed
    distributed.init_process_group("mpi")
    return distributed.get_rank(), distributed.get_world_size()


def log_epoch(writer, model, record: dict) -> None:
    """One epoch's test loss/accuracy, mean training loss and weight histograms, at the
    epoch's last step (so they line up with the per-step curves)."""
    step = record["step"]
    writer.add_scalar("loss/test", record["test_loss"], step)
    writer.add_scalar("loss/train_epoch_mean", record["train_loss"], step)
    writer.add_scalar("accuracy/test", record["test_acc"], step)
    for name, parameter in model.named_parameters():
        writer.add_histogram(f"weights/{name}", parameter, step)
    writer.flush()


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
