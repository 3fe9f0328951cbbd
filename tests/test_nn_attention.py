"""nn.MultiheadAttention, TransformerEncoderLayer, TransformerEncoder and
F.scaled_dot_product_attention against NumPy references with the same weights."""

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
import fnarray.nn.functional as F
from fnarray.testing import check_grads
from fnarray import nn, optim


def _np(t):
    return np.asarray(t.detach().numpy() if hasattr(t, "detach") else t)


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _additive(mask):
    """PyTorch's mask convention: boolean True = masked out, floats are added."""
    if mask is None:
        return 0.0
    return np.where(mask, -np.inf, 0.0) if mask.dtype == bool else mask


def mha_reference(p, q, k, v, num_heads, attn_mask=None, key_padding_mask=None):
    """Multi-head attention on (L, N, E) inputs written out with NumPy; returns the output
    (L, N, E) and the per-head weights (N, H, L, S)."""
    e = q.shape[-1]
    hd = e // num_heads
    w, b = p["in_proj_weight"], p["in_proj_bias"]
    qp, kp, vp = (x @ w[i * e:(i + 1) * e].T + b[i * e:(i + 1) * e] for i, x in enumerate((q, k, v)))
    L, N, _ = q.shape
    S = k.shape[0]
    split = lambda t: t.reshape(t.shape[0], N, num_heads, hd).transpose(1, 2, 0, 3)
    scores = split(qp) @ split(kp).transpose(0, 1, 3, 2) / np.sqrt(hd)
    mask = _additive(attn_mask)
    if isinstance(mask, np.ndarray) and mask.ndim == 3:
        mask = mask.reshape(N, num_heads, L, S)
    scores = scores + mask
    if key_padding_mask is not None:
        scores = scores + _additive(key_padding_mask)[:, None, None, :]
    weights = _softmax(scores)
    heads = weights @ split(vp)  # (N, H, L, hd)
    out = heads.transpose(2, 0, 1, 3).reshape(L, N, e)
    return out @ p["out_proj.weight"].T + p["out_proj.bias"], weights


def _layer_norm(x, w, b, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * w + b


def encoder_layer_reference(p, x, nhead, norm_first, activation, mask=None, kpm=None):
    attn = lambda y: mha_reference({k[len("self_attn."):]: v for k, v in p.items()
                                    if k.startswith("self_attn.")}, y, y, y, nhead, mask, kpm)[0]
    ff = lambda y: activation(y @ p["linear1.weight"].T + p["linear1.bias"]) @ \
        p["linear2.weight"].T + p["linear2.bias"]
    n1 = lambda y: _layer_norm(y, p["norm1.weight"], p["norm1.bias"])
    n2 = lambda y: _layer_norm(y, p["norm2.weight"], p["norm2.bias"])
    if norm_first:
        x = x + attn(n1(x))
        return x + ff(n2(x))
    x = n1(x + attn(x))
    return n2(x + ff(x))


def _params(module):
    return {k: _np(v) for k, v in module.state_dict().items()}


def _randomise(module, seed=0):
    """Replace every parameter with N(0, 0.5) values so zero-initialised biases and unit
    LayerNorm weights are exercised too."""
    rng = np.random.default_rng(seed)
    for _, prm in module.named_parameters():
        prm.data = fa.asarray(rng.normal(scale=0.5, size=tuple(prm.shape)), dtype=prm.dtype)
    return module


def test_mha_parameters_init_and_repr():
    torch.manual_seed(0)
    m = nn.MultiheadAttention(16, 4)
    assert repr(m) == ("MultiheadAttention(\n  (out_proj): NonDynamicallyQuantizableLinear("
                       "in_features=16, out_features=16, bias=True)\n)")
    assert list(m.state_dict()) == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                    "out_proj.bias"]
    assert tuple(m.in_proj_weight.shape) == (48, 16) and m.head_dim == 4
    assert isinstance(m.out_proj, nn.Linear)
    w = _np(m.in_proj_weight)
    bound = np.sqrt(6 / (48 + 16))  # xavier_uniform_ on the packed (3E, E) weight
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert not _np(m.in_proj_bias).any() and not _np(m.out_proj.bias).any()
    other = nn.MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False, add_bias_kv=True)
    assert list(other.state_dict()) == ["q_proj_weight", "k_proj_weight", "v_proj_weight",
                                        "bias_k", "bias_v", "out_proj.weight"]
    assert other.in_proj_weight is None and tuple(other.k_proj_weight.shape) == (8, 3)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        nn.MultiheadAttention(10, 3)


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_forward_matches_numpy(batch_first):
    torch.manual_seed(0)
    m = _randomise(nn.MultiheadAttention(8, 2, batch_first=batch_first).double())
    rng = np.random.default_rng(1)
    q, k = rng.normal(size=(4, 3, 8)), rng.normal(size=(6, 3, 8))
    v = rng.normal(size=(6, 3, 8))
    ref_out, ref_w = mha_reference(_params(m), q, k, v, 2)
    tb = (lambda a: torch.tensor(a.transpose(1, 0, 2))) if batch_first else torch.tensor
    out, w = m(tb(q), tb(k), tb(v))
    out = _np(out).transpose(1, 0, 2) if batch_first else _np(out)
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(w), ref_w.mean(1), rtol=1e-10, atol=1e-12)
    _, w_heads = m(tb(q), tb(k), tb(v), average_attn_weights=False)
    np.testing.assert_allclose(_np(w_heads), ref_w, rtol=1e-10, atol=1e-12)
    out2, none = m(tb(q), tb(k), tb(v), need_weights=False)
    assert none is None
    np.testing.assert_allclose(_np(out2), _np(m(tb(q), tb(k), tb(v))[0]), rtol=1e-12)
    # unbatched inputs: (L, E)
    out_u, w_u = m(torch.tensor(q[:, 0]), torch.tensor(k[:, 0]), torch.tensor(v[:, 0]))
    np.testing.assert_allclose(_np(out_u), ref_out[:, 0], rtol=1e-10, atol=1e-12)
    assert tuple(w_u.shape) == (4, 6)


