"""``backward()``, ``autograd.grad`` and friends: the compat tape walked by the engine's own
``reverse.backward``.

The hooks object handed to ``reverse.backward`` is the only compat-specific part: it runs
tensor hooks, checks that no tensor a node read was changed in place since, re-wraps the
saved values as tensors when ``create_graph=True`` (so the backward pass is itself
recorded), and, under ``detect_anomaly``, names the forward operation whose backward
produced a NaN.

Complex gradients: the engine's rules follow JAX's convention, PyTorch's ``.grad`` of a
real loss is its conjugate (``∂L/∂x + i ∂L/∂y``, the steepest-ascent direction an
optimizer steps against).  PyTorch's vector-Jacobian product is ``conj ∘ JAX-VJP ∘ conj``,
so the cotangents are conjugated (``conj_cotangent``) exactly where they cross the compat
boundary — the ``grad_tensors`` entering the walk, the values tensor hooks see and return,
the leaves' ``.grad`` and ``autograd.grad`` results, and ``autograd.Function`` /
checkpoint backwards (``function.record_call``) — never inside the primitive rules.
Real dtypes pass through untouched.
"""

from __future__ import annotations

import threading

import numpy as np

from fnarray import api as fa
from fnarray.compat import grad_mode
from fnarray.compat.tape import CompatNode
from fnarray.compat.tensor import Tensor
from fnarray.core.array import Array
from fnarray.transforms import reverse
from fnarray.core.shapes import is_inexact


class GradFn:
    """The ``grad_fn`` of a non-leaf tensor: a view of its recorded node."""

    __slots__ = ("node",)

    def __new__(cls, node: CompatNode):
        # one subclass per node name, so that type(grad_fn).__name__ reads as PyTorch's
        # (``MseLossBackward0``), which tutorials print
        if cls is GradFn:
            cls = _NAMED.get(node.name) or _NAMED.setdefault(
                node.name, type(node.name, (GradFn,), {"__slots__": (), "__module__": None}))
        return object.__new__(cls)

    def __init__(self, node: CompatNode):
        self.node = node

    def name(self) -> str:
        return self.node.name

    @property
    def next_functions(self) -> tuple:
        out = []
        for parent in _outer_parents(self.node):
            if parent is None:
                out.append((None, 0))
            elif parent[0].prim is None:
                out.append((AccumulateGrad(parent[0]), 0))
            else:
                out.append((GradFn(parent[0]), parent[1]))
        return tuple(out)

    def register_hook(self, hook):
        return add_hook(self.node, 0, hook)

    def __eq__(self, other):
        return isinstance(other, GradFn) and other.node is self.node

    def __hash__(self):
        return id(self.node)

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self.node))}>"


_NAMED: dict = {}  # grad_fn classes by node name


class AccumulateGrad(GradFn):
    """The ``grad_fn`` slot of a leaf in ``next_functions``: it accumulates into ``.grad``."""

    __slots__ = ()

    @property
    def variable(self):
        return self.node.tensor()

    @property
    def next_functions(self) -> tuple:
        return ()


def _outer_parents(node):
    """The parents of the compat-level operation that ``node`` ends: nodes recorded by the
    same operation (same group) are looked through, each once (``mse_loss``'s ``d * d``
    reads ``d`` twice; PyTorch lists the operation's inputs once)."""
    out, stack, seen = [], _inputs(node), set()
    while stack:
        p = stack.pop()
        if p is not None and p[0].prim is not None and p[0].group == node.group:
            if id(p[0]) not in seen:
                seen.add(id(p[0]))
                stack.extend(_inputs(p[0]))
        else:
            out.append(p)
    return out


def _inputs(node):
    """A node's parents, in reverse order, without Python-scalar constants (weak-typed)."""
    primals = node.primals or [None] * len(node.parents or ())
    return [p for p, v in zip(reversed(node.parents or ()), reversed(primals))
            if p is not None or not getattr(v, "weak_type", False)]


class _HookHandle:
    def __init__(self, hooks: list, fn):
        self.hooks, self.fn = hooks, fn

    def remove(self):
        if self.fn in self.hooks:
            self.hooks.remove(self.fn)


def add_hook(node: CompatNode, index: int, fn) -> _HookHandle:
    if node.hooks is None:
        node.hooks = {}
    hooks = node.hooks.setdefault(index, [])
    hooks.append(fn)
    return _HookHandle(hooks, fn)


