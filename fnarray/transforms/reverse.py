"""Reverse mode: a tape of primitive applications, walked backwards to pull cotangents.

Each ``ReverseTracer`` points at the ``Node`` that produced it.  A node keeps what the
primitive's VJP rule needs (its inputs and outputs) and links to its parent nodes; the
backward pass visits nodes in reverse topological order, calls each rule, and sums
cotangents.  Rules use fnarray operations, so a backward pass run inside another
transformation is itself recorded (``grad(grad(f))``, ``jvp(grad(f))``).
"""

from __future__ import annotations

import itertools
import operator

from fnarray.core import tree as tree_util
from fnarray.core.trace import PrimalTracer, Trace, new_main


_seq = itertools.count()  # creation order of nodes (see ``toposort``)


class Node:
    """One recorded primitive application (or a leaf, when ``prim`` is None); ``seq``
    numbers nodes in the order they were recorded."""

    __slots__ = ("prim", "params", "parents", "primals", "outs", "seq", "__weakref__")

    def __init__(self, prim, params, parents, primals, outs):
        self.seq = next(_seq)
        self.prim = prim
        self.params = params
        self.parents = parents  # per input: (Node, output index) or None
        self.primals = primals
        self.outs = outs

    def release(self):
        """Drop saved values once a backward pass no longer needs them."""
        self.parents = self.primals = self.outs = None


class ReverseTracer(PrimalTracer):
    """A value recorded on the tape: its primal, and the node (and output index) that made it."""

    __slots__ = ("node", "index")

    def __init__(self, trace, primal, node, index=0):
        self._trace = trace
        self.primal = primal
        self.node = node
        self.index = index


class ReverseTrace(Trace):
    __slots__ = ()

    def pure(self, value):
        return value  # constants are not recorded; rules see them as plain values

    def full_raise(self, value):
        if isinstance(value, ReverseTracer) and value._trace.main is self.main:
            return value
        return value  # lower-level tracers and arrays are constants here

    def process_primitive(self, prim, tracers, params, out=None):
        """Record ``prim`` on the tape; ``out``, when given, is its already known result
        (``record``), so the primitive is not evaluated again."""
        parents, primals, any_parent = [], [], False
        for t in tracers:
            if isinstance(t, ReverseTracer) and t._trace.main is self.main:
                parents.append((t.node, t.index))
                primals.append(t.primal)
                any_parent = True
            else:
                parents.append(None)
                primals.append(t)
        if out is None:
            if any_parent and prim.fwd is not None and prim.differentiable:
                out, residuals = prim.fwd(*primals, **params)
                params = {**params, "residuals": residuals}  # handed to the VJP rule
            else:
                out = prim.bind(*primals, **params)
        if not any_parent or not prim.differentiable:
            return out
        node = Node(prim, params, parents, primals, out)
        if prim.multiple_results:
            return tuple(ReverseTracer(self, o, node, i) for i, o in enumerate(out))
        return ReverseTracer(self, out, node)


def record(main, prim, args: list, params: dict, out):
    """Put ``prim(*args) == out`` on the tape of reverse trace ``main`` without evaluating
    ``prim`` (``checkpoint`` replays saved values this way).  Arguments not traced by
    ``main`` are constants of that tape; if there are only such, ``out`` comes back as is."""
    trace = ReverseTrace(main)
    return trace.process_primitive(prim, [trace.full_raise(a) for a in args], params, out)


def toposort(roots: list[Node]) -> list[Node]:
    """Nodes reachable from ``roots``, each after every node that consumes it.

    Iterative depth-first search: a node is marked when it is first *entered* (not when
    pushed) and emitted after all its parents, so reversing the emission order puts every
    consumer before the nodes it reads from.  A node's parents are explored oldest first
    (by ``seq``, leaves counting as newest), so in the result each parent comes as soon
    after its consumers as the search allows — the reverse of the forward pass's order
    along a chain of layers — and a leaf right after its last consumer: a parameter's
    gradient is final as early as possible (the compat layer fills ``.grad`` there and
    DistributedDataParallel starts communicating while backward goes on).
    """
    # (Nodes hash and compare by identity, so they key sets and dicts directly.)
    order, entered = [], set()
    emit, enter = order.append, entered.add
    stack = [(root, False) for root in reversed(roots)]
    pop, push = stack.pop, stack.append
    while stack:
        node, done = pop()
        if done:
            emit(node)
            continue
        if node in entered:
            continue
        enter(node)
        if not node.parents:  # nothing to explore (a leaf): finished as soon as entered
            emit(node)
            continue
        push((node, True))
        parents = [p[0] for p in node.parents if p is not None and p[0] not in entered]
        if len(parents) > 1:
            # Pushed (the last pushed is explored first): the leaves in their order, then
            # the other parents newest first -- a stable descending sort by the key "seq,
            # a leaf counting as +inf".
            inner = [p for p in parents if p.prim is not None]
            if len(inner) > 1:
                inner.sort(key=_SEQ, reverse=True)
            if len(inner) < len(parents):
                stack += [(p, False) for p in parents if p.prim is None]
            stack += [(p, False) for p in inner]
        elif parents:
            push((parents[0], False))
    order.reverse()
    return order


_SEQ = operator.attrgetter("seq")


def _add(a, b):
    return b if a is None else a + b


