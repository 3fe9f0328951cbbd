"""The main job: the tutorial ConvNet on the real MNIST test split (first 8,000 images
train, last 2,000 test).  One epoch, then ``--resume`` for a second: together they must
reach 97% test accuracy, and the checkpoint and plot must exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnarray.examples import mnist

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="the shared MNIST files are not next to the project")
def test_two_epochs_with_resume_reach_97_percent(tmp_path, capsys):
    common = ["--data", str(DATA), "--no-progress", "--out", str(tmp_path), "--epochs", "1"]
    first = mnist.main(common)
    assert first["epoch"] == 1
    second = mnist.main(common + ["--resume"])
    out = capsys.readouterr().out
    assert "MNIST from" in out and "8000 train / 2000 test" in out
    assert "resumed from" in out and second["epoch"] == 2
    assert second["test_acc"] >= 0.97, second
    assert (tmp_path / "checkpoint.fa").exists() and (tmp_path / "accuracy_loss.png").exists()


def test_falls_back_to_synthetic_digits_when_no_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FNARRAY_DATA", raising=False)
    monkeypatch.chdir(tmp_path)

    def offline(*args, **kwargs):
        raise OSError("offline")

    monkeypatch.setattr(mnist.datasets, "MNIST", offline)
    train, test, description, source = mnist.resolve_data(None, fallback_sizes=(300, 100))
    assert "synthetic digits" in description and "offline fallback" in source
    assert "download failed (OSError: offline)" in capsys.readouterr().out
    x, y = train[0]
    assert tuple(x.shape) == (1, 28, 28) and 0 <= int(y) < 10
    assert (len(train), len(test)) == (300, 100)
