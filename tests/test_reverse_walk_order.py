"""``reverse.toposort`` emits a parentless node (a leaf, or a released node) as soon as it is
entered instead of pushing it back as finished: the visiting order must stay exactly the
reference depth-first order (the compat layer fills ``.grad`` and DistributedDataParallel
starts communicating in that order), checked here on random tapes against the reference
algorithm written out in full."""

from __future__ import annotations

import operator
import random

from fnarray.transforms.reverse import Node, toposort


class _Prim:
    multiple_results = False


def _reference(roots):
    """Depth-first post-order, every node pushed back as finished before its parents."""
    order, entered = [], set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in entered:
            continue
        entered.add(node)
        stack.append((node, True))
        if not node.parents:
            continue
        parents = [p[0] for p in node.parents if p is not None and p[0] not in entered]
        inner = sorted([p for p in parents if p.prim is not None],
                       key=operator.attrgetter("seq"), reverse=True)
        stack += [(p, False) for p in parents if p.prim is None]
        stack += [(p, False) for p in inner]
    order.reverse()
    return order


def _tape(rng):
    nodes = [Node(None, None, (), None, None) for _ in range(rng.randint(1, 5))]
    for _ in range(rng.randint(1, 30)):
        parents = [(rng.choice(nodes), 0) if rng.random() > 0.15 else None
                   for _ in range(rng.randint(1, 4))]
        nodes.append(Node(_Prim(), {}, parents, [0.0] * len(parents), 0.0))
    for n in nodes:
        if n.prim is not None and rng.random() < 0.1:
            n.parents = None  # released (toposort still orders it; backward refuses it)
    return nodes


def test_order_equals_the_reference_depth_first_order():
    rng = random.Random(7)
    for _ in range(200):
        nodes = _tape(rng)
        roots = rng.sample(nodes, min(len(nodes), rng.randint(1, 3)))
        assert [id(n) for n in toposort(roots)] == [id(n) for n in _reference(roots)]


def test_a_lone_leaf_and_repeated_roots():
    leaf = Node(None, None, (), None, None)
    assert toposort([leaf]) == [leaf]
    assert toposort([leaf, leaf]) == [leaf]
