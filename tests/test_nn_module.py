"""fnarray.nn: Module contract, layers vs NumPy, gradients, functional_call, training."""

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
import fnarray.nn.functional as F
from fnarray import nn, optim
from fnarray.examples.mnist import Net


class ConvNet(Net):
    """The tutorial ConvNet of the MNIST example (repr prints this class name)."""


CONVNET_REPR = """ConvNet(
  (conv1): Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))
  (conv2): Conv2d(32, 64, kernel_size=(3, 3), stride=(1, 1))
  (dropout1): Dropout(p=0.25, inplace=False)
  (dropout2): Dropout(p=0.5, inplace=False)
  (fc1): Linear(in_features=9216, out_features=128, bias=True)
  (fc2): Linear(in_features=128, out_features=10, bias=True)
)"""


def test_repr_matches_pytorch():
    assert repr(ConvNet()) == CONVNET_REPR
    seq = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.BatchNorm1d(256), nn.LeakyReLU(0.2),
                        nn.Softmax(dim=1), nn.LayerNorm(4), nn.Embedding(10, 3, padding_idx=0),
                        nn.GELU(), nn.MaxPool2d(2))
    assert repr(seq) == """Sequential(
  (0): Linear(in_features=784, out_features=256, bias=True)
  (1): ReLU()
  (2): BatchNorm1d(256, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
  (3): LeakyReLU(negative_slope=0.2)
  (4): Softmax(dim=1)
  (5): LayerNorm((4,), eps=1e-05, elementwise_affine=True)
  (6): Embedding(10, 3, padding_idx=0)
  (7): GELU(approximate='none')
  (8): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
)"""
    assert repr(nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])) == (
        "ModuleList(\n  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n)")
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"


def test_registration_and_traversal():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert [n for n, _ in m.named_buffers()] == ["1.running_mean", "1.running_var",
                                                 "1.num_batches_tracked"]
    assert [n for n, _ in m.named_modules()] == ["", "0", "1"]
    assert list(m.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                    "1.running_mean", "1.running_var", "1.num_batches_tracked"]
    shared = nn.Linear(2, 2)
    tied = nn.Sequential(shared, shared)
    assert len(list(tied.parameters())) == 2
    assert len(list(tied.named_modules(remove_duplicate=False))) == 3
    m.register_buffer("scratch", fa.zeros(2), persistent=False)
    assert "scratch" not in m.state_dict() and "scratch" in dict(m.named_buffers())
    with pytest.raises(TypeError, match="nn.Parameter or None expected"):
        m[0].weight = torch.zeros(4, 3)
    seq = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1))
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    assert isinstance(seq[-1], nn.Linear)
    seq.append(nn.Tanh())
    assert len(seq) == 4 and isinstance(list(seq)[-1], nn.Tanh)


def test_state_dict_round_trip_and_errors():
    torch.manual_seed(0)
    a, b = ConvNet(), ConvNet()
    result = b.load_state_dict(a.state_dict())
    assert repr(result) == "<All keys matched successfully>"
    x = torch.randn(2, 1, 28, 28)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    sd = a.state_dict()
    sd["fc2.bias"] = torch.zeros(3)
    with pytest.raises(RuntimeError, match=r"size mismatch for fc2.bias: .*Size\(\[3\]\).*Size\(\[10\]\)"):
        b.load_state_dict(sd)
    sd = a.state_dict()
    del sd["fc1.weight"]
    sd["extra"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match='Missing key.*"fc1.weight".*\n.*Unexpected.*"extra"'):
        b.load_state_dict(sd)
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["fc1.weight"] and res.unexpected_keys == ["extra"]


