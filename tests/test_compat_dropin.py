"""PyTorch idioms that must run unchanged under ``import fnarray.compat as torch``.

Each expected value is what PyTorch (2.x) gives for the same code, written down from its
documented behaviour.
"""

import numpy as np
import pytest

import fnarray.compat as torch
from fnarray import nn


# --- views: a second identity view of one base -------------------------------------------

def test_views_of_one_base_index_and_reshape():
    x = torch.arange(12).reshape(3, 4)
    assert x[1, 2].item() == 6
    assert x[:, 2].tolist() == [2, 6, 10]
    assert x.reshape(-1, 4).tolist() == x.tolist()


@pytest.mark.parametrize("make", [
    lambda t: t.view(-1), lambda t: t.reshape(t.shape), lambda t: t[:], lambda t: t[...],
    lambda t: t.flatten(), lambda t: t.squeeze(), lambda t: t.permute(0),
])
def test_second_identity_view_shares_the_base(make):
    t = torch.arange(4.0)
    a, b = make(t), make(t)
    b.mul_(2)  # PyTorch: both views and the base see the change
    assert a.tolist() == [0.0, 2.0, 4.0, 6.0] and t.tolist() == a.tolist()


# --- in-place initialisation through .data / .detach() -------------------------------------

def test_inplace_init_through_data_and_detach_reaches_the_parameter():
    torch.manual_seed(0)
    lin = nn.Linear(2, 3)
    lin.bias.data.fill_(0.01)
    assert np.allclose(lin.bias.tolist(), [0.01] * 3)
    lin.weight.data.normal_()
    lin.weight.detach().zero_()
    assert lin.weight.tolist() == [[0.0, 0.0]] * 3
    lin.weight.data[0] = 1
    assert lin.weight.tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    lin.state_dict()["bias"].add_(1)
    assert np.allclose(lin.bias.tolist(), [1.01] * 3)
    # still leaves that require grad, and training works on the new values
    assert lin.weight.is_leaf and lin.weight.requires_grad and lin.weight.grad_fn is None
    lin(torch.ones(1, 2)).sum().backward()
    assert lin.weight.grad.tolist() == [[1.0, 1.0]] * 3


def test_inplace_on_a_leaf_itself_still_raises():
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        w[:1].add_(1)


def test_detach_write_into_a_computed_tensor_keeps_its_graph():
    w = torch.ones(2, requires_grad=True)
    h = w * 3
    h.detach().zero_()
    assert h.tolist() == [0.0, 0.0] and h.grad_fn is not None
    h.sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]


# --- version checks only for what a backward rule saved ------------------------------------

def test_inplace_on_a_tensor_no_backward_saved_is_allowed():
    w = torch.ones(2, requires_grad=True)
    h = w * 1
    y = h + 10
    h.add_(1)
    y.sum().backward()  # PyTorch: fine, AddBackward0 saves nothing
    assert w.grad.tolist() == [1.0, 1.0]


def test_inplace_on_a_saved_tensor_still_raises():
    w = torch.ones(2, requires_grad=True)
    h = w * 1
    y = h * w  # MulBackward0 saves h
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# --- reach through the compat name ---------------------------------------------------------

def test_submodules_reach_the_real_modules():
    import importlib

    import fnarray.data
    import fnarray.nn.functional
    import fnarray.optim
    assert torch.nn is nn and torch.optim is fnarray.optim
    assert torch.nn.functional is fnarray.nn.functional
    assert torch.optim.lr_scheduler.OneCycleLR is fnarray.optim.lr_scheduler.OneCycleLR
    assert torch.utils.data is fnarray.data
    for alias, real in [("fnarray.compat.nn.functional", "fnarray.nn.functional"),
                        ("fnarray.compat.optim.lr_scheduler", "fnarray.optim.lr_scheduler"),
                        ("fnarray.compat.utils.data", "fnarray.data"),
                        ("fnarray.compat.utils.checkpoint", "fnarray.compat.utils.checkpoint"),
                        ("fnarray.compat.cuda.amp", "fnarray.compat.cuda.amp")]:
        mod = importlib.import_module(alias)
        assert mod is importlib.import_module(real)
        assert mod.__spec__.name == real  # one module object, not a second copy
    from fnarray.compat.autograd.functional import jacobian  # noqa: F401
    from fnarray.compat.cuda.amp import GradScaler, autocast  # noqa: F401
    from fnarray.compat.utils.data import DataLoader
    assert DataLoader is fnarray.data.DataLoader


