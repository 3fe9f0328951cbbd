"""MNIST handwritten digits, read from the original IDX files.

Files are looked for in ``root`` and in ``root/MNIST/raw`` (torchvision's layout), each as
the gzip file (``t10k-images-idx3-ubyte.gz``) or the raw IDX file (without ``.gz``).

Checksums.  A gzip file is verified against the published digest before it is read:
SHA-256 for the test files (``t10k-*``), MD5 — the digest the MNIST mirrors publish — for
the training files.  A raw (already decompressed) file has no published digest; it is
validated structurally instead (magic number, dimensions, exact size, labels in 0-9).

``split=(start, stop)`` (or a ``slice``) keeps only those images of the chosen set.  Where
only the test set is available, a deterministic train/test division is
``MNIST(root, train=False, split=(0, 8000))`` for training and
``MNIST(root, train=False, split=(8000, 10000))`` for testing.

``download=True`` fetches missing files from ``mirrors`` (tried in order), verifies their
checksums and moves each into place atomically (temporary file + rename).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from fnarray import _interop
from fnarray.data.dataset import ColumnBatch, Dataset, _Column
from fnarray.data.transforms import batched

MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
           "https://storage.googleapis.com/cvdf-datasets/mnist/")
_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_DIGESTS = {
    "train-images-idx3-ubyte.gz": ("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": ("md5", "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": (
        "sha256", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "t10k-labels-idx1-ubyte.gz": (
        "sha256", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
_MAX_DOWNLOAD = 64 * 2**20


class MNIST(Dataset):
    """``(image, label)`` pairs: a 28x28 ``uint8`` NumPy image (through ``transform``) and
    an int label (through ``target_transform``).

    ``data`` (N, 28, 28) and ``targets`` (N,) hold the whole selected split as read-only
    NumPy arrays.
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root, train: bool = True, transform=None, target_transform=None,
                 download: bool = False, split=None, mirrors=MIRRORS, timeout: float = 30.0):
        self.root, self.train = Path(root).expanduser(), train
        self.transform, self.target_transform = transform, target_transform
        self.mirrors, self.timeout = tuple(mirrors), timeout
        images_name, labels_name = _FILES[bool(train)]
        if download:
            self._download_missing()
        images = _read_idx(self._find(images_name), 3)
        labels = _read_idx(self._find(labels_name), 1)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"MNIST: {images_name} holds {images.shape[0]} images but "
                             f"{labels_name} holds {labels.shape[0]} labels")
        if labels.size and labels.max() > 9:
            raise ValueError(f"MNIST: {labels_name} holds labels outside 0-9 (max {labels.max()})")
        selection = _selection(split)
        self.data, self.targets = images[selection], labels[selection].astype(np.int64)
        self.data.flags.writeable = False
        self.targets.flags.writeable = False

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int):
        image, label = self.data[index], int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def __getitems__(self, indices):
        """The samples of a batch.  Without transforms they stay column-wise, so
        ``default_collate`` gathers images and labels with one fancy index each; a
        per-pixel transform (``ToTensor`` + ``Normalize``, see ``transforms.batched``) runs
        once on the gathered stack of images."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.target_transform is None:
            if self.transform is None:
                return ColumnBatch([_Column(self.data), _Column(self.targets)], indices)
            whole = batched(self.transform)
            if whole is not None:
                images = _interop.from_numpy(whole(self.data[indices]), None, as_tensor=True)
                return ColumnBatch([_Column(images), _Column(self.targets[indices])],
                                   np.arange(len(indices)))
        return [self[i] for i in indices]

    def __repr__(self):
        return (f"MNIST(root={str(self.root)!r}, train={self.train}, {len(self)} images)")

    # --------------------------------------------------------------------- files

    def _directories(self) -> list[Path]:
        return [self.root, self.root / "MNIST" / "raw"]

    def _find(self, name: str) -> Path:
        for directory in self._directories():
            for candidate in (directory / f"{name}.gz", directory / name):
                if candidate.is_file():
                    return candidate
        raise FileNotFoundError(self._missing_message(name))

    def _missing_message(self, name: str) -> str:
        wanted = [f"{n}.gz" for n in _FILES[bool(self.train)]]
        searched = ", ".join(str(d) for d in self._directories())
        message = (f"MNIST: {name}.gz (or the uncompressed {name}) not found; searched {searched}. "
                   f"Put {' and '.join(wanted)} (raw or .gz) in {self.root}, or pass "
                   f"download=True to fetch them from {', '.join(self.mirrors)}")
        if self.train and any((d / f"{n}.gz").is_file() or (d / n).is_file()
                              for d in self._directories() for n in _FILES[False]):
            message += (". Only the test set (t10k-*) is here: take a deterministic split of it, "
                        "MNIST(root, train=False, split=(0, 8000)) to train and "
                        "MNIST(root, train=False, split=(8000, 10000)) to test")
        return message

    def _download_missing(self) -> None:
        for name in _FILES[bool(self.train)]:
            try:
                self._find(name)
            except FileNotFoundError:
                self.root.mkdir(parents=True, exist_ok=True)
                _download(f"{name}.gz", self.root, self.mirrors, self.timeout)


def _selection(split) -> slice:
    if split is None:
        return slice(None)
    if isinstance(split, slice):
        return split
    if isinstance(split, tuple) and len(split) == 2:
        return slice(*split)
    raise ValueError(f"MNIST: split must be (start, stop) or a slice, got {split!r}")


def _verify(name: str, data: bytes) -> str | None:
    """``None`` when ``data`` matches the published digest of ``name``, else the problem."""
    if name not in _DIGESTS:
        return None
    algorithm, expected = _DIGESTS[name]
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        return f"{algorithm} {actual} does not match the published {expected}"
    return None


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array in an IDX file (gzip or raw), validated."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        problem = _verify(path.name, raw)
        if problem:
            raise ValueError(f"MNIST: {path} is corrupted or not the official file ({problem}); "
                             f"delete it and download it again")
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"MNIST: {path} is not a valid gzip file ({e})") from e
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:4] != bytes([0, 0, 8, ndim]):
        raise ValueError(f"MNIST: {path} is not an IDX file of {ndim}-d unsigned bytes "
                         f"(magic {raw[:4].hex()!r}, expected {bytes([0, 0, 8, ndim]).hex()!r})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise ValueError(f"MNIST: {path} declares shape {shape} ({expected} bytes) but holds "
                         f"{len(raw)} bytes: the file is truncated or corrupted")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _download(name: str, directory: Path, mirrors, timeout: float) -> None:
    """Fetch ``name`` from the first mirror that serves it intact; place it atomically."""
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read(_MAX_DOWNLOAD + 1)
        except (urllib.error.URLError, OSError, ValueError) as e:
            errors.append(f"{url}: {e}")
            continue
        problem = "larger than any MNIST file" if len(data) > _MAX_DOWNLOAD else _verify(name, data)
        if problem:
            errors.append(f"{url}: {problem}")
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, directory / name)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return
    raise RuntimeError(f"MNIST: could not download {name} into {directory}; "
                       f"tried {'; '.join(errors) or 'no mirrors'}. Copy the file there by hand "
                       f"(raw or .gz), or pass mirrors=[...] with a reachable mirror")
