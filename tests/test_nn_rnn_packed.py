"""nn.utils.rnn (pad_sequence, pack_padded_sequence, pad_packed_sequence, pack_sequence,
PackedSequence) through RNN/LSTM/GRU, and LSTM(proj_size=) (issue 16).  Expected values
are PyTorch's documented examples and per-sequence runs of the same layer."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray.compat as torch
from fnarray import nn
from fnarray.nn.utils.rnn import (PackedSequence, pack_padded_sequence, pack_sequence,
                                  pad_packed_sequence, pad_sequence, unpack_sequence)


def _np(t):
    return np.asarray(t.detach())


def test_pack_sequence_documented_example():
    a, b, c = torch.tensor([1, 2, 3]), torch.tensor([4, 5]), torch.tensor([6])
    packed = pack_sequence([a, b, c])
    assert isinstance(packed, PackedSequence)
    np.testing.assert_array_equal(_np(packed.data), [1, 4, 6, 2, 5, 3])
    np.testing.assert_array_equal(_np(packed.batch_sizes), [3, 2, 1])
    assert packed.sorted_indices is None and packed.unsorted_indices is None
    assert [x.tolist() for x in unpack_sequence(packed)] == [[1, 2, 3], [4, 5], [6]]


def test_pack_padded_and_pad_packed_documented_example():
    seq = torch.tensor([[1, 2, 0], [3, 0, 0], [4, 5, 6]])
    packed = pack_padded_sequence(seq, [2, 1, 3], batch_first=True, enforce_sorted=False)
    np.testing.assert_array_equal(_np(packed.data), [4, 1, 3, 5, 2, 6])
    np.testing.assert_array_equal(_np(packed.batch_sizes), [3, 2, 1])
    np.testing.assert_array_equal(_np(packed.sorted_indices), [2, 0, 1])
    np.testing.assert_array_equal(_np(packed.unsorted_indices), [1, 2, 0])
    unpacked, lengths = pad_packed_sequence(packed, batch_first=True)
    np.testing.assert_array_equal(_np(unpacked), _np(seq))
    np.testing.assert_array_equal(_np(lengths), [2, 1, 3])
    assert lengths.dtype == torch.int64
    longer, _ = pad_packed_sequence(packed, total_length=5, padding_value=-1)
    assert tuple(longer.shape) == (5, 3) and _np(longer)[4].tolist() == [-1, -1, -1]


def test_pad_sequence_shapes_and_sides():
    a, b, c = torch.ones(25, 300), torch.ones(22, 300), torch.ones(15, 300)
    assert tuple(pad_sequence([a, b, c]).shape) == (25, 3, 300)
    assert tuple(pad_sequence([a, b, c], batch_first=True).shape) == (3, 25, 300)
    out = pad_sequence([torch.tensor([1, 2]), torch.tensor([3])], batch_first=True,
                       padding_value=9, padding_side="left")
    np.testing.assert_array_equal(_np(out), [[1, 2], [9, 3]])


def test_packing_errors_match_pytorch():
    x = torch.zeros(3, 2)
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        pack_padded_sequence(x, [1, 3])
    with pytest.raises(RuntimeError, match="has to be greater than 0"):
        pack_padded_sequence(x, [2, 0])
    packed = pack_padded_sequence(x, [3, 2])
    with pytest.raises(ValueError, match="total_length to be at least"):
        pad_packed_sequence(packed, total_length=2)


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_packed_input_matches_each_sequence_alone(cls):
    torch.manual_seed(0)
    rnn = cls(3, 5, num_layers=2, bidirectional=True)
    seqs = [torch.randn(n, 3) for n in (2, 5, 3)]
    packed = pack_sequence(seqs, enforce_sorted=False)
    out, state = rnn(packed)
    assert isinstance(out, PackedSequence)
    np.testing.assert_array_equal(_np(out.batch_sizes), _np(packed.batch_sizes))
    h_n = state[0] if cls is nn.LSTM else state
    padded, lengths = pad_packed_sequence(out, batch_first=True)
    assert lengths.tolist() == [2, 5, 3] and tuple(padded.shape) == (3, 5, 10)
    for i, s in enumerate(seqs):
        alone, alone_state = rnn(s[:, None])
        alone_h = alone_state[0] if cls is nn.LSTM else alone_state
        np.testing.assert_allclose(_np(padded)[i, :len(s)], _np(alone)[:, 0], atol=1e-6)
        np.testing.assert_allclose(_np(h_n)[:, i], _np(alone_h)[:, 0], atol=1e-6)
        assert not _np(padded)[i, len(s):].any()  # padding stays zero


def test_packed_gradients_and_initial_state_in_batch_order():
    torch.manual_seed(1)
    lstm = nn.LSTM(2, 4)
    seqs = [torch.randn(n, 2) for n in (3, 1, 2)]
    h0, c0 = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    out, (h, _) = lstm(pack_sequence(seqs, enforce_sorted=False), (h0, c0))
    for i, s in enumerate(seqs):
        _, (hi, _) = lstm(s[:, None], (h0[:, i:i + 1], c0[:, i:i + 1]))
        np.testing.assert_allclose(_np(h)[:, i], _np(hi)[:, 0], atol=1e-6)
    out.data.sum().backward()
    packed_grad = _np(lstm.weight_hh_l0.grad)
    lstm.zero_grad()
    total = sum(lstm(s[:, None], (h0[:, i:i + 1], c0[:, i:i + 1]))[0].sum()
                for i, s in enumerate(seqs))
    total.backward()
    np.testing.assert_allclose(packed_grad, _np(lstm.weight_hh_l0.grad), atol=1e-5)


def test_lstm_proj_size_parameters_and_shapes():
    lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
    assert repr(lstm) == "LSTM(4, 6, proj_size=3, num_layers=2, bidirectional=True)"
    shapes = {k: tuple(v.shape) for k, v in lstm.state_dict().items()}
    assert list(shapes)[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                "weight_hr_l0"]
    assert shapes["weight_hh_l0"] == (24, 3) and shapes["weight_hr_l0_reverse"] == (3, 6)
    assert shapes["weight_ih_l1"] == (24, 6)  # the next layer sees 2 directions x proj_size
    out, (h, c) = lstm(torch.randn(7, 2, 4))
    assert tuple(out.shape) == (7, 2, 6) and tuple(h.shape) == (4, 2, 3)
    assert tuple(c.shape) == (4, 2, 6)
    with pytest.raises(ValueError, match=r"expected h_0 of shape \(4, 2, 3\)"):
        lstm(torch.randn(7, 2, 4), (torch.zeros(4, 2, 6), torch.zeros(4, 2, 6)))


def test_lstm_proj_size_math():
    torch.manual_seed(2)
    lstm = nn.LSTM(3, 4, proj_size=2)
    x = torch.randn(5, 1, 3)
    out, (h_n, c_n) = lstm(x)
    w_ih, w_hh = _np(lstm.weight_ih_l0), _np(lstm.weight_hh_l0)
    b = _np(lstm.bias_ih_l0) + _np(lstm.bias_hh_l0)
    w_hr = _np(lstm.weight_hr_l0)
    h, c = np.zeros(2), np.zeros(4)
    sig = lambda v: 1 / (1 + np.exp(-v))
    for t in range(5):
        gates = w_ih @ _np(x)[t, 0] + w_hh @ h + b
        i, f, g, o = np.split(gates, 4)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = w_hr @ (sig(o) * np.tanh(c))
        np.testing.assert_allclose(_np(out)[t, 0], h, atol=1e-5)
    np.testing.assert_allclose(_np(c_n)[0, 0], c, atol=1e-5)


def test_proj_size_errors_match_pytorch():
    with pytest.raises(ValueError, match="only supported for LSTM"):
        nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="positive integer or zero"):
        nn.LSTM(3, 4, proj_size=-1)
