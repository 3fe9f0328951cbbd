"""ONNX export of losses and of gradients: the loss primitives (``class_nll``,
``class_nll_grad``, ``log_softmax_grad``) and the backward primitives of activations
(``gate``), convolutions (``conv_channel_major``, ``conv_columns``,
``conv_weight_cotangent``) and max pooling (``max_pool_scatter``).  Exported programs run
in onnxruntime and match fnarray's own results."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fnarray as fa  # noqa: E402
import fnarray.onnx as fonnx  # noqa: E402
from fnarray.nn import functional as F  # noqa: E402

RNG = np.random.RandomState(0)


def _export_and_run(f, args, tmp_path, dynamic_axes=None, run_args=None):
    """Export ``f`` at ``args``, run it in onnxruntime on ``run_args`` (default ``args``)
    and compare every output with ``f`` run by fnarray."""
    path = tmp_path / "f.onnx"
    names = [f"input_{i}" for i in range(len(args))]
    fonnx.export(f, tuple(fa.asarray(a) for a in args), path, dynamic_axes=dynamic_axes)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    run_args = args if run_args is None else run_args
    got = sess.run(None, dict(zip(names, run_args)))
    want = f(*(fa.asarray(a) for a in run_args))
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    return [n.op_type for n in model.graph.node]


def _logits(*shape):
    return RNG.randn(*shape).astype(np.float32)


def _targets(shape, n_classes, ignore_index=None, dtype=np.int64):
    t = RNG.randint(0, n_classes, size=shape)
    if ignore_index is not None:
        t[..., ::3] = ignore_index  # some ignored samples
    return t.astype(dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_cross_entropy_and_its_gradient(tmp_path, reduction, ignore_index):
    x, t = _logits(6, 5), _targets((6,), 5, ignore_index)

    def loss(x, t):
        return F.cross_entropy(x, t, ignore_index=ignore_index, reduction=reduction)

    ops = _export_and_run(loss, (x, t), tmp_path)
    assert "GatherElements" in ops

    def grad(x, t):  # a scalar for every reduction: 'none' weighs each sample's loss
        return fa.grad(lambda v: fa.sum(loss(v, t) * fa.arange(1.0, 1.0 + t.size)
                                        if reduction == "none" else loss(v, t)))(x)

    _export_and_run(grad, (x, t), tmp_path)


def test_gradient_program_holds_the_new_primitives():
    from fnarray.core.device import default
    from fnarray.transforms import ir
    x, t = fa.asarray(_logits(4, 3)), fa.asarray(_targets((4,), 3))
    prog = ir.trace_flat(lambda v, u: [fa.grad(lambda w: F.cross_entropy(w, u))(v)],
                         [(x.aval, default()), (t.aval, default())], name="grad")
    assert {"class_nll_grad", "log_softmax_grad"} <= set(prog.primitive_names())


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_nll_loss_spatial_layout_with_dynamic_batch(tmp_path, reduction):
    """(N, C, H, W) log-probabilities with (N, H, W) uint8 targets; exported at batch 2,
    run at batch 3; loss and gradient together."""
    def f(x, t):
        def loss(v):
            out = F.nll_loss(F.log_softmax(v, 1), t, ignore_index=1, reduction=reduction)
            return out if reduction == "mean" else fa.sum(out * out)
        return loss(x), fa.grad(loss)(x)

    x, t = _logits(2, 4, 3, 2), _targets((2, 3, 2), 4, dtype=np.uint8)
    run = (_logits(3, 4, 3, 2), _targets((3, 3, 2), 4, dtype=np.uint8))
    _export_and_run(f, (x, t), tmp_path, run_args=run,
                    dynamic_axes={"input_0": [0], "input_1": [0], "output_1": [0]})


def test_single_sample_without_batch_axis(tmp_path):
    """(C,) log-probabilities and a 0-d target: ``class_dim`` 0."""
    def f(x, t):
        return F.nll_loss(x, t), fa.grad(lambda v: F.nll_loss(v, t, reduction="sum"))(x)

    _export_and_run(f, (_logits(5), np.asarray(3, np.int64)), tmp_path)


def test_every_target_ignored_gives_nan_mean(tmp_path):
    """'mean' over no valid target is 0 / 0, as in fnarray (and PyTorch)."""
    t = np.full((4,), -100, np.int64)
    path = tmp_path / "f.onnx"
    fonnx.export(F.nll_loss, (fa.asarray(_logits(4, 3)), fa.asarray(t)), path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"input_0": _logits(4, 3), "input_1": t})
    assert np.isnan(got) and np.isnan(np.asarray(F.nll_loss(fa.asarray(_logits(4, 3)),
                                                             fa.asarray(t))))


def _conv_params():
    shapes = [(16, 2, 3, 3), (16,), (16, 16, 3, 3), (16,), (4, 8, 2, 2), (4,)]
    return [(RNG.randn(*s) * 0.3).astype(np.float32) for s in shapes]


def _conv_loss(w1, b1, w2, b2, w3, b3, x, t):
    """Three convolutions: padded 3x3 (the second one where Winograd runs with compiled
    kernels: its weight cotangent is ``conv_weight_cotangent``), then strided, dilated,
    grouped, asymmetrically padded; relus (``gate`` backward), a mean, cross entropy."""
    h = fa.relu(fa.conv(x, w1, b1, padding=1))
    h = fa.relu(fa.conv(h, w2, b2, padding=1))
    h = fa.conv(h, w3, b3, stride=2, padding=((1, 0), (0, 1)), dilation=(1, 2), groups=2)
    return F.cross_entropy(fa.mean(h, axis=(2, 3)), t)


@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "compiled"])
def test_conv_net_gradient(tmp_path, compiled):
    """fa.grad of a small conv net for every parameter and the input, exported with a
    dynamic batch: the backward primitives of convolution have rules (with compiled
    kernels the second layer's weight cotangent is ``conv_weight_cotangent``, without
    them every weight cotangent is ``conv_channel_major`` and a product)."""
    from fnarray.backends import accel
    if compiled:
        pytest.importorskip("numba")

    def f(*args):
        return fa.grad(_conv_loss, argnums=tuple(range(7)))(*args)

    def data(n):
        return RNG.randn(n, 2, 7, 6).astype(np.float32), _targets((n,), 4)

    # batch 4 and up: the weight cotangents' product order (``shorter_rows_first``), which
    # depends on the batch, is the same in both traces of a dynamic export
    params = _conv_params()
    with accel.forced(compiled):
        _export_and_run(f, (*params, *data(4)), tmp_path, run_args=(*params, *data(6)),
                        dynamic_axes={"input_6": [0], "input_7": [0], "output_6": [0]})


def test_conv_weight_cotangent_any_geometry(tmp_path):
    """The rule of ``conv_weight_cotangent`` beyond Winograd's geometry: grouped, strided,
    dilated, asymmetrically padded, against the primitive's own (patches) impl."""
    from fnarray.ops.conv_weight import conv_weight_cotangent

    def f(x, ct):
        return conv_weight_cotangent.bind(x, ct, kernel=(2, 3), strides=(2, 1),
                                          padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2)

    x = RNG.randn(3, 4, 7, 8).astype(np.float32)
    ops = _export_and_run(f, (x, RNG.randn(3, 6, 4, 7).astype(np.float32)), tmp_path)
    assert "MatMul" in ops


