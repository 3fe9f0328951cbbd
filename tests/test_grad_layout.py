"""Gradients come out in their parameter's memory layout (row-major for row-major weights).

An elementwise pass that mixes a row-major parameter with a column-major gradient (the
optimizer's update) walks one of them against its strides, several times slower in NumPy.
``dot_general``'s VJP computes a concrete operand's cotangent in that operand's layout
(``x @ w.T``: the cotangent of the transposed view ``w.T`` is itself a transposed view, so
the transpose's cotangent is row-major like ``w``), and the compat tape gives a leaf's
``.grad`` the leaf's layout (PyTorch's AccumulateGrad contract) for what still arrives
transposed (an RNN's weights, read transposed inside its ``scan`` body).  Values are
compared with the same gradients taken under ``fa.jit``, whose tracers carry no layout.
"""

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
from fnarray import nn

RNG = np.random.default_rng(0)


def t(*shape):
    return torch.tensor(RNG.normal(size=shape))


def buf(x):
    """The NumPy buffer behind a tensor or array."""
    x = x._value if isinstance(x, torch.Tensor) else x
    return x._value


CASES = [
    ("linear_2d", lambda: nn.Linear(6, 5), lambda: (t(4, 6),)),
    ("linear_3d", lambda: nn.Linear(6, 5), lambda: (t(3, 4, 6),)),
    ("conv2d", lambda: nn.Conv2d(2, 3, 3), lambda: (t(2, 2, 6, 6),)),
    ("bilinear", lambda: nn.Bilinear(3, 4, 5), lambda: (t(2, 3), t(2, 4))),
    ("embedding", lambda: nn.Embedding(7, 4), lambda: (torch.tensor([[1, 2, 6], [0, 2, 2]]),)),
    ("rnn", lambda: nn.RNN(3, 4), lambda: (t(5, 2, 3),)),
    ("lstm", lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True), lambda: (t(5, 2, 3),)),
    ("gru", lambda: nn.GRU(3, 4, batch_first=True), lambda: (t(2, 5, 3),)),
    ("mha", lambda: nn.MultiheadAttention(8, 2), lambda: (t(3, 2, 8),) * 3),
]


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name,make,inputs", CASES, ids=[c[0] for c in CASES])
def test_parameter_grads_are_row_major_and_match_jit(name, make, inputs):
    torch.manual_seed(0)
    m = make().double()
    xs = inputs()
    loss = (_first(m(*xs)) ** 2).sum()
    loss.backward()
    params = {k: v.detach().array for k, v in m.named_parameters()}

    def f(p):
        return fa.sum(_first(nn.functional_call(m, p, tuple(x.array for x in xs))) ** 2)

    want = fa.jit(fa.grad(f))(params)
    for k, p in m.named_parameters():
        assert buf(p).flags.c_contiguous
        assert buf(p.grad).flags.c_contiguous, (name, k, buf(p.grad).strides)
        np.testing.assert_allclose(buf(p.grad), np.asarray(want[k]), rtol=1e-10, atol=1e-12)


def test_accumulated_grads_stay_row_major():
    torch.manual_seed(0)
    m = nn.LSTM(3, 4).double()
    x = t(5, 2, 3)
    for _ in range(2):
        _first(m(x)).sum().backward()
    for _, p in m.named_parameters():
        assert buf(p.grad).flags.c_contiguous


def test_weight_cotangent_of_transposed_view_is_a_transposed_view():
    """Eager ``fa.grad`` with respect to the transposed view itself: its cotangent has the
    view's (column-major) layout, and the weight's own cotangent is row-major."""
    x = fa.asarray(RNG.normal(size=(4, 6)))
    w = fa.asarray(RNG.normal(size=(5, 6)))
    ct = fa.asarray(RNG.normal(size=(4, 5)))

    def f(wt):
        return fa.sum((x @ wt) * ct)

    g_view = fa.grad(f)(w.T)
    assert buf(g_view).flags.f_contiguous and not buf(g_view).flags.c_contiguous
    g_w = fa.grad(lambda w: f(w.T))(w)
    assert buf(g_w).flags.c_contiguous
    np.testing.assert_allclose(np.asarray(g_w), np.asarray(ct).T @ np.asarray(x), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g_w), np.asarray(fa.jit(fa.grad(lambda w: f(w.T)))(w)),
                               rtol=1e-12)


def test_second_order_through_transposed_weight():
    """``create_graph`` backward through ``linear`` (the cotangent rule runs on recorded
    tensors) gives the same second derivatives as ``jit``."""
    torch.manual_seed(0)
    lin = nn.Linear(3, 2).double()
    x = t(4, 3)
    g, = torch.autograd.grad((lin(x) ** 3).sum(), lin.weight, create_graph=True)
    (g ** 2).sum().backward()

    def f(w):
        return fa.sum(fa.grad(lambda w: fa.sum((x.array @ w.T + lin.bias.detach().array) ** 3))(w)
                      ** 2)

    want = fa.jit(fa.grad(f))(lin.weight.detach().array)
    np.testing.assert_allclose(buf(lin.weight.grad), np.asarray(want), rtol=1e-10)


def test_matmul_of_stacked_matrices_with_one_matrix():
    """``(..., m, k) @ (k, n)`` is one contraction over all leading rows, with NumPy's
    result, eager and under jit, including a non-contiguous left operand."""
    a = RNG.normal(size=(2, 3, 4, 5))
    b = RNG.normal(size=(5, 6))
    want = np.matmul(a, b)
    np.testing.assert_allclose(np.asarray(fa.asarray(a) @ fa.asarray(b)), want, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(fa.jit(fa.matmul)(fa.asarray(a), fa.asarray(b))), want,
                               rtol=1e-12)
    at = np.swapaxes(RNG.normal(size=(3, 2, 4, 5)), 0, 1)
    np.testing.assert_allclose(np.asarray(fa.asarray(at) @ fa.asarray(b)), np.matmul(at, b),
                               rtol=1e-12)
    ga, gb = fa.grad(lambda a, b: fa.sum(fa.sin(a @ b)), argnums=(0, 1))(fa.asarray(a),
                                                                          fa.asarray(b))
    c = np.cos(want)
    np.testing.assert_allclose(np.asarray(ga), c @ b.T, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(gb), np.einsum("ijmk,ijmn->kn", a, c), rtol=1e-10)