def backward(roots: list[tuple[Node, int]], cts: list, release: bool = False,
             hooks=None) -> dict:
    """Pull ``cts`` from the given (node, index) outputs back to the leaves.

    Returns ``{id(leaf_node): cotangent}``.  With ``release=True`` the visited nodes drop
    their saved values (the compat layer's default, like PyTorch's ``retain_graph=False``).

    ``hooks`` (optional, used by the compat layer's tape) is an object with three methods:
    ``cotangents(node, cts) -> cts`` sees (and may replace) the summed cotangents of a
    node's outputs before its rule runs; ``saved(node) -> (primals, outs)`` supplies the
    values handed to the rule (it may check or re-wrap them); ``computed(node, in_cts)``
    sees what the rule returned (``computed`` may be None: nothing to see).
    """
    acc: dict[Node, list] = {}  # node -> summed cotangent per output (nodes hash by identity)
    for (node, idx), ct in zip(roots, cts):
        slot = acc.get(node)
        if slot is None:
            slot = acc[node] = [None] * _n_outs(node)
        slot[idx] = _add(slot[idx], ct)
    leaves = {}
    computed = None if hooks is None else hooks.computed
    seen, saved = (None, None) if hooks is None else (hooks.cotangents, hooks.saved)
    for node in toposort([n for n, _ in roots]):
        node_cts = acc.pop(node, None)
        if node_cts is None:
            continue
        if seen is not None:
            node_cts = seen(node, node_cts)
        prim = node.prim
        if prim is None:
            leaves[id(node)] = node_cts[0]
            continue
        parents = node.parents
        if parents is None:
            raise RuntimeError(
                "backward through a graph a second time: its saved values were already freed. "
                "Pass retain_graph=True to the first backward() if you need to go back twice")
        primals, outs = (node.primals, node.outs) if saved is None else saved(node)
        if prim.multiple_results:
            ct_in = [_zeros_like(o) if c is None else c for c, o in zip(node_cts, outs)]
        else:
            ct_in = node_cts[0]
        if prim.vjp_selective:
            needed = tuple([p is not None for p in parents])
            in_cts = prim.vjp(ct_in, *primals, out=outs, needed=needed, **node.params)
        else:
            in_cts = prim.vjp(ct_in, *primals, out=outs, **node.params)
        if computed is not None:
            computed(node, in_cts)
        for parent, ct in zip(parents, in_cts):
            if parent is None or ct is None:
                continue
            pnode, pidx = parent
            slot = acc.get(pnode)
            if slot is None:
                pprim = pnode.prim  # (``_n_outs`` inline: once per node reached)
                slot = acc[pnode] = [None] * (len(pnode.outs) if pprim is not None
                                              and pprim.multiple_results else 1)
            old = slot[pidx]
            slot[pidx] = ct if old is None else old + ct
        if release:
            node.release()
    return leaves


def _zeros_like(x):
    from fnarray import api
    return api.zeros_like(x)


def _n_outs(node: Node) -> int:
    if node.prim is not None and node.prim.multiple_results:
        return len(node.outs)
    return 1


def vjp_flat(fun, primals: list):
    """Trace ``fun`` (flat -> flat) in reverse mode; return outputs and a pullback."""
    with new_main(ReverseTrace, "vjp") as main:
        trace = ReverseTrace(main)
        leaves = [Node(None, None, (), None, None) for _ in primals]
        ins = [ReverseTracer(trace, p, n) for p, n in zip(primals, leaves)]
        outs = fun(*ins)
    out_primals, roots = [], []
    for o in outs:
        if isinstance(o, ReverseTracer) and o._trace.main is main:
            out_primals.append(o.primal)
            roots.append((o.node, o.index))
        else:
            out_primals.append(o)
            roots.append(None)

    def pullback(cts: list) -> list:
        from fnarray import api
        live = [(r, c) for r, c in zip(roots, cts) if r is not None]
        got = backward([r for r, _ in live], [c for _, c in live]) if live else {}
        return [got.get(id(n)) if got.get(id(n)) is not None else api.zeros_like(p)
                for n, p in zip(leaves, primals)]

    return out_primals, pullback


def vjp(fun, *primals, has_aux: bool = False):
    """``(fun(*primals), vjp_fn)``; ``vjp_fn(ct)`` returns one cotangent per primal."""
    from fnarray import api
    p_leaves, p_tree = tree_util.flatten(primals)
    p_leaves = [api.asarray(p) for p in p_leaves]
    out_info = []

    def flat_fun(*leaves):
        out = fun(*tree_util.unflatten(p_tree, leaves))
        aux_leaves = []
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("has_aux=True requires the function to return a pair "
                                "(output, aux)")
            out, aux = out
            aux_leaves, aux_tree = tree_util.flatten(aux)
            out_info.append(aux_tree)
        o_leaves, o_tree = tree_util.flatten(out)
        out_info.insert(0, o_tree)
        # aux leaves leave the trace as extra outputs, so they come back as plain values
        # (never tracers of this finished transformation); the pullback ignores them.
        return o_leaves + aux_leaves

    all_leaves, pullback = vjp_flat(flat_fun, p_leaves)
    out_tree = out_info[0]
    out_leaves = all_leaves[:out_tree.num_leaves]
    out = tree_util.unflatten(out_tree, out_leaves)

    def vjp_fn(cotangent):
        c_leaves, c_tree = tree_util.flatten(cotangent)
        if c_tree != out_tree:
            raise ValueError(f"vjp_fn: cotangent structure {c_tree} does not match the "
                             f"output structure {out_tree}")
        cts = []
        for c, o in zip(c_leaves, out_leaves):
            c = api.asarray(c)
            if c.shape != o.shape:
                raise ValueError(f"vjp_fn: cotangent shape {c.shape} does not match output "
                                 f"shape {o.shape}")
            cts.append(c.astype(o.dtype) if c.dtype != o.dtype else c)
        return tree_util.unflatten(p_tree, pullback(cts))

    if has_aux:
        return out, vjp_fn, tree_util.unflatten(out_info[1], all_leaves[out_tree.num_leaves:])
    return out, vjp_fn
