"""Recurrent layers: RNN, LSTM, GRU (multi-layer, bidirectional) and their cells.

Parameters follow PyTorch's names, shapes and gate order (LSTM: input, forget, cell,
output; GRU: reset, update, new) and are all initialised U(-1/sqrt(hidden), 1/sqrt(hidden)).
The time loop of each layer and direction is one ``fa.scan`` over the cell step
(``recurrent_layer``), so ``fa.jit`` of a recurrent network traces a single step and its
program does not grow with the sequence length.
"""

from __future__ import annotations

import math

import numpy as np

import fnarray as fa
from fnarray.nn import functional as F, init
from fnarray.nn.layers._util import check_features, check_shape, empty_parameter
from fnarray.nn.module import Module
from fnarray.nn import rnn_utils
from fnarray.nn.rnn_utils import PackedSequence

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _cell_step(mode, x, state, w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """One time step: ``state`` is h, or (h, c) for LSTM; returns the new state
    (``w_hr`` projects an LSTM's hidden state, ``proj_size``)."""
    h = state[0] if mode == "LSTM" else state
    gi = F.linear(x, w_ih, b_ih)
    gh = F.linear(h, w_hh, b_hh)
    if mode == "RNN_TANH":
        return fa.tanh(gi + gh)
    if mode == "RNN_RELU":
        return F.relu(gi + gh)
    if mode == "LSTM":
        i, f, g, o = fa.split(gi + gh, 4, axis=-1)
        c = fa.sigmoid(f) * state[1] + fa.sigmoid(i) * fa.tanh(g)
        h = fa.sigmoid(o) * fa.tanh(c)
        return (h if w_hr is None else F.linear(h, w_hr)), c
    ir, iz, in_ = fa.split(gi, 3, axis=-1)
    hr, hz, hn = fa.split(gh, 3, axis=-1)
    r, z = fa.sigmoid(ir + hr), fa.sigmoid(iz + hz)
    n = fa.tanh(in_ + r * hn)
    return (1 - z) * n + z * h


def recurrent_layer(mode: str, x, state, w_ih, w_hh, b_ih=None, b_hh=None,
                    reverse: bool = False, w_hr=None, mask=None):
    """One layer and direction of a recurrent network, the functional form of the modules.

    ``mode`` is ``"RNN_TANH"``, ``"RNN_RELU"``, ``"LSTM"`` or ``"GRU"``; ``x`` is
    ``(T, N, F)``; ``state`` is ``h`` (or ``(h, c)`` for LSTM) of shape ``(N, H)``.
    Returns ``(outputs (T, N, H), final_state)``; ``reverse=True`` runs from the last step
    to the first (the backward direction of a bidirectional layer).  ``w_hr`` is an LSTM's
    projection (``proj_size``).  ``mask`` (``(T, N)`` bool) marks the valid steps of
    variable-length sequences: elsewhere the state is carried unchanged and the output is
    0, so each final state is the one after the sequence's last valid step (its first,
    with ``reverse``), as for PyTorch's packed sequences.
    """
    def step(carry, xs):
        x_t, m_t = xs if mask is not None else (xs, None)
        new = _cell_step(mode, x_t, carry, w_ih, w_hh, b_ih, b_hh, w_hr)
        if m_t is not None:
            keep = fa.expand_dims(m_t, -1)
            new = (tuple(fa.where(keep, a, b) for a, b in zip(new, carry)) if mode == "LSTM"
                   else fa.where(keep, new, carry))
        out = new[0] if mode == "LSTM" else new
        if m_t is not None:
            out = fa.where(keep, out, fa.zeros((), dtype=out.dtype))
        return new, out

    final, outputs = fa.scan(step, state, x if mask is None else (x, mask), reverse=reverse)
    return outputs, final


class _RNNBase(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None):
        super().__init__()
        if not 0 <= dropout <= 1:
            raise ValueError(f"{type(self).__name__}: dropout should be in [0, 1], got {dropout}")
        _check_proj_size(self.mode, proj_size, hidden_size)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        gates = _GATES[self.mode] * hidden_size
        real_hidden = proj_size or hidden_size  # the size of h (and of each output)
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[:2 if bidirectional else 1]:
                n_in = input_size if layer == 0 else real_hidden * (2 if bidirectional else 1)
                self.register_parameter(f"weight_ih_l{layer}{suffix}",
                                        empty_parameter((gates, n_in), dtype, device))
                self.register_parameter(f"weight_hh_l{layer}{suffix}",
                                        empty_parameter((gates, real_hidden), dtype, device))
                if bias:
                    self.register_parameter(f"bias_ih_l{layer}{suffix}",
                                            empty_parameter((gates,), dtype, device))
                    self.register_parameter(f"bias_hh_l{layer}{suffix}",
                                            empty_parameter((gates,), dtype, device))
                if proj_size:
                    self.register_parameter(f"weight_hr_l{layer}{suffix}", empty_parameter(
                        (proj_size, hidden_size), dtype, device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _weights(self, layer: int, suffix: str):
        get = lambda n: getattr(self, f"{n}_l{layer}{suffix}") if self.bias or n.startswith("w") else None
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _projection(self, layer: int, suffix: str):
        return getattr(self, f"weight_hr_l{layer}{suffix}") if self.proj_size else None

    def _state_shape(self, batch, size) -> tuple:
        n = self.num_layers * (2 if self.bidirectional else 1)
        return (n, size) if batch is None else (n, batch, size)

    def _zeros(self, x, batch, size):
        return fa.zeros(self._state_shape(batch, size), dtype=x.dtype, device=fa.device_of(x))

    def forward(self, input, hx=None):
        """``input``: ``(T, N, F)`` (``(N, T, F)`` with ``batch_first``), unbatched
        ``(T, F)``, or a ``PackedSequence`` (then the output is packed the same way and
        each final state comes from its sequence's last valid step)."""
        packed = isinstance(input, PackedSequence)
        mask = None
        if packed:
            packing = input
            input, lengths = rnn_utils.pad_packed_sequence(packing)
            steps = np.arange(input.shape[0])[:, None]
            mask = fa.asarray(steps < np.asarray(lengths)[None, :])
        batched = input.ndim == 3
        if input.ndim not in (2, 3):
            raise ValueError(f"{self!r}: expected a 2-D (unbatched) or 3-D input, got shape "
                             f"{tuple(input.shape)}")
        check_features(self, input, -1, self.input_size, "features")
        x = input if batched else fa.expand_dims(input, 1)
        if batched and self.batch_first and not packed:
            x = fa.swapaxes(x, 0, 1)  # (T, N, F)
        lstm = self.mode == "LSTM"
        if hx is None:
            h0 = self._zeros(x, x.shape[1], self.proj_size or self.hidden_size)
            hx = (h0, self._zeros(x, x.shape[1], self.hidden_size)) if lstm else h0
        else:
            self._check_hidden(hx, x.shape[1] if batched else None)
            if not batched:
                hx = tuple(fa.expand_dims(h, 1) for h in hx) if lstm else fa.expand_dims(hx, 1)
        dirs = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(("", "_reverse")[:dirs]):
                k = layer * dirs + d
                state = (hx[0][k], hx[1][k]) if lstm else hx[k]
                seq, state = recurrent_layer(self.mode, x, state, *self._weights(layer, suffix),
                                             reverse=bool(d),
                                             w_hr=self._projection(layer, suffix), mask=mask)
                outs.append(seq)
                h_n.append(state[0] if lstm else state)
                if lstm:
                    c_n.append(state[1])
            x = outs[0] if dirs == 1 else fa.concatenate(outs, axis=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout)
        out = x
        if packed:
            rows = rnn_utils.packed_positions(np.asarray(packing.batch_sizes).astype(np.int64),
                                              rnn_utils.order_of(packing), x.shape[1])
            flat = fa.reshape(out, (-1, out.shape[-1]))
            out = packing._replace(data=flat[fa.asarray(rows)])
        elif batched and self.batch_first:
            out = fa.swapaxes(out, 0, 1)
        h = fa.stack(h_n)
        if not batched:
            out, h = fa.squeeze(out, axis=1), fa.squeeze(h, axis=1)
        if lstm:
            c = fa.stack(c_n)
            return out, (h, c if batched else fa.squeeze(c, axis=1))
        return out, h

    def _check_hidden(self, hx, batch) -> None:
        """``hx`` (and ``c_0`` for LSTM) must be (layers * directions, [N,] hidden_size)
        (``h_0`` has ``proj_size`` features when the LSTM projects)."""
        shape = self._state_shape(batch, self.proj_size or self.hidden_size)
        if self.mode == "LSTM":
            check_shape(self, hx[0], shape, "h_0")
            check_shape(self, hx[1], self._state_shape(batch, self.hidden_size), "c_0")
        else:
            check_shape(self, hx, shape, "hx")

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def _check_proj_size(mode: str, proj_size: int, hidden_size: int) -> None:
    if not isinstance(proj_size, int) or proj_size < 0:
        raise ValueError(f"proj_size should be a positive integer or zero to disable "
                         f"projections, got {proj_size!r}")
    if proj_size and mode != "LSTM":
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    if proj_size and proj_size >= hidden_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size (got proj_size="
                         f"{proj_size}, hidden_size={hidden_size})")


class RNN(_RNNBase):
    """Elman RNN: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu)."""

    def __init__(self, *args, nonlinearity: str = "tanh", **kwargs):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; use 'tanh' or 'relu'")
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        self.nonlinearity = nonlinearity
        super().__init__(*args, **kwargs)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (", nonlinearity=relu" if self.nonlinearity == "relu" else "")


class LSTM(_RNNBase):
    """Long short-term memory; returns ``output, (h_n, c_n)``."""

    mode = "LSTM"


class GRU(_RNNBase):
    """Gated recurrent unit."""

    mode = "GRU"


class _CellBase(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gates = _GATES[self.mode] * hidden_size
        self.weight_ih = empty_parameter((gates, input_size), dtype, device)
        self.weight_hh = empty_parameter((gates, hidden_size), dtype, device)
        if bias:
            self.bias_ih = empty_parameter((gates,), dtype, device)
            self.bias_hh = empty_parameter((gates,), dtype, device)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def forward(self, input, hx=None):
        check_features(self, input, -1, self.input_size, "features")
        shape = tuple(input.shape[:-1]) + (self.hidden_size,)
        if hx is None:
            z = fa.zeros(shape, dtype=input.dtype, device=fa.device_of(input))
            hx = (z, z) if self.mode == "LSTM" else z
        elif self.mode == "LSTM":
            check_shape(self, hx[0], shape, "h_0")
            check_shape(self, hx[1], shape, "c_0")
        else:
            check_shape(self, hx, shape, "hx")
        return _cell_step(self.mode, input, hx, self.weight_ih, self.weight_hh, self.bias_ih,
                          self.bias_hh)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"


class RNNCell(_CellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, bias, device, dtype)


class LSTMCell(_CellBase):
    mode = "LSTM"


class GRUCell(_CellBase):
    mode = "GRU"