def test_top_level_switches_and_queries():
    assert torch.cuda.is_available() is False and torch.cuda.device_count() == 0
    torch.backends.cudnn.benchmark = True
    assert torch.backends.cudnn.benchmark is True
    torch.backends.cudnn.benchmark = False
    assert torch.backends.mps.is_available() is False
    assert torch.__version__.startswith("2.")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(before)
    with pytest.raises(RuntimeError, match="positive"):
        torch.set_num_threads(0)


def test_rng_state_round_trip():
    torch.manual_seed(3)
    state = torch.get_rng_state()
    assert state.dtype == torch.uint8
    a = torch.rand(3)
    torch.set_rng_state(state)
    assert torch.rand(3).tolist() == a.tolist()


def test_legacy_tensor_types_and_constructor():
    assert torch.Tensor(2, 3).shape == (2, 3) and torch.Tensor(2, 3).dtype == torch.float32
    assert torch.Tensor([1, 2]).dtype == torch.float32  # PyTorch: tensor([1., 2.])
    assert torch.Tensor(torch.Size([4])).shape == (4,)
    assert torch.Tensor().shape == (0,)
    p = nn.Parameter(torch.Tensor(3, 2))
    assert p.shape == (3, 2) and p.requires_grad and p.dtype == torch.float32
    assert torch.LongTensor([1, 2]).dtype == torch.int64
    assert torch.FloatTensor(2).shape == (2,)
    assert isinstance(torch.ones(2), torch.FloatTensor)
    assert not isinstance(torch.ones(2), torch.LongTensor)
    assert isinstance(torch.tensor([1]), torch.LongTensor)


def test_set_printoptions_changes_repr():
    try:
        torch.set_printoptions(precision=2)
        assert repr(torch.tensor([1.23456, 2.5])) == "tensor([1.23, 2.50])"
        torch.set_printoptions(threshold=5, edgeitems=2)
        assert repr(torch.arange(10.0)) == "tensor([0., 1.,  ..., 8., 9.])"
        torch.set_printoptions(sci_mode=True)
        assert repr(torch.tensor([1.5])) == "tensor([1.50e+00])"
    finally:
        torch.set_printoptions(profile="default")
    assert repr(torch.tensor([1.23456, 2.5])) == "tensor([1.2346, 2.5000])"


# --- autograd.Function and autograd.functional --------------------------------------------

class _Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x ** 3 * k

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x ** 2 * ctx.k, None


def test_autograd_function():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = _Cube.apply(x, 2.0)
    assert y.tolist() == [2.0, 16.0]
    assert y.grad_fn.name() == "_CubeBackward"
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 24.0]
    assert _Cube.apply(torch.tensor([1.0]), 1.0).grad_fn is None  # nothing to record


def test_autograd_functional():
    F = torch.autograd.functional
    x = torch.tensor([1.0, 2.0])
    assert F.jacobian(lambda t: t ** 2, x).tolist() == [[2.0, 0.0], [0.0, 4.0]]
    assert F.hessian(lambda t: (t ** 3).sum(), x).tolist() == [[6.0, 0.0], [0.0, 12.0]]
    out, jv = F.jvp(lambda t: t ** 2, x, torch.tensor([1.0, 1.0]))
    assert out.tolist() == [1.0, 4.0] and jv.tolist() == [2.0, 4.0]
    out, vj = F.vjp(lambda t: t ** 2, x, torch.tensor([1.0, 0.5]))
    assert vj.tolist() == [2.0, 2.0]
    _, hv = F.hvp(lambda t: (t ** 3).sum(), x, torch.tensor([1.0, 1.0]))
    assert hv.tolist() == [6.0, 12.0]
    jac = F.jacobian(lambda a, b: a * b, (x, torch.tensor([3.0, 4.0])))
    assert [j.tolist() for j in jac] == [[[3.0, 0.0], [0.0, 4.0]], [[1.0, 0.0], [0.0, 2.0]]]
    assert not x.requires_grad  # the caller's tensors are untouched


# --- gradient checkpointing -----------------------------------------------------------------

