"""Errors are part of the contract: each names the operation, the values involved and the fix."""

from __future__ import annotations

import numpy as np
import pytest

import fnarray as fa


def test_grad_of_non_scalar_output_suggests_vjp_and_jacrev():
    with pytest.raises(TypeError, match=r"(?s)scalar.*\(3,\).*vjp.*jacrev"):
        fa.grad(lambda x: x * 2)(fa.ones(3))


def test_grad_with_respect_to_integer_input():
    with pytest.raises(TypeError, match="int64"):
        fa.grad(lambda x: x * 2.0)(fa.asarray(3))
    with pytest.raises(TypeError, match="floating-point"):
        fa.jacrev(lambda x: x * 2.0)(fa.asarray([1, 2]))


@pytest.mark.parametrize("transform", ["vjp", "jvp", "vmap"])
def test_leaked_tracer_names_its_transformation(transform):
    leaked = []

    def f(x):
        leaked.append(x * 1.0)
        return x * 2.0

    x = fa.ones(2)
    if transform == "vjp":
        fa.grad(lambda x: fa.sum(f(x)))(x)
    elif transform == "jvp":
        fa.jvp(f, (x,), (x,))
    else:
        fa.vmap(f)(x)
    with pytest.raises(fa.UnexpectedTracerError, match=rf"sin.*{transform}.*leaked"):
        fa.sin(leaked[0])


@pytest.mark.parametrize("op, a, b", [
    ("add", (2, 3), (3, 2)),
    ("mul", (2, 3), (4,)),
])
def test_broadcast_mismatch_names_op_and_shapes(op, a, b):
    fn = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y}[op]
    with pytest.raises(ValueError) as info:
        fn(fa.ones(a), fa.ones(b))
    msg = str(info.value).replace(" ", "")
    assert op in msg
    assert str(a).replace(" ", "").rstrip(")").rstrip(",") in msg
    assert str(b).replace(" ", "").rstrip(")").rstrip(",") in msg


def test_broadcast_mismatch_under_transformations():
    with pytest.raises(ValueError, match="add"):
        fa.grad(lambda x: fa.sum(x + fa.ones((3, 2))))(fa.ones((2, 3)))


def test_matmul_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(2, 3\)"):
        fa.ones((2, 3)) @ fa.ones((2, 3))
    with pytest.raises(ValueError, match=r"matmul.*\(4,\).*\(3,\)"):
        fa.matmul(fa.ones(4), fa.ones(3))


def test_other_shape_errors_name_the_op():
    with pytest.raises(ValueError, match=r"reshape.*\(6,\).*\(4, 2\)"):
        fa.reshape(fa.ones(6), (4, 2))
    with pytest.raises(ValueError, match=r"concatenate.*\(2, 3\).*\(2, 2\)"):
        fa.concatenate([fa.ones((2, 3)), fa.ones((2, 2))])
    with pytest.raises(ValueError, match="sum: axis 2 is out of bounds"):
        fa.sum(fa.ones(3), axis=2)
    with pytest.raises(IndexError, match="out of bounds"):
        fa.ones(3)[5]


def test_item_assignment_points_to_at():
    x = fa.ones(3)
    with pytest.raises(TypeError, match=r"x\.at\[0\]\.set"):
        x[0] = 1
    with pytest.raises(TypeError, match=r"\.at\["):
        x[1:2] = 0


def test_numpy_view_is_read_only_and_zero_copy():
    x = fa.asarray(np.arange(4.0))
    a = np.asarray(x)
    assert not a.flags.writeable
    assert np.shares_memory(a, np.asarray(x))
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 5.0
    assert float(x[0]) == 0.0


def test_asarray_copies_numpy_input():
    src = np.arange(3.0)
    x = fa.asarray(src)
    src[0] = 9.0
    assert float(x[0]) == 0.0


@pytest.mark.parametrize("make, op", [
    (lambda: fa.zeros(3, dtype="float128"), "zeros"),
    (lambda: fa.ones(3).astype("complex256"), "astype"),
    (lambda: fa.arange(3, dtype="not-a-dtype"), "arange"),
    (lambda: fa.asarray(np.array(["a", "b"])), "asarray"),
])
def test_bad_dtype_names_the_dtype_and_op(make, op):
    with pytest.raises(TypeError) as info:
        make()
    msg = str(info.value)
    assert msg.startswith(f"{op}:")
    assert "float32" in msg  # lists what is supported


def test_vmap_of_python_branch_suggests_where():
    def f(x):
        if x > 0:
            return x
        return -x

    with pytest.raises(fa.ConcretizationError, match=r"vmap.*fa\.where"):
        fa.vmap(f)(fa.asarray([1.0, -1.0]))
    # an unbatched argument may still drive Python control flow
    out = fa.vmap(lambda x, s: x if s > 0 else -x, in_axes=(0, None))(fa.ones(2), fa.asarray(1.0))
    np.testing.assert_array_equal(np.asarray(out), [1.0, 1.0])


def test_vmap_size_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"vmap.*different sizes"):
        fa.vmap(lambda a, b: a + b)(fa.ones(3), fa.ones(4))


def test_jvp_tangent_shape_mismatch():
    with pytest.raises(ValueError, match=r"jvp.*\(2,\).*\(3,\)"):
        fa.jvp(fa.sin, (fa.ones(3),), (fa.ones(2),))


def test_mixed_primal_and_index_errors():
    with pytest.raises(IndexError, match="integer or boolean"):
        fa.ones(3)[fa.asarray([0.5])]
    with pytest.raises(IndexError, match="too many indices"):
        fa.ones(3)[0, 0]
