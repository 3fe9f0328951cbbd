"""The classifier loss's fast kernels: ``log_softmax`` over a short class axis (compiled row
loops with the ``accel`` extra), its backward primitive ``log_softmax_grad``, and the
class-index NLL primitives ``class_nll``/``class_nll_grad`` (``fnarray/ops/loss.py``).

* The compiled rows give NumPy's bits exactly (special values included), forward and
  backward, so turning ``accel`` on or off changes no result.
* ``cross_entropy`` values and gradients match a float64 reference — every reduction,
  ``ignore_index`` (outside and inside the class range), N=1, C=1, logits offset by 1e4,
  float32/float64, accel on and off — eagerly on compat tensors, under ``fa.jit`` of
  ``value_and_grad``, and with the loss inside a ``compat.compile``d module.
* Second derivatives still go through ``log_softmax`` (its backward primitive has rules).
* ``class_nll``'s compiled loops give the NumPy kernel's bits in every layout and reduction,
  and out-of-range targets raise an error naming the target and the class count.
"""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as fc
import fnarray.nn as nn
import fnarray.nn.functional as F
from fnarray.backends import accel
from fnarray.ops import activation
from fnarray.ops import loss as loss_ops

RNG = np.random.default_rng(7)
ACCEL = [False, pytest.param(True, marks=pytest.mark.skipif(
    not accel.available(), reason="numba (the accel extra) is not installed"))]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _special_rows(shape, dtype):
    """Logits with the rows the kernels must treat as NumPy does: all equal, ±0 ties, NaN,
    ``inf``, all ``-inf``, one finite entry among ``-inf``, and a 1e4 offset."""
    x = (RNG.normal(size=shape) * 3).astype(dtype)
    rows = x.reshape(-1, shape[-1])
    specials = [lambda r: r.fill(0.0), lambda r: r.__setitem__(slice(None, 2), [-0.0, 0.0][:len(r)]),
                lambda r: r.__setitem__(0, np.nan), lambda r: r.__setitem__(-1, np.inf),
                lambda r: r.fill(-np.inf), lambda r: (r.fill(-np.inf), r.__setitem__(0, -0.0)),
                lambda r: r.__iadd__(1e4)]
    for row, special in zip(rows, specials):
        special(row)
    return x


@pytest.mark.skipif(not accel.available(), reason="numba (the accel extra) is not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes", [1, 2, 7, 8, 10, 17, 32])
def test_compiled_rows_give_numpys_bits(dtype, n_classes):
    x = _special_rows((3, 5, n_classes), dtype)
    ct = RNG.normal(size=x.shape).astype(dtype)
    results = {}
    for on in (False, True):
        with accel.forced(on), np.errstate(all="ignore"):
            y = activation._log_softmax_impl(np, x, axis=2)
            finite = activation._log_softmax_impl(np, x[1:] * 0.5, axis=2)
            g = activation._log_softmax_grad_impl(np, ct[1:], finite, axis=2)
            results[on] = [y, finite, g]
    for want, got in zip(results[False], results[True]):
        assert want.dtype == got.dtype and want.shape == got.shape
        assert want.tobytes() == got.tobytes()


def test_compiled_rows_are_only_asked_for_short_contiguous_last_axes():
    x = np.zeros((256, 10), np.float32)
    with accel.forced(True) if accel.available() else accel.forced(False):
        assert activation._compiled_rows(np, x, 0) is None  # not the last axis
        assert activation._compiled_rows(np, np.zeros((256, 33), np.float32), 1) is None
        assert activation._compiled_rows(np, x.T, 0) is None  # not C-ordered
        assert activation._compiled_rows(np, x.astype(np.float16), 1) is None
        assert (activation._compiled_rows(np, x, 1) is None) is not accel.available()


