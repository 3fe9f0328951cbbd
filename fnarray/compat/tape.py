"""The compat layer's recording: the reverse trace of ``fnarray.transforms.reverse`` with a
global lifetime, at interpreter level 0 (below every transformation).

``Tensor`` is this trace's tracer: ``bind`` hands any primitive with a tensor operand to
``CompatTrace.process_primitive``, which applies the primitive to the tensors' values
and, when grad mode is on and an operand requires grad, records a ``CompatNode`` — a
``reverse.Node`` plus what the PyTorch-style surface needs (the ``grad_fn`` name, the
version of every tensor it read, hooks).  ``backward()`` then runs the very same
``reverse.backward`` that ``fa.vjp`` uses.

``run`` is that step in one call for one or two concrete operands (nearly every op): the
kernel, the node and the tensor, without a second ``bind``.  ``compat.dispatch`` calls it
directly for elementwise ops, skipping everything before ``process_primitive`` as well.
"""

from __future__ import annotations

import threading

import warnings

from fnarray.compat import grad_mode
from fnarray.core.array import Array
from fnarray.core.trace import FP_WARNING, MainTrace, Trace
from fnarray.transforms.reverse import Node
from fnarray.transforms.reverse import _seq as _node_seq

TENSOR: type = None  # the Tensor class, set by fnarray.compat.tensor (it imports this module)

# Kernels called from here (``run``) report NumPy's floating-point warnings as exceptions,
# as they do when ``bind`` calls them (see ``core.trace``); ``run`` then re-runs the op
# through ``bind``, which computes the intended inf/nan quietly.
warnings.filterwarnings("error", message=FP_WARNING, category=RuntimeWarning,
                        module=r"fnarray\.compat\.tape$")
_new = object.__new__


class CompatNode(Node):
    """A recorded primitive application (or a leaf tensor when ``prim`` is None).

    ``name`` is the PyTorch ``grad_fn`` name, ``group`` ties together the nodes one
    compat-level operation recorded, ``versions`` lists ``(version cell, version, input
    position)`` for the tensors it read, ``hooks`` maps output index -> gradient hooks and
    ``tensor`` is a weak reference to the leaf tensor (leaves only).  The last two are
    rarely set, so they live in the instance dictionary, with class defaults.
    """

    __slots__ = ("name", "group", "versions", "__dict__")
    hooks = None
    tensor = None

    def __init__(self, prim, params, parents, primals, outs, name="", group=0, versions=()):
        # The base fields are set here rather than through ``super().__init__``: a node
        # is made for every recorded primitive, and the extra call is measurable.
        self.prim, self.params, self.parents = prim, params, parents
        self.primals, self.outs = primals, outs
        self.seq = next(_node_seq)  # creation order: the backward walk follows it
        self.name = name
        self.group = group
        self.versions = versions


class _OpState(threading.local):
    def __init__(self):
        self.name = None
        self.group = 0
        self.updating = None  # the version cell of the tensor an in-place update rewrites
        self.autocast = None  # under ``torch.autocast``: ``cast(prim, tracers) -> tracers``


_op = _OpState()
# Group numbers come from the node counter: a node recorded outside any ``op_scope`` is
# a group of its own, numbered by its ``seq``; a scope's number precedes its nodes'.
_groups = _node_seq


class op_scope:
    """Name the nodes recorded inside the block (the outermost scope wins), so that
    ``grad_fn`` reads ``<MulBackward0>`` whatever primitives the operation used."""

    __slots__ = ("name", "outer")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.outer = _op.name
        if self.outer is None:
            _op.name = self.name
            _op.group = next(_groups)
        return self

    def __exit__(self, *exc):
        if self.outer is None:
            _op.name = None
        return False


_default_names: dict = {}


def _default_name(prim) -> str:
    """``MulBackward0`` for the primitive ``mul`` (cached: asked once per recorded node)."""
    name = _default_names.get(prim)
    if name is None:
        name = "".join(w.capitalize() for w in prim.name.split("_")) + "Backward0"
        _default_names[prim] = name
    return name


class CompatTrace(Trace):
    """Level 0: unwraps tensors, applies the primitive, records when needed."""

    __slots__ = ()

    def pure(self, value):
        return value  # arrays and Python constants are not recorded

    def full_raise(self, value):
        # Level 0 is the lowest: ``bind`` hands this trace only tensors and plain values,
        # and both are taken as they are.
        return value

    def process_primitive(self, prim, tracers, params):
        if _op.autocast is not None:
            tracers = _op.autocast(prim, tracers)
        tensor_t = TENSOR
        if len(tracers) <= 2 and prim.fwd is None and not prim.multiple_results:
            # one or two concrete operands on one device, the common case: ``run``
            a = tracers[0]
            va = a._value if isinstance(a, tensor_t) else a
            b = vb = None
            if len(tracers) == 2:
                b = tracers[1]
                vb = b._value if isinstance(b, tensor_t) else b
            if type(va) is Array and (b is None or (type(vb) is Array
                                                    and vb._device is va._device)):
                return run(prim, params, _default_name(prim), a, va, b, vb, va._device)
        vals = [t._value if isinstance(t, tensor_t) else t for t in tracers]
        make = tensor_t._make
        if grad_mode._state.enabled and prim.differentiable:
            for t in tracers:
                if isinstance(t, tensor_t) and t._node is not None:
                    if prim.fwd is not None:  # the VJP rule wants forward-pass residuals
                        out, residuals = prim.fwd(*vals, **params)
                        params = {**params, "residuals": residuals}
                    else:
                        out = prim.bind(*vals, **params)
                    return record(prim, params, tracers, vals, out)
        out = prim.bind(*vals, **params)
        if prim.multiple_results:
            return tuple(make(o, None, 0) for o in out)
        return make(out, None, 0)


