"""``einsum`` with NumPy semantics, composed from ``dot_general``, ``diagonal``, ``sum`` and
axis permutations — so every transformation (grad, jvp, vmap, jit) handles it for free.

Steps: parse the subscripts (ellipsis, implicit output), take diagonals for repeated indices,
sum out indices that no other operand or the output needs, broadcast size-1 axes, then
contract pairwise in the order ``opt_einsum.contract_path`` picks (cached per subscripts and
shapes), and finally permute to the requested output order.
"""

from __future__ import annotations

import functools
import string

import opt_einsum

from fnarray.api._convert import as_operand, promote
from fnarray.api.contraction import diagonal
from fnarray.api.manipulation import broadcast_to, permute_dims
from fnarray.api.reductions import sum as sum_
from fnarray.ops.linalg import dot_general

_LETTERS = string.ascii_letters


def einsum(subscripts, *operands, optimize="greedy"):
    """Evaluate the Einstein summation ``subscripts`` on ``operands`` (NumPy semantics).

    ``optimize`` is passed to ``opt_einsum.contract_path``: ``"greedy"`` (default),
    ``"optimal"``, ``"auto"``, ``True`` (= ``"greedy"``), ``False`` (left to right) or an
    explicit path such as ``["einsum_path", (0, 1)]``.  The interleaved form
    ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` is accepted too.
    """
    if not isinstance(subscripts, str):
        subscripts, operands = _from_interleaved(subscripts, *operands)
    if not operands:
        raise ValueError("einsum: no operands given")
    arrays = list(promote("einsum", *operands)) if len(operands) > 1 else [as_operand(operands[0])]
    inputs, output = _parse(subscripts, [a.ndim for a in arrays])
    sizes = _index_sizes(subscripts, inputs, arrays)
    prepared = [_prepare(a, idx, inputs[:i] + inputs[i + 1:], output, sizes)
                for i, (a, idx) in enumerate(zip(arrays, inputs))]
    arrays, inputs = [p[0] for p in prepared], [p[1] for p in prepared]
    shapes = tuple(a.shape for a in arrays)
    path = _contraction_path(",".join(inputs) + "->" + output, shapes, _hashable(optimize))
    for step in path:
        picked = [(arrays[i], inputs[i]) for i in step]
        for i in sorted(step, reverse=True):
            del arrays[i], inputs[i]
        x, ix = picked[0]
        for y, iy in picked[1:]:
            x, ix = _contract(x, ix, y, iy, needed=set(output).union(*inputs))
        arrays.append(x)
        inputs.append(ix)
    (x,), (ix,) = arrays, inputs
    x, ix = _sum_out(x, ix, set(output))
    return permute_dims(x, tuple(ix.index(c) for c in output))


def _from_interleaved(first, *rest):
    """``(a, sub_a, b, sub_b, ..., [out])`` as a subscripts string and operands."""
    args = (first, *rest)
    ops, subs = list(args[0::2]), list(args[1::2])
    out = None
    if len(args) % 2:
        out, ops = args[-1], ops[:-1]
    used = sorted({s for sub in subs + ([out] if out is not None else []) for s in sub
                   if s is not Ellipsis})

    def word(sub):
        return "".join("..." if s is Ellipsis else _LETTERS[used.index(s)] for s in sub)

    text = ",".join(word(s) for s in subs) + ("" if out is None else "->" + word(out))
    return text, tuple(ops)