def test_checkpoint_matches_plain_backward_and_recomputes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Dropout(0.3), nn.Linear(4, 2))
    calls = []
    model[0].register_forward_hook(lambda *a: calls.append(1))
    inp = torch.randn(5, 3)
    state = torch.get_rng_state()
    out = torch.utils.checkpoint.checkpoint(model, inp, use_reentrant=False)
    (out ** 2).sum().backward()
    assert len(calls) == 2  # forward, then the recomputation in backward
    assert out.grad_fn is not None and not inp.requires_grad
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.set_rng_state(state)  # the same dropout mask as the checkpointed run
    (model(inp) ** 2).sum().backward()
    for g, p in zip(got, model.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_checkpoint_input_gradient_and_autograd_grad():
    w = torch.tensor([2.0, 3.0], requires_grad=True)
    x = torch.tensor([1.0, -1.0], requires_grad=True)
    y = torch.utils.checkpoint.checkpoint(lambda t: (t * w).exp(), x, use_reentrant=False)
    gx, gw = torch.autograd.grad(y.sum(), (x, w))
    ex = np.exp([2.0, -3.0])
    assert np.allclose(gx.tolist(), ex * [2.0, 3.0]) and np.allclose(gw.tolist(), ex * [1, -1])


# --- torch.testing.assert_close -------------------------------------------------------------

def test_assert_close_default_tolerances_and_messages():
    torch.testing.assert_close(torch.tensor([1.0]), torch.tensor([1.0 + 1e-6]))
    with pytest.raises(AssertionError) as info:
        torch.testing.assert_close(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.5, 3.0]))
    assert str(info.value) == (
        "Tensor-likes are not close!\n\n"
        "Mismatched elements: 1 / 3 (33.3%)\n"
        "Greatest absolute difference: 0.5 at index (1,) (up to 1e-05 allowed)\n"
        "Greatest relative difference: 0.2 at index (1,) (up to 1.3e-06 allowed)")
    with pytest.raises(AssertionError, match="Tensor-likes are not equal!"):
        torch.testing.assert_close(torch.tensor([1, 2]), torch.tensor([1, 3]))
    with pytest.raises(AssertionError, match="attribute 'dtype' do not match"):
        torch.testing.assert_close(torch.ones(2), torch.ones(2, dtype=torch.float64))
    with pytest.raises(AssertionError, match="attribute 'shape' do not match"):
        torch.testing.assert_close(torch.ones(2), torch.ones(3))
    with pytest.raises(AssertionError, match="Scalars are not close!"):
        torch.testing.assert_close(1.0, 1.1)
    with pytest.raises(ValueError, match="but got no atol"):
        torch.testing.assert_close(torch.ones(1), torch.ones(1), rtol=0.1)
    torch.testing.assert_close(torch.tensor([1.0, 1.05]), torch.tensor([1.0, 1.0]),
                               rtol=0.1, atol=0.0)
    torch.testing.assert_close({"a": [torch.ones(1)]}, {"a": [torch.ones(1)]})


# --- Linear: PyTorch's grad_fn graph and dtype check ---------------------------------------

def test_linear_grad_fn_graph_as_pytorch():
    lin = nn.Linear(2, 3)
    y = lin(torch.ones(4, 2))
    assert y.grad_fn.name() == "AddmmBackward0"
    (b, _), (inp, _), (wt, _) = y.grad_fn.next_functions
    assert type(b).__name__ == "AccumulateGrad" and b.variable is lin.bias
    assert inp is None  # the input does not require grad
    assert wt.name() == "TBackward0"
    assert wt.next_functions[0][0].variable is lin.weight
    assert nn.Linear(2, 3, bias=False)(torch.ones(4, 2)).grad_fn.name() == "MmBackward0"
    assert lin(torch.ones(5, 4, 2)).grad_fn.name() == "ViewBackward0"


def test_linear_rejects_a_float64_input_on_float32_weights():
    lin = nn.Linear(2, 3)
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got "
                                           "Double and Float"):
        lin(torch.ones(1, 2, dtype=torch.float64))
    assert lin.double()(torch.ones(1, 2, dtype=torch.float64)).dtype == torch.float64


# --- saving and loading ----------------------------------------------------------------------

