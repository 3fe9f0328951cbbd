"""nn.Transformer, TransformerDecoderLayer/TransformerDecoder and
generate_square_subsequent_mask with PyTorch's structure, masks and semantics (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray.compat as torch
from fnarray import nn
from fnarray.nn import functional as F


def _np(t):
    return np.asarray(t.detach())


def test_square_subsequent_mask_as_pytorch_prints_it():
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    assert isinstance(mask, torch.Tensor) and mask.dtype == torch.float32
    expected = np.array([[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]], np.float32)
    np.testing.assert_array_equal(_np(mask), expected)
    assert repr(mask) == ("tensor([[0., -inf, -inf],\n        [0., 0., -inf],\n"
                          "        [0., 0., 0.]])")


def _manual_decoder_layer(layer, tgt, mem, tgt_mask, norm_first):
    """The documented TransformerDecoderLayer computation, spelled out (eval: no dropout)."""
    def sa(x):
        return layer.self_attn(x, x, x, attn_mask=tgt_mask, need_weights=False)[0]

    def mha(x):
        return layer.multihead_attn(x, mem, mem, need_weights=False)[0]

    def ff(x):
        return layer.linear2(F.relu(layer.linear1(x)))
    x = tgt
    if norm_first:
        x = x + sa(layer.norm1(x))
        x = x + mha(layer.norm2(x))
        return x + ff(layer.norm3(x))
    x = layer.norm1(x + sa(x))
    x = layer.norm2(x + mha(x))
    return layer.norm3(x + ff(x))


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_is_the_documented_composition(norm_first):
    torch.manual_seed(0)
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, norm_first=norm_first).eval()
    tgt, mem = torch.randn(5, 3, 8), torch.randn(7, 3, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    out = layer(tgt, mem, tgt_mask=mask)
    assert tuple(out.shape) == (5, 3, 8)
    np.testing.assert_allclose(_np(out), _np(_manual_decoder_layer(layer, tgt, mem, mask,
                                                                   norm_first)), atol=1e-5)
    np.testing.assert_allclose(_np(layer(tgt, mem, tgt_is_causal=True)), _np(out), atol=1e-5)


def test_causal_decoder_does_not_see_the_future():
    torch.manual_seed(1)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0), 2,
                                norm=nn.LayerNorm(8))
    mem = torch.randn(4, 2, 8)
    tgt = torch.randn(6, 2, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(6)
    out = dec(tgt, mem, tgt_mask=mask)
    changed = tgt.clone()
    changed[3:] = torch.randn(3, 2, 8)
    out2 = dec(changed, mem, tgt_mask=mask)
    np.testing.assert_allclose(_np(out2)[:3], _np(out)[:3], atol=1e-5)
    assert not np.allclose(_np(out2)[3:], _np(out)[3:])


def test_transformer_structure_and_state_dict_keys_match_pytorch():
    model = nn.Transformer(d_model=16, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                           dim_feedforward=32)
    keys = list(model.state_dict())
    # PyTorch: 12 tensors per encoder layer, 18 per decoder layer, 2 per final norm.
    assert len(keys) == 2 * 12 + 2 + 2 * 18 + 2
    for key in ("encoder.layers.1.self_attn.in_proj_weight", "encoder.norm.weight",
                "decoder.layers.0.multihead_attn.out_proj.bias", "decoder.layers.1.norm3.bias",
                "decoder.norm.bias", "decoder.layers.0.linear2.weight"):
        assert key in keys
    assert "TransformerDecoderLayer(" in repr(model)
    # Xavier-uniform start for every matrix: |w| <= sqrt(6 / (fan_in + fan_out)).
    w = _np(model.decoder.layers[0].linear1.weight)
    assert np.abs(w).max() <= np.sqrt(6 / (16 + 32)) + 1e-7


def test_transformer_forward_backward_and_batch_first():
    torch.manual_seed(2)
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=16, dropout=0.0)
    src, tgt = torch.randn(5, 3, 8), torch.randn(4, 3, 8)
    out = model(src, tgt, tgt_mask=model.generate_square_subsequent_mask(4))
    assert tuple(out.shape) == (4, 3, 8)
    out.pow(2).mean().backward()
    assert model.encoder.layers[0].self_attn.in_proj_weight.grad is not None
    assert model.decoder.layers[0].multihead_attn.in_proj_weight.grad is not None
    bf = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                        dim_feedforward=16, dropout=0.0, batch_first=True)
    bf.load_state_dict(model.state_dict())
    out_bf = bf(src.transpose(0, 1), tgt.transpose(0, 1), tgt_is_causal=True,
                tgt_mask=model.generate_square_subsequent_mask(4))
    np.testing.assert_allclose(_np(out_bf.transpose(0, 1)), _np(out), atol=1e-5)
    unbatched = model(src[:, 0], tgt[:, 0], tgt_mask=model.generate_square_subsequent_mask(4))
    np.testing.assert_allclose(_np(unbatched), _np(out)[:, 0], atol=1e-5)


def test_transformer_errors_name_the_shapes():
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=16)
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        model(torch.randn(5, 3, 8), torch.randn(4, 2, 8))
    with pytest.raises(RuntimeError, match="feature number of src and tgt must be equal to "
                                           "d_model=8"):
        model(torch.randn(5, 3, 8), torch.randn(4, 3, 6))
    with pytest.raises(ValueError, match="activation should be 'relu' or 'gelu'"):
        nn.TransformerDecoderLayer(8, 2, activation="tanh")