def record(prim, params, operands, vals, out, name=None):
    """Wrap ``out`` as tensors that are outputs of a new node applying ``prim`` to
    ``operands`` (``vals``: their core values): the general form of ``run``, for any number
    of operands and results.  The node is named after the open ``op_scope`` if there is
    one, else ``name`` (default: from the primitive) and forms a group of its own."""
    tensor_t, updating = TENSOR, _op.updating
    parents, versions = [], []
    for i, t in enumerate(operands):
        if isinstance(t, tensor_t):
            node = t._node
            parents.append(None if node is None else (node, t._index))
            cell = t._version
            if cell is not updating:  # an update replaces what it reads
                versions.append((cell, cell[0], i))
        else:
            parents.append(None)
    node = _new(CompatNode)
    node.prim, node.params, node.parents, node.primals, node.outs = prim, params, parents, \
        vals, out
    seq = node.seq = next(_node_seq)
    scope = _op.name
    if scope is None:
        node.name, node.group = _default_name(prim) if name is None else name, seq
    else:
        node.name, node.group = scope, _op.group
    node.versions = versions
    make = tensor_t._make
    if prim.multiple_results:
        return tuple(make(o, node, i) for i, o in enumerate(out))
    return make(out, node, 0)


def record_staged(staged_call, staged, operands: list, vals: list, name=None) -> tuple:
    """``staged_call(*operands, staged=staged)`` recorded as one node, for callers that know
    what ``process_primitive`` would find out (``compat.compile``, ``nn._staged``): grad
    mode on, no autocast, an operand requiring grad, every value (``vals``) a concrete
    ``Array`` of the staged signature.  Runs the forward program and records the node with
    its residuals, without ``bind``'s trace lookup and the signature check; ``name`` is
    ``record``'s (the open ``op_scope`` wins)."""
    values = staged.forward.run_arrays(vals)
    n = staged.n_out
    return record(staged_call, {"staged": staged, "residuals": values[n:]}, operands, vals,
                  values[:n], name)


def run(prim, params, name, a, va, b, vb, dev):
    """``prim`` applied to the operands ``a`` and ``b`` (tensors or Python scalars, ``b``
    None for a one-operand primitive; ``va``/``vb``: their ``Array`` values on ``dev``),
    recorded when grad mode is on and an operand requires grad, as a tensor.

    The kernel is called directly; anything unusual (an intended inf/nan, an error to
    report) re-runs it through ``bind``.  This runs for nearly every recorded operation, so
    the tensor and node are built in place (as in ``record``) rather than through
    ``Tensor._make`` and a node constructor: each call would cost ~4% of a recorded op."""
    try:
        out = Array(prim.impl(dev.xp, va._value, **params) if vb is None
                    else prim.impl(dev.xp, va._value, vb._value, **params), dev)
    except Exception:  # noqa: BLE001 - bind re-runs the kernel and names any error
        out = prim.bind(va, **params) if vb is None else prim.bind(va, vb, **params)
    tensor_t = TENSOR
    t = _new(tensor_t)
    t._value, t._index, t._version = out, 0, [0]
    na = a._node if isinstance(a, tensor_t) else None
    nb = b._node if isinstance(b, tensor_t) else None
    if (na is None and nb is None) or not grad_mode._state.enabled or not prim.differentiable:
        t._node = None
        return t
    updating, versions = _op.updating, []
    if isinstance(a, tensor_t) and a._version is not updating:
        versions.append((a._version, a._version[0], 0))
    if isinstance(b, tensor_t) and b._version is not updating:
        versions.append((b._version, b._version[0], 1))
    pa = None if na is None else (na, a._index)
    if vb is None:
        parents, vals = (pa,), (va,)
    else:
        parents, vals = (pa, None if nb is None else (nb, b._index)), (va, vb)
    node = t._node = _new(CompatNode)
    node.prim, node.params, node.parents, node.primals, node.outs = prim, params, parents, \
        vals, out
    seq = node.seq = next(_node_seq)
    scope = _op.name
    if scope is None:
        node.name, node.group = name, seq
    else:
        node.name, node.group = scope, _op.group
    node.versions = versions
    return t


MAIN = MainTrace(0, CompatTrace, "compat")  # never popped: the tape lives forever
TRACE = CompatTrace(MAIN)


def leaf_node(tensor_ref) -> CompatNode:
    """A fresh leaf for a tensor that starts requiring grad."""
    node = CompatNode(None, None, (), None, None, "AccumulateGrad")
    node.tensor = tensor_ref
    return node