def test_conv_backward_primitives_are_exported():
    """The gradient program holds the backward primitives the rules above lower (with
    compiled kernels, ``conv_weight_cotangent`` too)."""
    from fnarray.backends import accel
    from fnarray.core.device import default
    from fnarray.transforms import ir, passes
    args = [fa.asarray(a) for a in _conv_params()]
    args += [fa.asarray(RNG.randn(2, 2, 7, 6).astype(np.float32)), fa.asarray(_targets((2,), 4))]
    prog = passes.optimize(ir.trace_flat(
        lambda *a: list(fa.grad(_conv_loss, argnums=tuple(range(7)))(*a)),
        [(a.aval, default()) for a in args], name="grad"))
    names = set(prog.primitive_names())
    want = {"conv_channel_major", "conv_columns", "conv_patches", "conv_transpose", "gate"}
    assert want <= names
    assert ("conv_weight_cotangent" in names) == accel.enabled()


@pytest.mark.parametrize("kernel,stride,dilation", [(2, 2, 1), (3, 2, 1), (2, 1, 2)],
                         ids=["tiled", "overlapping", "dilated"])
def test_max_pool_gradient(tmp_path, kernel, stride, dilation):
    """``max_pool_scatter``: each window's cotangent added at its maximum, windows
    overlapping or not, under a dynamic batch; ties (a constant region) go to the first."""
    def f(x, w):
        return fa.grad(lambda v: fa.sum(F.max_pool2d(v, kernel, stride, dilation=dilation)
                                        * w))(x)

    def data(n):
        x = RNG.randn(n, 2, 7, 8).astype(np.float32)
        x[:, :, :3, :3] = 1.0  # ties
        return x

    shape = np.asarray(F.max_pool2d(fa.asarray(data(1)), kernel, stride,
                                    dilation=dilation)).shape[1:]
    w = RNG.randn(*shape).astype(np.float32)
    _export_and_run(f, (data(2), w), tmp_path, run_args=(data(3), w),
                    dynamic_axes={"input_0": [0], "output_0": [0]})


