"""fnarray.tensorboard: event files written by SummaryWriter, read back by TensorBoard's own
EventAccumulator."""

from __future__ import annotations

import builtins
import io
import os
import subprocess
import sys

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
from fnarray import nn

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from fnarray.tensorboard import SummaryWriter  # noqa: E402


def read(directory) -> EventAccumulator:
    acc = EventAccumulator(str(directory), size_guidance={"images": 0, "histograms": 0,
                                                          "scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_keep_their_steps_and_values(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step, value in enumerate([2.5, torch.tensor(1.5), fa.array(0.25), np.float32(3)]):
            w.add_scalar("loss/train", value, step * 10)
    events = read(tmp_path).Scalars("loss/train")
    assert [e.step for e in events] == [0, 10, 20, 30]
    assert [e.value for e in events] == [2.5, 1.5, 0.25, 3.0]
    with pytest.raises(ValueError, match=r"add_scalar\('x'\): expected one number, got shape"):
        SummaryWriter(tmp_path / "other").add_scalar("x", np.zeros(3))


def test_add_scalars_writes_one_run_per_key(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(3):
            w.add_scalars("loss/cmp", {"train": 1.0 / (step + 1), "test": 2.0 + step}, step)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "loss_cmp_test", "loss_cmp_train"]
    test = read(tmp_path / "loss_cmp_test").Scalars("loss/cmp")
    assert [(e.step, e.value) for e in test] == [(0, 2.0), (1, 3.0), (2, 4.0)]
    assert read(tmp_path / "loss_cmp_train").Scalars("loss/cmp")[2].value == pytest.approx(1 / 3)


def test_histograms_count_every_value(tmp_path):
    values = np.random.default_rng(0).normal(size=2000)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("w/default", torch.tensor(values), 1)
        w.add_histogram("w/numpy_bins", values, 2, bins=10)
    acc = read(tmp_path)
    default = acc.Histograms("w/default")[0].histogram_value
    assert default.num == 2000 and sum(default.bucket) == 2000
    assert default.min == pytest.approx(values.min()) and default.max == pytest.approx(values.max())
    assert default.sum_squares == pytest.approx(np.sum(values ** 2))
    # TensorFlow's buckets grow by 10% away from zero
    limits = np.array(default.bucket_limit)
    positive = limits[limits > 1e-6]
    assert np.allclose(positive[1:] / positive[:-1], 1.1)
    ten = acc.Histograms("w/numpy_bins")[0]
    assert ten.step == 2 and list(ten.histogram_value.bucket) == np.histogram(values, 10)[0].tolist()
    with pytest.raises(ValueError, match="NaN or infinity"):
        SummaryWriter(tmp_path / "bad").add_histogram("bad", np.array([1.0, np.nan]))


def _png_pixels(image_event) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(image_event.encoded_image_string)))


def test_images_in_every_layout(tmp_path):
    pytest.importorskip("PIL")
    chw = np.zeros((3, 4, 6), np.float32)
    chw[0] = 1.0  # red
    hwc = np.full((5, 7, 3), 128, np.uint8)
    batch = np.stack([np.full((1, 2, 3), i / 9, np.float32) for i in range(10)])
    with SummaryWriter(tmp_path) as w:
        w.add_image("chw", torch.tensor(chw), 0)
        w.add_image("hwc", hwc, 1, dataformats="HWC")
        w.add_image("hw", fa.ones((3, 3)), 2, dataformats="HW")
        w.add_images("batch", batch, 3)
    acc = read(tmp_path)
    red = acc.Images("chw")[0]
    assert (red.width, red.height) == (6, 4)
    assert _png_pixels(red)[0, 0].tolist() == [255, 0, 0]
    assert _png_pixels(acc.Images("hwc")[0])[2, 3].tolist() == [128, 128, 128]
    assert _png_pixels(acc.Images("hw")[0]).max() == 255
    grid = acc.Images("batch")[0]
    assert (grid.width, grid.height, grid.step) == (8 * 3, 2 * 2, 3)  # 8 per row, 2 rows
    pixels = _png_pixels(grid)
    assert pixels[0, 3] == round(255 / 9)  # the 2nd image is next to the 1st
    assert pixels[2, 0] == round(255 * 8 / 9) and pixels[2, 3] == 255  # images 9, 10: row two
    assert pixels[2, 6] == 0  # the rest of row two is empty
    with pytest.raises(ValueError, match=r"shape \(3, 4, 6\) does not match dataformats='HW'"):
        SummaryWriter(tmp_path / "bad").add_image("x", chw, dataformats="HW")


