"""Multi-head attention with PyTorch's parameters, masks and shapes.

``MultiheadAttention`` projects query, key and value (one packed ``in_proj_weight`` when
they share ``embed_dim``, else ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``),
splits the projections into ``num_heads`` heads, applies scaled dot-product attention per
head and mixes the heads with ``out_proj``.  Masks follow PyTorch: in ``attn_mask`` and
``key_padding_mask`` a boolean ``True`` marks a position that may NOT be attended to, and
a float mask is added to the attention scores.
"""

from __future__ import annotations

import math

import fnarray as fa
from fnarray.nn import functional as F, init
from fnarray.nn.layers._util import check_features, empty_parameter
from fnarray.nn.layers.linear import Linear
from fnarray.nn.module import Module


class NonDynamicallyQuantizableLinear(Linear):
    """A ``Linear``; the name is PyTorch's for the output projection of attention, kept so
    that ``repr`` and ``state_dict`` match."""


def _additive(mask, dtype):
    """A float mask to add to attention scores: boolean ``True`` (masked) becomes -inf."""
    if mask.dtype == fa.bool:
        return fa.astype(fa.where(mask, -math.inf, 0.0), dtype)
    return fa.astype(mask, dtype)


class MultiheadAttention(Module):
    """``MultiheadAttention(embed_dim, num_heads)``: attention over ``num_heads`` heads of
    size ``embed_dim // num_heads``.

    Inputs are ``(L, N, E)`` (``(N, L, E)`` with ``batch_first=True``) or unbatched
    ``(L, E)``; ``forward`` returns ``(attn_output, attn_weights)`` where the weights are
    ``(N, L, S)`` averaged over heads, ``(N, num_heads, L, S)`` with
    ``average_attn_weights=False``, or ``None`` with ``need_weights=False``.

    Initialisation (PyTorch's): ``xavier_uniform_`` on the input projections, zero biases,
    ``xavier_normal_`` on ``bias_k``/``bias_v``; ``out_proj.weight`` keeps ``Linear``'s.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be positive and "
                             f"divisible by num_heads ({num_heads})")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = dropout, batch_first
        self.head_dim = embed_dim // num_heads
        if self._qkv_same_embed_dim:
            self.in_proj_weight = empty_parameter((3 * embed_dim, embed_dim), dtype, device)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = empty_parameter((embed_dim, embed_dim), dtype, device)
            self.k_proj_weight = empty_parameter((embed_dim, self.kdim), dtype, device)
            self.v_proj_weight = empty_parameter((embed_dim, self.vdim), dtype, device)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = empty_parameter((3 * embed_dim,), dtype, device)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias,
                                                        device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = empty_parameter((1, 1, embed_dim), dtype, device)
            self.bias_v = empty_parameter((1, 1, embed_dim), dtype, device)
        else:
            self.register_parameter("bias_k", None)
            self.register_parameter("bias_v", None)
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _projections(self):
        """The (weight, bias) pairs of the query, key and value projections."""
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            ws = (w[:e], w[e:2 * e], w[2 * e:])
        else:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        b = self.in_proj_bias
        bs = (None,) * 3 if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        return zip(ws, bs)

    def _check_inputs(self, query, key, value) -> bool:
        """Check ranks and feature sizes; returns whether the inputs are batched."""
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"{type(self).__name__}: query, key and value must all be 3-D "
                             f"(batched) or all 2-D (unbatched), got shapes {tuple(query.shape)}, "
                             f"{tuple(key.shape)}, {tuple(value.shape)}")
        name = (f"MultiheadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"kdim={self.kdim}, vdim={self.vdim})")
        check_features(name, query, -1, self.embed_dim, "features in query")
        check_features(name, key, -1, self.kdim, "features in key")
        check_features(name, value, -1, self.vdim, "features in value")
        seq = 1 if batched and self.batch_first else 0
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"{type(self).__name__}: key shape {tuple(key.shape)} and value "
                             f"shape {tuple(value.shape)} must agree except in the last axis")
        if batched and query.shape[1 - seq] != key.shape[1 - seq]:
            raise ValueError(f"{type(self).__name__}: query {tuple(query.shape)} and key "
                             f"{tuple(key.shape)} have different batch sizes")
        return batched

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        """Attend from ``query`` to ``key``/``value``; see the class docstring for shapes.

        ``attn_mask``: ``(L, S)`` or ``(N * num_heads, L, S)``; ``key_padding_mask``:
        ``(N, S)`` (``(S,)`` unbatched).  ``is_causal`` without ``attn_mask`` masks every
        key after the query's position."""
        batched = self._check_inputs(query, key, value)
        if not batched:
            query, key, value = (fa.expand_dims(t, 1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = fa.expand_dims(key_padding_mask, 0)
        elif self.batch_first:
            query, key, value = (fa.swapaxes(t, 0, 1) for t in (query, key, value))
        L, N, E = query.shape
        (wq, bq), (wk, bk), (wv, bv) = self._projections()
        q, k, v = F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)
        if is_causal and attn_mask is None:
            attn_mask = fa.triu(fa.ones((L, key.shape[0]), dtype=fa.bool,
                                        device=fa.device_of(q)), k=1)
        mask = self._merged_mask(attn_mask, key_padding_mask, N, L, key.shape[0], q.dtype)
        if self.bias_k is not None:
            k = fa.concatenate([k, fa.broadcast_to(self.bias_k, (1, N, E))], axis=0)
            v = fa.concatenate([v, fa.broadcast_to(self.bias_v, (1, N, E))], axis=0)
            mask = None if mask is None else F.pad(mask, (0, 1))
        q, k, v = (self._heads(t) for t in (q, k, v))  # (N, H, len, head_dim)
        if self.add_zero_attn:
            zeros = fa.zeros((N, self.num_heads, 1, self.head_dim), dtype=k.dtype,
                             device=fa.device_of(k))
            k, v = fa.concatenate([k, zeros], axis=2), fa.concatenate([v, zeros], axis=2)
            mask = None if mask is None else F.pad(mask, (0, 1))
        scores = fa.matmul(q, fa.swapaxes(k, -1, -2)) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        # as in PyTorch, the returned weights are the ones used: after dropout
        weights = F.dropout(F.softmax(scores, dim=-1), self.dropout, training=self.training)
        out = fa.matmul(weights, v)  # (N, H, L, head_dim)
        out = fa.reshape(fa.permute_dims(out, (2, 0, 1, 3)), (L, N, E))
        out = self.out_proj(out)
        if not batched:
            out = fa.squeeze(out, axis=1)
        elif self.batch_first:
            out = fa.swapaxes(out, 0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = fa.mean(weights, axis=1)
        return out, (weights if batched else fa.squeeze(weights, axis=0))

    def _heads(self, t):
        """``(len, N, E)`` -> ``(N, num_heads, len, head_dim)``."""
        n = t.shape[1]
        return fa.permute_dims(fa.reshape(t, (t.shape[0], n, self.num_heads, self.head_dim)),
                               (1, 2, 0, 3))

    def _merged_mask(self, attn_mask, key_padding_mask, N, L, S, dtype):
        """One additive mask broadcastable to the scores ``(N, num_heads, L, S)``, or None."""
        name = type(self).__name__
        mask = None
        if attn_mask is not None:
            expected = ((L, S), (N * self.num_heads, L, S))
            if tuple(attn_mask.shape) not in expected:
                raise ValueError(f"{name}: attn_mask must have shape {expected[0]} or "
                                 f"{expected[1]}, got {tuple(attn_mask.shape)}")
            mask = _additive(attn_mask, dtype)
            if mask.ndim == 3:
                mask = fa.reshape(mask, (N, self.num_heads, L, S))
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (N, S):
                raise ValueError(f"{name}: key_padding_mask must have shape {(N, S)} (batch, "
                                 f"source length), got {tuple(key_padding_mask.shape)}")
            kpm = fa.reshape(_additive(key_padding_mask, dtype), (N, 1, 1, S))
            mask = kpm if mask is None else mask + kpm
        return mask
