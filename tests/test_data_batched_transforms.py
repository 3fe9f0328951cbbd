"""Per-pixel transform pipelines run once per batch (``transforms.batched``): MNIST with
``ToTensor`` + ``Normalize`` gives exactly the batches per-image transforms and
``default_collate`` give, through ``Subset`` too; other pipelines are left per-image."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fnarray.data import DataLoader, Subset, default_collate, transforms
from fnarray.data.datasets import MNIST

MNIST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
TF = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])


def test_batched_accepts_only_per_pixel_pipelines():
    assert transforms.batched(TF) is not None
    assert transforms.batched(transforms.ToTensor()) is not None
    assert transforms.batched(transforms.Normalize((0.5,), (0.5,))) is None
    assert transforms.batched(transforms.Compose([])) is None
    assert transforms.batched(transforms.Compose(
        [transforms.ToTensor(), transforms.RandomHorizontalFlip()])) is None
    assert transforms.batched(transforms.Compose(
        [transforms.ToTensor(), transforms.Lambda(lambda x: x)])) is None


@pytest.mark.parametrize("shape", [(5, 6, 7), (5, 6, 7, 3)])
def test_batched_equals_per_image(shape):
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    tf = transforms.Compose([transforms.ToTensor(),
                             transforms.Normalize((0.2,) * (shape[3:] or (1,))[0],
                                                  (0.7,) * (shape[3:] or (1,))[0])])
    whole = transforms.batched(tf)(images)
    each = np.stack([np.asarray(tf(image).numpy()) for image in images])
    assert whole.dtype == each.dtype == np.float32
    np.testing.assert_array_equal(whole, each)


@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="MNIST files not found")
def test_mnist_batches_equal_per_image_transforms():
    dataset = Subset(MNIST(MNIST_DIR, train=False, transform=TF), range(100, 400))
    kwargs = dict(batch_size=64, shuffle=True, generator=5)
    fast = list(DataLoader(dataset, **kwargs))
    # a custom collate_fn sees the batch as samples (tensor image, label)
    slow = list(DataLoader(dataset, collate_fn=lambda b: default_collate(list(b)), **kwargs))
    reference = list(DataLoader(_PerImage(dataset), **kwargs))
    assert len(fast) == len(slow) == len(reference) == 5
    for (x, y), (xs, ys), (xr, yr) in zip(fast, slow, reference):
        np.testing.assert_array_equal(ys.numpy(), yr.numpy())
        assert x.dtype == xr.dtype and y.dtype == yr.dtype and tuple(x.shape)[1:] == (1, 28, 28)
        np.testing.assert_array_equal(x.numpy(), xr.numpy())
        np.testing.assert_array_equal(y.numpy(), yr.numpy())
        np.testing.assert_array_equal(xs.numpy(), xr.numpy())


class _PerImage:
    """The dataset without ``__getitems__``: the loader transforms image by image."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]