def test_load_weights_only_and_map_location_forms(tmp_path):
    path = tmp_path / "ckpt.pt"
    model = nn.Linear(2, 1)
    torch.save({"model": model.state_dict(), "p": nn.Parameter(torch.ones(2))}, path)
    for loc in (None, "cpu", torch.device("cpu"), {"cpu": "cpu", "cuda:0": "cpu"},
                lambda storage, loc: storage):
        ck = torch.load(path, map_location=loc, weights_only=True)
        assert ck["model"]["weight"].tolist() == model.weight.tolist()
        assert type(ck["p"]) is nn.Parameter and ck["p"].requires_grad  # as PyTorch
    seen = []
    torch.load(path, map_location=lambda storage, loc: seen.append(loc))
    assert seen and set(seen) == {"cpu"}  # called with each array and its saved device
    fresh = nn.Linear(2, 1)
    fresh.load_state_dict(torch.load(path, weights_only=True)["model"])
    assert fresh.bias.tolist() == model.bias.tolist()


# --- Module dtype conversion -----------------------------------------------------------------

def test_module_to_dtype_forms():
    lin = nn.Linear(2, 2)
    assert lin.to(torch.float64).weight.dtype == torch.float64
    assert lin.to("cpu", torch.float32).weight.dtype == torch.float32
    assert lin.to(torch.device("cpu"), dtype=torch.float64).bias.dtype == torch.float64
    assert lin.float().weight.dtype == torch.float32
    assert lin.half().weight.dtype == torch.float16
    assert lin.double().weight.dtype == torch.float64
    assert isinstance(lin.weight, nn.Parameter) and lin.weight.requires_grad
    with pytest.raises(TypeError, match="only accepts floating point or complex dtypes"):
        lin.to(torch.int64)


# --- optimizer state as PyTorch shapes it ------------------------------------------------------

def _trained(opt_cls, **kw):
    torch.manual_seed(0)
    lin = nn.Linear(2, 1)
    opt = opt_cls(lin.parameters(), **kw)
    for _ in range(2):
        opt.zero_grad()
        lin(torch.ones(3, 2)).sum().backward()
        opt.step()
    return lin, opt


def test_optimizer_state_is_dicts_of_tensors_keyed_as_pytorch():
    from fnarray import optim
    lin, opt = _trained(optim.Adam, lr=0.1)
    s = opt.state[lin.weight]
    assert list(s.keys()) == ["step", "exp_avg", "exp_avg_sq"]
    assert isinstance(s["exp_avg"], torch.Tensor) and s["exp_avg"].shape == (1, 2)
    assert s["step"].dtype == torch.float32 and s["step"].item() == 2.0 and s["step"].dim() == 0
    # the resume loop of every PyTorch checkpoint tutorial
    for state in opt.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                state[k] = v.to("cpu")
    assert list(optim.Adam(lin.parameters(), amsgrad=True).state) == []
    _, ams = _trained(optim.Adam, lr=0.1, amsgrad=True)
    assert "max_exp_avg_sq" in next(iter(ams.state.values()))
    lin2, sgd = _trained(optim.SGD, lr=0.1)
    assert dict(sgd.state[lin2.bias]) == {"momentum_buffer": None}
    lin3, mom = _trained(optim.SGD, lr=0.1, momentum=0.9)
    assert list(mom.state[lin3.bias]) == ["momentum_buffer"]


def test_optimizer_state_dict_round_trip_continues_the_trajectory(tmp_path):
    from fnarray import optim
    lin, opt = _trained(optim.Adam, lr=0.1)
    sd = opt.state_dict()
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}  # no private keys
    assert sd["param_groups"][0]["params"] == [0, 1]
    torch.save({"opt": sd, "model": lin.state_dict()}, tmp_path / "c.pt")
    ck = torch.load(tmp_path / "c.pt")
    lin2 = nn.Linear(2, 1)
    lin2.load_state_dict(ck["model"])
    opt2 = optim.Adam(lin2.parameters(), lr=0.1)
    opt2.load_state_dict(ck["opt"])
    for model, o in ((lin, opt), (lin2, opt2)):
        o.zero_grad()
        model(torch.ones(3, 2)).sum().backward()
        o.step()
    assert lin2.weight.tolist() == lin.weight.tolist()
    assert opt2.state[lin2.weight]["step"].item() == 3.0
    lin3, sgd = _trained(optim.SGD, lr=0.1, momentum=0.9)
    sgd_sd = sgd.state_dict()
    sgd2 = optim.SGD(lin3.parameters(), lr=0.1, momentum=0.9)
    sgd2.load_state_dict(sgd_sd)
    assert sgd2.state[lin3.bias]["momentum_buffer"].tolist() == \
        sgd.state[lin3.bias]["momentum_buffer"].tolist()


