"""A model's computation as a TensorBoard ``GraphDef``, built from fnarray's IR.

``fa.make_ir`` traces ``nn.functional_call(model, params, inputs)``; every equation becomes a
node named after its primitive, wired to the nodes that produce its operands, with the output
shapes/dtypes and the equation's parameters as attributes.  Parameters and buffers become
``params/<state_dict key>`` nodes, inputs ``input/<i>``, results ``output/<i>``."""

from __future__ import annotations

from typing import Any

import numpy as np

from fnarray.tensorboard.summaries import require_tensorboard, to_numpy


def trace(model: Any, inputs: tuple):
    """(program, parameter names): the IR of ``model(*inputs)`` with parameters as inputs.
    Modules are traced in eval mode (no dropout randomness); their mode is restored after."""
    import fnarray as fa
    from fnarray import nn

    if not isinstance(model, nn.Module):
        return fa.make_ir(model)(*inputs), []
    state = model.state_dict()
    names = list(state)
    values = [v.detach() if hasattr(v, "detach") else v for v in state.values()]
    training = model.training
    model.eval()
    try:
        def run(*leaves):
            params = dict(zip(names, leaves[:len(names)]))
            return nn.functional_call(model, params, tuple(leaves[len(names):]))
        program = fa.make_ir(run)(*values, *inputs)
    finally:
        model.train(training)
    return program, names


def graph_def(model: Any, input_to_model: Any):
    """The ``GraphDef`` of ``model(input_to_model)`` (a tuple/list passes several inputs)."""
    require_tensorboard()
    from tensorboard.compat.proto import (attr_value_pb2, graph_pb2, node_def_pb2,
                                          tensor_shape_pb2, versions_pb2)

    inputs = tuple(input_to_model) if isinstance(input_to_model, (tuple, list)) else (
        input_to_model,)
    program, param_names = trace(model, inputs)

    def shape_attr(variables):
        shapes = [tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in v.aval.shape])
            for v in variables]
        return attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(shape=shapes))

    def text_attr(value):
        return attr_value_pb2.AttrValue(s=str(value).encode("utf-8"))

    producer: dict[int, str] = {}
    nodes = []

    def source(var, name, op):
        producer[id(var)] = name
        nodes.append(node_def_pb2.NodeDef(name=name, op=op, attr={
            "_output_shapes": shape_attr([var]), "dtype": text_attr(np.dtype(var.aval.dtype))}))

    n_params = len(param_names)
    for var, name in zip(program.invars[:n_params], param_names):
        source(var, f"params/{name}", "Parameter")
    for i, var in enumerate(program.invars[n_params:]):
        source(var, f"input/{i}", "Input")
    for i, (var, value) in enumerate(zip(program.constvars, program.consts)):
        source(var, f"const/{i}", "Const")
        nodes[-1].attr["value"].CopyFrom(text_attr(np.array2string(
            to_numpy(value), threshold=8)))
    for i, eqn in enumerate(program.eqns):
        name = f"{eqn.prim.name}_{i}"
        attr = {"_output_shapes": shape_attr(eqn.outvars)}
        if eqn.outvars:
            attr["dtype"] = text_attr(np.dtype(eqn.outvars[0].aval.dtype))
        for key, value in eqn.params.items():
            attr[key] = text_attr(value)
        wired = [producer[id(v)] for v in eqn.invars if id(v) in producer]
        nodes.append(node_def_pb2.NodeDef(name=name, op=eqn.prim.name, input=wired, attr=attr))
        for var in eqn.outvars:
            producer[id(var)] = name
    for i, var in enumerate(program.outvars):
        nodes.append(node_def_pb2.NodeDef(
            name=f"output/{i}", op="Output", input=[producer[id(var)]] if id(var) in producer
            else [], attr={"_output_shapes": shape_attr([var])}))
    return graph_pb2.GraphDef(node=nodes, versions=versions_pb2.VersionDef(producer=22))
