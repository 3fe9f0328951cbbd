"""The reverse-mode walk itself (``transforms.reverse.toposort`` and ``backward``) on
hand-built tapes: visiting order, cotangent accumulation, multiple-output nodes, release."""

from __future__ import annotations

import random

import pytest

from fnarray.transforms.reverse import Node, backward, toposort


class _Prim:
    """A stand-in primitive: the VJP of ``out = sum(inputs) * scale`` (per output)."""

    differentiable = True
    vjp_selective = False

    def __init__(self, name, n_out=1, scale=1.0):
        self.name = name
        self.multiple_results = n_out > 1
        self.n_out = n_out
        self.scale = scale
        self.calls = []

    def vjp(self, ct, *primals, out, **params):
        self.calls.append(ct)
        total = sum(ct) if self.multiple_results else ct
        return tuple(total * self.scale for _ in primals)


def _leaf():
    return Node(None, None, (), None, None)


def _node(parents, n_out=1, scale=1.0, name="op"):
    prim = _Prim(name, n_out, scale)
    outs = tuple(0.0 for _ in range(n_out)) if n_out > 1 else 0.0
    return Node(prim, {}, list(parents), [0.0] * len(parents), outs)


def _check_order(order, roots):
    """Every node comes after each node that consumes it, and each appears once."""
    pos = {id(n): i for i, n in enumerate(order)}
    assert len(pos) == len(order)
    for n in order:
        for p in n.parents or ():
            if p is not None:
                assert pos[id(p[0])] > pos[id(n)]
    assert all(id(r) in pos for r in roots)


def test_chain_order_and_leaf_right_after_its_last_consumer():
    x, w1, w2 = _leaf(), _leaf(), _leaf()
    h = _node([(x, 0), (w1, 0)])
    y = _node([(h, 0), (w2, 0)])
    order = toposort([y])
    # y's parents: h (recorded) is explored first, the leaf w2 last, so w2 is walked
    # right after y, then h, then h's leaves (w1 before x? both leaves: seq order kept)
    assert order[0] is y and order[1] is w2 and order[2] is h
    assert set(map(id, order[3:])) == {id(x), id(w1)}
    _check_order(order, [y])


def test_random_dags_are_topologically_ordered():
    rng = random.Random(0)
    for _ in range(30):
        nodes = [_leaf() for _ in range(rng.randint(1, 4))]
        for _ in range(rng.randint(1, 25)):
            k = rng.randint(1, 3)
            nodes.append(_node([(rng.choice(nodes), 0) for _ in range(k)]))
        roots = rng.sample(nodes[-5:], min(2, len(nodes[-5:])))
        order = toposort(roots)
        _check_order(order, roots)
        assert toposort(roots) == order  # deterministic


def test_backward_sums_cotangents_over_shared_parents():
    x = _leaf()
    a = _node([(x, 0), (x, 0)], scale=2.0)  # x used twice
    b = _node([(a, 0), (x, 0)], scale=3.0)
    got = backward([(b, 0)], [1.0])
    # db/da = 3, db/dx (direct) = 3, da/dx = 2 per use, twice
    assert got == {id(x): 3.0 + 3.0 * 2.0 * 2}


def test_multiple_output_node_collects_each_output_slot():
    x = _leaf()
    m = _node([(x, 0)], n_out=2)
    got = backward([(m, 0), (m, 1), (m, 0)], [1.0, 10.0, 100.0])
    assert m.prim.calls == [[101.0, 10.0]]
    assert got == {id(x): 111.0}


def test_release_frees_saved_values_and_a_second_walk_names_the_fix():
    x = _leaf()
    y = _node([(x, 0)])
    backward([(y, 0)], [1.0], release=True)
    assert y.parents is None and y.primals is None
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        backward([(y, 0)], [1.0])


def test_unused_parent_and_none_cotangents_are_skipped():
    x, c = _leaf(), _leaf()
    y = _node([(x, 0), None, (c, 0)])
    y.prim.vjp = lambda ct, *p, out: (ct, ct, None)
    assert backward([(y, 0)], [2.0]) == {id(x): 2.0}
