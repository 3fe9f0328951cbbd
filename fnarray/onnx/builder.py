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


class GraphBuilder:
    """Collects ONNX nodes and initializers; rules call ``op`` and ``const``."""

    def __init__(self, rules: dict, where: str, dyn: dict):
        self.nodes: list = []
        self.initializers: list = []
        self.rules, self.where, self.dyn = rules, where, dyn
        self._counter = itertools.count(1)
        # (input name, axis, traced size) of every dynamic input axis, and the parameters
        # of the current equation in the second trace (None without dynamic axes)
        self.dynamic_inputs: list[tuple[str, int, int]] = []
        self.other_params: dict | None = None

    def bind_consts(self, prog, other, env: dict) -> None:
        """Initializers for the program's constants.  A constant whose shape follows the
        dynamic axes (an initial state of zeros, a padding mask) must repeat one slice along
        those axes: it becomes that slice expanded to a shape computed at run time."""
        for i, (v, c) in enumerate(zip(prog.constvars, prog.consts)):
            value = np.asarray(c)
            shape_other = other.constvars[i].aval.shape if other is not None else value.shape
            varying = [a for a, (d, e) in enumerate(zip(value.shape, shape_other)) if d != e]
            base = value[tuple(slice(0, 1) if a in varying else slice(None)
                               for a in range(value.ndim))]
            if not varying:
                env[id(v)] = self.const(value)
            elif value.size and np.array_equal(np.broadcast_to(base, value.shape), value,
                                               equal_nan=value.dtype.kind in "fc"):
                env[id(v)] = self.op("Expand", [self.const(base),
                                                self.shape_tensor(value.shape, shape_other)])
            else:
                raise UnsupportedPrimitiveError(
                    f"fnarray.onnx.export: a constant of shape {value.shape} in the program "
                    f"traced from {self.where} depends on the dynamic axes {self.dyn} and "
                    f"differs along them")

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
                self.other_params = other.eqns[k].params
            try:
                outs = rule(self, [env[id(v)] for v in e.invars], e, **params)
            except ValueError as err:  # a rule's limit: say where in the model it was met
                raise UnsupportedPrimitiveError(
                    f"fnarray.onnx.export: {_describe(e, k, self.where)} cannot be lowered: {err}"
                ) from err
            outs = [outs] if isinstance(outs, str) else list(outs)
            for v, o in zip(e.outvars, outs):
                env[id(v)] = o

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
