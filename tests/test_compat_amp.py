"""Mixed precision with PyTorch's semantics on a CPU-only machine: the CUDA spellings
disable themselves with PyTorch's warnings, CPU autocast lowers matmul/conv, and
GradScaler's dynamic loss scaling (enabled with ``torch.amp.GradScaler("cpu")``)."""

import warnings

import numpy as np
import pytest

import fnarray.compat as torch
from fnarray import nn, optim


def _model():
    torch.manual_seed(0)
    return nn.Linear(3, 2)


def test_cuda_autocast_and_scaler_disable_with_warnings_and_training_proceeds():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(FutureWarning, match=r"torch.cuda.amp.GradScaler\(args...\)` is "
                                           r"deprecated"):
        with pytest.warns(UserWarning, match="GradScaler is enabled, but CUDA is not "
                                             "available.  Disabling."):
            scaler = torch.cuda.amp.GradScaler()
    assert not scaler.is_enabled() and scaler.get_scale() == 1.0
    x, y = torch.ones(4, 3), torch.zeros(4, 2)
    before = model.weight.clone()
    with pytest.warns(FutureWarning, match=r"torch.cuda.amp.autocast\(args...\)` is "
                                           r"deprecated"):
        with pytest.warns(UserWarning, match="CUDA is not available or torch_xla is "
                                             "imported. Disabling autocast."):
            ctx = torch.cuda.amp.autocast()
    with ctx:
        out = model(x)
        loss = ((out - y) ** 2).mean()
    assert out.dtype == torch.float32
    scaled = scaler.scale(loss)
    assert scaled is loss
    scaled.backward()
    scaler.step(opt)
    scaler.update()
    assert not np.allclose(model.weight.tolist(), before.tolist())


def test_cpu_autocast_lowers_matmul_and_keeps_float32_gradients():
    model = _model()
    x = torch.ones(4, 3)
    with torch.autocast("cpu", dtype=torch.float16):
        assert torch.is_autocast_enabled()
        h = x @ model.weight.t()
        out = model(x)
        s = x + 1  # not a matmul: keeps float32
    assert h.dtype == torch.float16 and s.dtype == torch.float32
    assert out.dtype == torch.float16  # float16 matmul, then + float32 bias -> PyTorch: addmm
    assert not torch.is_autocast_enabled()
    assert (x @ model.weight.t()).dtype == torch.float32
    out.float().sum().backward()
    assert model.weight.grad.dtype == torch.float32
    assert np.allclose(model.weight.grad.tolist(), [[4.0] * 3] * 2)


def test_cpu_autocast_lowers_convolutions():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3)
    with torch.autocast("cpu", dtype=torch.float16):
        y = conv(torch.randn(1, 1, 5, 5))
    assert y.dtype == torch.float16  # PyTorch: the bias is a conv input, cast too
    y.float().sum().backward()
    assert conv.weight.grad.dtype == torch.float32 and conv.bias.grad.dtype == torch.float32
    assert np.allclose(conv.bias.grad.tolist(), [9.0, 9.0])


def test_cpu_autocast_default_dtype_is_bfloat16():
    # PyTorch: torch.autocast("cpu") without dtype uses torch.bfloat16
    with torch.autocast("cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert torch.autocast("cpu").fast_dtype == torch.bfloat16


def test_cpu_autocast_as_decorator_and_disabled():
    @torch.autocast("cpu", dtype=torch.float16)
    def f(a, b):
        return a @ b
    assert f(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float16
    with torch.autocast("cpu", dtype=torch.float16, enabled=False):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with pytest.warns(UserWarning, match="target dtype is not supported"):
        torch.autocast("cpu", dtype=torch.float64)


def _step(scaler, model, opt, poison=False):
    opt.zero_grad()
    loss = model(torch.ones(2, 3)).sum()
    scaler.scale(loss).backward()
    if poison:
        model.weight.grad = model.weight.grad * float("inf")
    scaler.step(opt)
    scaler.update()


def test_grad_scaler_scales_unscales_skips_and_adapts():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=2)
    assert scaler.is_enabled() and scaler.get_scale() == 8.0
    loss = model(torch.ones(2, 3)).sum()
    assert scaler.scale(loss).item() == pytest.approx(8.0 * loss.item(), rel=1e-6)

    w0 = model.weight.clone()
    _step(scaler, model, opt)  # clean step: unscaled gradient 2 per weight
    assert np.allclose(model.weight.grad.tolist(), [[2.0] * 3] * 2)
    assert np.allclose(model.weight.tolist(), (w0 - 0.5 * 2.0).tolist())
    assert scaler.get_scale() == 8.0  # one clean step of growth_interval=2

    w1 = model.weight.clone()
    _step(scaler, model, opt, poison=True)  # inf gradient: the step is skipped
    assert model.weight.tolist() == w1.tolist()
    assert scaler.get_scale() == 4.0  # backoff 0.5, growth tracker reset

    _step(scaler, model, opt)
    _step(scaler, model, opt)
    assert scaler.get_scale() == 8.0  # two clean steps -> growth x2
    assert scaler.state_dict() == {"scale": 8.0, "growth_factor": 2.0,
                                   "backoff_factor": 0.5, "growth_interval": 2,
                                   "_growth_tracker": 0}
    other = torch.amp.GradScaler("cpu")
    other.load_state_dict(scaler.state_dict())
    assert other.get_scale() == 8.0


def test_grad_scaler_misuse_errors():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    scaler.scale(model(torch.ones(1, 3)).sum()).backward()
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(opt)
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        torch.amp.GradScaler("cpu").step(opt, closure=lambda: 0)
    with pytest.raises(AssertionError, match="No inf checks"):
        torch.amp.GradScaler("cpu").update()


def test_mixed_precision_loop_on_cpu_runs_with_warnings_only():
    model = _model()
    opt = optim.Adam(model.parameters(), lr=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaler = torch.cuda.amp.GradScaler()
        losses = []
        for _ in range(5):
            opt.zero_grad()
            with torch.cuda.amp.autocast():
                loss = ((model(torch.ones(4, 3)) - 1) ** 2).mean()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            losses.append(loss.item())
    assert losses[-1] < losses[0]
