"""ONNX rules for the elementwise primitives (``fnarray/ops/elementwise.py``)."""

from __future__ import annotations

import numpy as np

from fnarray.onnx.rules import onnx_rule

_UNARY = {"neg": "Neg", "sin": "Sin", "cos": "Cos", "tan": "Tan", "asin": "Asin",
          "acos": "Acos", "atan": "Atan", "sinh": "Sinh", "cosh": "Cosh", "tanh": "Tanh",
          "asinh": "Asinh", "acosh": "Acosh", "atanh": "Atanh", "exp": "Exp", "log": "Log",
          "sqrt": "Sqrt", "abs": "Abs", "logistic": "Sigmoid", "erf": "Erf", "sign": "Sign",
          "floor": "Floor", "ceil": "Ceil", "round": "Round", "logical_not": "Not",
          "isnan": "IsNaN", "isinf": "IsInf"}

_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow",
           "max": "Max", "min": "Min", "eq": "Equal", "lt": "Less", "le": "LessOrEqual",
           "gt": "Greater", "ge": "GreaterOrEqual", "logical_and": "And",
           "logical_or": "Or", "logical_xor": "Xor"}

# Bitwise primitives: ONNX's Bitwise* take integers only; on booleans they are the logical ops
_BITWISE = {"bitwise_and": ("BitwiseAnd", "And"), "bitwise_or": ("BitwiseOr", "Or"),
            "bitwise_xor": ("BitwiseXor", "Xor"), "bitwise_invert": ("BitwiseNot", "Not")}


def _simple(op_type):
    return lambda g, ins, eqn, **_: g.op(op_type, ins)


for _name, _op in {**_UNARY, **_BINARY}.items():
    onnx_rule(_name)(_simple(_op))


def _bitwise(int_op, bool_op):
    def rule(g, ins, eqn, **_):
        is_bool = np.dtype(eqn.outvars[0].aval.dtype) == np.bool_
        return g.op(bool_op if is_bool else int_op, ins)
    return rule


for _name, (_int_op, _bool_op) in _BITWISE.items():
    onnx_rule(_name)(_bitwise(_int_op, _bool_op))


def _one(eqn):
    return np.ones((), dtype=eqn.outvars[0].aval.dtype)


@onnx_rule("rsqrt")
def _rsqrt(g, ins, eqn, **_):
    return g.op("Reciprocal", [g.op("Sqrt", ins)])


@onnx_rule("expm1")
def _expm1(g, ins, eqn, **_):
    return g.op("Sub", [g.op("Exp", ins), g.const(_one(eqn))])


@onnx_rule("log1p")
def _log1p(g, ins, eqn, **_):
    return g.op("Log", [g.op("Add", [ins[0], g.const(_one(eqn))])])


@onnx_rule("ne")
def _ne(g, ins, eqn, **_):
    return g.op("Not", [g.op("Equal", ins)])


@onnx_rule("isfinite")
def _isfinite(g, ins, eqn, **_):
    return g.op("Not", [g.op("Or", [g.op("IsNaN", ins), g.op("IsInf", ins)])])


@onnx_rule("fmod")
def _fmod(g, ins, eqn, **_):
    fmod = int(np.dtype(eqn.outvars[0].aval.dtype).kind == "f")
    return g.op("Mod", ins, fmod=fmod)


@onnx_rule("select")
def _select(g, ins, eqn, **_):
    return g.op("Where", ins)


@onnx_rule("convert_element_type")
def _convert(g, ins, eqn, *, dtype, **_):
    from onnx import helper
    return g.op("Cast", ins, to=helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
