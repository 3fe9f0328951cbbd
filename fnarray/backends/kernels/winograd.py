"""Compiled tile transforms of the Winograd F(2x2, 3x3) correlation
(:mod:`fnarray.ops.conv_winograd`).

A 3x3, stride-1 correlation computes each 2x2 block of output cells ("tile") of one output
channel from the 4x4 block of input cells under it, channel by channel:
``Y = A^T [sum_c (G g_c G^T) * (B^T d_c B)] A`` (``*`` elementwise), with

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

(and ``G``, the weight's, in the caller).  The sum over channels of each of the 16 entries
is one matrix product, which the caller runs through BLAS; these kernels are the two
transforms around it:

* :func:`input_tiles` writes ``B^T d B`` of every tile of a chunk of samples, laid out
  ``(16, C, tiles)``: each of the 16 entries is a row of tiles per channel, so the product
  reads it as a transposed ``(tiles, C)`` operand and the tile loop here writes 16
  contiguous streams;
* :func:`output_tiles` takes the products ``(16, tiles, O)`` and writes ``A^T m A`` (plus
  an optional bias per output channel) into the C-ordered ``(N, O, H, W)`` result.

Zero padding (any low padding, negative included, and any output size: an odd one pads the
last tile and drops its extra cells) is handled by copying each tile row's four input rows
into a zeroed row buffer first, so the transform itself reads without bounds checks.  The
transforms' entries are 0 and +-1 (the weight's ``G`` adds +-1/2), so they add and
subtract only; results agree with a direct correlation to float rounding.  Each call is
serial and touches only its chunk's samples and the buffers it is given, so the driver can
run several chunks at once on its own threads (the kernels release the GIL); a numba
parallel loop here measured slower, next to OpenBLAS's busy-waiting threads (see
:mod:`fnarray.backends.kernels.conv`).
"""

from __future__ import annotations

import numpy as np

from fnarray.backends.kernels import compiled

_U = np.uintp  # an index known to be non-negative


@compiled
def input_tiles(x, v, total, start, padding, tiles):
    """``v[4i + j, t * C + c] = (B^T d B)[i, j]`` for the tiles ``t = (s * th + ti) * tw +
    tj`` of the ``total // (th * tw)`` samples ``start + s`` of a chunk, ``d`` the 4x4
    input block at rows ``2 ti - padding[0]`` and columns ``2 tj - padding[1]`` of ``x[start
    + s, c]`` (zero off the input).  ``x`` is a C-ordered ``(N, C, H, W)``; ``v`` a C-ordered
    ``(16, stride)`` buffer whose rows begin with a ``(total, C)`` matrix (a stride a little
    past it keeps the 16 streams off one cache set); ``tiles = (th, tw)``.

    Each sample is first copied channel-last onto a zeroed padded grid whose rows hold the
    even columns, then the odd ones (the one strided pass).  Every step after that is a
    loop along contiguous values, which vectorises: ``B^T`` combines the four rows under a
    tile row (whole rows at once), and ``B`` gives each entry for the whole tile row in one
    loop, since tile ``tj`` reads even (odd) columns ``tj`` and ``tj + 1``, ``C`` values
    apart.  Loops read at most three streams (each more costs LLVM a run-time aliasing
    check, and past its limit the loop stays scalar), and indices are unsigned (``_U``: a
    signed one costs a wraparound test per element, which keeps the loops scalar)."""
    _, c_, h_, w_ = x.shape
    th, tw = tiles
    p0, p1 = padding
    m = total // (th * tw)
    gh, half = 2 * th + 2, tw + 1  # the padded grid a sample's tiles read, its half rows
    cu = _U(c_)
    span = _U(2 * half) * cu  # one grid row: [parity, column // 2, channel]
    odd = _U(half) * cu  # where a row's odd columns start
    grid = np.zeros(gh * 2 * half * c_, dtype=v.dtype)
    rows = np.empty(4 * 2 * half * c_, dtype=v.dtype)  # B^T of one tile row, rows' layout
    y0, y1 = max(0, p0), min(gh, h_ + p0)  # grid rows [y0, y1) and columns [x0, x1) are
    x0, x1 = max(0, p1), min(2 * half, w_ + p1)  # input cells, the rest stay zero
    src = x.reshape(x.size)
    dst = v.reshape(v.size)
    step = _U(v.shape[1])  # between two entries
    run = _U(tw) * cu  # one entry of a tile row's tiles
    for s in range(m):
        for c in range(c_):
            plane = ((start + s) * c_ + c) * h_ * w_
            for gy in range(y0, y1):
                row = _U(gy) * span + _U(c)
                frm = _U(plane + (gy - p0) * w_ - p1)
                for col in range(_U(x0), _U(max(x1, x0))):
                    grid[row + (col & _U(1)) * odd + (col >> _U(1)) * cu] = src[frm + col]
        for ti in range(th):
            r0 = _U(2 * ti) * span
            r1, r2, r3 = r0 + span, r0 + _U(2) * span, r0 + _U(3) * span
            q = _U(0)
            for j in range(span):
                rows[j] = grid[r0 + j] - grid[r2 + j]
            q += span
            for j in range(span):
                rows[q + j] = grid[r1 + j] + grid[r2 + j]
            q += span
            for j in range(span):
                rows[q + j] = grid[r2 + j] - grid[r1 + j]
            q += span
            for j in range(span):
                rows[q + j] = grid[r1 + j] - grid[r3 + j]
            base = _U((s * th + ti) * tw) * cu
            for i in range(4):
                ev = _U(i) * span  # even columns tj (and tj + 1 at + C)
                od = ev + odd
                at = _U(4 * i) * step + base
                for f in range(run):
                    dst[at + f] = rows[ev + f] - rows[ev + cu + f]
                at += step
                for f in range(run):
                    dst[at + f] = rows[od + f] + rows[ev + cu + f]
                at += step
                for f in range(run):
                    dst[at + f] = rows[ev + cu + f] - rows[od + f]
                at += step
                for f in range(run):
                    dst[at + f] = rows[od + f] - rows[od + cu + f]


