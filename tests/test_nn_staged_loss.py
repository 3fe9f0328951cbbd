"""Recorded eager class-weighted ``nll_loss``/``cross_entropy`` calls run as one staged node
(``fnarray/nn/_staged.py``): same bits and gradients as the eager composition, PyTorch's
``grad_fn`` chain, double backward, and eager fallbacks (first sighting, no recording,
tracers, autocast, too many shapes).  Unweighted calls are one primitive each way
(``class_nll``) and stage nothing."""

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
import fnarray.nn.functional as F
from fnarray.nn import _staged

RNG = np.random.default_rng(0)


def _inputs(n=6, c=5, dtype=np.float32):
    x = torch.tensor(RNG.normal(size=(n, c)).astype(dtype), requires_grad=True)
    y = torch.tensor(np.array([1, 2, -100, 4, 0, 3][:n]))
    return x, y


def _weight(x):
    """Class weights of ``x``'s dtype (the calls that stage)."""
    return torch.tensor(np.linspace(0.5, 1.5, x.shape[1]).astype(x.detach().numpy().dtype))


def _fresh(monkeypatch):
    """A fresh staging cache for nll_loss (other tests' signatures do not interfere)."""
    fresh = _staged.StagedEager(F._nll, "nll_loss")
    monkeypatch.setattr(F, "_NLL", fresh)
    return fresh


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_staged_calls_equal_the_eager_call_bit_for_bit(monkeypatch, reduction, weighted):
    nll = _fresh(monkeypatch)
    x, y = _inputs()
    w = torch.tensor(RNG.random(5).astype(np.float32)) if weighted else None
    got = []
    for _ in range(3):  # eager (first sighting), staged, staged
        x.grad = None
        loss = F.cross_entropy(x, y, weight=w, reduction=reduction)
        (loss.sum() if reduction == "none" else loss).backward()
        got.append((loss.detach().numpy().copy(), x.grad.numpy().copy()))
    assert len(nll.cache) == (1 if weighted else 0)
    for value, grad in got[1:]:
        np.testing.assert_array_equal(value, got[0][0])
        np.testing.assert_array_equal(grad, got[0][1])


def test_staged_node_reads_as_pytorch_and_differentiates_twice(monkeypatch):
    _fresh(monkeypatch)
    x, y = _inputs(dtype=np.float64)
    seconds = []
    for i in range(3):
        loss = F.cross_entropy(x, y, weight=_weight(x))
        if i:
            assert type(loss.grad_fn).__name__ == "NllLossBackward0"
            names = [None if f is None else f.name() for f, _ in loss.grad_fn.next_functions]
            assert names == ["LogSoftmaxBackward0", None, None]  # (input, target, weight)
        g, = torch.autograd.grad(loss, x, create_graph=True)
        gg, = torch.autograd.grad((g * g).sum(), x)
        seconds.append(gg.numpy())
    np.testing.assert_allclose(seconds[1], seconds[0], rtol=1e-12)
    np.testing.assert_allclose(seconds[2], seconds[0], rtol=1e-12)


def test_calls_that_do_not_record_or_are_traced_run_eagerly(monkeypatch):
    nll = _fresh(monkeypatch)
    x, y = _inputs()
    w = _weight(x)
    for _ in range(3):
        with torch.no_grad():
            F.cross_entropy(x, y, weight=w)
        F.cross_entropy(x.detach(), y, weight=w)  # nothing requires grad
        fa.grad(lambda v: F.cross_entropy(v, y.array, weight=w.array))(x.detach().array)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(3):
            F.cross_entropy(x, y, weight=w)
    assert not nll.cache


def test_shapes_seen_once_never_trace_and_staging_is_bounded(monkeypatch):
    nll = _fresh(monkeypatch)
    monkeypatch.setattr(_staged, "LIMIT", 2)
    for n in range(2, 7):  # each shape once: all eager
        x, y = _inputs(n)
        F.cross_entropy(x, y, weight=_weight(x))
    assert not nll.cache
    for n in range(2, 7):  # second sightings: only LIMIT of them are staged
        x, y = _inputs(n)
        loss = F.cross_entropy(x, y, weight=_weight(x))
        loss.backward()
        assert np.isfinite(x.grad.numpy()).all()
    assert len(nll.cache) == 2


def test_a_target_changed_in_place_before_backward_is_reported(monkeypatch):
    _fresh(monkeypatch)
    x, y = _inputs()
    for _ in range(2):
        loss = F.cross_entropy(x, y, weight=_weight(x))
    y.add_(0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
