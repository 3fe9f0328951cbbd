"""The direct path of ``F.cross_entropy`` (``fnarray/nn/_loss_direct.py``: a recorded (N, C)
float tensor and integer (N,) labels, default weights and smoothing) records the very nodes
the general path records: same values and gradients bit for bit, same ``grad_fn`` chain,
double backward, in-place checks; anything else takes the general path, errors included."""

import numpy as np
import pytest

import fnarray.compat as torch
import fnarray.nn.functional as F
from fnarray.nn import _staged
from tests.graph_util import grad_fn_tree

RNG = np.random.default_rng(11)


def _fresh(monkeypatch):
    """A fresh staging cache for nll_loss (other tests' signatures do not interfere)."""
    monkeypatch.setattr(F, "_NLL", _staged.StagedEager(F._nll, "nll_loss"))


def _calls(x_np, y_np, general, monkeypatch, calls=3, **options):
    """Values, input gradients and grad_fn trees of ``calls`` successive recorded calls on a
    non-leaf input."""
    _fresh(monkeypatch)
    if general:
        monkeypatch.setattr(F, "_ce_direct", lambda *a: None)
    x = torch.tensor(x_np, requires_grad=True)
    y = torch.tensor(y_np)
    got = []
    for _ in range(calls):
        x.grad = None
        loss = F.cross_entropy(x * 2, y, **options)
        names = grad_fn_tree(loss.grad_fn)
        (loss.sum() if loss.ndim else loss).backward()
        got.append((loss.detach().numpy().copy(), x.grad.numpy().copy(), names))
    monkeypatch.undo()
    return got


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_direct_path_equals_general_path(reduction, dtype, ignore_index, monkeypatch):
    x_np = RNG.normal(size=(6, 5)).astype(dtype)
    y_np = np.array([1, 2, ignore_index, 4, 0, 3], dtype=np.int64)
    options = dict(reduction=reduction, ignore_index=ignore_index)
    fast = _calls(x_np, y_np, False, monkeypatch, **options)
    slow = _calls(x_np, y_np, True, monkeypatch, **options)
    for (fv, fg, fn), (sv, sg, sn) in zip(fast, slow):
        np.testing.assert_array_equal(fv, sv)
        assert fv.dtype == dtype
        np.testing.assert_array_equal(fg, sg)
        assert fn == sn
    assert fast[-1][2][0] == "NllLossBackward0"
    assert fast[-1][2][1][0][0] == "LogSoftmaxBackward0"


def test_direct_path_records_without_the_general_nll_loss(monkeypatch):
    x_np = RNG.normal(size=(4, 3)).astype(np.float32)
    y_np = np.array([0, 2, 1, 1], dtype=np.int32)
    expected = _calls(x_np, y_np, True, monkeypatch)[-1]
    x, y = torch.tensor(x_np, requires_grad=True), torch.tensor(y_np)

    def general(*args, **kwargs):
        raise AssertionError("the direct path went through the general nll_loss")

    monkeypatch.setattr(F, "nll_loss", general)
    loss = F.cross_entropy(x * 2, y)
    assert grad_fn_tree(loss.grad_fn) == expected[2]
    loss.backward()
    np.testing.assert_array_equal(loss.detach().numpy(), expected[0])
    np.testing.assert_array_equal(x.grad.numpy(), expected[1])


def test_compiled_model_output_keeps_the_pytorch_chain(monkeypatch):
    _fresh(monkeypatch)
    model = torch.compile(torch.nn.Linear(4, 3))
    x, y = torch.tensor(RNG.normal(size=(5, 4)).astype(np.float32)), torch.tensor([0, 1, 2, 1, 0])
    for _ in range(3):
        loss = F.cross_entropy(model(x), y)
    nll = loss.grad_fn
    assert type(nll).__name__ == "NllLossBackward0"
    (logp, _), (target, _) = nll.next_functions
    assert type(logp).__name__ == "LogSoftmaxBackward0" and target is None
    assert type(logp.next_functions[0][0]).__name__ == "StagedCallBackward0"


