"""``fa.einsum`` against ``np.einsum``, and its derivatives against finite differences."""

import importlib

import numpy as np
import pytest

import fnarray as fa

einsum_mod = importlib.import_module("fnarray.api.einsum")  # the module, not the function

CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),                      # matmul
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),             # batched matmul
    ("ii->", [(3, 3)]),                                    # trace
    ("ii", [(3, 3)]),                                      # implicit trace
    ("ii->i", [(3, 3)]),                                   # diagonal
    ("iij->j", [(3, 3, 2)]),
    ("iii->i", [(2, 2, 2)]),
    ("i,j->ij", [(2,), (3,)]),                             # outer
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),            # bilinear chain
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 2)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (5, 3, 4)]),    # ellipsis with broadcasting
    ("i...->...", [(2, 3, 4)]),
    ("...", [(2, 3)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),                       # size-1 broadcasting
    ("ij,j", [(2, 3), (3,)]),
    ("i,i", [(3,), (3,)]),
    ("ij->", [(2, 3)]),
    ("ji", [(2, 3)]),                                      # implicit: alphabetical output
    ("ij,kl->", [(2, 3), (4, 5)]),                         # indices private to one operand
    ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 5)]),
    (",ij->ij", [(), (2, 3)]),
    ("Ab,bA", [(2, 3), (3, 2)]),
    ("ij,jk->ik", [(0, 3), (3, 4)]),                       # size-0 axis
]


def _operands(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) for s in shapes]


@pytest.mark.parametrize("sub,shapes", CASES)
@pytest.mark.parametrize("optimize", ["greedy", "optimal", False])
def test_matches_numpy(sub, shapes, optimize):
    ops = _operands(shapes)
    out = fa.einsum(sub, *[fa.asarray(o) for o in ops], optimize=optimize)
    expected = np.einsum(sub, *ops)
    assert out.shape == expected.shape
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-12, atol=1e-12)


def test_interleaved_form_and_explicit_path():
    a, b = _operands([(2, 3), (3, 4)])
    fa_a, fa_b = fa.asarray(a), fa.asarray(b)
    np.testing.assert_allclose(np.asarray(fa.einsum(fa_a, [0, 1], fa_b, [1, 2], [0, 2])), a @ b)
    np.testing.assert_allclose(
        np.asarray(fa.einsum("ij,jk", fa_a, fa_b, optimize=["einsum_path", (0, 1)])), a @ b)


def test_float32_and_promotion():
    a = fa.ones((2, 3), dtype=fa.float32)
    assert fa.einsum("ij,j->i", a, fa.ones(3, dtype=fa.float32)).dtype == fa.float32
    assert fa.einsum("ij,j->i", a, fa.ones(3, dtype=fa.float64)).dtype == fa.float64


def test_path_is_cached():
    ops = [fa.asarray(o) for o in _operands([(2, 3), (3, 4), (4, 5)])]
    einsum_mod._contraction_path.cache_clear()
    fa.einsum("ij,jk,kl->il", *ops)
    fa.einsum("ij,jk,kl->il", *ops)
    info = einsum_mod._contraction_path.cache_info()
    assert info.hits == 1 and info.misses == 1


@pytest.mark.parametrize("sub,shapes,match", [
    ("ij,jk->ik", [(2, 3), (4, 5)], "index 'j'"),
    ("ij->ik", [(2, 3)], "output index 'k'"),
    ("ij->ii", [(2, 2)], "repeated"),
    ("ijk", [(2, 3)], "names 3 axes"),
    ("ij,jk", [(2, 3)], "2 operand"),
    ("i1", [(2, 3)], "invalid character"),
])
def test_errors_name_the_problem(sub, shapes, match):
    with pytest.raises(ValueError, match=match):
        fa.einsum(sub, *[fa.asarray(o) for o in _operands(shapes)])


DIFF_CASES = ["ij,jk->ik", "ii->", "ii->i", "i,j->ij", "ij,jk,kl->il", "...ij,...jk->...ik",
              "ij,ij->ij", "ij,kl->", "iij->j"]


def _shapes(sub):
    return dict(CASES)[sub]


@pytest.mark.parametrize("sub", DIFF_CASES)
def test_derivatives(sub):
    rng = np.random.default_rng(1)
    ops = [fa.asarray(o) for o in _operands(_shapes(sub))]
    ts = [fa.asarray(rng.normal(size=o.shape)) for o in ops]

    def f(*xs):
        return fa.einsum(sub, *xs)

    out, t_out = fa.jvp(f, tuple(ops), tuple(ts))
    eps = 1e-6
    fd = (np.asarray(f(*[o + eps * t for o, t in zip(ops, ts)]))
          - np.asarray(f(*[o - eps * t for o, t in zip(ops, ts)]))) / (2 * eps)
    np.testing.assert_allclose(np.asarray(t_out), fd, rtol=1e-6, atol=1e-8)
    ct = fa.asarray(rng.normal(size=out.shape))
    _, vjp_fn = fa.vjp(f, *ops)
    grads = vjp_fn(ct)
    lhs = float(np.sum(np.asarray(ct) * np.asarray(t_out)))
    rhs = sum(float(np.sum(np.asarray(g) * np.asarray(t))) for g, t in zip(grads, ts))
    assert np.isclose(lhs, rhs, rtol=1e-10, atol=1e-12)


def test_second_order_and_vmap():
    a, b = (fa.asarray(o) for o in _operands([(3, 3), (3,)]))

    def quad(x):
        return fa.einsum("i,ij,j->", x, a, x)

    hess = fa.hessian(quad)(b)
    np.testing.assert_allclose(np.asarray(hess), np.asarray(a + a.T), rtol=1e-12)
    batch = fa.asarray(_operands([(4, 3)], seed=3)[0])
    per_example = fa.vmap(lambda x: fa.einsum("i,ij->j", x, a))(batch)
    np.testing.assert_allclose(np.asarray(per_example), np.asarray(batch) @ np.asarray(a))
