"""The two figures of the MNIST main job, drawn from the history its checkpoint carries.

``plot_training``: the training loss of every step (faint) with a smoothed line, the test
loss and accuracy after each epoch as marked points on the same step axis (epoch boundaries
are the ticks), the smoothed accuracy of the training batches, the learning rate when a
scheduler changes it, and a title naming the data, the model size and the time per epoch.
``plot_test_digits``: test images with their predicted and true labels, the misclassified
ones framed in red.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TEST_COLOR, TRAIN_COLOR, WRONG_COLOR = "tab:red", "tab:blue", "#d62728"


def smooth(values, beta: float = 0.95) -> np.ndarray:
    """Exponential moving average with bias correction (the first values are not dragged
    towards zero)."""
    out, avg = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _label_twos_and_fives(value: float, _) -> str:
    """Minor log-axis labels at 2 and 5 times a power of ten only (legible, not crowded)."""
    mantissa = value / 10 ** np.floor(np.log10(value))
    return f"{value:g}" if round(mantissa) in (2, 5) else ""


def plot_training(history: dict, path: Path) -> Path:
    """Draw the training curves of ``history`` (see ``mnist.new_history``) to ``path``."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter
    epochs = history["epochs"]
    steps = np.arange(1, len(history["step_loss"]) + 1)
    ends = [e["step"] for e in epochs]
    beta = min(0.98, 1 - 10 / max(len(steps), 20))  # ~ a tenth of the run per time constant
    fig, (ax_loss, ax_acc) = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True,
                                          gridspec_kw={"height_ratios": [3, 2]})

    ax_loss.plot(steps, history["step_loss"], color=TRAIN_COLOR, alpha=0.2, lw=0.8,
                 label="training loss, each batch")
    ax_loss.plot(steps, smooth(history["step_loss"], beta), color=TRAIN_COLOR, lw=2,
                 label="training loss, smoothed")
    test_loss = [e["test_loss"] for e in epochs]
    ax_loss.plot(ends, test_loss, "D--", color=TEST_COLOR, ms=8, lw=1, label="test loss, end of epoch")
    for step, value in zip(ends, test_loss):
        ax_loss.annotate(f"{value:.3f}", (step, value), textcoords="offset points", xytext=(-8, 10),
                         ha="right", color=TEST_COLOR, fontsize=9)
    ax_loss.set_yscale("log")
    ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_loss.yaxis.set_minor_formatter(FuncFormatter(_label_twos_and_fives))
    ax_loss.set_ylabel("negative log-likelihood (log scale)")
    ax_loss.legend(loc="upper right")

    train_acc = 100 * smooth(history["step_acc"], beta)
    test_acc = [100 * e["test_acc"] for e in epochs]
    ax_acc.plot(steps, train_acc, color=TRAIN_COLOR, lw=2, label="training batches, smoothed")
    ax_acc.plot(ends, test_acc, "o--", color=TEST_COLOR, ms=8, lw=1, label="test set, end of epoch")
    for step, value in zip(ends, test_acc):
        ax_acc.annotate(f"{value:.2f}%", (step, value), textcoords="offset points", xytext=(-10, -4),
                        ha="right", va="top", color=TEST_COLOR, fontsize=9, fontweight="bold",
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    low = min(test_acc + [float(np.percentile(train_acc, 10))])
    ax_acc.set_ylim(max(0.0, 5 * np.floor((low - 5) / 5)), 100)  # never above 100%
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_xlabel("training step (one batch each); ticks mark the end of each epoch")
    handles, labels = ax_acc.get_legend_handles_labels()
    if history.get("scheduled"):
        ax_lr = ax_acc.twinx()
        lr_line = ax_lr.step(steps, history["step_lr"], where="post", color="gray", lw=1.2)
        ax_lr.set_ylabel("learning rate", color="gray")
        ax_lr.tick_params(axis="y", colors="gray")
        ax_lr.set_ylim(0, 1.15 * max(history["step_lr"]))
        handles, labels = handles + lr_line, labels + ["learning rate"]
    ax_acc.legend(handles, labels, loc="lower right")

    for ax in (ax_loss, ax_acc):
        ax.grid(True, which="major", alpha=0.3)
        for step in ends:
            ax.axvline(step, color="gray", lw=0.8, ls=":")
    ax_acc.set_xlim(0, steps[-1] * 1.02)
    ax_acc.set_xticks([0] + ends, ["0"] + [f"{s}\nepoch {e['epoch']}" for s, e in zip(ends, epochs)])
    seconds = np.mean([e["seconds"] for e in epochs])
    fig.suptitle(f"Tutorial ConvNet on {history['source']}\n{history['parameters']:,} parameters, "
                 f"{len(epochs)} epoch{'s' * (len(epochs) > 1)}, {seconds:.1f} s of training per "
                 f"epoch, final test accuracy {test_acc[-1]:.2f}%", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_test_digits(test_set, predicted: np.ndarray, path: Path, mean: float, std: float,
                     rows: int = 3, cols: int = 8) -> Path:
    """Draw ``rows * cols`` test images with predicted / true labels: the first correctly
    classified images of ``test_set``, then (up to a third of the places) the first
    misclassified ones, framed in red."""
    plt = _pyplot()
    truth = np.array([int(test_set[i][1]) for i in range(len(predicted))])
    wrong = np.flatnonzero(predicted != truth)
    shown_wrong = wrong[: (rows * cols) // 3]
    right = np.flatnonzero(predicted == truth)[: rows * cols - len(shown_wrong)]
    chosen = np.concatenate([right, shown_wrong])
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.55 * rows + 0.6))
    for ax, i in zip(axes.flat, chosen):
        image = np.asarray(test_set[i][0].numpy()).reshape(28, 28) * std + mean
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        miss = predicted[i] != truth[i]
        ax.set_title(f"pred {predicted[i]} / true {truth[i]}", fontsize=9,
                     color=WRONG_COLOR if miss else "black", fontweight="bold" if miss else "normal")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color(WRONG_COLOR if miss else "lightgray")
            spine.set_linewidth(3 if miss else 1)
    for ax in axes.flat[len(chosen):]:
        ax.axis("off")
    fig.suptitle(f"Test digits: {len(wrong)} of {len(truth):,} misclassified "
                 f"(the first {len(shown_wrong)} shown last, framed in red)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