def _reference(x, t, ignore_index, reduction):
    """float64 loss and d loss / d x (mean: averaged over the non-ignored targets)."""
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    logp = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    losses = np.where(valid, -logp[np.arange(len(t)), safe], 0.0)
    grad = np.exp(logp)
    grad[np.arange(len(t)), safe] -= 1.0
    grad *= valid[:, None]
    if reduction == "mean":
        return losses.sum() / valid.sum(), grad / valid.sum()
    if reduction == "sum":
        return losses.sum(), grad
    return losses, grad  # (the gradient of sum(losses))


CASES = [  # (N, C, offset, ignore_index, targets or None for random)
    (128, 10, 0.0, -100, None),
    (33, 10, 1e4, -100, None),  # large logits: the max shift keeps them exact
    (1, 10, 0.0, -100, None),
    (6, 1, 0.0, -100, None),
    (6, 4, 0.0, 1, [0, 1, 2, 3, 1, 0]),  # an in-range ignore index
    (6, 4, 0.0, -100, [0, -100, 2, 3, -100, 1]),
]


@pytest.mark.parametrize("on", ACCEL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", CASES)
def test_cross_entropy_matches_the_float64_reference(case, reduction, dtype, on):
    n, c, offset, ignore_index, targets = case
    x_np = (RNG.normal(size=(n, c)) * 2 + offset).astype(dtype)
    t_np = np.asarray(RNG.integers(0, c, n) if targets is None else targets)
    want, want_grad = _reference(x_np, t_np, ignore_index, reduction)
    tol = TOL[dtype]
    if offset:  # the rounding of x itself at 1e4 (float32: 1e-3) sets the scale
        tol = dict(tol, atol=tol["atol"] + float(np.spacing(dtype(offset))) * 4)

    def loss_fn(x, t):
        loss = F.cross_entropy(x, t, ignore_index=ignore_index, reduction=reduction)
        return loss if reduction != "none" else fa.sum(loss)

    with accel.forced(on):
        # eager compat tensors: the direct path (a recorded input) and its staged nll
        for _ in range(3):  # nll stages its program on the second call
            z = fc.tensor(x_np, requires_grad=True)
            out = F.cross_entropy(z * 1.0, fc.tensor(t_np), ignore_index=ignore_index,
                                  reduction=reduction)
            (out.sum() if reduction == "none" else out).backward()
            np.testing.assert_allclose(out.detach().numpy(), want, **tol)
            np.testing.assert_allclose(z.grad.numpy(), want_grad, **tol)
            assert out.dtype == z.dtype and z.grad.dtype == z.dtype
        # jitted value_and_grad on arrays
        value, grad = fa.jit(fa.value_and_grad(loss_fn))(fa.asarray(x_np), fa.asarray(t_np))
        np.testing.assert_allclose(np.asarray(grad), want_grad, **tol)
        np.testing.assert_allclose(float(value), np.sum(want), **tol)
        assert grad.dtype == x_np.dtype


class _LossNet(nn.Module):
    """A linear classifier whose forward returns the loss: compat.compile stages both."""

    def __init__(self, w):
        super().__init__()
        self.lin = nn.Linear(*w.shape, bias=False)
        self.lin.weight.data = fc.tensor(w.T.copy()).data

    def forward(self, x, y):
        return F.cross_entropy(self.lin(x), y)


@pytest.mark.parametrize("on", ACCEL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_inside_compat_compile(dtype, on):
    w = RNG.normal(size=(12, 10)).astype(dtype)
    x = RNG.normal(size=(128, 12)).astype(dtype)
    t = RNG.integers(0, 10, 128)
    want, want_grad = _reference(x @ w, t, -100, "mean")
    with accel.forced(on):
        net = _LossNet(w)
        model = fc.compile(net)
        for _ in range(2):
            model.zero_grad()
            loss = model(fc.tensor(x), fc.tensor(t))
            loss.backward()
            np.testing.assert_allclose(loss.item(), want, **TOL[dtype])
            np.testing.assert_allclose(net.lin.weight.grad.numpy(), (x.T @ want_grad).T,
                                       rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)


@pytest.mark.parametrize("on", ACCEL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hessian_through_log_softmax(dtype, on):
    """``f(x) = sum_j w_j log_softmax(x)_j`` over each row: the Hessian of a row is
    ``-sum(w) (diag(p) - p p^T)``, and rows do not interact."""
    x = RNG.normal(size=(2, 5)).astype(dtype)
    w = RNG.normal(size=(5,)).astype(dtype)

    def f(v):
        return fa.sum(fa.log_softmax(v, axis=1) * fa.asarray(w))

    with accel.forced(on):
        h = np.asarray(fa.jit(fa.hessian(f))(fa.asarray(x))).reshape(10, 10)
        h_eager = np.asarray(fa.hessian(f)(fa.asarray(x))).reshape(10, 10)
    want = np.zeros((10, 10))
    for r in range(2):
        p = np.exp(x[r].astype(np.float64))
        p /= p.sum()
        want[5 * r:5 * r + 5, 5 * r:5 * r + 5] = -w.sum() * (np.diag(p) - np.outer(p, p))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, want, **tol)
    np.testing.assert_allclose(h_eager, want, **tol)


def test_log_softmax_grad_names_mismatched_operands():
    """(Its abstract rule, which tracing applies; the VJP only binds it with matching
    operands.)"""
    def bind(ct, y):
        return activation.log_softmax_grad.bind(ct, y, axis=1)

    ct = fa.zeros((4, 3), dtype=fa.float32)
    with pytest.raises(TypeError, match=r"log_softmax_grad: the cotangent \(float32\[4, 3\]\) "
                                        r"and the log-probabilities \(float64\[4, 3\]\)"):
        fa.make_ir(bind)(ct, fa.zeros((4, 3), dtype=fa.float64))
    with pytest.raises(TypeError, match="one shape and dtype"):
        fa.make_ir(bind)(ct, fa.zeros((4, 2), dtype=fa.float32))


def test_backward_of_log_softmax_is_one_log_softmax_grad_equation():
    """The VJP binds the primitive (one kernel) when the cotangent has the output's dtype."""
    prog = fa.make_ir(fa.grad(lambda v: fa.sum(fa.log_softmax(v, axis=1) * v)))(
        fa.asarray(np.ones((3, 4), np.float32)))
    text = str(prog)
    assert text.count("log_softmax_grad") == 1


NLL_LAYOUTS = [((128, 10), 1), ((5, 3, 4), 1), ((7,), 0), ((1, 1), 1), ((0, 4), 1)]


@pytest.mark.skipif(not accel.available(), reason="numba (the accel extra) is not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", NLL_LAYOUTS)
def test_class_nll_compiled_loops_give_numpys_bits(layout, reduction, dtype):
    shape, class_dim = layout
    c = shape[class_dim]
    tshape = shape[:class_dim] + shape[class_dim + 1:]
    logp = (RNG.normal(size=shape) * 3).astype(dtype)
    target = RNG.integers(0, c, tshape)
    if target.ndim:
        target.reshape(-1)[::3] = -100  # some ignored
        target.reshape(-1)[:1] = c - 1  # one counted
    params = dict(ignore_index=-100, reduction=reduction, class_dim=class_dim)
    ct = RNG.normal(size=tshape if reduction == "none" else ()).astype(dtype)
    results = {}
    for on in (False, True):
        with accel.forced(on), np.errstate(all="ignore"):
            value = loss_ops._class_nll_impl(np, logp, target, **params)
            grad = loss_ops._class_nll_grad_impl(np, ct, target, n_classes=c, **params)
            results[on] = [np.asarray(value), grad]
    for want, got in zip(results[False], results[True]):
        assert want.dtype == got.dtype == dtype and want.shape == got.shape
        assert want.tobytes() == got.tobytes()


@pytest.mark.parametrize("on", ACCEL)
@pytest.mark.parametrize("bad", [10, -1, 11])
def test_out_of_range_targets_are_named(bad, on):
    x_np = RNG.normal(size=(4, 10)).astype(np.float32)
    t_np = np.array([0, bad, 3, -100])
    with accel.forced(on):
        with pytest.raises(IndexError, match=f"target {bad} is out of bounds for 10 classes"):
            F.cross_entropy(fc.tensor(x_np, requires_grad=True) * 1.0, fc.tensor(t_np))
        with pytest.raises(IndexError, match=f"target {bad} is out of bounds for 10 classes"):
            F.nll_loss(fc.tensor(x_np), fc.tensor(t_np))
        with pytest.raises(IndexError, match=f"target {bad} is out of bounds"):
            fa.jit(lambda x, t: F.cross_entropy(x, t))(fa.asarray(x_np), fa.asarray(t_np))
        grad = loss_ops.class_nll_grad
        with pytest.raises(IndexError, match=f"nll_loss backward: target {bad} is out of bounds"):
            grad.bind(fa.asarray(np.float32(1)), fa.asarray(t_np), ignore_index=-100,
                      reduction="mean", class_dim=1, n_classes=10)


@pytest.mark.parametrize("on", ACCEL)
def test_nll_loss_after_a_log_softmax_module_output(on):
    """The MNIST example's loss: ``F.nll_loss`` of a model's ``F.log_softmax`` output, as one
    ``NllLossBackward0`` node (the ``class_nll`` primitive) with PyTorch's chain."""
    x_np = RNG.normal(size=(64, 10))
    t_np = RNG.integers(0, 10, 64)
    want, want_grad = _reference(x_np, t_np, -100, "mean")
    with accel.forced(on):
        z = fc.tensor(x_np, requires_grad=True)
        loss = F.nll_loss(F.log_softmax(z * 1.0, dim=1), fc.tensor(t_np))
        assert type(loss.grad_fn).__name__ == "NllLossBackward0"
        names = [None if f is None else f.name() for f, _ in loss.grad_fn.next_functions]
        assert names == ["LogSoftmaxBackward0", None]
        g, = fc.autograd.grad(loss, z, create_graph=True)
        np.testing.assert_allclose(loss.item(), want, rtol=1e-12)
        np.testing.assert_allclose(g.detach().numpy(), want_grad, rtol=1e-10, atol=1e-14)
        gg, = fc.autograd.grad((g * g).sum(), z)  # double backward through both nodes
        assert np.isfinite(gg.numpy()).all() and np.abs(gg.numpy()).sum() > 0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_nll_loss_direct_path_equals_the_general_path(reduction, ignore_index, monkeypatch):
    """``F.nll_loss``'s direct path (``nn/_loss_direct.py``) records the node the general
    path records: same bits, gradients and chain; other calls take the general path."""
    x_np = RNG.normal(size=(6, 5)).astype(np.float32)
    t_np = np.array([1, 2, ignore_index, 4, 0, 3])
    results = []
    for general in (False, True):
        if general:
            monkeypatch.setattr(F, "_nll_direct", lambda *a: None)
        z = fc.tensor(x_np, requires_grad=True)
        loss = F.nll_loss(F.log_softmax(z * 2, dim=1), fc.tensor(t_np), ignore_index=ignore_index,
                          reduction=reduction)
        names = [None if f is None else f.name() for f, _ in loss.grad_fn.next_functions]
        (loss.sum() if reduction == "none" else loss).backward()
        results.append((loss.detach().numpy().copy(), z.grad.numpy().copy(),
                        type(loss.grad_fn).__name__, names))
        monkeypatch.undo()
    (v, g, node, names), (v2, g2, node2, names2) = results
    assert v.tobytes() == v2.tobytes() and g.tobytes() == g2.tobytes()
    assert node == node2 == "NllLossBackward0" and names == names2 == ["LogSoftmaxBackward0", None]
    z = fc.tensor(x_np, requires_grad=True)
    t = fc.tensor(t_np)
    assert F._nll_direct(F.log_softmax(z, dim=1), t, -100, "mean") is not None
    assert F._nll_direct(z.detach(), t, -100, "mean") is None  # nothing to record
    assert F._nll_direct(z * 1, t, -100, "average") is None  # the general path's error
    with pytest.raises(ValueError, match="'average' is not a valid value for reduction"):
        F.nll_loss(z * 1, t, reduction="average")