def test_bad_input_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Linear\(in_features=4.*expected input with 4 features.*\(2, 5\)"):
        nn.Linear(4, 2)(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*expected input with 3 channels.*\(1, 1, 8, 8\)"):
        nn.Conv2d(3, 8, 3)(torch.zeros(1, 1, 8, 8))


def test_default_initialisation_statistics():
    torch.manual_seed(1)
    lin = nn.Linear(400, 300)
    w = lin.weight.detach().numpy()
    bound = 1 / np.sqrt(400)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound
    conv = nn.Conv2d(16, 8, 3)
    assert np.abs(conv.bias.detach().numpy()).max() <= 1 / np.sqrt(16 * 9)


def test_layers_forward_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 6, 6))
    conv = nn.Conv2d(3, 5, 3, stride=1, padding=1).double()
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros((4, 5, 6, 6))
    for i in range(6):
        for j in range(6):
            ref[:, :, i, j] = np.einsum("nckl,ockl->no", xp[:, :, i:i + 3, j:j + 3], w) + b
    np.testing.assert_allclose(conv(torch.tensor(x)).detach().numpy(), ref, rtol=1e-10)

    bn = nn.BatchNorm2d(3).double()
    out = bn(torch.tensor(x)).detach().numpy()
    mu, var = x.mean((0, 2, 3), keepdims=True), x.var((0, 2, 3), keepdims=True)
    np.testing.assert_allclose(out, (x - mu) / np.sqrt(var + 1e-5), rtol=1e-8)
    n = x.size / 3
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * x.var((0, 2, 3)) * n / (n - 1))
    assert int(bn.num_batches_tracked.item()) == 1
    bn.eval()
    np.testing.assert_allclose(bn(torch.tensor(x)).detach().numpy(),
                               (x - 0.1 * mu) / np.sqrt(bn.running_var.numpy()[None, :, None, None] + 1e-5),
                               rtol=1e-8)

    ln = nn.LayerNorm(6).double()
    np.testing.assert_allclose(ln(torch.tensor(x)).detach().numpy(),
                               (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5),
                               rtol=1e-8)
    gn = nn.GroupNorm(1, 3).double()
    g = x.reshape(4, -1)
    np.testing.assert_allclose(gn(torch.tensor(x)).detach().numpy().reshape(4, -1),
                               (g - g.mean(1, keepdims=True)) / np.sqrt(g.var(1, keepdims=True) + 1e-5),
                               rtol=1e-8)
    pooled = nn.MaxPool2d(2)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(pooled, x.reshape(4, 3, 3, 2, 3, 2).max((3, 5)))
    avg = nn.AdaptiveAvgPool2d(1)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(avg, x.mean((2, 3), keepdims=True))


def test_losses_match_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 4))
    y = np.array([0, 3, 1, -100, 2, 3])
    w = np.array([1.0, 2.0, 0.5, 1.5])
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    valid = y != -100
    ys = np.where(valid, y, 0)
    nll = -logp[np.arange(6), ys] * w[ys] * valid
    ref = nll.sum() / (w[ys] * valid).sum()
    got = F.cross_entropy(torch.tensor(logits), torch.tensor(y), weight=torch.tensor(w))
    np.testing.assert_allclose(got.item(), ref, rtol=1e-10)
    smooth = -(logp * w).sum(1) * valid
    ref_ls = 0.9 * ref + 0.1 / 4 * smooth.sum() / (w[ys] * valid).sum()
    got = nn.CrossEntropyLoss(weight=torch.tensor(w), label_smoothing=0.1)(torch.tensor(logits),
                                                                           torch.tensor(y))
    np.testing.assert_allclose(got.item(), ref_ls, rtol=1e-10)
    probs = rng.dirichlet(np.ones(4), size=6)
    np.testing.assert_allclose(F.cross_entropy(torch.tensor(logits), torch.tensor(probs)).item(),
                               -(probs * logp).sum(1).mean(), rtol=1e-10)
    p = 1 / (1 + np.exp(-logits))
    t = (rng.random((6, 4)) > 0.5).astype(float)
    pw = np.array([1.0, 2.0, 3.0, 0.5])
    ref = -(pw * t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(torch.tensor(logits), torch.tensor(t),
                                           pos_weight=torch.tensor(pw), reduction="none").numpy(),
        ref, rtol=1e-10)
    np.testing.assert_allclose(nn.BCELoss(reduction="sum")(torch.tensor(p), torch.tensor(t)).item(),
                               -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum(), rtol=1e-10)
    d = logits - probs
    np.testing.assert_allclose(nn.SmoothL1Loss(beta=0.5)(torch.tensor(logits), torch.tensor(probs)).item(),
                               np.where(np.abs(d) < 0.5, d ** 2, np.abs(d) - 0.25).mean(), rtol=1e-10)
    np.testing.assert_allclose(nn.HuberLoss(delta=0.5)(torch.tensor(logits), torch.tensor(probs)).item(),
                               np.where(np.abs(d) < 0.5, 0.5 * d ** 2, 0.5 * (np.abs(d) - 0.25)).mean(),
                               rtol=1e-10)
    kl = F.kl_div(torch.tensor(logp), torch.tensor(probs), reduction="batchmean")
    np.testing.assert_allclose(kl.item(), (probs * (np.log(probs) - logp)).sum() / 6, rtol=1e-10)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.mse_loss(torch.zeros(2), torch.zeros(2), reduction="avg")


