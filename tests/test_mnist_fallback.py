"""The main job on a fresh offline machine: no data directory, no cache, no network.

``python -m fnarray.examples.mnist`` must then fall back to the stroke-font digits, learn
them, and draw both figures.  The run here is sized for CI (3,000 training images, one
epoch); the default (12,000 images, two epochs) is measured in the README."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from fnarray.examples import mnist
from fnarray.examples.synthetic_digits import FONTS, make_digits

TAB_BLUE = np.array([31, 119, 180]) / 255  # the training-curve colour of mnist_plots


def _offline_env(tmp_path) -> dict:
    """Empty home, cache and $FNARRAY_DATA, and every URL sent to a closed local port."""
    env = {k: v for k, v in os.environ.items() if k not in ("no_proxy", "NO_PROXY")}
    closed = "http://127.0.0.1:9"
    for name in ("home", "cache", "data"):
        (tmp_path / name).mkdir()
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               FNARRAY_DATA=str(tmp_path / "data"),
               http_proxy=closed, https_proxy=closed, HTTP_PROXY=closed, HTTPS_PROXY=closed)
    return env


@pytest.mark.slow
def test_offline_first_run_learns_the_fallback_and_draws_both_figures(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    work = tmp_path / "work"  # its ../shared/data/mnist does not exist
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "fnarray.examples.mnist", "--no-progress", "--out", "out",
         "--epochs", "1", "--fallback-size", "3000", "1000"],
        cwd=work, env=_offline_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "download failed" in out and "Connection refused" in out
    assert "data: synthetic digits rendered from stroke fonts (3000 train / 1000 test" in out
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", out).group(1))
    assert accuracy >= 90.0, out
    assert not (tmp_path / "cache" / "fnarray" / "mnist" / "t10k-images-idx3-ubyte.gz").exists()

    curves = plt.imread(work / "out" / "accuracy_loss.png")
    digits = plt.imread(work / "out" / "test_digits.png")
    assert curves.shape[0] >= 600 and curves.shape[1] >= 900
    assert digits.shape[0] >= 300 and digits.shape[1] >= 800
    # the per-step training curve is a line across the axis, not a couple of markers
    blue = np.all(np.abs(curves[..., :3] - TAB_BLUE) < 0.05, axis=-1)
    assert len(np.unique(np.nonzero(blue)[1])) > 400
    assert len(np.unique(digits[..., :3].reshape(-1, 3), axis=0)) > 50  # images, not a blank page

    history = mnist.torch.load(work / "out" / "checkpoint.fa")["history"]
    assert len(set(history["step_loss"])) > 2 and len(history["epochs"]) == 1


def test_resume_continues_the_curves(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "resolve_data",
                        lambda data, sizes: mnist.synthetic_splits(256, 64))
    common = ["--no-progress", "--out", str(tmp_path), "--epochs", "1", "--gamma", "0.5"]
    mnist.main(common)
    first = mnist.torch.load(tmp_path / "checkpoint.fa")["history"]
    mnist.main(common + ["--resume"])
    history = mnist.torch.load(tmp_path / "checkpoint.fa")["history"]
    steps = len(first["step_loss"])
    assert steps == 4 and len(history["step_loss"]) == 2 * steps
    assert history["step_loss"][:steps] == first["step_loss"]
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert [e["step"] for e in history["epochs"]] == [steps, 2 * steps]
    assert history["step_lr"] == [1e-3] * steps + [5e-4] * steps  # the scheduler resumed too
    assert (tmp_path / "accuracy_loss.png").stat().st_size > 20_000


def test_stroke_font_digits_are_reproducible_and_varied():
    images, labels = make_digits(400, seed=3)
    again, _ = make_digits(400, seed=3)
    assert images.shape == (400, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, again) and set(labels.tolist()) == set(range(10))
    assert len(FONTS) >= 3
    ink = images.reshape(400, -1).mean(1) / 255
    assert 0.05 < ink.mean() < 0.3 and ink.std() > 0.01  # strokes of varying thickness
    # two drawings of one digit differ (jitter), and the mean images of two digits differ
    ones = images[labels == 1]
    assert not np.array_equal(ones[0], ones[1])
    means = np.stack([images[labels == d].mean(0) for d in range(10)])
    assert np.abs(means[:, None] - means[None]).sum((-1, -2))[~np.eye(10, dtype=bool)].min() > 500
