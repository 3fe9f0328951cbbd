"""Trace to the IR and lower each equation through the primitive's ONNX rule."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
from onnx import helper, numpy_helper

from fnarray.core import tree as tree_util
from fnarray.core.shapes import ShapedArray
from fnarray.onnx import UnsupportedPrimitiveError, _normalize_dynamic
from fnarray.onnx.rules import load_rules
from fnarray.transforms import ir, passes


class _ConstUse:
    """A constant of a program traced twice, bound where it is used (``bind_consts``):
    its value, and the constants of the second trace by ``id`` of their vars."""

    def __init__(self, value: np.ndarray, others: dict):
        self.value, self.others = value, others


class GraphBuilder:
    """Collects ONNX nodes and initializers; rules call ``op`` and ``const``."""

    def __init__(self, rules: dict, where: str, dyn: dict):
        self.nodes: list = []
        self.initializers: list = []
        self.rules, self.where, self.dyn = rules, where, dyn
        self._counter = itertools.count(1)
        # (input name, axis, traced size) of every dynamic input axis, and the current
        # equation in the second trace and its parameters (None without dynamic axes)
        self.dynamic_inputs: list[tuple[str, int, int]] = []
        self.other_eqn = None
        self.other_params: dict | None = None
        # ONNX values of the constants bound per use (``bind_consts``), by the pair of vars
        self._pairs: dict[tuple[int, int], str] = {}

    def bind_consts(self, prog, other, env: dict) -> None:
        """Bind the program's constants in ``env``: initializers, or with a second trace
        (``other``) markers that ``lower`` binds at each use, against the constant the same
        use reads in ``other`` (``pair_const``).  By use, not by position in the constant
        list: a trace may share one constant between two uses that the other trace holds
        apart (at batch 2, the literal ``2.0`` and a mean's count are one constant)."""
        if other is None:
            for v, c in zip(prog.constvars, prog.consts):
                env[id(v)] = self.const(np.asarray(c))
            return
        others = {id(v): c for v, c in zip(other.constvars, other.consts)}
        for v, c in zip(prog.constvars, prog.consts):
            env[id(v)] = _ConstUse(np.asarray(c), others)

    def _resolve(self, env: dict, v, v_other) -> str:
        """The ONNX value of ``v``, whose twin in the second trace is ``v_other``."""
        name = env[id(v)]
        if not isinstance(name, _ConstUse):
            return name
        value_other = name.others.get(id(v_other))
        if value_other is None:
            raise UnsupportedPrimitiveError(
                f"fnarray.onnx.export: {self.where} traces to programs of different "
                f"structure at different sizes of the dynamic axes {self.dyn} (a constant "
                f"in one is computed in the other); it cannot be exported with them")
        key = (id(v), id(v_other))
        if key not in self._pairs:
            self._pairs[key] = self.pair_const(name.value, np.asarray(value_other))
        return self._pairs[key]

    def pair_const(self, value: np.ndarray, value_other: np.ndarray) -> str:
        """The ONNX value of a constant that is ``value`` in the traced program and
        ``value_other`` in the second trace.  One whose shape follows the dynamic axes (an
        initial state of zeros, a padding mask) must repeat one slice along those axes: it
        becomes that slice expanded to a shape computed at run time.  One whose value
        follows them (the count a mean divides by, or its reciprocal folded into a
        gradient) must be one number throughout, computed at run time from the dynamic
        sizes (``size_scalar``)."""
        varying = [a for a, (d, e) in enumerate(zip(value.shape, value_other.shape)) if d != e]
        first = tuple(slice(0, 1) if a in varying else slice(None) for a in range(value.ndim))
        base, base_other = value[first], value_other[first]
        if varying and not (value.size and np.array_equal(
                np.broadcast_to(base, value.shape), value, equal_nan=value.dtype.kind in "fc")):
            raise UnsupportedPrimitiveError(
                f"fnarray.onnx.export: a constant of shape {value.shape} in the program "
                f"traced from {self.where} depends on the dynamic axes {self.dyn} and "
                f"differs along them")
        if _same_value(base, base_other):
            node = self.const(base)
        else:
            node = self.size_scalar(base, base_other)
            if not varying and value.ndim:
                node = self.op("Expand", [node, self.ints(value.shape)])
        if varying:
            node = self.op("Expand", [node, self.shape_tensor(value.shape, value_other.shape)])
        return node

    def size_scalar(self, value: np.ndarray, value_other: np.ndarray) -> str:
        """A constant filled with one number that differs between the two traces (``value``
        at the traced sizes, ``value_other`` with each dynamic axis one longer), computed at
        run time as a scalar of its dtype: ``k * n`` for a dynamic input size ``n``
        (``shape_tensor``), or ``1 / (k * n)`` where that division gives its value exactly.
        Any other such constant is refused (its value at other sizes is unknown)."""
        dtype = value.dtype
        s, t = value.reshape(-1)[:1], value_other.reshape(-1)[:1]
        uniform = (s.size and t.size and np.all(value == s[0])
                   and np.all(value_other == t[0]))
        try:
            if not uniform or dtype.kind not in "iuf":
                raise ValueError("it is not one number")
            s, t = s[0], t[0]
            if float(s).is_integer() and float(t).is_integer():
                return self._cast_scalar(self.shape_tensor((int(s),), (int(t),)), dtype)
            counts = [round(1 / float(x)) if x else 0 for x in (s, t)]
            if (dtype.kind != "f" or not all(counts)
                    or any(dtype.type(1) / dtype.type(c) != x for c, x in zip(counts, (s, t)))):
                raise ValueError("it is neither a whole number nor one's reciprocal")
            count = self._cast_scalar(self.shape_tensor((counts[0],), (counts[1],)), dtype)
            return self.op("Div", [self.const(np.ones((), dtype)), count])
        except ValueError as err:
            raise UnsupportedPrimitiveError(
                f"fnarray.onnx.export: a constant of the program traced from {self.where} "
                f"depends on the dynamic axes {self.dyn} ({value.reshape(-1)[:3]} here, "
                f"{value_other.reshape(-1)[:3]} with each dynamic axis one longer) and is no "
                f"multiple of one dynamic size or its reciprocal ({err}); export without "
                f"those dynamic axes") from err

    def _cast_scalar(self, sizes: str, dtype) -> str:
        """The one-entry int64 tensor ``sizes`` as a scalar of ``dtype``."""
        cast = self.op("Cast", [sizes], to=helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
        return self.op("Squeeze", [cast, self.ints([0])])

    def lower(self, prog, other, env: dict) -> None:
        """Append the nodes of every equation of ``prog`` (``other``: the same program
        traced with the dynamic axes one longer, or None); ``env`` maps ``id(var)`` to
        ONNX value names and receives the equations' outputs."""
        for k, e in enumerate(prog.eqns):
            rule = self.rules.get(e.prim.name)
            if rule is None:
                raise UnsupportedPrimitiveError(
                    f"fnarray.onnx.export: primitive '{e.prim.name}' has no ONNX rule: "
                    f"{_describe(e, k, self.where)}. Declare one with @onnx_rule in "
                    f"fnarray/ops/<family>_onnx.py, or avoid the operation in the exported "
                    f"model")
            params = dict(e.params)
            if other is not None:
                for key, val in e.params.items():
                    new, changed = _varying(val, other.eqns[k].params[key])
                    if changed and not rule.onnx_dynamic:
                        raise UnsupportedPrimitiveError(
                            f"fnarray.onnx.export: parameter {key} of "
                            f"{_describe(e, k, self.where)} depends on the dynamic axes "
                            f"{self.dyn}; its ONNX rule needs static sizes")
                    params[key] = new
                self.other_eqn, self.other_params = other.eqns[k], other.eqns[k].params
            twins = other.eqns[k].invars if other is not None else [None] * len(e.invars)
            ins = [self._resolve(env, v, t) for v, t in zip(e.invars, twins)]
            try:
                outs = rule(self, ins, e, **params)
            except ValueError as err:  # a rule's limit: say where in the model it was met
                raise UnsupportedPrimitiveError(
                    f"fnarray.onnx.export: {_describe(e, k, self.where)} cannot be lowered: {err}"
                ) from err
            outs = [outs] if isinstance(outs, str) else list(outs)
            for v, o in zip(e.outvars, outs):
                env[id(v)] = o
        twins = other.outvars if other is not None else [None] * len(prog.outvars)
        for v, t in zip(prog.outvars, twins):  # outputs that are constants
            env[id(v)] = self._resolve(env, v, t)

    def child(self) -> "GraphBuilder":
        """A builder for a sub-graph (a loop body): fresh nodes, shared naming."""
        sub = GraphBuilder(self.rules, self.where, self.dyn)
        sub._counter = self._counter
        sub.dynamic_inputs = self.dynamic_inputs
        return sub

    def subgraph(self, prog, other, outer: list, hint: str):
        """``prog`` as an ONNX sub-graph (a loop body or a branch): invars with a name in
        ``outer`` read that outer value, the others (``None``) become graph inputs; the
        outputs get fresh names, so that an output may repeat or be an input."""
        sub = self.child()
        env, inputs = {}, []
        for v, name in zip(prog.invars, outer):
            if name is None:
                name = sub.fresh(f"{hint}_in")
                inputs.append(typed(name, v.aval))
            env[id(v)] = name
        sub.bind_consts(prog, other, env)
        sub.lower(prog, other, env)
        outputs = []
        for v in prog.outvars:
            name = sub.fresh(f"{hint}_out")
            sub.nodes.append(helper.make_node("Identity", [env[id(v)]], [name]))
            outputs.append(typed(name, v.aval))
        return helper.make_graph(sub.nodes, self.fresh(hint), inputs, outputs,
                                 initializer=sub.initializers)

    def fresh(self, hint: str = "v") -> str:
        return f"{hint}_{next(self._counter)}"

    def op(self, op_type: str, inputs: list, n_out: int = 1, **attrs):
        """Append ``op_type(inputs)``; returns its output name (a list if ``n_out > 1``)."""
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value, dtype=None, name: str | None = None) -> str:
        """An initializer holding ``value`` (``dtype`` defaults to the value's own)."""
        arr = np.asarray(value, dtype=dtype)
        name = name or self.fresh("const")
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def shape_tensor(self, traced: tuple, other: tuple) -> str:
        """A 1-D int64 tensor computed at run time for a shape whose entries that differ
        between the two traces (``traced`` at the example sizes, ``other`` with every
        dynamic axis one longer) are multiples ``k * n`` of a dynamic input size ``n``."""
        parts = []
        for d, e in zip(traced, other):
            if d == e:
                parts.append(self.ints([d]))
                continue
            for name, axis, n in self.dynamic_inputs:
                if d % n == 0 and e == d // n * (n + 1):
                    size = self.op("Gather", [self.op("Shape", [name]), self.ints([axis])])
                    parts.append(size if d == n else self.op("Mul", [size, self.ints([d // n])]))
                    break
            else:
                raise ValueError(
                    f"size {d} of shape {traced} follows the dynamic axes but is no multiple "
                    f"of a dynamic input size {[n for _, _, n in self.dynamic_inputs]}")
        return self.op("Concat", parts, axis=0)

    def ints(self, values) -> str:
        """An int64 1-D initializer (shapes, axes, starts...)."""
        return self.const(np.asarray(list(values), dtype=np.int64))


def typed(name: str, aval):
    """A sub-graph value of known dtype and rank, sizes left free (they may follow the
    dynamic axes of the outer graph)."""
    return helper.make_tensor_value_info(
        name, helper.np_dtype_to_tensor_dtype(np.dtype(aval.dtype)), [None] * len(aval.shape))


def _is_tensor(x) -> bool:
    from fnarray.compat.tensor import Tensor
    return isinstance(x, Tensor)


def _raw(x):
    """The array of a compat tensor (modules and functions may return either)."""
    return x.array if _is_tensor(x) else x


def _trace(model_or_fn, avals, n_state, names):
    """Trace ``model_or_fn`` on abstract inputs; returns the optimised program and the
    number of outputs."""
    from fnarray.core.device import default
    from fnarray.nn import Module, functional_call
    is_module = isinstance(model_or_fn, Module)

    def flat_fun(*flat):
        state, args = flat[:n_state], flat[n_state:]
        if is_module:
            out = functional_call(model_or_fn, dict(zip(names, state)), tuple(args))
        else:
            out = model_or_fn(*args)
        leaves, _ = tree_util.flatten(out, is_leaf=_is_tensor)
        return [_raw(o) for o in leaves]

    prog = ir.trace_flat(flat_fun, [(a, default()) for a in avals], name="onnx")
    return passes.optimize(prog)


def _same_value(value: np.ndarray, other) -> bool:
    """Whether a constant has one value in both traces (NaN equal to NaN)."""
    other = np.asarray(other)
    return value.dtype == other.dtype and np.array_equal(
        value, other, equal_nan=value.dtype.kind in "fc")


def _describe(e, index: int, where: str) -> str:
    ins = ", ".join(v.aval.str_short() for v in e.invars)
    params = " ".join(f"{k}={v!r}" for k, v in e.params.items()
                      if not ir._sub_programs(v))
    return (f"{e.prim.name}[{params}]({ins}) -- equation {index} of the program traced "
            f"from {where}")


def _varying(a, b):
    """``a`` with every integer of a nested int tuple that differs from ``b`` set to -1,
    and whether any did."""
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        parts = [_varying(x, y) for x, y in zip(a, b)]
        return tuple(p for p, _ in parts), any(c for _, c in parts)
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)) and a != b:
        return -1, True
    return a, False


def build_model(model_or_fn, args, input_names, output_names, dynamic_axes, opset):
    """The ``onnx.ModelProto`` of ``model_or_fn(*args)`` (see ``fnarray.onnx.export``)."""
    from fnarray import api as fa
    from fnarray.compat import grad_mode
    from fnarray.nn import Module
    rules = load_rules()
    if not isinstance(args, tuple):
        args = (args,)
    args = [fa.asarray(_raw(a)) for a in args]
    is_module = isinstance(model_or_fn, Module)
    where = type(model_or_fn).__name__ if is_module else getattr(model_or_fn, "__qualname__",
                                                                   repr(model_or_fn))
    if is_module and any(m.training for m in model_or_fn.modules()):
        warnings.warn(f"fnarray.onnx.export: {where} is in training mode; it is exported as it "
                      f"runs now (batch statistics; random draws such as dropout masks are "
                      f"made once while tracing and become constants). Call model.eval() "
                      f"first for inference", stacklevel=3)
    state = ({k: fa.asarray(_raw(v)) for k, v in model_or_fn.state_dict().items()}
             if is_module else {})
    names = list(state)
    input_names = list(input_names or [f"input_{i}" for i in range(len(args))])
    if len(input_names) != len(args):
        raise ValueError(f"fnarray.onnx.export: {len(input_names)} input_names for "
                         f"{len(args)} inputs")
    dyn = _normalize_dynamic(dynamic_axes)
    avals = [v.aval for v in state.values()] + [a.aval for a in args]
    with grad_mode.no_grad():
        prog = _trace(model_or_fn, avals, len(names), names)
        other = None
        if dyn:  # a second trace with every dynamic input axis one longer
            grown = []
            for name, a in zip(input_names, args):
                shape = tuple(d + 1 if i in dyn.get(name, {}) else d
                              for i, d in enumerate(a.shape))
                grown.append(ShapedArray(shape, a.dtype))
            other = _trace(model_or_fn, avals[:len(names)] + grown, len(names), names)
            if other.primitive_names() != prog.primitive_names():
                raise UnsupportedPrimitiveError(
                    f"fnarray.onnx.export: {where} traces to different programs at different "
                    f"sizes of the dynamic axes {dyn}; it cannot be exported with them")
    n_out = len(prog.outvars)
    output_names = list(output_names or [f"output_{i}" for i in range(n_out)])
    if len(output_names) != n_out:
        raise ValueError(f"fnarray.onnx.export: {len(output_names)} output_names for "
                         f"{n_out} outputs")

    g = GraphBuilder(rules, where, dyn)
    env: dict[int, str] = {}
    used = {id(v) for e in prog.eqns for v in e.invars} | {id(v) for v in prog.outvars}
    for name, v, value in zip(names, prog.invars, state.values()):
        if id(v) in used:  # unused buffers (num_batches_tracked) are left out
            env[id(v)] = g.const(np.asarray(value), name=name)

    def value_info(name, aval, shape_other):
        symbols = dyn.get(name, {})
        dims = []
        for i, d in enumerate(aval.shape):
            if i in symbols:
                dims.append(symbols[i])
            elif shape_other is not None and shape_other[i] != d:
                dims.append(f"{name}_dim_{i}")
            else:
                dims.append(d)
        return helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(np.dtype(aval.dtype)), dims)

    inputs = []
    for name, v in zip(input_names, prog.invars[len(names):]):
        env[id(v)] = name
        inputs.append(value_info(name, v.aval, None))
        g.dynamic_inputs += [(name, a, v.aval.shape[a]) for a in dyn.get(name, {})]
    g.bind_consts(prog, other, env)
    g.lower(prog, other, env)
    outputs = []
    for j, (name, v) in enumerate(zip(output_names, prog.outvars)):
        g.nodes.append(helper.make_node("Identity", [env[id(v)]], [name]))
        shape_other = other.outvars[j].aval.shape if other is not None else None
        outputs.append(value_info(name, v.aval, shape_other))
    graph = helper.make_graph(g.nodes, where.replace("<", "").replace(">", ""), inputs,
                              outputs, initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="fnarray")
    return model
