"""fnarray.compat: dtype/device conversion, random creation, linear algebra, named result
tuples, save/load, and tensors under fa.jit."""

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch

# --- to() and the dtype methods ---------------------------------------------------------


def test_dtype_methods_convert():
    x = torch.tensor([1.5, -2.0, 0.0])
    assert f"{(x > 0).long()}" == "tensor([1, 0, 0])"
    for method, dtype in (("float", torch.float32), ("double", torch.float64),
                          ("half", torch.float16), ("long", torch.int64),
                          ("int", torch.int32), ("bool", torch.bool)):
        assert getattr(x, method)().dtype == dtype
    assert x.float() is x  # nothing to convert: the same tensor, as in PyTorch


def test_to_every_form():
    x = torch.tensor([1.0, 2.0])
    assert x.to(torch.int64).dtype == torch.int64
    assert x.to(np.float64).dtype == torch.float64 and x.to(float).dtype == torch.float64
    assert x.to("cpu") is x and x.to(torch.device("cpu")) is x
    assert x.to("cpu", torch.float64).dtype == torch.float64
    assert x.to(torch.tensor([1], dtype=torch.int16)).dtype == torch.int16
    assert x.to(dtype=torch.float64).dtype == torch.float64
    assert x.to(device="cpu", dtype=torch.int32).dtype == torch.int32
    copied = x.to(torch.float32, copy=True)
    assert copied is not x and np.array_equal(copied.numpy(), x.numpy())
    with pytest.raises(TypeError, match=r"Tensor.to: expected a dtype, a device or a tensor"):
        x.to([1, 2])


def test_to_records_the_conversion():
    w = torch.ones(2, requires_grad=True)
    y = w.to(torch.float64)
    assert f"{y}" == "tensor([1., 1.], dtype=torch.float64, grad_fn=<ToCopyBackward0>)"
    (y * 3).sum().backward()
    assert w.grad.dtype == torch.float32 and w.grad.tolist() == [3.0, 3.0]


# --- random creation --------------------------------------------------------------------


def _draws():
    return [torch.rand(3, 4), torch.randn(5), torch.randint(0, 10, (6,)),
            torch.rand_like(torch.zeros(2, dtype=torch.float64)),
            torch.randn_like(torch.zeros(2)), torch.randperm(7),
            torch.empty(4).normal_(), torch.empty(4).uniform_(-1, 1),
            torch.empty(4).bernoulli_(0.5)]


def test_manual_seed_reproduces_and_the_stream_advances():
    torch.manual_seed(123)
    first = [t.tolist() for t in _draws()]
    again = [t.tolist() for t in _draws()]
    torch.manual_seed(123)
    assert [t.tolist() for t in _draws()] == first
    assert again != first
    assert torch.initial_seed() == 123


def test_random_dtypes_shapes_and_ranges():
    torch.manual_seed(0)
    u = torch.rand(2, 3)
    assert u.shape == (2, 3) and u.dtype == torch.float32
    assert 0 <= u.min().item() and u.max().item() < 1
    assert torch.randn(4, dtype=torch.float64).dtype == torch.float64
    r = torch.randint(3, 7, (1000,))
    assert r.dtype == torch.int64 and set(r.tolist()) == {3, 4, 5, 6}
    assert torch.randint(5, (3, 2)).shape == (3, 2)
    assert sorted(torch.randperm(10).tolist()) == list(range(10))
    assert torch.randperm(4, dtype=torch.int32).dtype == torch.int32
    assert torch.rand_like(torch.zeros(2, 2, dtype=torch.float64)).dtype == torch.float64
    b = torch.zeros(5, dtype=torch.int64).bernoulli_(0.5)
    assert b.dtype == torch.int64 and set(b.tolist()) <= {0, 1}


def test_random_statistics():
    torch.manual_seed(1)
    n = torch.randn(20000, dtype=torch.float64).numpy()
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1) < 0.03
    u = torch.rand(20000).numpy()
    assert abs(u.mean() - 0.5) < 0.01
    x = torch.empty(20000).normal_(3.0, 0.5).numpy()
    assert abs(x.mean() - 3.0) < 0.02 and abs(x.std() - 0.5) < 0.02
    y = torch.empty(20000).uniform_(-2, 4).numpy()
    assert y.min() >= -2 and y.max() < 4 and abs(y.mean() - 1) < 0.06
    p = torch.empty(20000).bernoulli_(0.3).numpy()
    assert abs(p.mean() - 0.3) < 0.02
    q = torch.bernoulli(torch.full((20000,), 0.8)).numpy()
    assert abs(q.mean() - 0.8) < 0.02


def test_generator_is_an_independent_stream():
    g = torch.Generator().manual_seed(7)
    a = [torch.rand(3, generator=g).tolist(), torch.randn(2, generator=g).tolist(),
         torch.randperm(5, generator=g).tolist()]
    torch.manual_seed(0)
    torch.rand(10)  # the global stream does not disturb g
    g.manual_seed(7)
    assert [torch.rand(3, generator=g).tolist(), torch.randn(2, generator=g).tolist(),
            torch.randperm(5, generator=g).tolist()] == a
    assert torch.manual_seed(3) is torch.default_generator