def test_mha_masks_match_numpy():
    torch.manual_seed(0)
    m = _randomise(nn.MultiheadAttention(6, 3).double(), seed=2)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 2, 6)), rng.normal(size=(5, 2, 6))
    p = _params(m)
    causal = np.triu(np.ones((4, 5), dtype=bool), k=1)
    kpm = np.array([[False] * 5, [False, False, False, True, True]])
    ref_out, ref_w = mha_reference(p, x, y, y, 3, attn_mask=causal, key_padding_mask=kpm)
    out, w = m(torch.tensor(x), torch.tensor(y), torch.tensor(y), attn_mask=torch.tensor(causal),
               key_padding_mask=torch.tensor(kpm), average_attn_weights=False)
    np.testing.assert_allclose(_np(out), ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(w), ref_w, rtol=1e-10, atol=1e-12)
    assert np.all(_np(w)[1, :, :, 3:] == 0) and np.all(_np(w)[:, :, 0, 1:] == 0)
    float_mask = rng.normal(size=(2 * 3, 4, 5))  # per (batch, head), added to the scores
    ref_out, _ = mha_reference(p, x, y, y, 3, attn_mask=float_mask)
    out, _ = m(torch.tensor(x), torch.tensor(y), torch.tensor(y), attn_mask=torch.tensor(float_mask))
    np.testing.assert_allclose(_np(out), ref_out, rtol=1e-10, atol=1e-12)
    sq = torch.tensor(x)
    causal_sq = np.triu(np.ones((4, 4), dtype=bool), k=1)
    np.testing.assert_allclose(_np(m(sq, sq, sq, is_causal=True)[0]),
                               _np(m(sq, sq, sq, attn_mask=torch.tensor(causal_sq))[0]), rtol=1e-12)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(4, 5\).*got \(5, 4\)"):
        m(torch.tensor(x), torch.tensor(y), torch.tensor(y), attn_mask=torch.zeros(5, 4))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 5\)"):
        m(torch.tensor(x), torch.tensor(y), torch.tensor(y), key_padding_mask=torch.zeros(5, 2))