def _parse(subscripts: str, ndims: list) -> tuple[list, str]:
    """Input index strings (ellipsis expanded to fresh letters) and the output string."""
    text = subscripts.replace(" ", "")
    lhs, arrow, rhs = text.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s) but "
                         f"{len(ndims)} were given")
    for ch in text.replace("...", "").replace("->", "").replace(",", ""):
        if ch not in _LETTERS:
            raise ValueError(f"einsum: invalid character {ch!r} in subscripts {subscripts!r}; "
                             f"use letters a-z, A-Z and '...'")
    free = [c for c in _LETTERS if c not in text]
    ell_rank = 0
    for term, nd in zip(terms, ndims):
        named = len(term.replace("...", ""))
        if "..." in term:
            ell_rank = max(ell_rank, nd - named)
        elif named != nd:
            raise ValueError(f"einsum: term {term!r} names {named} axes but its operand has "
                             f"{nd} dimension(s) in {subscripts!r}")
        if nd < named:
            raise ValueError(f"einsum: term {term!r} names more axes than its operand's {nd}")
    ell = "".join(free[:ell_rank])
    inputs = [t.replace("...", ell[ell_rank - (nd - len(t.replace("...", ""))):] if ell_rank else "")
              for t, nd in zip(terms, ndims)]
    if arrow:
        output = rhs.replace("...", ell)
        for c in output:
            if output.count(c) > 1:
                raise ValueError(f"einsum: output index {c!r} repeated in {subscripts!r}")
            if not any(c in t for t in inputs):
                raise ValueError(f"einsum: output index {c!r} does not appear in any input "
                                 f"of {subscripts!r}")
    else:
        counts = "".join(inputs)
        named = sorted(c for c in set(counts) if counts.count(c) == 1 and c not in ell)
        output = ell + "".join(named)
    return inputs, output


def _index_sizes(subscripts, inputs, arrays) -> dict:
    """The size of every index; size-1 axes broadcast against larger ones."""
    sizes = {}
    for idx, a in zip(inputs, arrays):
        for c, d in zip(idx, a.shape):
            prev = sizes.get(c)
            if prev is None or prev == 1:
                sizes[c] = d
            elif d not in (1, prev):
                raise ValueError(f"einsum: index {c!r} in {subscripts!r} has size {d} in one "
                                 f"operand and {prev} in another (shapes "
                                 f"{[x.shape for x in arrays]})")
    return sizes


def _prepare(x, idx: str, others: list, output: str, sizes: dict):
    """Take diagonals of repeated indices, sum out private indices, broadcast size-1 axes."""
    while len(set(idx)) < len(idx):
        c = next(c for c in idx if idx.count(c) > 1)
        i = idx.index(c)
        j = idx.index(c, i + 1)
        x = diagonal(x, axis1=i, axis2=j)
        idx = idx[:i] + idx[i + 1:j] + idx[j + 1:] + c
    x, idx = _sum_out(x, idx, set(output).union(*others))
    shape = tuple(sizes[c] for c in idx)
    return (broadcast_to(x, shape) if shape != x.shape else x), idx


def _sum_out(x, idx: str, keep: set):
    axes = tuple(i for i, c in enumerate(idx) if c not in keep)
    if not axes:
        return x, idx
    return sum_(x, axis=axes), "".join(c for c in idx if c in keep)


def _contract(x, ix: str, y, iy: str, needed: set):
    """One pairwise contraction by ``dot_general``: shared indices still needed elsewhere are
    batch axes, the other shared ones are summed."""
    x, ix = _sum_out(x, ix, needed | set(iy))
    y, iy = _sum_out(y, iy, needed | set(ix))
    shared = [c for c in ix if c in iy]
    batch = [c for c in shared if c in needed]
    contract = [c for c in shared if c not in needed]
    out = dot_general.bind(
        x, y, contract=(tuple(ix.index(c) for c in contract), tuple(iy.index(c) for c in contract)),
        batch=(tuple(ix.index(c) for c in batch), tuple(iy.index(c) for c in batch)))
    out_idx = ("".join(batch) + "".join(c for c in ix if c not in shared)
               + "".join(c for c in iy if c not in shared))
    return out, out_idx


def _hashable(optimize):
    return tuple(tuple(s) if isinstance(s, (list, tuple)) else s for s in optimize) \
        if isinstance(optimize, (list, tuple)) else optimize


@functools.lru_cache(maxsize=512)
def _contraction_path(spec: str, shapes: tuple, optimize) -> tuple:
    """The pairwise contraction order, as tuples of positions in the shrinking operand list."""
    n = len(shapes)
    if n == 1:
        return ((0,),)
    if optimize is False:
        return ((0, 1),) * (n - 1)
    if optimize is True:
        optimize = "greedy"
    if isinstance(optimize, tuple):
        optimize = [list(s) if isinstance(s, tuple) else s for s in optimize]
        if optimize and optimize[0] == "einsum_path":
            optimize = optimize[1:]
    path, _ = opt_einsum.contract_path(spec, *shapes, shapes=True, optimize=optimize)
    return tuple(tuple(step) for step in path)