def test_max_pool_gradient_infinite_cotangent(tmp_path):
    """An infinite cotangent reaches its window's maximum only (added, not multiplied)."""
    def f(x, ct):
        _, vjp = fa.vjp(lambda v: F.max_pool2d(v, 2), x)
        return vjp(ct)[0]

    x = RNG.randn(1, 1, 4, 4).astype(np.float32)
    ct = np.ones((1, 1, 2, 2), np.float32)
    ct[0, 0, 0, 0] = np.inf
    _export_and_run(f, (x, ct), tmp_path)


def test_mnist_convnet_training_gradient(tmp_path):
    """The gradient of the MNIST example ConvNet's loss for every parameter (conv, relu,
    max pooling, dropout off, linear, cross entropy), exported and run at another batch
    size."""
    from fnarray import nn
    from fnarray.examples.mnist import Net
    model = Net()
    model.eval()
    params = {k: fa.asarray(np.asarray(getattr(v, "array", v)))
              for k, v in model.state_dict().items()}

    def f(x, t):
        def loss(p):
            return F.cross_entropy(nn.functional_call(model, p, (x,)), t)
        grads = fa.grad(loss)(params)
        return tuple(getattr(grads[k], "array", grads[k]) for k in params)

    def data(n):
        return RNG.randn(n, 1, 28, 28).astype(np.float32), _targets((n,), 10)

    _export_and_run(f, data(4), tmp_path, run_args=data(5),
                    dynamic_axes={"input_0": [0], "input_1": [0]})


@pytest.mark.parametrize("case", ["weighted_ce", "embedding", "two_indices", "at_set", "at_add"])
def test_scatter(tmp_path, case):
    """``scatter``: gathers' transposes (repeated indices add up) and ``x.at[...]``
    updates, negative indices included."""
    idx = np.array([3, -1, 0, 3, 2], np.int64)
    w = RNG.rand(5).astype(np.float32)
    cases = {
        "weighted_ce": lambda x, i: fa.grad(lambda v: F.cross_entropy(
            v, fa.abs(i), weight=fa.asarray(w), reduction="sum"))(x),
        "embedding": lambda x, i: fa.grad(lambda v: fa.sum(fa.tanh(v[i]) * 2.0))(x),
        "two_indices": lambda x, i: fa.grad(lambda v: fa.sum(v[i, fa.abs(i)] ** 2))(x),
        "at_set": lambda x, i: x.at[fa.asarray(np.array([4, -2]))].set(x[:2] * 3.0),
        "at_add": lambda x, i: x.at[i].add(1.5),
    }
    ops = _export_and_run(cases[case], (RNG.randn(5, 5).astype(np.float32), idx), tmp_path)
    assert "ScatterND" in ops


@pytest.mark.parametrize("mode", ["add", "set"])
def test_scatter_primitive_negative_indices(tmp_path, mode):
    """The primitive itself takes negative indices (NumPy's wrap): the rule wraps them."""
    from fnarray.ops.indexing import scatter
    rows, cols = np.array([[3, -1], [0, -5]], np.int64), np.array([[0, 1], [-1, 2]], np.int64)

    def f(x, v):
        return scatter.bind(x, fa.asarray(rows), fa.asarray(cols), v, mode=mode)

    _export_and_run(f, (RNG.randn(5, 3, 2).astype(np.float32),
                        RNG.randn(2, 2, 2).astype(np.float32)), tmp_path)