def test_mha_kdim_vdim_bias_kv_and_zero_attn():
    torch.manual_seed(0)
    m = nn.MultiheadAttention(4, 2, kdim=3, vdim=5, add_bias_kv=True, add_zero_attn=True).double()
    rng = np.random.default_rng(4)
    q, k, v = rng.normal(size=(2, 1, 4)), rng.normal(size=(3, 1, 3)), rng.normal(size=(3, 1, 5))
    p = _params(m)
    kp = np.concatenate([k @ p["k_proj_weight"].T + p["in_proj_bias"][4:8], p["bias_k"]], 0)
    vp = np.concatenate([v @ p["v_proj_weight"].T + p["in_proj_bias"][8:], p["bias_v"]], 0)
    kp = np.concatenate([kp, np.zeros((1, 1, 4))], 0)
    vp = np.concatenate([vp, np.zeros((1, 1, 4))], 0)
    qp = q @ p["q_proj_weight"].T + p["in_proj_bias"][:4]
    heads = []
    for h in range(2):
        sl = slice(2 * h, 2 * h + 2)
        w = _softmax(qp[:, 0, sl] @ kp[:, 0, sl].T / np.sqrt(2))
        heads.append(w @ vp[:, 0, sl])
    ref = np.concatenate(heads, -1) @ p["out_proj.weight"].T + p["out_proj.bias"]
    out, w = m(torch.tensor(q), torch.tensor(k), torch.tensor(v))
    np.testing.assert_allclose(_np(out)[:, 0], ref, rtol=1e-10, atol=1e-12)
    assert tuple(w.shape) == (1, 2, 5)  # S + bias_kv + zero_attn


def test_mha_bad_inputs_name_layer_and_shapes():
    m = nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match=r"MultiheadAttention.*expected input with 8 features in "
                                         r"query.*\(4, 2, 6\)"):
        m(torch.zeros(4, 2, 6), torch.zeros(4, 2, 8), torch.zeros(4, 2, 8))
    with pytest.raises(ValueError, match="all be 3-D.*or all 2-D"):
        m(torch.zeros(4, 2, 8), torch.zeros(4, 8), torch.zeros(4, 8))


def test_mha_backward_equals_grad_through_functional_call():
    torch.manual_seed(0)
    m = _randomise(nn.MultiheadAttention(6, 2, batch_first=True).double(), seed=5)
    rng = np.random.default_rng(6)
    x = torch.tensor(rng.normal(size=(2, 4, 6)), requires_grad=True)
    kpm = torch.tensor(np.array([[False] * 4, [False, False, True, True]]))
    out, w = m(x, x, x, key_padding_mask=kpm)
    ((out ** 2).sum() + (w * w).sum()).backward()
    params = {k: v.detach().array for k, v in m.named_parameters()}

    def loss(p, xa):
        o, a = nn.functional_call(m, p, (xa, xa, xa), {"key_padding_mask": kpm.array})
        return fa.sum(o ** 2) + fa.sum(a * a)

    g_params, g_x = fa.grad(loss, argnums=(0, 1))(params, x.detach().array)
    for k, prm in m.named_parameters():
        np.testing.assert_allclose(_np(prm.grad), np.asarray(g_params[k]), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(_np(x.grad), np.asarray(g_x), rtol=1e-9, atol=1e-12)
    check_grads(loss, (params, x.detach().array), order=1)


def test_mha_dropout_only_in_training():
    torch.manual_seed(0)
    m = nn.MultiheadAttention(4, 1, dropout=0.5)
    x = torch.randn(3, 2, 4)
    _, w1 = m(x, x, x)
    _, w2 = m(x, x, x)
    assert not np.array_equal(_np(w1), _np(w2))  # as in PyTorch: the weights after dropout
    assert set(np.unique(_np(w1) == 0)) == {False, True}
    m.eval()
    np.testing.assert_array_equal(_np(m(x, x, x)[0]), _np(m(x, x, x)[0]))


def test_sdpa_matches_numpy():
    rng = np.random.default_rng(7)
    q, k, v = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(2, 3, 6, 2))
    allowed = rng.random((4, 6)) > 0.3
    allowed[:, 0] = True
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(5)
    ref = _softmax(np.where(allowed, scores, -np.inf)) @ v
    got = F.scaled_dot_product_attention(fa.asarray(q), fa.asarray(k), fa.asarray(v),
                                         attn_mask=fa.asarray(allowed))
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-10)
    causal = F.scaled_dot_product_attention(fa.asarray(q), fa.asarray(q), fa.asarray(q), is_causal=True)
    s = q @ q.transpose(0, 1, 3, 2) / np.sqrt(5)
    ref = _softmax(np.where(np.tril(np.ones((4, 4), bool)), s, -np.inf)) @ q
    np.testing.assert_allclose(np.asarray(causal), ref, rtol=1e-10)


