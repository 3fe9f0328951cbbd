"""fnarray.onnx.export: exported models run in onnxruntime at another batch size and match
fnarray's outputs; unmapped primitives fail with a message and write no file."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fnarray as fa  # noqa: E402
import fnarray.compat as torch  # noqa: E402
import fnarray.onnx as fonnx  # noqa: E402
from fnarray import nn  # noqa: E402
from fnarray.examples.mnist import Net  # noqa: E402

RNG = np.random.RandomState(0)


def _np(x):
    return np.asarray(getattr(x, "array", x))


def _run(path, feeds):
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _check_module(model, traced_shape, run_shape, tmp_path):
    model.eval()
    path = tmp_path / "model.onnx"
    x_trace = RNG.randn(*traced_shape).astype(np.float32)
    torch.onnx.export(model, torch.tensor(x_trace), path, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    x = RNG.randn(*run_shape).astype(np.float32)
    (got,) = _run(path, {"x": x})
    want = _np(model(torch.tensor(x)))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    return graph


def test_mlp_gelu_layernorm(tmp_path):
    model = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.LayerNorm(32), nn.Linear(32, 4))
    graph = _check_module(model, (3, 8), (7, 8), tmp_path)
    # parameters are initializers under their state_dict names, not graph inputs
    assert {"0.weight", "2.bias"} <= {t.name for t in graph.initializer}
    assert [i.name for i in graph.input] == ["x"]


def test_pure_function_with_several_outputs(tmp_path):
    def f(x, y):
        s = fa.tanh(x) @ y
        return s.sum(axis=1), fa.exp(-x) * 2.0, fa.maximum(s, 0.0)

    x, y = RNG.randn(4, 5).astype(np.float32), RNG.randn(5, 3).astype(np.float32)
    path = tmp_path / "f.onnx"
    fonnx.export(f, (fa.asarray(x), fa.asarray(y)), path, input_names=["x", "y"],
                 output_names=["s", "e", "r"], dynamic_axes={"x": [0]})
    x2 = RNG.randn(9, 5).astype(np.float32)
    got = _run(path, {"x": x2, "y": y})
    want = f(fa.asarray(x2), fa.asarray(y))
    assert len(got) == 3
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, _np(w), atol=1e-4, rtol=1e-4)


def test_mnist_convnet_eval(tmp_path):
    _check_module(Net(), (2, 1, 28, 28), (3, 1, 28, 28), tmp_path)


def test_convnet_with_batchnorm_eval(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 7 * 7, 10),
                          nn.LogSoftmax(dim=1))
    model.train()
    model(torch.tensor(RNG.randn(8, 1, 14, 14).astype(np.float32)))  # non-trivial running stats
    _check_module(model, (2, 1, 14, 14), (5, 1, 14, 14), tmp_path)


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1), (2, 3, 6, 6)),
    (lambda: nn.ConvTranspose2d(4, 6, (3, 2), padding=(1, 0), output_padding=1, groups=2,
                                dilation=2), (2, 4, 5, 6)),  # stride 1; output_padding 1
    (lambda: nn.MaxPool2d(3, 2, padding=1), (2, 3, 9, 9)),  # -inf padding mask constant
    (lambda: nn.AvgPool2d(2), (2, 3, 8, 8)),
    (lambda: nn.Sequential(nn.Conv1d(3, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.SiLU()),
     (2, 3, 9)),
    (lambda: nn.Sequential(nn.BatchNorm1d(5), nn.Softplus(), nn.Softmax(dim=1)), (2, 5)),
], ids=["conv_transpose", "conv_transpose_stride1", "maxpool_padded", "avgpool", "conv1d_groupnorm_silu",
        "batchnorm1d_softplus_softmax"])
def test_more_layers(tmp_path, make, shape):
    graph = _check_module(make(), shape, (3, *shape[1:]), tmp_path)
    assert "num_batches_tracked" not in {t.name for t in graph.initializer}


def test_transformer_encoder_layer(tmp_path):
    model = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True)
    _check_module(model, (2, 5, 16), (3, 5, 16), tmp_path)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_scan_with_dynamic_batch_and_length(tmp_path, bidirectional):
    model = nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=bidirectional)
    model.eval()
    path = tmp_path / "lstm.onnx"
    torch.onnx.export(model, torch.tensor(RNG.randn(2, 5, 4).astype(np.float32)), path,
                      input_names=["x"], output_names=["y", "h", "c"],
                      dynamic_axes={"x": {0: "batch", 1: "time"}})
    x = RNG.randn(3, 7, 4).astype(np.float32)
    got = _run(path, {"x": x})
    y, (h, c) = model(torch.tensor(x))
    assert any(n.op_type == "Scan" for n in onnx.load(str(path)).graph.node)
    for g, w in zip(got, (y, h, c)):
        np.testing.assert_allclose(g, _np(w), atol=1e-4, rtol=1e-4)


def test_embedding_and_fancy_indexing(tmp_path):
    emb = nn.Embedding(10, 4).eval()
    path = tmp_path / "emb.onnx"
    torch.onnx.export(emb, torch.tensor(RNG.randint(0, 10, (2, 3))), path,
                      input_names=["t"], dynamic_axes={"t": [0]})
    tokens = RNG.randint(0, 10, (4, 3)).astype(np.int64)
    (got,) = _run(path, {"t": tokens})
    np.testing.assert_allclose(got, _np(emb(torch.tensor(tokens))), atol=1e-6)

    table = fa.asarray(RNG.randn(5, 6, 3).astype(np.float32))
    rows, cols = np.array([0, -1, 2]), np.array([5, 1, 0])
    fonnx.export(lambda r, c: table[r, c], (fa.asarray(rows), fa.asarray(cols)),
                 tmp_path / "nd.onnx", input_names=["r", "c"])
    (got,) = _run(tmp_path / "nd.onnx", {"r": rows, "c": cols})
    np.testing.assert_allclose(got, _np(table)[rows, cols], atol=1e-6)


def test_cond_switch_and_while_loop(tmp_path):
    def f(i, x):
        picked = fa.switch(i, [lambda v: v * 2.0, lambda v: fa.sin(v), lambda v: v - 1.0], x)
        two = fa.cond(x.sum() > 0, lambda v: v + 1.0, lambda v: v * 0.5, x)

        def body(c):
            k, v = c
            return k + 1, v * 1.5

        k, grown = fa.while_loop(lambda c: c[1].sum() < 100.0, body, (0, fa.abs(x) + 0.1))
        return picked, two, k, grown

    x = RNG.randn(2, 3).astype(np.float32)
    path = tmp_path / "cf.onnx"
    fonnx.export(f, (fa.asarray(np.int32(1)), fa.asarray(x)), path, input_names=["i", "x"],
                 dynamic_axes={"x": [0]})
    assert {"If", "Loop"} <= {n.op_type for n in onnx.load(str(path)).graph.node}
    for i in (-1, 0, 1, 2, 5):
        x2 = RNG.randn(4, 3).astype(np.float32)
        got = _run(path, {"i": np.asarray(i, np.int32), "x": x2})
        for g, w in zip(got, f(fa.asarray(np.int32(i)), fa.asarray(x2))):
            np.testing.assert_allclose(g, _np(w), atol=1e-4, rtol=1e-5)


def test_import_fnarray_imports_no_onnx():
    import subprocess
    import sys
    code = ("import sys, fnarray, fnarray.compat as torch; torch.onnx; "
            "assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_train_mode_dropout_with_dynamic_batch_is_refused(tmp_path):
    # in train mode the dropout mask is drawn while tracing: a constant of the batch's shape
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    model.train()
    with pytest.raises(fonnx.UnsupportedPrimitiveError,
                       match=r"constant of shape \(2, 4\).*Sequential.*dynamic axes"), \
            pytest.warns(UserWarning, match="Sequential is in training mode.*model.eval"):
        torch.onnx.export(model, torch.tensor(RNG.randn(2, 4).astype(np.float32)),
                          tmp_path / "m.onnx", input_names=["x"], dynamic_axes={"x": [0]})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("f", [
    lambda x: fa.cumsum(x, axis=1), lambda x: fa.argmax(x, axis=1), lambda x: fa.flip(x, 0),
    lambda x: fa.pad(x, 1), lambda x: fa.concatenate([x, x * 2.0], axis=1).mean(axis=0),
    lambda x: fa.einsum("bi,bj->bij", x, x), lambda x: (x > 0) & (x < 1),
], ids=["cumsum", "argmax", "rev", "pad", "concat_mean", "batched_dot", "logical"])
def test_small_functions(tmp_path, f):
    x = RNG.randn(3, 4).astype(np.float32)
    fonnx.export(f, fa.asarray(x), tmp_path / "f.onnx")
    (got,) = _run(tmp_path / "f.onnx", {"input_0": x})
    np.testing.assert_allclose(got, _np(f(fa.asarray(x))), atol=1e-5)


def test_every_rule_names_a_primitive():
    from fnarray.core.primitive import REGISTRY
    from fnarray.onnx.rules import load_rules
    assert set(load_rules()) <= set(REGISTRY)


# Primitives with no ONNX rule, by reason.  A new primitive must get a rule (in
# fnarray/ops/<family>_onnx.py) or a place here: a training loss or backward pass that
# exported before must not stop exporting silently.
_WITHOUT_RULE = {
    # linear algebra and transforms with no ONNX operator
    "cholesky", "det", "eig", "eigh", "qr", "slogdet", "solve", "svd", "fft", "rfft", "irfft",
    # elementwise and reductions not mapped yet
    "atan2", "conj", "copysign", "cumprod", "digamma", "exp2", "floor_divide", "hypot", "imag",
    "left_shift", "lgamma", "log10", "log2", "nextafter", "polygamma", "real", "reduce_and",
    "reduce_or", "rem", "right_shift", "signbit", "trunc", "argsort",
    # random bits, host callbacks, collectives: nothing to run in an ONNX graph
    "random_bits", "threefry2x32", "debug_callback", "pure_callback", "all_reduce_sum",
    # the eager staging of compat calls: traced programs hold its equations instead
    "staged_call",
}


def test_primitives_without_a_rule_are_the_listed_ones():
    from fnarray.core.primitive import REGISTRY
    from fnarray.onnx.rules import load_rules
    assert set(REGISTRY) - set(load_rules()) == _WITHOUT_RULE


def test_reshape_with_two_dynamic_sizes(tmp_path):
    def f(x):  # (B, 6) -> (B, 2, 3) -> (2B, 3): two targets follow the batch
        return fa.reshape(x, (x.shape[0] * 2, 3)) * 2.0, fa.broadcast_to(x[:, None, :2], (x.shape[0], 4, 2))

    path = tmp_path / "f.onnx"
    fonnx.export(f, fa.asarray(RNG.randn(3, 6).astype(np.float32)), path,
                 dynamic_axes={"input_0": [0]})
    x = RNG.randn(5, 6).astype(np.float32)
    for g, w in zip(_run(path, {"input_0": x}), f(fa.asarray(x))):
        np.testing.assert_allclose(g, _np(w), atol=1e-6)


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'fnarray\[onnx\]'"):
        fonnx.export(fa.tanh, fa.ones(3), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_unmapped_primitive_names_it_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.onnx"
    with pytest.raises(fonnx.UnsupportedPrimitiveError) as info:
        fonnx.export(lambda x: fa.linalg.cholesky(x @ x.T + fa.eye(3)),
                     fa.asarray(RNG.randn(3, 3).astype(np.float32)), path)
    msg = str(info.value)
    assert "'cholesky' has no ONNX rule" in msg and "equation" in msg and "<lambda>" in msg
    assert "float32[3,3]" in msg
    assert list(tmp_path.iterdir()) == []


def test_old_opset_refused(tmp_path):
    with pytest.raises(ValueError, match="opset_version=13"):
        fonnx.export(fa.tanh, fa.ones(3), tmp_path / "m.onnx", opset_version=13)


def test_mnist_example_exports_the_trained_model(tmp_path, monkeypatch):
    from fnarray.examples import mnist

    monkeypatch.setattr(mnist, "resolve_data", lambda data, sizes: mnist.synthetic_splits(256, 64))
    path = tmp_path / "mnist.onnx"
    mnist.main(["--no-progress", "--out", str(tmp_path / "out"), "--epochs", "1",
                "--export-onnx", str(path)])
    model = Net()
    model.load_state_dict(torch.load(tmp_path / "out" / "checkpoint.fa")["model"])
    model.eval()
    x = np.random.default_rng(0).standard_normal((5, 1, 28, 28)).astype(np.float32)
    (got,) = ort.InferenceSession(str(path)).run(None, {"image": x})
    with torch.no_grad():
        expected = model(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