def test_backward_equals_grad_through_functional_call():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(12, 5),
                          nn.LayerNorm(5)).double()
    x = torch.randn(4, 2, 4, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 4, 2])
    F.cross_entropy(model(x), y).backward()
    params = {k: v.detach().array for k, v in model.named_parameters()}

    def loss(p):
        return F.cross_entropy(nn.functional_call(model, p, (x.array,)), y.array)

    grads = fa.grad(loss)(params)
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), np.asarray(grads[k]), rtol=1e-9, atol=1e-12)
    # the module was never written to
    for k, p in model.named_parameters():
        np.testing.assert_array_equal(p.detach().numpy(), np.asarray(params[k]))


def test_functional_call_under_vmap_jit_jvp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).double()
    params = {k: v.detach().array for k, v in model.named_parameters()}
    xs = fa.asarray(np.random.default_rng(0).normal(size=(5, 3)))

    def f(p, x):
        return fa.sum(nn.functional_call(model, p, (x,)))

    per_example = fa.vmap(fa.grad(f), in_axes=(None, 0))(params, xs)
    assert per_example["0.weight"].shape == (5, 4, 3)
    total = fa.grad(lambda p: fa.sum(nn.functional_call(model, p, (xs,))))(params)
    np.testing.assert_allclose(np.asarray(per_example["0.weight"]).sum(0),
                               np.asarray(total["0.weight"]), rtol=1e-10)
    jitted = fa.jit(lambda p, x: nn.functional_call(model, p, (x,)))
    np.testing.assert_allclose(np.asarray(jitted(params, xs)),
                               model(torch.tensor(np.asarray(xs))).detach().numpy(), rtol=1e-12)
    tangents = fa.tree.map(fa.ones_like, params)
    _, t_out = fa.jvp(lambda p: nn.functional_call(model, p, (xs,)), (params,), (tangents,))
    assert t_out.shape == (5, 1)


def test_eval_makes_dropout_deterministic_and_hooks():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(10, 10), nn.Dropout(0.5))
    x = torch.randn(4, 10)
    assert not np.array_equal(m(x).detach().numpy(), m(x).detach().numpy())
    m.eval()
    np.testing.assert_array_equal(m(x).detach().numpy(), m(x).detach().numpy())
    seen = []
    h = m[0].register_forward_hook(lambda mod, args, out: seen.append(tuple(out.shape)))
    pre = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    out = m(x)
    assert seen == [(4, 10)] and np.allclose(out.detach().numpy(), m[0].bias.detach().numpy())
    h.remove(), pre.remove()
    m(x)
    assert seen == [(4, 10)]
    grads = []
    lin = nn.Linear(3, 2)
    lin.register_full_backward_hook(lambda mod, gi, go: grads.append((gi[0].shape, go[0].shape)))
    inp = torch.randn(5, 3, requires_grad=True)
    lin(inp).sum().backward()
    assert grads == [((5, 3), (5, 2))]


def test_convnet_trains_and_reduces_loss():
    torch.manual_seed(0)
    model = ConvNet()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(16, 1, 28, 28)
    y = torch.randint(0, 10, (16,))
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = F.nll_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7, losses


def test_init_functions():
    torch.manual_seed(0)
    w = nn.Parameter(torch.zeros(200, 100))
    nn.init.xavier_uniform_(w)
    assert np.abs(w.detach().numpy()).max() <= np.sqrt(6 / 300)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.detach().numpy().std() - np.sqrt(2 / 100)) < 0.01
    nn.init.orthogonal_(w)
    q = w.detach().numpy()
    np.testing.assert_allclose(q.T @ q, np.eye(100), atol=1e-5)
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert np.abs(w.detach().numpy()).max() <= 0.5
    nn.init.constant_(w, 0.3)
    assert np.all(w.detach().numpy() == np.float32(0.3))
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(np.sqrt(2 / 1.04))