TEL_REPR = """TransformerEncoderLayer(
  (self_attn): MultiheadAttention(
    (out_proj): NonDynamicallyQuantizableLinear(in_features=8, out_features=8, bias=True)
  )
  (linear1): Linear(in_features=8, out_features=16, bias=True)
  (dropout): Dropout(p=0.1, inplace=False)
  (linear2): Linear(in_features=16, out_features=8, bias=True)
  (norm1): LayerNorm((8,), eps=1e-05, elementwise_affine=True)
  (norm2): LayerNorm((8,), eps=1e-05, elementwise_affine=True)
  (dropout1): Dropout(p=0.1, inplace=False)
  (dropout2): Dropout(p=0.1, inplace=False)
)"""


def test_encoder_repr_and_independent_copies():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    assert repr(layer) == TEL_REPR
    enc = nn.TransformerEncoder(layer, num_layers=3, norm=nn.LayerNorm(8))
    assert repr(enc) == ("TransformerEncoder(\n  (layers): ModuleList(\n    (0-2): 3 x "
                         + TEL_REPR.replace("\n", "\n    ") + "\n  )\n"
                         "  (norm): LayerNorm((8,), eps=1e-05, elementwise_affine=True)\n)")
    assert len(list(enc.parameters())) == 3 * len(list(layer.parameters())) + 2
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight
    assert enc.layers[0].linear1.weight is not layer.linear1.weight
    np.testing.assert_array_equal(_np(enc.layers[2].linear1.weight), _np(layer.linear1.weight))
    assert "layers.2.self_attn.in_proj_weight" in enc.state_dict()
    with pytest.raises(ValueError, match="activation should be 'relu' or 'gelu'"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")


_GELU = np.vectorize(lambda z: 0.5 * z * (1 + __import__("math").erf(z / np.sqrt(2))))


@pytest.mark.parametrize("norm_first,activation,batch_first",
                         [(False, "relu", False), (True, "gelu", True)])
def test_encoder_layer_matches_numpy(norm_first, activation, batch_first):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(6, 2, dim_feedforward=10, activation=activation,
                                       norm_first=norm_first, batch_first=batch_first).double()
    _randomise(layer, seed=8).eval()
    x = np.random.default_rng(9).normal(size=(5, 3, 6))
    kpm = np.zeros((3, 5), dtype=bool)
    kpm[2, 3:] = True
    act = (lambda z: np.maximum(z, 0)) if activation == "relu" else _GELU
    ref = encoder_layer_reference(_params(layer), x, 2, norm_first, act, kpm=kpm)
    xin = x.transpose(1, 0, 2) if batch_first else x
    out = _np(layer(torch.tensor(xin), src_key_padding_mask=torch.tensor(kpm)))
    np.testing.assert_allclose(out.transpose(1, 0, 2) if batch_first else out, ref, rtol=1e-9,
                               atol=1e-12)


def test_encoder_stack_matches_numpy_and_gradients():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0)
    enc = _randomise(nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(4)).double(), seed=10)
    x = np.random.default_rng(11).normal(size=(3, 2, 4))
    mask = np.triu(np.ones((3, 3), dtype=bool), k=1)
    p = _params(enc)
    ref = x
    for i in range(2):
        sub = {k[len(f"layers.{i}."):]: v for k, v in p.items() if k.startswith(f"layers.{i}.")}
        ref = encoder_layer_reference(sub, ref, 2, False, lambda z: np.maximum(z, 0), mask=mask)
    ref = _layer_norm(ref, p["norm.weight"], p["norm.bias"])
    xt = torch.tensor(x, requires_grad=True)
    out = enc(xt, mask=torch.tensor(mask))
    np.testing.assert_allclose(_np(out), ref, rtol=1e-9, atol=1e-12)
    (out * out).sum().backward()
    params = {k: v.detach().array for k, v in enc.named_parameters()}

    def loss(prm, xa):
        o = nn.functional_call(enc, prm, (xa,), {"mask": fa.asarray(mask)})
        return fa.sum(o * o)

    g_p, g_x = fa.grad(loss, argnums=(0, 1))(params, fa.asarray(x))
    for k, prm in enc.named_parameters():
        np.testing.assert_allclose(_np(prm.grad), np.asarray(g_p[k]), rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(_np(xt.grad), np.asarray(g_x), rtol=1e-8, atol=1e-11)


def test_transformer_trains():
    torch.manual_seed(0)
    model = nn.Sequential(nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True), 1),
        nn.Flatten(), nn.Linear(4 * 8, 2))
    x = torch.randn(16, 4, 8)
    y = torch.tensor((x.numpy()[:, 0, 0] > 0).astype(np.int64))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
