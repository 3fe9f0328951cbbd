"""fnarray.data in the main process: datasets, samplers, collation and DataLoader."""

import collections

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnarray as fa
from fnarray import _interop
from fnarray.data import (
    BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler,
    SequentialSampler, Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
    default_collate, get_worker_info, random_split)

values = _interop.to_numpy


class Squares(Dataset):
    """A plain map-style dataset (no __getitems__): sample i is (i as float32[2], i**2)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.full(2, i, np.float32), i * i


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def reference_batches(n, batch_size, drop_last):
    starts = range(0, n, batch_size)
    batches = [list(range(s, min(s + batch_size, n))) for s in starts]
    return [b for b in batches if len(b) == batch_size or not drop_last]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 30), batch_size=st.integers(1, 12), drop_last=st.booleans(),
       tensor=st.booleans())
def test_batches_match_sequential_reference(n, batch_size, drop_last, tensor):
    x = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    ds = TensorDataset(fa.asarray(x), fa.asarray(np.arange(n) ** 2)) if tensor else Squares(n)
    loader = DataLoader(ds, batch_size=batch_size, drop_last=drop_last)
    expected = reference_batches(n, batch_size, drop_last)
    got = list(loader)
    assert len(loader) == len(expected) == len(got)
    for idx, (xb, yb) in zip(expected, got):
        want_x = x[idx] if tensor else np.repeat(np.array(idx, np.float32)[:, None], 2, 1)
        np.testing.assert_array_equal(values(xb), want_x)
        np.testing.assert_array_equal(values(yb), np.array(idx) ** 2)
        assert values(yb).dtype == np.int64


def test_shuffle_is_reproducible_from_a_seed():
    ds = Squares(50)

    def epochs(loader):
        return [[values(y).tolist() for _, y in loader] for _ in range(2)]

    a = epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=7))
    b = epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=7))
    assert a == b and a[0] != a[1]
    assert sorted(sum(a[0], [])) == [i * i for i in range(50)]
    c = epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(7)))
    assert c[0] != epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=8))[0]
    key = epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=fa.random.key(3)))
    assert key == epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=fa.random.key(3)))


def test_shuffle_follows_the_global_seed():
    compat = _interop.compat_module()

    def seeded_order():
        if compat is not None and callable(getattr(compat, "manual_seed", None)):
            compat.manual_seed(123)
        np.random.seed(123)
        return [values(y).tolist() for _, y in DataLoader(Squares(20), batch_size=5, shuffle=True)]

    assert seeded_order() == seeded_order()


def test_samplers():
    ds = Squares(10)
    assert list(SequentialSampler(ds)) == list(range(10))
    perm = list(RandomSampler(ds, generator=0))
    assert sorted(perm) == list(range(10)) and perm != list(range(10))
    drawn = list(RandomSampler(ds, replacement=True, num_samples=25, generator=0))
    assert len(drawn) == 25 and all(0 <= i < 10 for i in drawn)
    more = list(RandomSampler(ds, num_samples=15, generator=1))
    assert len(more) == 15 and sorted(more[:10]) == list(range(10))
    assert sorted(SubsetRandomSampler([3, 5, 7], generator=0)) == [3, 5, 7]
    weighted = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 200, generator=0))
    assert set(weighted) == {1, 3} and weighted.count(3) > weighted.count(1)
    assert sorted(WeightedRandomSampler([1, 1, 1], 3, replacement=False, generator=0)) == [0, 1, 2]
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([-1.0, 2.0], 3)
    batches = BatchSampler(SequentialSampler(ds), 4, drop_last=False)
    assert list(batches) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and len(batches) == 3
    assert len(BatchSampler(SequentialSampler(ds), 4, drop_last=True)) == 2
    loader = DataLoader(ds, batch_sampler=BatchSampler(SubsetRandomSampler([1, 2], 0), 2, False))
    assert sorted(values(next(iter(loader))[1]).tolist()) == [1, 4]


def test_random_split_subset_concat():
    ds = Squares(10)
    a, b = random_split(ds, [7, 3], generator=0)
    assert len(a) == 7 and len(b) == 3
    assert sorted(a.indices + b.indices) == list(range(10))
    assert [s.indices for s in random_split(ds, [7, 3], generator=0)] == [a.indices, b.indices]
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=1)
    assert [len(p) for p in parts] == [5, 3, 2]
    assert [len(p) for p in random_split(Squares(11), [0.5, 0.5], generator=1)] == [6, 5]
    with pytest.raises(ValueError, match="summing"):
        random_split(ds, [3, 3])
    sub = Subset(ds, [4, 2])
    assert sub[0][1] == 16 and len(sub) == 2
    cat = ConcatDataset([Squares(3), Squares(2)])
    assert len(cat) == 5 and cat[3][1] == 0 and cat[-1][1] == 1
    assert len(Squares(2) + Squares(4)) == 6
    with pytest.raises(IndexError, match="out of range"):
        cat[5]
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(fa.zeros((3, 2)), fa.zeros(4))


def test_default_collate_follows_pytorch():
    Point = collections.namedtuple("Point", "x y")
    batch = default_collate([{"a": 1, "b": 0.5, "c": True, "s": "u", "p": Point(1, 2.0)},
                             {"a": 2, "b": 1.5, "c": False, "s": "v", "p": Point(3, 4.0)}])
    assert values(batch["a"]).dtype == np.int64 and values(batch["b"]).dtype == np.float64
    assert values(batch["c"]).dtype == np.bool_ and batch["s"] == ["u", "v"]
    assert isinstance(batch["p"], Point) and values(batch["p"].y).tolist() == [2.0, 4.0]
    stacked = default_collate([np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)])
    assert values(stacked).shape == (2, 2, 3) and values(stacked).dtype == np.float32
    arrays = default_collate([(fa.ones(2), np.int32(1)), (fa.zeros(2), np.int32(2))])
    assert isinstance(arrays, list) and values(arrays[1]).dtype == np.int32
    with pytest.raises(RuntimeError, match=r"different shapes.*\(2,\).*\(3,\)"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="cannot batch"):
        default_collate([object(), object()])


def test_collate_returns_tensors_when_compat_exists():
    out = default_collate([np.zeros(2), np.ones(2)])
    if _interop.compat_module() is None:
        assert isinstance(out, fa.Array)
    else:
        assert _interop.is_tensor(out)


def test_iterable_dataset_and_unbatched_loading():
    assert [values(b).tolist() for b in DataLoader(Stream(7), batch_size=3)] == \
        [[0, 1, 2], [3, 4, 5], [6]]
    assert len(DataLoader(Stream(7), batch_size=3, drop_last=True)) == 2
    assert [values(b).tolist() for b in DataLoader(Stream(7), batch_size=3, drop_last=True)] == \
        [[0, 1, 2], [3, 4, 5]]
    assert list(DataLoader(Stream(3), batch_size=None)) == [0, 1, 2]
    assert get_worker_info() is None


def test_loader_argument_errors():
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(Squares(3), shuffle=True, sampler=SequentialSampler(Squares(3)))
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Stream(3), shuffle=True)
    with pytest.raises(ValueError, match="persistent_workers"):
        DataLoader(Squares(3), persistent_workers=True)
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(Squares(3), num_workers=-1)
    with pytest.raises(TypeError, match="generator"):
        DataLoader(Squares(3), shuffle=True, generator="seed")