@compiled
def output_tiles(mm, total, y, start, bias):
    """``y[start + s, o, 2 ti + a, 2 tj + b] = (A^T m A)[a, b] + bias[o]`` for the ``total
    // (th * tw)`` samples of a chunk, ``m[i, j] = mm[4i + j, t * O + o]`` with ``t = (s *
    th + ti) * tw + tj`` (cells past ``y``'s last row or column dropped): ``mm`` is a
    C-ordered ``(16, stride)`` buffer whose rows begin with a ``(total, O)`` matrix, ``y``
    the C-ordered ``(N, O, H, W)`` result (only the chunk's samples are written) and
    ``bias`` ``(O,)``, or empty for none.

    A tile row's products are contiguous runs of ``tw * O`` values per entry, so ``A^T``
    and ``A`` are loops along them (three streams each, unsigned indices: they vectorise,
    see :func:`input_tiles`) into a buffer holding a sample's cells channel-last; the bias
    is added as that buffer is written out channel-major, in memory order (written tile
    row by tile row instead, the 64 planes' scattered rows of conv2 took 4x as long)."""
    _, o_, h_, w_ = y.shape
    th, tw = (h_ + 1) // 2, (w_ + 1) // 2
    m = total // (th * tw)
    ou = _U(o_)
    span = _U(tw) * ou
    part = np.empty(8 * tw * o_, dtype=y.dtype)  # A^T m: [a, j, tile, channel]
    z = np.empty(th * 4 * tw * o_, dtype=y.dtype)  # A^T m A: [ti, a, b, tj, channel]
    b = np.zeros(o_, dtype=y.dtype)
    if bias.size:
        b[:] = bias
    src = mm.reshape(mm.size)
    dst = y.reshape(y.size)
    step = _U(mm.shape[1])  # between two entries
    for s in range(m):
        n = start + s
        for ti in range(th):
            base = _U((s * th + ti) * tw) * ou
            for j in range(4):
                e0 = _U(j) * step + base  # entries j, 4 + j, 8 + j, 12 + j
                e1, e2, e3 = e0 + _U(4) * step, e0 + _U(8) * step, e0 + _U(12) * step
                at0, at1 = _U(j) * span, _U(4 + j) * span
                for f in range(span):
                    part[at0 + f] = src[e0 + f] + src[e1 + f] + src[e2 + f]
                for f in range(span):
                    part[at1 + f] = src[e1 + f] - src[e2 + f] - src[e3 + f]
            for a in range(2):
                q = _U(4 * a) * span
                q1, q2, q3 = q + span, q + _U(2) * span, q + _U(3) * span
                at = _U(4 * ti + 2 * a) * span
                for f in range(span):
                    z[at + f] = part[q + f] + part[q1 + f] + part[q2 + f]
                at += span
                for f in range(span):
                    z[at + f] = part[q1 + f] - part[q2 + f] - part[q3 + f]
        for o in range(o_):  # written in memory order (a sequential stream)
            bo = b[o]
            for r in range(h_):
                row = _U(((n * o_ + o) * h_ + r) * w_)
                even = _U(2 * r) * span + _U(o)  # [ti, a] = [r // 2, r % 2]
                odd = even + span
                for tj in range(_U(w_ // 2)):
                    dst[row + _U(2) * tj] = z[even + tj * ou] + bo
                    dst[row + _U(2) * tj + _U(1)] = z[odd + tj * ou] + bo
                if w_ % 2:
                    dst[row + _U(w_ - 1)] = z[even + _U(w_ // 2) * ou] + bo


@compiled
def cotangent_tiles(ct, mm, total, start):
    """The adjoint of :func:`output_tiles` (without the bias): ``mm[4i + j, t * O + o] = (A
    dY A^T)[i, j]`` for the tiles ``t = (s * th + ti) * tw + tj`` of the ``total // (th *
    tw)`` samples ``start + s`` of a chunk, ``dY`` the 2x2 block of ``ct[start + s, o]`` at
    rows ``2 ti`` and columns ``2 tj`` (zero past its last row or column).  ``ct`` is the
    C-ordered ``(N, O, H, W)`` output cotangent, ``mm`` a C-ordered ``(16, stride)`` buffer
    whose rows begin with a ``(total, O)`` matrix.

    As in :func:`input_tiles`: each sample is copied channel-last onto a zeroed grid
    (``H``, ``W`` rounded up to even) whose rows hold the even columns, then the odd ones;
    ``A`` combines a tile row's two rows and ``A^T`` the columns of all its tiles at once,
    in loops along contiguous values."""
    _, o_, h_, w_ = ct.shape
    th, tw = (h_ + 1) // 2, (w_ + 1) // 2
    m = total // (th * tw)
    ou = _U(o_)
    run = _U(tw) * ou  # one parity of a grid row: [column // 2, channel]
    span = _U(2) * run
    grid = np.zeros(2 * th * 2 * tw * o_, dtype=mm.dtype)
    rows = np.empty(4 * 2 * tw * o_, dtype=mm.dtype)  # A dY of one tile row, grid's layout
    src = ct.reshape(ct.size)
    dst = mm.reshape(mm.size)
    step = _U(mm.shape[1])  # between two entries
    for s in range(m):
        for o in range(o_):
            plane = _U(((start + s) * o_ + o) * h_ * w_)
            for r in range(h_):
                row = _U(r) * span + _U(o)
                frm = plane + _U(r * w_)
                for col in range(_U(w_)):
                    grid[row + (col & _U(1)) * run + (col >> _U(1)) * ou] = src[frm + col]
        for ti in range(th):
            r0 = _U(2 * ti) * span
            r1 = r0 + span
            for f in range(span):
                rows[f] = grid[r0 + f]
            q = span
            for f in range(span):
                rows[q + f] = grid[r0 + f] + grid[r1 + f]
            q += span
            for f in range(span):
                rows[q + f] = grid[r0 + f] - grid[r1 + f]
            q += span
            for f in range(span):
                rows[q + f] = -grid[r1 + f]
            base = _U((s * th + ti) * tw) * ou
            for i in range(4):
                ev = _U(i) * span  # column 2 tj of every tile (and 2 tj + 1 at + run)
                od = ev + run
                at = _U(4 * i) * step + base
                for f in range(run):
                    dst[at + f] = rows[ev + f]
                at += step
                for f in range(run):
                    dst[at + f] = rows[ev + f] + rows[od + f]
                at += step
                for f in range(run):
                    dst[at + f] = rows[ev + f] - rows[od + f]
                at += step
                for f in range(run):
                    dst[at + f] = -rows[od + f]