def test_utils_clip_and_vectors():
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    q = nn.Parameter(torch.tensor([2.0]))
    (p * torch.tensor([3.0, 4.0])).sum().backward()
    (q * 12.0).sum().backward()
    norm = nn.utils.clip_grad_norm_([p, q], 1.0)
    assert norm.item() == pytest.approx(13.0)
    np.testing.assert_allclose(np.concatenate([p.grad.numpy(), q.grad.numpy()]),
                               np.array([3, 4, 12]) / 13, rtol=1e-5)
    nn.utils.clip_grad_value_([p], 0.1)
    assert np.abs(p.grad.numpy()).max() <= 0.1
    vec = nn.utils.parameters_to_vector([p, q])
    np.testing.assert_allclose(vec.detach().numpy(), [1, 2, 2])
    nn.utils.vector_to_parameters(torch.tensor([5.0, 6.0, 7.0]), [p, q])
    np.testing.assert_allclose(q.detach().numpy(), [7.0])


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_lstm_matches_numpy_and_shapes():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True).double()
    assert repr(lstm) == "LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True)"
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    out, (h, c) = lstm(torch.tensor(x))
    assert tuple(out.shape) == (2, 5, 8) and tuple(h.shape) == (4, 2, 4) and tuple(c.shape) == (4, 2, 4)
    p = {k: v.detach().numpy() for k, v in lstm.named_parameters()}

    def run(seq, suffix, layer):
        hh, cc, outs = np.zeros((2, 4)), np.zeros((2, 4)), []
        for xt in seq:
            g = (xt @ p[f"weight_ih_l{layer}{suffix}"].T + p[f"bias_ih_l{layer}{suffix}"]
                 + hh @ p[f"weight_hh_l{layer}{suffix}"].T + p[f"bias_hh_l{layer}{suffix}"])
            i, f, gg, o = np.split(g, 4, axis=-1)
            cc = _sigmoid(f) * cc + _sigmoid(i) * np.tanh(gg)
            hh = _sigmoid(o) * np.tanh(cc)
            outs.append(hh)
        return np.stack(outs)

    seq = x.transpose(1, 0, 2)
    fwd = run(seq, "", 0)
    bwd = run(seq[::-1], "_reverse", 0)[::-1]
    layer1 = np.concatenate([fwd, bwd], -1)
    fwd2 = run(layer1, "", 1)
    np.testing.assert_allclose(out.detach().numpy()[:, :, :4], fwd2.transpose(1, 0, 2), rtol=1e-10)
    gru = nn.GRU(3, 2)
    o, hn = gru(torch.randn(7, 3))
    assert tuple(o.shape) == (7, 2) and tuple(hn.shape) == (1, 2)
    cell = nn.LSTMCell(3, 2)
    h1, c1 = cell(torch.randn(4, 3))
    assert tuple(h1.shape) == (4, 2)


def test_lstm_sequence_classifier_trains():
    torch.manual_seed(0)

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(2, 8, batch_first=True)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.head(h[-1])

    model = Classifier()
    x = torch.randn(32, 6, 2)
    y = torch.tensor((x.numpy().sum((1, 2)) > 0).astype(np.int64))
    opt = optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def _max_pool2d_indices_reference(x, k, s, p, d, out_hw):
    """First-maximum flat index of each (dilated, padded) window, by explicit loops."""
    n, c, h, w = x.shape
    idx = np.zeros((n, c) + out_hw, dtype=np.int64)
    for i in range(out_hw[0]):
        for j in range(out_hw[1]):
            taps = [(i * s - p + a * d, j * s - p + b * d) for a in range(k) for b in range(k)]
            taps = [(r, q) for r, q in taps if 0 <= r < h and 0 <= q < w]
            vals = np.stack([x[:, :, r, q] for r, q in taps], -1)
            first = vals.argmax(-1)
            flat = np.array([r * w + q for r, q in taps])
            idx[:, :, i, j] = flat[first]
    return idx


def test_max_pool_return_indices():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert idx.dtype == torch.int64 and idx.tolist() == [[[[5, 7], [13, 15]]]]
    np.testing.assert_array_equal(out.numpy(), [[[[5, 7], [13, 15]]]])
    rng = np.random.default_rng(0)
    xs = rng.integers(0, 4, size=(2, 3, 7, 6)).astype(np.float64)  # many ties: first wins
    for k, s, p, d, ceil in [(2, 2, 0, 1, False), (3, 2, 1, 1, True), (2, 1, 1, 2, False)]:
        out, idx = F.max_pool2d(fa.asarray(xs), k, s, p, d, ceil_mode=ceil, return_indices=True)
        ref = _max_pool2d_indices_reference(xs, k, s, p, d, tuple(out.shape[2:]))
        np.testing.assert_array_equal(np.asarray(idx), ref)
        picked = np.take_along_axis(xs.reshape(2, 3, -1), np.asarray(idx).reshape(2, 3, -1), -1)
        np.testing.assert_array_equal(picked.reshape(out.shape), np.asarray(out))
    x1 = rng.normal(size=(3, 8))  # unbatched (C, L)
    out, idx = nn.MaxPool1d(3, stride=2, return_indices=True)(torch.tensor(x1))
    taps = np.stack([np.arange(3) + 2 * i for i in range(3)])  # (out, k)
    first = x1[:, taps].argmax(-1)  # (C, out)
    np.testing.assert_array_equal(idx.numpy(), taps[np.arange(3)[None, :], first])
    # the values keep their gradient; the indices are integers
    distinct = fa.asarray(xs + rng.random(xs.shape))
    g = fa.grad(lambda v: fa.sum(F.max_pool2d(v, 2, return_indices=True)[0]))(distinct)
    assert g.shape == xs.shape and float(fa.sum(g)) == pytest.approx(2 * 3 * 3 * 3)


