"""Compiled row loops of ``log_softmax`` and its backward over a short last axis.

A classifier's log-probabilities are (N, C) with few classes (MNIST: 10).  NumPy reduces such
a short last axis row by row (~0.05 us a row) and spends about a microsecond on each of the
nine calls ``log_softmax`` takes (max, finiteness fix, shift, exp, sum, log, subtract): 13 us
for (128, 10) float32.  Here the row maxima with the shift, the row sums, and the final
subtraction are one loop each; ``exp`` and ``log`` stay NumPy calls, whose vectorised
kernels are several times faster than a compiled loop's scalar libm calls and whose bits a
libm call would not reproduce.  Long rows stay on NumPy altogether: its reductions over a
long contiguous axis are vectorised, these loops are not.

The results are the NumPy kernel's, bit for bit: the operations are NumPy's, in its order —
``(x - max) - log(sum(exp(x - max)))`` with a non-finite maximum (an all ``-inf`` row, an
``inf``, a NaN) replaced by 0, and ``ct - exp(y) * sum(ct)`` — and :func:`row_sum` adds in
NumPy's pairwise order for a contiguous row of at most 128 entries (one sum from 0 below 8
entries; else eight partial sums, combined as a tree, then the remainder).  Operands are 2-d
C-ordered float32/float64 rows; outputs are fresh NumPy arrays the caller allocated (or, in
:func:`grad_rows`, ``exp(y)``, which the caller owns).
"""

from __future__ import annotations

from fnarray.backends.kernels import compiled


@compiled
def row_sum(a, i):
    """``a[i].sum()`` as NumPy's pairwise summation adds a row of at most 128 entries."""
    n = a.shape[1]
    if n < 8:  # NumPy: res = 0, then res += each entry
        res = a[i, 0]
        if res == 0:
            res = abs(res)  # 0 + -0.0 is +0.0
        for j in range(1, n):
            res += a[i, j]
        return res
    r0, r1, r2, r3 = a[i, 0], a[i, 1], a[i, 2], a[i, 3]
    r4, r5, r6, r7 = a[i, 4], a[i, 5], a[i, 6], a[i, 7]
    j = 8
    while j < n - n % 8:
        r0 += a[i, j]
        r1 += a[i, j + 1]
        r2 += a[i, j + 2]
        r3 += a[i, j + 3]
        r4 += a[i, j + 4]
        r5 += a[i, j + 5]
        r6 += a[i, j + 6]
        r7 += a[i, j + 7]
        j += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while j < n:
        res += a[i, j]
        j += 1
    return res


@compiled
def shift_rows(x, out):
    """``out = x - max(x)`` row by row; a row whose maximum is not finite (an ``inf``, a NaN,
    or all ``-inf``) is shifted by 0, that is copied."""
    n, c = x.shape
    for i in range(n):
        m = x[i, 0]
        for j in range(1, c):
            v = x[i, j]
            if v > m or v != v:  # a NaN wins, as in numpy.max
                m = v
        if m - m == 0:
            for j in range(c):
                out[i, j] = x[i, j] - m
        else:
            for j in range(c):
                out[i, j] = x[i, j]
    return out


@compiled
def row_sums(e, out):
    """``out[i] = e[i].sum()`` for each row (``row_sum``'s order)."""
    for i in range(e.shape[0]):
        out[i] = row_sum(e, i)
    return out


@compiled
def sub_rows(out, lse):
    """``out -= lse[:, None]``, in place."""
    n, c = out.shape
    for i in range(n):
        v = lse[i]
        for j in range(c):
            out[i, j] -= v
    return out


@compiled
def grad_rows(ct, e, out):
    """``out = ct - e * sum(ct)`` row by row (``e`` is ``exp`` of the log-probabilities;
    ``out`` may be ``e``: each row's sum is taken before the row is written)."""
    n, c = ct.shape
    for i in range(n):
        s = row_sum(ct, i)
        for j in range(c):
            out[i, j] = ct[i, j] - e[i, j] * s
    return out
