"""Shape manipulation: reshape, transpose, joins, splits, flips, tiling and padding."""

from __future__ import annotations

import numpy as np

from fnarray.api._convert import as_operand, promote
from fnarray.api.reductions import normalize_axes
from fnarray.core.shapes import ShapeError, broadcast_shapes
from fnarray.ops import shape as sh


def _axis(axis, ndim, op):
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, kept short
        return axis % ndim
    return normalize_axes(axis, ndim, op)[0]


def reshape(x, shape, copy=None, *, order: str = "C"):
    """``x`` with a new shape of the same size; one entry may be -1.

    ``order="C"`` reads and writes the elements in row-major order, ``order="F"`` in
    column-major order (NumPy's meanings).  ``order="A"`` depends on a memory layout that
    fnarray's immutable arrays do not expose, so it is refused, as in JAX.  ``copy`` is
    accepted for the Array API: arrays are immutable, so sharing memory is unobservable.
    """
    if order != "C":
        if order == "F":
            x = as_operand(x)
            rev = tuple(range(x.ndim))[::-1]
            flipped = reshape(permute_dims(x, rev), _shape_tuple(shape)[::-1])
            return permute_dims(flipped, tuple(range(flipped.ndim))[::-1])
        raise ValueError(f"reshape: order must be 'C' or 'F', got {order!r}"
                         + ("; 'A' depends on memory layout, which fnarray arrays do not "
                            "expose" if order == "A" else ""))
    x = as_operand(x)
    if type(shape) is not tuple or not all(type(s) is int for s in shape):
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if -1 in shape:
        known = 1
        for s in shape:
            if s != -1:
                known *= s
        if shape.count(-1) > 1 or (known == 0 or x.size % known) and x.size != 0:
            raise ShapeError(f"reshape: cannot reshape array of shape {x.shape} "
                             f"(size {x.size}) into shape {shape}")
        shape = tuple((x.size // known if known else 0) if s == -1 else s for s in shape)
    if x.shape == shape:
        return x
    n = 1
    for s in shape:
        n *= s
    if n != x.size:
        raise ShapeError(f"reshape: cannot reshape array of shape {x.shape} (size {x.size}) "
                         f"into shape {shape} (size {n}); the sizes must match")
    return sh.reshape.bind(x, shape=shape)


def ravel(x, order: str = "C"):
    """``x`` flattened to one axis, reading elements in ``order`` ('C' or 'F')."""
    if order not in ("C", "F"):
        raise ValueError(f"ravel: order must be 'C' or 'F', got {order!r}")
    return reshape(x, (-1,), order=order)


def _shape_tuple(shape) -> tuple:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def permute_dims(x, axes):
    x = as_operand(x)
    ndim = x.ndim
    wrap = max(ndim, 1)
    axes = tuple([int(a) % wrap for a in axes])
    identity = tuple(range(ndim))
    if axes == identity:
        return x
    if sorted(axes) != list(identity):
        raise ValueError(f"permute_dims: axes {axes} are not a permutation of the "
                         f"{ndim} axes of an array with shape {x.shape}")
    return sh.transpose.bind(x, perm=axes)


def transpose(x, axes=None):
    x = as_operand(x)
    return permute_dims(x, tuple(range(x.ndim - 1, -1, -1)) if axes is None else axes)


def matrix_transpose(x):
    x = as_operand(x)
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose: needs at least 2 dimensions, got shape {x.shape}")
    return swapaxes(x, -1, -2)


def swapaxes(x, axis1: int, axis2: int):
    x = as_operand(x)
    a, b = _axis(axis1, x.ndim, "swapaxes"), _axis(axis2, x.ndim, "swapaxes")
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return permute_dims(x, perm)


def moveaxis(x, source, destination):
    x = as_operand(x)
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination need the same number of axes")
    src = [_axis(s, x.ndim, "moveaxis") for s in src]
    dst = [_axis(d, x.ndim, "moveaxis") for d in dst]
    order = [i for i in range(x.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute_dims(x, order)


def squeeze(x, axis=None):
    x = as_operand(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axes(axis, x.ndim, "squeeze")
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: cannot remove axis {a} of size {x.shape[a]} "
                                 f"from an array with shape {x.shape}")
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def expand_dims(x, axis=0):
    """``x`` with length-1 axes inserted at ``axis`` (an int or a tuple): positions in the
    result, so a negative axis counts from the end of the result (``-1`` appends).  An axis
    outside ``[-N-1, N]`` (``N = x.ndim``, one axis) raises ``AxisError``, which is both the
    ``IndexError`` the Array API asks for and NumPy's ``ValueError``."""
    x = as_operand(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    nd = x.ndim + len(axes)
    for a in axes:
        if not -nd <= a < nd:
            raise np.exceptions.AxisError(
                f"expand_dims: axis {a} is out of bounds for the {nd}-d result of inserting "
                f"{len(axes)} axis(es) into an array of shape {x.shape}; use an axis in "
                f"[{-nd}, {nd - 1}]")
    axes = normalize_axes(axes, nd, "expand_dims")
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return reshape(x, tuple(shape))


def broadcast_to(x, shape):
    x = as_operand(x)
    shape = tuple(int(s) for s in shape) if not isinstance(shape, int) else (shape,)
    if x.shape == shape:
        return x
    if broadcast_shapes(x.shape, shape, op="broadcast_to") != shape:
        raise ShapeError(f"broadcast_to: cannot broadcast an array of shape {x.shape} "
                         f"to shape {shape}")
    return sh.broadcast_to.bind(x, shape=shape)


def broadcast_arrays(*arrays):
    arrays = [as_operand(a) for a in arrays]
    shape = broadcast_shapes(*(a.shape for a in arrays), op="broadcast_arrays")
    return [broadcast_to(a, shape) for a in arrays]


def concatenate(arrays, axis=0):
    """Join arrays along an existing axis (``axis=None`` flattens them first)."""
    arrays = list(arrays)
    if not arrays:
        raise ValueError("concatenate: need at least one array")
    arrays = promote("concatenate", *arrays) if len(arrays) > 1 else [as_operand(arrays[0])]
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    nd = arrays[0].ndim
    if nd == 0:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated; use stack")
    ax = _axis(axis, nd, "concatenate")
    for a in arrays[1:]:
        others_match = all(d1 == d2 for i, (d1, d2) in enumerate(zip(a.shape, arrays[0].shape))
                           if i != ax)
        if a.ndim != nd or not others_match:
            raise ShapeError(
                f"concatenate: all input shapes must match except along axis {ax}; got "
                + ", ".join(str(b.shape) for b in arrays))
    if len(arrays) == 1:
        return arrays[0]
    return sh.concatenate.bind(*arrays, axis=ax)


concat = concatenate


def stack(arrays, axis=0):
    arrays = list(arrays)
    if not arrays:
        raise ValueError("stack: need at least one array")
    arrays = [as_operand(a) for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ShapeError(f"stack: all input arrays must have the same shape, got "
                         f"{[a.shape for a in arrays]}")
    ax = _axis(axis, arrays[0].ndim + 1, "stack")
    return concatenate([expand_dims(a, ax) for a in arrays], axis=ax)


def atleast_1d(x):
    x = as_operand(x)
    return reshape(x, (1,)) if x.ndim == 0 else x


def atleast_2d(x):
    x = as_operand(x)
    return reshape(x, (1,) * (2 - x.ndim) + x.shape) if x.ndim < 2 else x


def atleast_3d(x):
    x = as_operand(x)
    if x.ndim == 0:
        return reshape(x, (1, 1, 1))
    if x.ndim == 1:
        return reshape(x, (1, x.shape[0], 1))
    if x.ndim == 2:
        return expand_dims(x, -1)
    return x


def hstack(arrays):
    arrays = [atleast_1d(a) for a in arrays]
    return concatenate(arrays, axis=0 if arrays[0].ndim == 1 else 1)


def vstack(arrays):
    return concatenate([atleast_2d(a) for a in arrays], axis=0)


def dstack(arrays):
    return concatenate([atleast_3d(a) for a in arrays], axis=2)


def column_stack(arrays):
    return concatenate([reshape(a, (-1, 1)) if as_operand(a).ndim < 2 else a for a in arrays], axis=1)


def unstack(x, axis=0):
    x = as_operand(x)
    ax = _axis(axis, x.ndim, "unstack")
    return tuple(take_slice(x, ax, i, i + 1, squeeze_axis=True) for i in range(x.shape[ax]))


def take_slice(x, axis, start, stop, step=1, squeeze_axis=False):
    """``x[..., start:stop:step, ...]`` along one axis (``step > 0``)."""
    starts = [0] * x.ndim
    limits = list(x.shape)
    strides = [1] * x.ndim
    starts[axis], limits[axis], strides[axis] = start, stop, step
    out = sh.slice_.bind(x, starts=tuple(starts), limits=tuple(limits), strides=tuple(strides))
    return squeeze(out, axis) if squeeze_axis else out


def split(x, indices_or_sections, axis=0):
    """Split into equal sections (an int) or at the given indices (a sequence)."""
    x = as_operand(x)
    ax = _axis(axis, x.ndim, "split")
    n = x.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            raise ValueError(f"split: array of size {n} along axis {ax} cannot be split into "
                             f"{k} equal sections; use array_split or pass split indices")
        bounds = [i * (n // k) for i in range(k + 1)]
    else:
        bounds = [0, *[min(max(int(i), 0), n) for i in indices_or_sections], n]
    return [take_slice(x, ax, a, max(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]


def array_split(x, sections: int, axis=0):
    x = as_operand(x)
    ax = _axis(axis, x.ndim, "array_split")
    n = x.shape[ax]
    q, r = divmod(n, sections)
    sizes = [q + 1] * r + [q] * (sections - r)
    return split(x, np.cumsum(sizes)[:-1].tolist(), axis=ax)


def flip(x, axis=None):
    x = as_operand(x)
    axes = normalize_axes(axis, x.ndim, "flip")
    return sh.rev.bind(x, axes=axes) if axes else x


def fliplr(x):
    return flip(x, 1)


def flipud(x):
    return flip(x, 0)


def roll(x, shift, axis=None):
    """Shift elements cyclically along ``axis`` (the flattened array when None)."""
    x = as_operand(x)
    if axis is None:
        return reshape(roll(ravel(x), shift, 0), x.shape)
    shifts = (shift,) if isinstance(shift, int) else tuple(shift)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    for s, a in zip(shifts, axes):
        a = _axis(a, x.ndim, "roll")
        n = x.shape[a]
        if n == 0:
            continue
        s = int(s) % n
        if s:
            x = concatenate([take_slice(x, a, n - s, n), take_slice(x, a, 0, n - s)], axis=a)
    return x


def tile(x, reps):
    x = as_operand(x)
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    nd = max(x.ndim, len(reps))
    reps = (1,) * (nd - len(reps)) + reps
    x = reshape(x, (1,) * (nd - x.ndim) + x.shape)
    inter = []
    for d in x.shape:
        inter += [1, d]
    x = reshape(x, tuple(inter))
    target = []
    for r, d in zip(reps, x.shape[1::2]):
        target += [r, d]
    return reshape(broadcast_to(x, tuple(target)), tuple(r * d for r, d in zip(reps, x.shape[1::2])))


def repeat(x, repeats, axis=None):
    """Repeat each element ``repeats`` times (an int, or one count per element)."""
    x = as_operand(x)
    if axis is None:
        x, axis = ravel(x), 0
    ax = _axis(axis, x.ndim, "repeat")
    if isinstance(repeats, (int, np.integer)):
        r = int(repeats)
        y = expand_dims(x, ax + 1)
        shape = list(y.shape)
        shape[ax + 1] = r
        y = broadcast_to(y, tuple(shape))
        shape = list(x.shape)
        shape[ax] *= r
        return reshape(y, tuple(shape))
    from fnarray.api.indexing import take
    idx = np.repeat(np.arange(x.shape[ax]), np.asarray(repeats))
    return take(x, idx, axis=ax)


def pad(x, pad_width, mode: str = "constant", constant_values=0):
    """NumPy's ``pad`` for modes constant, edge, reflect, symmetric and wrap."""
    from fnarray.api.elementwise import where
    from fnarray.api.indexing import take
    x = as_operand(x)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2)).tolist()
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        raise ValueError(f"pad: widths must be non-negative, got {pad_width}")
    if mode == "constant":
        out = sh.pad.bind(x, config=tuple((lo, hi, 0) for lo, hi in widths))
        if isinstance(constant_values, (int, float)) and constant_values == 0:
            return out
        inside = sh.pad.bind(_ones_bool(x), config=tuple((lo, hi, 0) for lo, hi in widths))
        return where(inside, out, constant_values)
    if mode not in ("edge", "reflect", "symmetric", "wrap"):
        raise ValueError(f"pad: unsupported mode {mode!r}; use constant, edge, reflect, "
                         f"symmetric or wrap")
    for ax, (lo, hi) in enumerate(widths):
        if lo or hi:
            idx = np.pad(np.arange(x.shape[ax]), (lo, hi), mode=mode)
            x = take(x, idx, axis=ax)
    return x


def _ones_bool(x):
    from fnarray.api.creation import ones
    from fnarray.api._convert import device_of
    return ones(x.shape, dtype=bool, device=device_of(x))
