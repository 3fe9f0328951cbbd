"""ONNX rules for the contraction primitive ``dot_general`` (``fnarray/ops/linalg.py``)."""

from __future__ import annotations

from fnarray.onnx.rules import onnx_rule


@onnx_rule("dot_general")
def _dot_general(g, ins, eqn, *, contract, batch, **_):
    """``MatMul`` for a plain matrix product on the last/first axes, else ``Einsum`` with
    fnarray's output layout: batch axes, then the free axes of ``a``, then of ``b``."""
    (ca, cb), (ba, bb) = contract, batch
    nd_a, nd_b = (len(v.aval.shape) for v in eqn.invars)
    if not ba and nd_b == 2 and tuple(ca) == (nd_a - 1,) and tuple(cb) == (0,):
        return g.op("MatMul", ins)
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    sa, sb = [None] * nd_a, [None] * nd_b
    for i, j in zip(ba, bb):
        sa[i] = sb[j] = next(letters)
    for i, j in zip(ca, cb):
        sa[i] = sb[j] = next(letters)
    for s in (sa, sb):
        for i, c in enumerate(s):
            if c is None:
                s[i] = next(letters)
    out = ([sa[i] for i in ba] + [c for i, c in enumerate(sa) if i not in ba and i not in ca]
           + [c for i, c in enumerate(sb) if i not in bb and i not in cb])
    return g.op("Einsum", ins, equation=f"{''.join(sa)},{''.join(sb)}->{''.join(out)}")