def test_double_backward_and_retain_graph_match_the_general_path(monkeypatch):
    x_np = RNG.normal(size=(5, 4))
    y_np = np.array([3, 0, 1, 1, 2])
    results = []
    for general in (False, True):
        _fresh(monkeypatch)
        if general:
            monkeypatch.setattr(F, "_ce_direct", lambda *a: None)
        x, y = torch.tensor(x_np, requires_grad=True), torch.tensor(y_np)
        for _ in range(3):
            loss = F.cross_entropy(x, y)
        g, = torch.autograd.grad(loss, x, create_graph=True, retain_graph=True)
        again, = torch.autograd.grad(loss, x, retain_graph=True)  # the retained graph
        gg, = torch.autograd.grad((g * g).sum(), x)
        results.append((g.detach().numpy(), gg.numpy(), again.numpy()))
        monkeypatch.undo()
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_a_target_changed_in_place_before_backward_is_reported(monkeypatch):
    _fresh(monkeypatch)
    x, y = torch.ones(3, 4, requires_grad=True), torch.tensor([0, 1, 3])
    for _ in range(3):
        loss = F.cross_entropy(x * 1, y)
    y.add_(0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_other_calls_take_the_general_path(monkeypatch):
    _fresh(monkeypatch)
    x, y = torch.ones(3, 4, requires_grad=True), torch.tensor([0, 1, 3])

    def direct(input, target, ignore_index=-100, reduction="mean"):
        return F._ce_direct(input, target, ignore_index, reduction)

    assert direct(x, y) is not None
    assert direct(x.detach(), y) is None  # nothing to record
    with torch.no_grad():
        assert direct(x, y) is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert direct(x, y) is None
    assert direct(torch.ones(2, 3, 4, requires_grad=True), torch.zeros(2, 4, dtype=torch.int64)) \
        is None
    assert direct(torch.ones(4, requires_grad=True), torch.tensor(1)) is None
    assert direct(torch.ones(0, 4, requires_grad=True), torch.zeros(0, dtype=torch.int64)) is None
    assert direct(x, y, ignore_index=np.int64(-100)) is None
    assert direct(x, y, reduction="average") is None
    assert direct(x, torch.tensor([0.0, 1.0, 3.0])) is None
    assert direct(x, torch.tensor([0, 1])) is None
    # ... and the general path names what is wrong, as before
    with pytest.raises(ValueError, match="'average' is not a valid value for reduction"):
        F.cross_entropy(x, y, reduction="average")
    with pytest.raises(ValueError, match=r"needs class-index targets of shape \(3,\)"):
        F.cross_entropy(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="probability targets must have the input's shape"):
        F.cross_entropy(x, torch.tensor([0.0, 1.0, 3.0]))
    with pytest.raises(TypeError, match="class indices"):
        F.cross_entropy(x, torch.tensor([True, False, True]))
    # options the direct path leaves to the general one still give their results
    w = torch.tensor([1.0, 2.0, 0.5, 1.0])
    assert np.isfinite(F.cross_entropy(x, y, weight=w).item())
    assert np.isfinite(F.cross_entropy(x, y, label_smoothing=0.1).item())
    assert np.isfinite(F.cross_entropy(x, y, ignore_index=np.int64(1)).item())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_backward_binds_what_the_api_composition_computes(dtype):
    import fnarray as fa
    from fnarray.ops import activation

    x = fa.asarray(RNG.normal(size=(4, 6)).astype(dtype))
    ct = fa.asarray(RNG.normal(size=(4, 6)).astype(dtype))
    for axis in (0, 1):
        out = fa.log_softmax(x, axis=axis)
        got, = activation._log_softmax_vjp(ct, x, out=out, axis=axis)
        want = ct - fa.exp(out) * fa.sum(ct, axis=axis, keepdims=True)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    # a cotangent of another dtype takes the API functions (their promotion)
    other = fa.astype(ct, np.float32 if dtype == np.float64 else np.float64)
    got, = activation._log_softmax_vjp(other, x, out=out, axis=1)
    want = other - fa.exp(out) * fa.sum(other, axis=1, keepdims=True)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(128, 10), (70, 2), (2, 40, 7), (200, 32)])
def test_log_softmax_short_axis_maxima_give_the_same_bits(dtype, shape, monkeypatch):
    from fnarray.backends import accel
    from fnarray.ops import activation

    x = RNG.normal(size=shape).astype(dtype) * 30
    rows = x.reshape(-1, shape[-1])
    rows[0] = 0.0
    rows[1, :2] = [-0.0, 0.0]  # a tie of zeros
    rows[2, 0] = np.nan
    rows[3] = -np.inf
    rows[4, -1] = np.inf
    rows[5, :] = -np.inf
    rows[5, 0] = -0.0  # one finite entry: lse = 0
    rows[6, :] = [0.0 if i % 2 else -0.0 for i in range(shape[-1])]
    views = [x, np.swapaxes(x, 0, -1)]  # (a transposed view is reduced in place)
    with accel.forced(False):  # NumPy's kernel (the compiled rows sum in another order)
        got = [activation._log_softmax_impl(np, v, axis=a) for v in views for a in range(x.ndim)]
        monkeypatch.setattr(activation, "_SHORT_AXIS", 0)  # every maximum on the array itself
        want = [activation._log_softmax_impl(np, v, axis=a) for v in views for a in range(x.ndim)]
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        assert g.tobytes() == w.tobytes()