def test_binary_cross_entropy_custom_rules_inline(tmp_path):
    """``F.binary_cross_entropy`` is a ``custom_jvp`` function (PyTorch's derivatives): the
    call is inlined (its primal traced at both dynamic sizes); its gradient exports too."""
    def f(x, y):
        def loss(v):
            return F.binary_cross_entropy(fa.sigmoid(v), y)
        return loss(x), fa.grad(loss)(x)

    def data(n):
        return RNG.randn(n, 3).astype(np.float32), RNG.rand(n, 3).astype(np.float32)

    _export_and_run(f, data(2), tmp_path, run_args=data(4),
                    dynamic_axes={"input_0": [0], "input_1": [0], "output_1": [0]})


def test_checkpoint_and_custom_vjp_calls(tmp_path):
    """``fa.checkpoint`` (a ``checkpoint_call`` forward, ``optimization_barrier`` in its
    gradient, ``checkpoint_name`` tags) and a ``custom_vjp`` function inline."""
    @fa.custom_vjp
    def scaled_sin(u):
        return fa.sin(u) * 3.0

    scaled_sin.defvjp(lambda u: (scaled_sin(u), u), lambda u, c: (fa.cos(u) * 3.0 * c,))

    def block(u):
        return fa.checkpoint_name(fa.tanh(u) @ u.T, "h") * 2.0

    def f(x):
        step = fa.checkpoint(block)
        return step(x), fa.grad(lambda v: fa.sum(step(v)))(x), scaled_sin(x)

    _export_and_run(f, (RNG.randn(3, 3).astype(np.float32),), tmp_path)


def test_means_over_a_dynamic_axis(tmp_path):
    """A mean's count (and the reciprocal a gradient folds into a constant) follows the
    dynamic batch: computed at run time, not the traced batch's (which gave 2x at batch
    4 from a trace at batch 2)."""
    def f(x, y):
        def loss(v):
            return F.mse_loss(v, y) + fa.mean(fa.tanh(v), axis=0).sum()
        return loss(x), fa.grad(loss)(x), fa.mean(x * 2.0, axis=(0, 1))

    def data(n):
        return RNG.randn(n, 3).astype(np.float32), RNG.randn(n, 3).astype(np.float32)

    _export_and_run(f, data(2), tmp_path, run_args=data(4),
                    dynamic_axes={"input_0": [0], "input_1": [0], "output_1": [0]})


def test_constant_of_the_dynamic_sizes_that_is_no_count_is_refused(tmp_path):
    def f(x):  # divides by sqrt(batch): neither a count nor its reciprocal
        return fa.sum(x) / float(np.sqrt(x.shape[0]))

    path = tmp_path / "f.onnx"
    with pytest.raises(fonnx.UnsupportedPrimitiveError,
                       match=r"depends on the dynamic axes.*export without those dynamic"):
        fonnx.export(f, fa.asarray(RNG.randn(2, 3).astype(np.float32)), path,
                     dynamic_axes={"input_0": [0]})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [5, -1], ids=["past_the_classes", "negative"])
def test_out_of_range_target_fails_the_run(tmp_path, bad):
    """fnarray raises an IndexError for a target outside [0, C); the exported loss fails
    in onnxruntime for one on either side (a negative one is not read from the end)."""
    x, t = _logits(4, 5), np.array([0, 1, bad, 3], np.int64)
    with pytest.raises(IndexError, match=f"target {bad} is out of bounds for 5 classes"):
        F.nll_loss(fa.asarray(x), fa.asarray(t))
    path = tmp_path / "f.onnx"
    fonnx.export(F.nll_loss, (fa.asarray(x), fa.asarray(_targets((4,), 5))), path)
    quiet = ort.SessionOptions()
    quiet.log_severity_level = 4  # the failure is expected: no error log line
    sess = ort.InferenceSession(str(path), quiet, providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="(?i)out of range"):
        sess.run(None, {"input_0": x, "input_1": t})
