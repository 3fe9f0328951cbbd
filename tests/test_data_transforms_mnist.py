"""fnarray.data.transforms and fnarray.data.datasets.MNIST (real files, local mirror)."""

import functools
import gzip
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import fnarray as fa
from fnarray import _interop
from fnarray.data import DataLoader
from fnarray.data import transforms as T
from fnarray.data.datasets import MNIST

values = _interop.to_numpy
MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists(),
                                 reason="MNIST test files not found in ../shared/data/mnist")


def test_to_tensor_and_normalize():
    img = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    out = T.ToTensor()(img)
    assert values(out).shape == (3, 2, 2) and values(out).dtype == np.float32
    np.testing.assert_allclose(values(out), np.moveaxis(img, -1, 0) / 255, rtol=1e-6)
    gray = T.ToTensor()(np.full((4, 5), 255, np.uint8))
    assert values(gray).shape == (1, 4, 5) and values(gray).max() == 1.0
    norm = T.Normalize((0.5, 0.0, 1.0), (0.5, 2.0, 1.0))(out)
    expect = (values(out) - np.array([0.5, 0, 1], np.float32)[:, None, None]) / \
        np.array([0.5, 2, 1], np.float32)[:, None, None]
    np.testing.assert_allclose(values(norm), expect, rtol=1e-6)
    assert type(norm) is type(out)
    with pytest.raises(ValueError, match="divide by zero"):
        T.Normalize((0.0,), (0.0,))
    with pytest.raises(ValueError, match=r"C = 3"):
        T.Normalize((0.0,) * 3, (1.0,) * 3)(np.zeros((2, 4, 4), np.float32))


def test_resize_bilinear():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_allclose(T.Resize((4, 4))(x), x)
    # Without antialiasing, half-pixel centres give the mean of each 2x2 block (the
    # antialiased default is checked against Pillow in test_data_transforms_pil.py).
    down = T.Resize(2, antialias=False)(x)
    np.testing.assert_allclose(down, x.reshape(2, 2, 2, 2).mean(axis=(1, 3)))
    assert T.Resize(8)(np.zeros((4, 6), np.uint8)).shape == (8, 12)
    up = T.Resize((3, 5))(fa.asarray(np.ones((2, 4, 4), np.float32)))
    assert isinstance(up, fa.Array) and up.shape == (2, 3, 5)
    hwc = T.Resize((2, 2))(np.full((4, 4, 3), 200, np.uint8))
    assert hwc.shape == (2, 2, 3) and hwc.dtype == np.uint8 and (hwc == 200).all()


def test_crops_and_flips():
    x = np.arange(25, dtype=np.float32).reshape(5, 5)
    np.testing.assert_array_equal(T.CenterCrop(3)(x), x[1:4, 1:4])
    assert T.CenterCrop((7, 7))(x).shape == (7, 7)
    crops = [T.RandomCrop(3, generator=s)(x) for s in range(5)]
    assert all(c.shape == (3, 3) for c in crops)
    assert any(not np.array_equal(crops[0], c) for c in crops[1:])
    padded = T.RandomCrop(5, padding=2, generator=0)(x)
    assert padded.shape == (5, 5)
    assert T.RandomCrop(8, pad_if_needed=True, padding_mode="edge", generator=0)(x).shape == (8, 8)
    with pytest.raises(ValueError, match="larger than"):
        T.RandomCrop(6)(x)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(x), x[:, ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(x), x)
    chw = fa.asarray(np.arange(12.0).reshape(1, 3, 4))
    np.testing.assert_array_equal(values(T.RandomHorizontalFlip(1.0)(chw)),
                                  np.arange(12.0).reshape(1, 3, 4)[..., ::-1])
    pipeline = T.Compose([T.Lambda(lambda a: a + 1), T.CenterCrop(1)])
    assert pipeline(x).tolist() == [[13.0]] and "CenterCrop" in repr(pipeline)


@needs_mnist
def test_mnist_reads_checks_and_splits():
    full = MNIST(MNIST_DIR, train=False)
    assert len(full) == 10000 and full.data.shape == (10000, 28, 28)
    image, label = full[0]
    assert image.dtype == np.uint8 and image.shape == (28, 28) and label == 7
    assert np.bincount(full.targets, minlength=10).min() > 800
    train = MNIST(MNIST_DIR, train=False, split=(0, 8000))
    test = MNIST(MNIST_DIR, train=False, split=(8000, 10000))
    assert len(train) == 8000 and len(test) == 2000
    np.testing.assert_array_equal(test.data[0], full.data[8000])
    tf = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    loader = DataLoader(MNIST(MNIST_DIR, train=False, transform=tf, split=slice(0, 100)),
                        batch_size=32)
    x, y = next(iter(loader))
    assert values(x).shape == (32, 1, 28, 28) and values(y).dtype == np.int64


@needs_mnist
def test_mnist_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.*split=\(0, 8000\)"):
        MNIST(MNIST_DIR, train=True)
    with pytest.raises(FileNotFoundError, match=rf"t10k-images.*{tmp_path}.*download=True"):
        MNIST(tmp_path, train=False)
    raw = gzip.decompress((MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw)  # uncompressed files work too
    shutil.copy(MNIST_DIR / "t10k-images-idx3-ubyte.gz", tmp_path)
    assert len(MNIST(tmp_path, train=False)) == 10000
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw[:-5])
    with pytest.raises(ValueError, match="truncated"):
        MNIST(tmp_path, train=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03" + raw[4:])
    with pytest.raises(ValueError, match="magic"):
        MNIST(tmp_path, train=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(ValueError, match="sha256"):
        MNIST(tmp_path, train=False)


@pytest.fixture
def local_mirror():
    handler = functools.partial(_QuietHandler, directory=str(MNIST_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@needs_mnist
def test_mnist_download_from_mirrors(tmp_path, local_mirror):
    bad = f"{local_mirror}missing-directory/"
    ds = MNIST(tmp_path / "cache", train=False, download=True, mirrors=[bad, local_mirror],
               timeout=5)
    assert len(ds) == 10000
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    with pytest.raises(RuntimeError, match=r"could not download train-images.*404"):
        MNIST(tmp_path / "other", train=True, download=True, mirrors=[local_mirror], timeout=5)