# --- OneCycleLR's last step --------------------------------------------------------------------

def test_one_cycle_lr_steps_total_steps_times():
    import math

    from fnarray import optim
    lin = nn.Linear(2, 1)
    opt = optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=4)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(4):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    lo, hi = 0.1 / 25, 0.1 / 25 / 1e4

    def cos(start, end, pct):
        return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
    # PyTorch: phases end at steps 0.2 and 3; step 4 extrapolates the last phase
    want = [lo] + [cos(0.1, hi, (k - 0.2) / 2.8) for k in (1, 2, 3, 4)]
    assert np.allclose(lrs, want)
    with pytest.raises(ValueError, match="Tried to step 5 times. The specified number of "
                                         "total steps is 4"):
        sched.step()


# --- printing and warnings as PyTorch -------------------------------------------------------

def test_reprs_around_inf_nan_negative_zero_and_complex():
    # PyTorch's formatter sizes and chooses notation from the nonzero finite values only
    assert repr(torch.tensor([float("inf"), float("nan"), -0.0, 1.5])) == \
        "tensor([   inf,    nan, -0.0000, 1.5000])"
    assert repr(torch.tensor([float("inf"), 0.0])) == "tensor([inf, 0.])"
    assert repr(torch.tensor([0.0, -0.0])) == "tensor([0., -0.])"
    assert repr(torch.tensor(-0.0)) == "tensor(-0.)"
    assert repr(torch.tensor([1e-5, 1.0])) == "tensor([1.0000e-05, 1.0000e+00])"
    assert repr(torch.tensor([1 + 2j, 3 - 1j])) == "tensor([1.+2.j, 3.-1.j])"
    assert repr(torch.tensor([0.5 + 1j, -2.25 - 0.125j])) == \
        "tensor([ 0.5000+1.0000j, -2.2500-0.1250j])"
    assert repr(torch.tensor([1j], dtype=torch.complex128)) == \
        "tensor([0.+1.j], dtype=torch.complex128)"


def test_format_of_a_zero_dim_tensor_is_the_number():
    loss = torch.tensor(0.5)
    assert f"{loss}" == "0.5" and f"{loss:.3f}" == "0.500" and f"{loss:>6.2f}" == "  0.50"
    assert str(loss) == "tensor(0.5000)"
    with pytest.raises(TypeError):
        f"{torch.ones(2):.2f}"  # PyTorch: unsupported format string for a 1-d tensor


def test_norm_layer_reprs():
    assert repr(nn.BatchNorm2d(3)) == \
        "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    assert repr(nn.LayerNorm(4)) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True)"


def test_reading_grad_of_a_non_leaf_warns():
    a = torch.ones(2, requires_grad=True)
    b = a * 2
    with pytest.warns(UserWarning, match="The .grad attribute of a Tensor that is not a leaf "
                                         "Tensor is being accessed"):
        assert b.grad is None
    c = a * 3
    c.retain_grad()
    assert c.retains_grad
    c.sum().backward()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert c.grad.tolist() == [1.0, 1.0] and a.grad.tolist() == [3.0, 3.0]


def test_bce_clamps_log_at_minus_100_without_numpy_warnings():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "divide by zero encountered in log"
        assert nn.BCELoss()(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0])).item() == 100.0
        x = torch.tensor([0.0, 1.0, 0.25], requires_grad=True)
        loss = nn.BCELoss()(x, torch.tensor([1.0, 0.0, 1.0]))
        loss.backward()
    assert loss.item() == pytest.approx((200 + np.log(4)) / 3, rel=1e-6)
    assert np.all(np.isfinite(x.grad.tolist()))
    assert x.grad[2].item() == pytest.approx(-4 / 3, rel=1e-6)


def test_once_differentiable_and_checkpoint_sequential():
    from fnarray.compat.autograd.function import once_differentiable

    class Double(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            return g * 2

    x = torch.ones(2, requires_grad=True)
    Double.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(),
                          nn.Linear(4, 1))
    inp = torch.randn(2, 3)
    out = torch.utils.checkpoint.checkpoint_sequential(model, 2, inp, use_reentrant=False)
    torch.testing.assert_close(out, model(inp))
    out.sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(inp).sum().backward()
    for g, p in zip(got, model.parameters()):
        torch.testing.assert_close(g, p.grad)