def test_bad_input_names_every_layer_kind():
    cases = [
        (lambda: nn.Bilinear(2, 3, 4)(torch.zeros(5, 2), torch.zeros(5, 4)),
         r"Bilinear\(in1_features=2.*expected input with 3 features in input2.*\(5, 4\)"),
        (lambda: nn.Conv1d(3, 2, 2)(torch.zeros(1, 4, 5)),
         r"Conv1d\(3, 2.*expected input with 3 channels.*\(1, 4, 5\)"),
        (lambda: nn.ConvTranspose2d(3, 2, 2)(torch.zeros(1, 2, 4, 4)),
         r"ConvTranspose2d\(3, 2.*expected input with 3 channels.*\(1, 2, 4, 4\)"),
        (lambda: nn.BatchNorm2d(3)(torch.zeros(4, 5, 2, 2)),
         r"BatchNorm2d\(3, .*expected input with 3 channels.*\(4, 5, 2, 2\)"),
        (lambda: nn.InstanceNorm1d(3)(torch.zeros(2, 4, 5)),
         r"InstanceNorm1d\(3, .*expected input with 3 channels.*\(2, 4, 5\)"),
        (lambda: nn.LayerNorm(4)(torch.zeros(4, 5)),
         r"LayerNorm\(\(4,\).*trailing shape \(4,\).*\(4, 5\)"),
        (lambda: nn.GroupNorm(2, 4)(torch.zeros(4, 6, 2)),
         r"GroupNorm\(2, 4.*expected input with 4 channels.*\(4, 6, 2\)"),
        (lambda: nn.RNN(3, 2)(torch.zeros(5, 1, 4)),
         r"RNN\(3, 2\): expected input with 3 features.*\(5, 1, 4\)"),
        (lambda: nn.GRU(3, 2)(torch.zeros(5, 1, 3), torch.zeros(2, 1, 2)),
         r"GRU\(3, 2\): expected hx of shape \(1, 1, 2\), got shape \(2, 1, 2\)"),
        (lambda: nn.LSTM(3, 2)(torch.zeros(5, 3), (torch.zeros(1, 2), torch.zeros(1, 3))),
         r"LSTM\(3, 2\): expected c_0 of shape \(1, 2\), got shape \(1, 3\)"),
        (lambda: nn.LSTMCell(3, 2)(torch.zeros(5, 4)),
         r"LSTMCell\(3, 2\): expected input with 3 features.*\(5, 4\)"),
        (lambda: nn.Embedding(5, 3)(torch.tensor([1, 7])),
         r"Embedding\(5, 3\): .*index 7 is out of bounds.*size 5"),
        (lambda: nn.MaxPool2d(5)(torch.zeros(1, 1, 3, 3)),
         r"MaxPool2d\(kernel_size=5.*window \(5, 5\).*\(3, 3\)"),
        (lambda: nn.AdaptiveAvgPool2d(2)(torch.zeros(3)),
         r"AdaptiveAvgPool2d\(output_size=2\).*got shape \(3,\)"),
        (lambda: nn.Unflatten(1, (2, 3))(torch.zeros(2, 5)),
         r"Unflatten\(dim=1.*input shape \(2, 5\) into \(2, 3\)"),
        (lambda: nn.MultiheadAttention(8, 2)(*[torch.zeros(3, 2, 6)] * 3),
         r"MultiheadAttention\(embed_dim=8.*8 features in query.*\(3, 2, 6\)"),
        (lambda: nn.TransformerEncoderLayer(8, 2, 16)(torch.zeros(3, 2, 6)),
         r"TransformerEncoderLayer\(d_model=8, nhead=2\).*8 features.*\(3, 2, 6\)"),
        (lambda: nn.CrossEntropyLoss(weight=torch.ones(3))(torch.zeros(3, 4), torch.tensor([0, 1, 2])),
         r"cross_entropy: weight must have shape \(4,\).*\(3, 4\).*\(3,\)"),
    ]
    for fn, pattern in cases:
        with pytest.raises((ValueError, IndexError), match=pattern):
            fn()
