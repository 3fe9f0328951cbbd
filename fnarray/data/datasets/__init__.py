"""Ready-made datasets."""

from fnarray.data.datasets.mnist import MNIST

__all__ = ["MNIST"]
