"""``nn.utils.rnn``: variable-length batches for the recurrent layers.

``pad_sequence`` stacks sequences of different lengths with padding; a ``PackedSequence``
stores only the valid steps, time-major, sequences sorted by decreasing length:
``data`` holds step 0 of every sequence, then step 1 of those still running, ...;
``batch_sizes[t]`` counts the sequences running at step ``t``.  ``sorted_indices`` maps
sorted position to batch position (None when the input was already sorted).

Packing and unpacking are one gather and one scatter at host-computed positions, so
gradients flow through them; ``RNN``/``LSTM``/``GRU`` take a ``PackedSequence`` and return
one (see ``layers.rnn``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import fnarray as fa
from fnarray import _interop


class PackedSequence(NamedTuple):
    """A packed batch of variable-length sequences (see the module docstring)."""

    data: object
    batch_sizes: object
    sorted_indices: object = None
    unsorted_indices: object = None

    def to(self, *args, **kwargs) -> PackedSequence:
        """The same packing with ``data`` moved/converted by ``data.to(...)``."""
        return self._replace(data=self.data.to(*args, **kwargs))

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    @property
    def is_cuda(self) -> bool:
        return "cuda" in str(fa.device_of(self.data))


def _host_ints(x) -> np.ndarray:
    if hasattr(x, "detach") and callable(x.detach):
        x = x.detach()
    return np.asarray(x).astype(np.int64).reshape(-1)


def _int_tensor(values: np.ndarray):
    return _interop.from_numpy(np.ascontiguousarray(values.astype(np.int64)), None,
                               as_tensor=True)


def packed_positions(batch_sizes: np.ndarray, order: np.ndarray, n: int) -> np.ndarray:
    """Rows of a time-major ``(T * n, ...)`` padded batch (original batch order) that the
    packed ``data`` rows come from: step-major, then sorted position."""
    return np.concatenate([t * n + order[:b] for t, b in enumerate(batch_sizes)]) \
        if len(batch_sizes) else np.zeros(0, np.int64)


def packed_lengths(batch_sizes: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Each sequence's length, in original batch order."""
    n = int(batch_sizes[0]) if len(batch_sizes) else 0
    sorted_lengths = (batch_sizes[None, :] > np.arange(n)[:, None]).sum(axis=1)
    lengths = np.empty(n, np.int64)
    lengths[order] = sorted_lengths
    return lengths


def order_of(packed: PackedSequence) -> np.ndarray:
    """Batch position of each sorted position (the identity when already sorted)."""
    n = int(_host_ints(packed.batch_sizes)[0])
    return np.arange(n) if packed.sorted_indices is None else \
        _host_ints(packed.sorted_indices)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right"):
    """Stack sequences ``(L_i, *)`` into ``(T, B, *)`` (``(B, T, *)`` with
    ``batch_first``), padding each to the longest with ``padding_value``."""
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got "
                         f"{padding_side!r}")
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    trailing = {tuple(s.shape[1:]) for s in sequences}
    if len(trailing) != 1:
        raise RuntimeError(f"pad_sequence: the sequences' trailing dimensions differ: "
                           f"{sorted(trailing)}")
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        extra = longest - s.shape[0]
        widths = ((extra, 0) if padding_side == "left" else (0, extra),) + \
            ((0, 0),) * (s.ndim - 1)
        padded.append(fa.pad(s, widths, constant_values=padding_value) if extra else s)
    return fa.stack(padded, axis=0 if batch_first else 1)


def pack_padded_sequence(input, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded ``(T, B, *)`` batch (``(B, T, *)`` with ``batch_first``) whose
    sequence ``b`` has ``lengths[b]`` valid steps."""
    lengths = _host_ints(lengths)
    x = fa.swapaxes(input, 0, 1) if batch_first else input
    t_max, n = x.shape[0], x.shape[1]
    if len(lengths) != n:
        raise ValueError(f"pack_padded_sequence: expected {n} lengths (the batch size of "
                         f"input {tuple(input.shape)}, batch_first={batch_first}), got "
                         f"{len(lengths)}")
    if (lengths <= 0).any():
        raise RuntimeError("Length of all samples has to be greater than 0, but found an "
                           "element in 'lengths' that is <= 0")
    if lengths.max() > t_max:
        raise RuntimeError(f"pack_padded_sequence: a length of {int(lengths.max())} exceeds "
                           f"the {t_max} steps of input {tuple(input.shape)}")
    if enforce_sorted:
        if (np.diff(lengths) > 0).any():
            raise RuntimeError("`lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` "
                               "to pack_padded_sequence and/or pack_sequence to sidestep "
                               "this requirement if you do not need ONNX exportability.")
        order, sorted_idx, unsorted_idx = np.arange(n), None, None
    else:
        order = np.argsort(-lengths, kind="stable")
        sorted_idx, unsorted_idx = _int_tensor(order), _int_tensor(np.argsort(order))
    batch_sizes = (lengths[order][None, :] > np.arange(int(lengths.max()))[:, None]).sum(1)
    rows = packed_positions(batch_sizes, order, n)
    flat = fa.reshape(x, (t_max * n,) + tuple(x.shape[2:]))
    return PackedSequence(flat[fa.asarray(rows)], _int_tensor(batch_sizes), sorted_idx,
                          unsorted_idx)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):
    """``(padded, lengths)``: the inverse of ``pack_padded_sequence`` (original batch
    order); ``total_length`` pads the time axis further."""
    batch_sizes = _host_ints(sequence.batch_sizes)
    order = order_of(sequence)
    n, t_max = int(batch_sizes[0]), len(batch_sizes)
    if total_length is not None:
        if total_length < t_max:
            raise ValueError(f"Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and "
                             f"max sequence length being {t_max}")
        t_max = total_length
    data = sequence.data
    rows = packed_positions(batch_sizes, order, n)
    flat = fa.full((t_max * n,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype,
                   device=fa.device_of(data))
    flat = flat.at[fa.asarray(rows)].set(data)
    padded = fa.reshape(flat, (t_max, n) + tuple(data.shape[1:]))
    if batch_first:
        padded = fa.swapaxes(padded, 0, 1)
    return padded, _int_tensor(packed_lengths(batch_sizes, order))


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences ``(L_i, *)`` (sorted by decreasing length unless
    ``enforce_sorted=False``)."""
    lengths = np.array([s.shape[0] for s in sequences], np.int64)
    return pack_padded_sequence(pad_sequence(sequences), lengths,
                                enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of sequences a ``PackedSequence`` holds, in original batch order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return [padded[i, :int(n)] for i, n in enumerate(_host_ints(lengths))]
