"""Transformer encoder: ``TransformerEncoderLayer`` and the ``TransformerEncoder`` stack,
with PyTorch's submodule names (so ``state_dict`` keys and ``repr`` match)."""

from __future__ import annotations

import copy
from typing import Callable

from fnarray.nn import functional as F
from fnarray.nn.containers import ModuleList
from fnarray.nn.layers.attention import MultiheadAttention
from fnarray.nn.layers._util import check_features
from fnarray.nn.layers.dropout import Dropout
from fnarray.nn.layers.linear import Linear
from fnarray.nn.layers.normalization import LayerNorm
from fnarray.nn.module import Module

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(Module):
    """Self-attention then a two-layer feed-forward block, each wrapped in a residual
    connection with layer normalisation: after the residual (post-norm, the default) or
    before the block (``norm_first=True``).  ``activation`` is ``'relu'``, ``'gelu'`` or a
    callable (a module passed here is registered as the submodule ``activation``)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None):
        super().__init__()
        factory = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **factory)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(f"TransformerEncoderLayer: activation should be 'relu' or "
                                 f"'gelu' (or a callable), got {activation!r}")
            activation = _ACTIVATIONS[activation]
        self.activation = activation

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        """``src``: ``(S, N, d_model)`` (``(N, S, d_model)`` with ``batch_first``) or
        unbatched ``(S, d_model)``; masks as in ``MultiheadAttention``."""
        d_model, nhead = self.self_attn.embed_dim, self.self_attn.num_heads
        check_features(f"TransformerEncoderLayer(d_model={d_model}, nhead={nhead})", src, -1,
                       d_model, "features")
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        out = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                             need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(out)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """``num_layers`` deep copies of ``encoder_layer`` applied in turn (independent
    parameters), followed by ``norm`` when given."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: Module | None = None, enable_nested_tensor: bool = True,
                 mask_check: bool = True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal: bool | None = None):
        out = src
        for layer in self.layers:
            out = layer(out, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                        is_causal=bool(is_causal))
        return out if self.norm is None else self.norm(out)