# --- anomaly detection ------------------------------------------------------------------

class _Anomaly(threading.local):
    def __init__(self):
        self.enabled = False


_anomaly = _Anomaly()


class detect_anomaly:
    """Within the block, a backward rule that produces NaN raises an error naming the
    forward operation (its ``grad_fn``) that created the values."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self.prev = _anomaly.enabled
        _anomaly.enabled = self.check_nan
        return self

    def __exit__(self, *exc):
        _anomaly.enabled = self.prev
        return False


def set_detect_anomaly(mode: bool) -> None:
    _anomaly.enabled = bool(mode)


# --- the backward pass --------------------------------------------------------------------

def _value(x):
    return x._value if isinstance(x, Tensor) else x


def conj_cotangent(ct):
    """Convert a cotangent between JAX's and PyTorch's complex conventions (conjugation,
    its own inverse; recorded when ``ct`` is a tensor of a graph being built).  ``None`` and
    real cotangents are returned as they are."""
    if ct is None or _value(ct).dtype.kind != "c":
        return ct
    return ct.conj() if isinstance(ct, Tensor) else fa.conj(ct)


class _TapeHooks:
    """Per-backward callbacks for ``reverse.backward`` (see the module docstring)."""

    def __init__(self, create_graph: bool, wanted: dict, accumulate: bool = False):
        self.create_graph = create_graph
        self.wanted = wanted  # (id(node), index) -> None, filled with cotangents
        self.accumulate = accumulate  # backward(): leaves' .grad filled during the walk
        if not _anomaly.enabled:  # nothing to look at: ``reverse.backward`` skips the call
            self.computed = None

    def cotangents(self, node, cts):
        if node.hooks:
            cts = list(cts)
            for i, fns in node.hooks.items():
                for fn in list(fns):
                    if cts[i] is None:
                        continue
                    res = fn(self._tensor(conj_cotangent(cts[i])))
                    if res is not None:
                        cts[i] = conj_cotangent(res if self.create_graph else _value(res))
        if self.wanted:
            for i, c in enumerate(cts):
                if (id(node), i) in self.wanted:
                    self.wanted[(id(node), i)] = conj_cotangent(c)
        if node.prim is None and self.accumulate:
            # The walk is in topological order: every consumer of the leaf has already
            # been processed, so this cotangent is final and ``.grad`` can be filled now
            # (DDP's post-accumulate hooks start communication while backward goes on).
            ct = cts[0]
            t = node.tensor() if node.tensor is not None else None
            if (t is not None and t._grad is None and type(ct) is Array
                    and ct._value.dtype == t._value.dtype and ct._value.dtype.kind != "c"
                    and ct._value.flags.c_contiguous
                    and not getattr(t, "_post_accumulate_hooks", None)):
                # the usual first gradient of a parameter: what ``_accumulate`` would store
                t._grad = Tensor._make(ct, None, 0)
            else:
                _accumulate_leaf(node, conj_cotangent(ct))
        return cts

    def saved(self, node):
        for cell, version, pos in node.versions:
            if cell[0] != version and _rule_reads(node, pos):
                shape = list(np.shape(node.primals[pos])) if node.primals else "?"
                dtype = getattr(node.primals[pos], "dtype", "?") if node.primals else "?"
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: [fnarray.Tensor of shape {shape}, dtype "
                    f"{dtype}], which is input {pos} of {node.name}, is at version {cell[0]}; "
                    f"expected version {version} instead. Replace the in-place operation "
                    f"(e.g. x.add_(1) or x[i] = v) by its out-of-place form (x = x + 1), or "
                    f"clone() the tensor before changing it")
        if not self.create_graph:
            return node.primals, node.outs
        primals = [Tensor._make(p, par[0], par[1]) if par is not None else p
                   for p, par in zip(node.primals, node.parents)]
        if node.prim.multiple_results:
            outs = [Tensor._make(o, node, i) for i, o in enumerate(node.outs)]
        else:
            outs = Tensor._make(node.outs, node, 0)
        return primals, outs

    def computed(self, node, in_cts):
        if not _anomaly.enabled:
            return
        for ct in in_cts:
            if ct is None:
                continue
            host = np.asarray(_value(ct) if isinstance(_value(ct), Array)
                              else _value(ct).concrete())
            if is_inexact(host.dtype) and np.isnan(host).any():
                raise RuntimeError(
                    f"Function '{node.name}' returned nan values in its output. The forward "
                    f"operation that created them is {node.name[:-len('Backward0')] or '?'} "
                    f"(primitive '{node.prim.name}'); check its inputs for values outside its "
                    f"domain")

    def _tensor(self, ct):
        return ct if isinstance(ct, Tensor) else Tensor._make(ct, None, 0)


def _rule_reads(node, pos: int) -> bool:
    """Whether ``node``'s backward rule reads its input ``pos`` (PyTorch checks the version
    only of the tensors a backward saved: ``h + 10`` saves nothing, ``h * w`` saves both).

    Asked only when that input changed in place since it was recorded: the rule is traced
    on abstract values into an IR program, and the input counts as read when any equation
    that reaches a cotangent uses it.  A rule that cannot be traced abstractly counts as
    reading everything (the safe answer).
    """
    from fnarray.transforms.ir import trace_flat

    prim, n = node.prim, len(node.primals)
    outs = list(node.outs) if prim.multiple_results else [node.outs]
    args = [*outs, *node.primals, *outs]  # cotangents take the outputs' avals

    def rule(*xs):
        cts, primals, out = xs[:len(outs)], xs[len(outs):len(outs) + n], xs[len(outs) + n:]
        ct = list(cts) if prim.multiple_results else cts[0]
        out = list(out) if prim.multiple_results else out[0]
        kw = {"needed": tuple(p is not None for p in node.parents)} if prim.vjp_selective \
            else {}
        res = prim.vjp(ct, *primals, out=out, **kw, **node.params)
        return [r for r in res if r is not None]

    try:
        prog = trace_flat(rule, [(fa.asarray(a).aval if not hasattr(a, "aval") else a.aval,
                                  _device_of(a)) for a in args], name="saved")
    except Exception:  # noqa: BLE001 - untraceable rule: assume it reads its inputs
        return True
    live = {id(v) for v in prog.outvars}
    for eqn in reversed(prog.eqns):
        if any(id(v) in live for v in eqn.outvars):
            live.update(id(v) for v in eqn.invars)
    return id(prog.invars[len(outs) + pos]) in live


def _device_of(x):
    from fnarray.core.device import default
    dev = getattr(x, "_device", None) or getattr(x, "device", None)
    return dev if dev is not None and not isinstance(dev, str) else default()


def _roots_and_cts(tensors, grad_tensors, create_graph):
    roots, cts = [], []
    for i, t in enumerate(tensors):
        if t._node is None:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not "
                               f"have a grad_fn")
        g = None if grad_tensors is None else grad_tensors[i]
        if g is None:
            if t.size_in_elements() != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (this output "
                    f"has shape {list(t.shape)}); pass gradient= with the same shape")
            v = t._value
            if type(v) is Array and not create_graph:  # the usual loss.backward(): direct
                roots.append((t._node, t._index))
                cts.append(Array(v._device.xp.ones(v._value.shape, v._value.dtype), v._device))
                continue
            g = fa.ones(v.shape, t.dtype, t.device)
        g = g if isinstance(g, Tensor) else Tensor._make(fa.asarray(g), None, 0)
        if tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                               f"{list(g.shape)} and output[{i}] has a shape of "
                               f"{list(t.shape)}")
        if g.dtype != t.dtype:
            g = g.to(t.dtype)
        roots.append((t._node, t._index))
        cts.append(conj_cotangent(g if create_graph else g._value))
    return roots, cts


def _run(tensors, grad_tensors, retain_graph, create_graph, wanted, accumulate=False):
    if retain_graph is None:
        retain_graph = create_graph
    roots, cts = _roots_and_cts(tensors, grad_tensors, create_graph)
    hooks = _TapeHooks(create_graph, wanted, accumulate)
    state = grad_mode._state  # (``set_grad_enabled(create_graph)`` around the walk)
    enabled, state.enabled = state.enabled, bool(create_graph)
    try:
        reverse.backward(roots, cts, release=not retain_graph, hooks=hooks)
    finally:
        state.enabled = enabled
    return hooks


def _as_list(x):
    if x is None:
        return None
    return list(x) if isinstance(x, (list, tuple)) else [x]


_queued_callbacks: list = []


def queue_callback(fn) -> None:
    """Run ``fn()`` once, after the next ``backward()`` has accumulated every leaf gradient
    (PyTorch's ``Variable._execution_engine.queue_callback``): DistributedDataParallel
    averages the gradients across ranks there."""
    _queued_callbacks.append(fn)


def _run_queued_callbacks() -> None:
    while _queued_callbacks:
        _queued_callbacks.pop(0)()


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False,
             inputs=None) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves (or ``inputs``),
    then run the callbacks queued with :func:`queue_callback`."""
    _backward(tensors, grad_tensors, retain_graph, create_graph, inputs)
    _run_queued_callbacks()


def _backward(tensors, grad_tensors, retain_graph, create_graph, inputs) -> None:
    tensors = _as_list(tensors)
    grad_tensors = _as_list(grad_tensors)
    if inputs is not None:
        inputs = _as_list(inputs)
        grads = grad(tensors, inputs, grad_tensors, retain_graph, create_graph,
                      allow_unused=True)
        for t, g in zip(inputs, grads):
            if g is not None:
                _accumulate(t, g)
        return
    _run(tensors, grad_tensors, retain_graph, create_graph, {}, accumulate=True)


def _accumulate_leaf(node: CompatNode, ct) -> None:
    """Add ``ct`` to the leaf tensor's ``.grad``, then run its post-accumulate hooks."""
    t = node.tensor() if node.tensor is not None else None
    if t is None or ct is None:
        return
    _accumulate(t, ct if isinstance(ct, Tensor) else Tensor._make(ct, None, 0))


def _accumulate(t: Tensor, g: Tensor) -> None:
    """``t.grad += g``, then ``t``'s post-accumulate hooks."""
    if g._value.dtype != t._value.dtype:
        g = g.to(t.dtype)
    t._grad = _in_layout_of(t, g) if t._grad is None else t._grad + g
    hooks = getattr(t, "_post_accumulate_hooks", None)
    if hooks:
        for fn in list(hooks):
            fn(t)


def _in_layout_of(t: Tensor, g: Tensor) -> Tensor:
    """``g`` laid out row-major when the leaf ``t`` is (PyTorch's AccumulateGrad contract):
    the optimizer's elementwise passes then walk parameter, moments and gradient in the
    same memory order, which NumPy does several times faster than mixed layouts.

    Backward rules already return most gradients in their operand's layout; what reaches
    here transposed (the cotangent of a loop constant such as an RNN's weight, which the
    loop body reads transposed) is copied once.  A recorded gradient (``create_graph``) is
    kept as it is."""
    gv, tv = g._value, t._value
    if (g._node is not None or type(gv) is not Array or type(tv) is not Array
            or gv._value.flags.c_contiguous or not tv._value.flags.c_contiguous):
        return g
    return Tensor._make(Array(gv._device.xp.ascontiguousarray(gv._value), gv._device), None, 0)


def add_post_accumulate_hook(t: Tensor, fn) -> _HookHandle:
    """Register ``fn(t)`` to run each time ``backward()`` has accumulated ``t.grad``."""
    hooks = getattr(t, "_post_accumulate_hooks", None)
    if hooks is None:
        hooks = t._post_accumulate_hooks = []
    hooks.append(fn)
    return _HookHandle(hooks, fn)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool = False, only_inputs: bool = True):
    """The gradients of ``outputs`` with respect to ``inputs`` (a tuple), without touching
    any ``.grad``."""
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    grad_outputs = _as_list(grad_outputs)
    wanted = {}
    for i, t in enumerate(inputs):
        if t._node is None:
            raise RuntimeError(f"One of the differentiated Tensors (input {i}) does not "
                               f"require grad")
        wanted[(id(t._node), t._index)] = None
    _run(outputs, grad_outputs, retain_graph, create_graph, wanted)
    result = []
    for i, t in enumerate(inputs):
        g = wanted[(id(t._node), t._index)]
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (input {i}) appears to not have been "
                    f"used in the graph. Set allow_unused=True if this is the desired "
                    f"behavior.")
            result.append(None)
        else:
            result.append(g if isinstance(g, Tensor) else Tensor._make(g, None, 0))
    return tuple(result)


def Variable(data, requires_grad: bool = False, volatile: bool = False):  # noqa: N802
    """The pre-0.4 wrapper old tutorials still use (``Variable(x, requires_grad=True)``):
    a leaf tensor sharing ``data``'s value, as PyTorch now returns."""
    out = data.detach() if isinstance(data, Tensor) else Tensor(fa.asarray(data))
    return out.requires_grad_(True) if requires_grad else out
