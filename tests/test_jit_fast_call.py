"""jit's per-call fast path: the aval-keyed lookup for positional Array calls and the
generated output builders must retrace exactly when the general key would, donate exactly
when the general path would, and build the outputs ``tree.unflatten`` builds."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pytest

import fnarray as fa
from fnarray import tree_util
from fnarray.core import tree
from fnarray.core.array import Array
from fnarray.transforms import out_builder


class Pair(NamedTuple):
    a: object
    b: object


@tree_util.register_dataclass
@dataclasses.dataclass
class Box:
    value: object
    tag: str = dataclasses.field(default="t", metadata={"static": True})


class Custom:
    def __init__(self, items, label):
        self.items, self.label = items, label


tree.register_node(Custom, lambda c: (c.items, c.label), lambda label, kids: Custom(kids, label))


STRUCTURES = [
    1.0,
    (1.0,),
    (),
    [1.0, 2.0],
    {"b": 1.0, "a": (2.0, None)},
    Pair(1.0, [2.0, 3.0]),
    Box(1.0, "x"),
    Custom([1.0, 2.0], "lbl"),
    ([1.0, 2.0], [Pair(3.0, None), Pair(4.0, {"k": 5.0})]),
]


def _same(a, b):
    """Structure, container types and leaf values equal."""
    la, ta = tree.flatten(a)
    lb, tb = tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        assert type(x) is type(y) is Array
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    return True


@pytest.mark.parametrize("structure", STRUCTURES, ids=repr)
def test_builder_builds_what_unflatten_builds(structure):
    _, td = tree.flatten(structure)
    bufs = [np.full((2,), float(i)) for i in range(td.num_leaves)]
    built = out_builder.output_builder(td, fa.devices()[0])(bufs)
    expected = tree.unflatten(td, [Array(b) for b in bufs])
    assert type(built) is type(expected)
    assert _same(built, expected)
    if isinstance(structure, Custom):
        assert built.label == "lbl"
    if isinstance(structure, Box):
        assert built.tag == "x"


def test_builder_falls_back_for_deep_structures():
    deep = 1.0
    for _ in range(out_builder._MAX_DEPTH + 5):
        deep = [deep]
    _, td = tree.flatten(deep)
    built = out_builder.output_builder(td, fa.devices()[0])([np.ones(1)])
    assert tree.structure(built) == td


def test_jit_outputs_keep_their_structure_through_the_fast_path():
    f = fa.jit(lambda x, y: ({"s": x + y, "p": Pair(x * y, None)}, [x - y]))
    x, y = fa.arange(3.0), fa.ones(3)
    first, second = f(x, y), f(x, y)  # second call: the aval-keyed entry
    assert _same(first, second)
    assert isinstance(second[0]["p"], Pair) and second[0]["p"].b is None
    np.testing.assert_array_equal(np.asarray(second[1][0]), np.arange(3.0) - 1)


def test_fast_path_retraces_on_every_key_component():
    f = fa.jit(lambda x: x * 2)
    f(fa.ones(3, dtype=fa.float32))
    f(fa.ones(3, dtype=fa.float32))
    assert f.trace_count == 1
    f(fa.ones(4, dtype=fa.float32))  # shape
    f(fa.ones(3, dtype=fa.float64))  # dtype
    assert f.trace_count == 3
    weak = Array(np.asarray(2.0, np.float32), weak_type=True)
    strong = Array(np.asarray(2.0, np.float32))
    f(weak), f(strong)  # weak type
    assert f.trace_count == 5
    g = fa.jit(lambda *xs: sum(xs))
    g(fa.ones(2))
    g(fa.ones(2), fa.ones(2))  # arity (pytree structure)
    g(fa.ones(2), fa.ones(2))
    assert g.trace_count == 2


def test_fast_path_and_general_path_share_programs():
    f = fa.jit(lambda x, y: x + y)
    x = fa.ones(2)
    f(x, y=x)  # keyword: general path
    f(x, x)  # positional: a different structure, so a new trace
    f(x, x)
    assert f.trace_count == 2 and f._cache_size() == 2
    f(np.ones(2, np.float32), x)  # a NumPy argument: converted on the general path, same avals
    assert f.trace_count == 2


def test_fast_path_donates_and_refuses_like_the_general_path():
    g = fa.jit(lambda v, w: (v * 2.0, w + 1.0), donate_argnums=0)
    g(fa.ones(4), fa.ones(4))  # trace
    x = fa.asarray(np.arange(4.0))
    out, _ = g(x, fa.ones(4))
    np.testing.assert_array_equal(np.asarray(out), np.arange(4.0) * 2)
    with pytest.raises(RuntimeError, match="donated"):
        _ = x.shape
    with pytest.raises(RuntimeError, match="donated"):
        g(x, fa.ones(4))  # a donated array passed again: the same error as before
    # the same Array passed as the donated and as another argument is not donated
    y = fa.asarray(np.arange(4.0))
    out, other = g(y, y)
    np.testing.assert_array_equal(np.asarray(y), np.arange(4.0))
    np.testing.assert_array_equal(np.asarray(other), np.arange(4.0) + 1)
    # a buffer someone else sees is not donated
    z = fa.asarray(np.arange(4.0))
    view = np.asarray(z)
    g(z, fa.ones(4))
    np.testing.assert_array_equal(view, np.arange(4.0))


def test_fast_path_quiets_intended_floating_point_errors():
    f = fa.jit(lambda x: fa.log(x))
    f(fa.ones(2))
    with np.errstate(all="raise"):
        out = f(fa.asarray(np.array([0.0, -1.0])))
    assert np.isneginf(np.asarray(out)[0]) and np.isnan(np.asarray(out)[1])


def test_under_grad_the_program_is_evaluated_per_equation():
    f = fa.jit(lambda x: fa.sin(x) * x)
    f(fa.ones(3))
    g = fa.grad(lambda x: f(x).sum())(fa.ones(3))
    np.testing.assert_allclose(np.asarray(g), np.cos(1.0) + np.sin(1.0))
