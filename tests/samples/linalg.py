"""Samples for ``dot_general`` (``fnarray/ops/linalg.py``): any mix of batch, contracting
and free axes, in any order on either operand, including size-0 and size-1 axes."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.samples import Sample, floats


@st.composite
def _dot_general(draw):
    side = st.integers(0, 3)
    batch = [draw(side) for _ in range(draw(st.integers(0, 2)))]
    contract = [draw(side) for _ in range(draw(st.integers(0, 2)))]
    free_a = [draw(side) for _ in range(draw(st.integers(0, 2)))]
    free_b = [draw(side) for _ in range(draw(st.integers(0, 2)))]
    # Logical layout (batch, contract, free); a random permutation gives the real layout.
    nb, nc = len(batch), len(contract)
    pa = draw(st.permutations(range(nb + nc + len(free_a))))
    pb = draw(st.permutations(range(nb + nc + len(free_b))))
    logical_a, logical_b = batch + contract + free_a, batch + contract + free_b
    shape_a = tuple(logical_a[p] for p in pa)
    shape_b = tuple(logical_b[p] for p in pb)

    def where(perm, logical_axes):
        return tuple(perm.index(i) for i in logical_axes)

    params = {
        "contract": (where(pa, range(nb, nb + nc)), where(pb, range(nb, nb + nc))),
        "batch": (where(pa, range(nb)), where(pb, range(nb))),
    }
    a = draw(floats(shape_a, noncontiguous=draw(st.booleans())))
    b = draw(floats(shape_b, noncontiguous=draw(st.booleans())))
    return Sample((a, b), params, diff=(0, 1))


SAMPLES = {"dot_general": _dot_general}