# --- linear algebra ---------------------------------------------------------------------

_A = np.array([[2.0, -1.0, 0.5], [0.3, 1.5, -0.2], [0.1, 0.4, 3.0], [1.0, 0.0, 1.0]])


def test_det_matches_numpy_and_differentiates():
    m = torch.tensor(_A[:3], requires_grad=True)
    d = torch.det(m)
    assert np.isclose(d.item(), np.linalg.det(_A[:3]))
    assert d.grad_fn.name() == "LinalgDetBackward0"
    d.backward()  # d det / dA = det(A) A^-T
    assert np.allclose(m.grad.numpy(), np.linalg.det(_A[:3]) * np.linalg.inv(_A[:3]).T)


@pytest.mark.parametrize("some", [True, False])
def test_svd_returns_u_s_v(some):
    u, s, v = torch.svd(torch.tensor(_A), some=some)
    assert u.shape == ((4, 3) if some else (4, 4)) and v.shape == (3, 3)
    assert np.allclose(s.numpy(), np.linalg.svd(_A, compute_uv=False))
    assert np.allclose((u[:, :3] * s) @ v.T, _A)


def test_svd_without_uv_and_linalg_namespace():
    u, s, v = torch.svd(torch.tensor(_A), compute_uv=False)
    assert u.shape == (4, 4) and v.shape == (3, 3) and not u.numpy().any()
    t = torch.tensor(_A)
    uu, ss, vh = torch.linalg.svd(t, full_matrices=False)
    assert np.allclose(((uu * ss) @ vh).numpy(), _A)
    sq = torch.tensor(_A[:3])
    assert np.allclose(torch.linalg.inv(sq).numpy(), np.linalg.inv(_A[:3]))
    assert np.isclose(torch.linalg.det(sq).item(), np.linalg.det(_A[:3]))
    sign, logabs = torch.linalg.slogdet(sq)
    assert np.allclose([sign.item(), logabs.item()], np.linalg.slogdet(_A[:3]))
    assert np.isclose(torch.linalg.norm(t).item(), np.linalg.norm(_A))
    assert np.allclose(torch.linalg.vector_norm(t, ord=1, dim=0).numpy(),
                       np.abs(_A).sum(0))
    assert torch.linalg.matrix_norm(t, keepdim=True).shape == (1, 1)
    spd = _A.T @ _A
    w, q = torch.linalg.eigh(torch.tensor(spd))
    assert np.allclose(w.numpy(), np.linalg.eigvalsh(spd))
    qq, r = torch.linalg.qr(t)
    assert np.allclose((qq @ r).numpy(), _A)
    b = np.array([1.0, 2.0, 3.0])
    assert np.allclose(torch.linalg.solve(sq, torch.tensor(b)).numpy(),
                       np.linalg.solve(_A[:3], b))


# --- printing of named results ------------------------------------------------------------


def test_named_results_print_like_pytorch():
    r = torch.tensor([[0.9956, -0.2232], [0.3858, -0.6593]])
    text = f"{torch.svd(r)}"
    assert text.startswith("torch.return_types.svd(\nU=tensor([[-0.8353, -0.549")
    assert "\nS=tensor([1.1793, 0.4836]),\nV=tensor([[-0.8851, -0.465" in text
    m = torch.tensor([[1.0, 5.0], [4.0, 2.0]])
    assert f"{torch.max(m, 1)}" == ("torch.return_types.max(\nvalues=tensor([5., 4.]),\n"
                                     "indices=tensor([1, 0]))")
    values, indices = torch.min(m, dim=0)
    assert values.tolist() == [1.0, 2.0] and torch.min(m, dim=0).indices.tolist() == [0, 1]
    assert f"{torch.sort(m).values}" == "tensor([[1., 5.],\n        [2., 4.]])"
    assert type(torch.topk(m, 1)).__name__ == "topk"
    std_mean = torch.std_mean(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert type(std_mean) is tuple
    assert f"{std_mean}" == "(tensor(1.2910), tensor(2.5000))"


# --- save / load --------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    pytest.importorskip("fnarray.io")
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    state = {"w": w, "step": 3, "ids": torch.tensor([1, 2], dtype=torch.int32)}
    torch.save(state, tmp_path / "ckpt.fa")
    back = torch.load(tmp_path / "ckpt.fa")
    assert back["step"] == 3
    assert np.array_equal(np.asarray(back["w"]), w.detach().numpy())
    assert back["w"].requires_grad and back["ids"].dtype == torch.int32


# --- under fa.jit ---------------------------------------------------------------------------


def test_tensor_code_under_jit():
    f = fa.jit(lambda x: (torch.as_tensor(x) * 2).sum())
    assert float(f(fa.asarray([1.0, 2.0, 3.0]))) == 12.0
    g = fa.jit(lambda x: torch.tanh(torch.as_tensor(x)).mean(dim=0))
    x = np.arange(6.0).reshape(3, 2)
    assert np.allclose(np.asarray(g(fa.asarray(x))), np.tanh(x).mean(0))