def test_figure_text_and_hparams(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    fig = plt.figure(figsize=(2, 1), dpi=50)
    plt.plot([0, 1], [1, 0])
    with SummaryWriter(tmp_path) as w:
        w.add_figure("fig", fig, 4)
        w.add_text("notes", "lr **1e-3**", 5)
        w.add_hparams({"lr": 1e-3, "optimizer": "adam"}, {"hparam/accuracy": 0.9}, run_name="t1",
                      hparam_domain_discrete={"optimizer": ["adam", "sgd"]})
    acc = read(tmp_path)
    image = acc.Images("fig")[0]
    assert (image.width, image.height, image.step) == (100, 50, 4)
    text = acc.Tensors("notes/text_summary")[0]
    assert text.step == 5 and text.tensor_proto.string_val == [b"lr **1e-3**"]
    trial = read(tmp_path / "t1")
    assert trial.Scalars("hparam/accuracy")[0].value == pytest.approx(0.9)
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = trial.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["optimizer"].string_value == "adam"
    assert start.hparams["lr"].number_value == pytest.approx(1e-3)
    content = trial.SummaryMetadata("_hparams_/experiment").plugin_data.content
    infos = plugin_data_pb2.HParamsPluginData.FromString(content).experiment.hparam_infos
    assert [i.name for i in infos] == ["lr", "optimizer"]
    assert [v.string_value for v in infos[1].domain_discrete.values] == ["adam", "sgd"]


class _Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.fc2 = nn.Linear(3, 2)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


def test_graph_from_the_ir(tmp_path):
    model = _Small()
    with torch.utils.tensorboard.SummaryWriter(tmp_path) as w:
        w.add_graph(model, torch.randn(5, 4))
    assert model.training  # traced in eval mode, restored after
    nodes = {n.name: n for n in read(tmp_path).Graph().node}
    assert {"params/fc1.weight", "params/fc2.bias", "input/0", "output/0"} <= set(nodes)
    ops = [n for n in nodes.values() if n.op not in ("Parameter", "Input", "Output", "Const")]
    assert {"dot_general", "add"} <= {n.op for n in ops}
    # the output is wired back through the ops to the input and to fc1's weight
    seen, todo = set(), ["output/0"]
    while todo:
        name = todo.pop()
        seen.add(name)
        todo += [i for i in nodes[name].input if i not in seen]
    assert {"input/0", "params/fc1.weight", "params/fc2.weight"} <= seen
    dims = [d.size for d in nodes["output/0"].attr["_output_shapes"].list.shape[0].dim]
    assert dims == [5, 2]
    with pytest.raises(ValueError, match="an example input is needed"):
        SummaryWriter(tmp_path / "g").add_graph(model)


def test_default_log_dir_closed_writer_and_lazy_import(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_lr0.1")
    assert w.get_logdir().startswith(os.path.join("runs", "")) and w.log_dir.endswith("_lr0.1")
    w.close()
    with pytest.raises(RuntimeError, match="is closed"):
        w.add_scalar("x", 1.0)
    code = "import sys, fnarray, fnarray.compat; print('tensorboard' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_extra_names_it(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ImportError, match=r"pip install 'fnarray\[tensorboard\]'"):
        SummaryWriter(tmp_path)


def test_mnist_example_logs_to_tensorboard(tmp_path, monkeypatch):
    from fnarray.examples import mnist

    monkeypatch.setattr(mnist, "resolve_data", lambda data, sizes: mnist.synthetic_splits(256, 64))
    board = tmp_path / "board"
    mnist.main(["--no-progress", "--out", str(tmp_path / "out"), "--epochs", "2",
                "--gamma", "0.5", "--tensorboard", str(board)])
    acc = read(board)
    assert [e.step for e in acc.Scalars("loss/train")] == list(range(1, 9))  # 4 steps an epoch
    assert [e.value for e in acc.Scalars("lr")] == pytest.approx([1e-3] * 4 + [5e-4] * 4)
    history = mnist.torch.load(tmp_path / "out" / "checkpoint.fa")["history"]
    assert [e.value for e in acc.Scalars("loss/train")] == pytest.approx(history["step_loss"])
    test_acc = acc.Scalars("accuracy/test")
    assert [e.step for e in test_acc] == [4, 8]
    assert [e.value for e in test_acc] == pytest.approx([e["test_acc"] for e in history["epochs"]])
    assert [e.step for e in acc.Scalars("loss/test")] == [4, 8]
    weights = acc.Histograms("weights/fc1.weight")
    assert [e.step for e in weights] == [4, 8] and weights[0].histogram_value.num == 9216 * 128
    ops = {n.op for n in acc.Graph().node}
    assert {"conv", "dot_general", "Parameter", "Input", "Output"} <= ops
