"""More of PyTorch's behaviour under ``import fnarray.compat as torch`` (issue 16): error
types, BCE's gradient at 0 and 1, optimizers on complex parameters, finfo/iinfo, dtype
serialisation, CUDA autocast on a CPU-only machine.

Expected values are what PyTorch 2.x gives for the same code (its documented formulas,
checked once against a PyTorch install; PyTorch is never imported here).
"""

import numpy as np
import pytest

import fnarray.compat as torch
from fnarray.compat import nn
from fnarray.compat.nn import functional as F


# --- layer size mismatches raise RuntimeError (as PyTorch) and keep fnarray's message ---------

@pytest.mark.parametrize("run, message", [
    (lambda: nn.LSTM(10, 20)(torch.randn(5, 3, 7)),
     r"LSTM\(10, 20\): expected input with 10 features .* shape \(5, 3, 7\)"),
    (lambda: nn.LSTM(10, 20)(torch.randn(5, 3, 10), (torch.randn(1, 2, 20), torch.randn(1, 3, 20))),
     r"LSTM\(10, 20\): expected h_0 of shape \(1, 3, 20\), got shape \(1, 2, 20\)"),
    (lambda: nn.GRU(10, 20)(torch.randn(5, 3, 10), torch.randn(1, 3, 21)),
     r"GRU\(10, 20\): expected hx of shape \(1, 3, 20\), got shape \(1, 3, 21\)"),
    (lambda: nn.RNN(4, 3, batch_first=True)(torch.randn(2, 5, 3)),
     r"RNN\(4, 3, batch_first=True\): expected input with 4 features"),
    (lambda: nn.LSTMCell(10, 20)(torch.randn(3, 7)), r"LSTMCell\(10, 20\): expected input"),
    (lambda: nn.GRUCell(10, 20)(torch.randn(3, 10), torch.randn(3, 19)),
     r"GRUCell\(10, 20\): expected hx of shape \(3, 20\)"),
    (lambda: nn.Linear(10, 20)(torch.randn(3, 7)), r"Linear\(in_features=10.*\(3, 7\)"),
    (lambda: nn.Conv2d(3, 4, 3)(torch.randn(1, 2, 8, 8)), r"expected input with 3 channels"),
    (lambda: nn.BatchNorm1d(3)(torch.randn(4, 2)), r"expected input with 3 channels"),
    (lambda: nn.LayerNorm(3)(torch.randn(4, 2)), r"expected input with trailing shape \(3,\)"),
])
def test_layer_size_mismatch_is_a_runtime_error(run, message):
    with pytest.raises(RuntimeError, match=message) as info:
        run()
    assert isinstance(info.value, ValueError)  # fnarray's own convention still holds


def test_rnn_input_of_wrong_rank_stays_a_value_error():
    with pytest.raises(ValueError, match="2-D \\(unbatched\\) or 3-D input") as info:
        nn.RNN(10, 20)(torch.randn(5, 3, 10, 1))
    assert not isinstance(info.value, RuntimeError)  # PyTorch: ValueError here too


# --- binary_cross_entropy: PyTorch's gradient (x - y) / max((1 - x) x, 1e-12) ----------------

def test_bce_gradient_at_exactly_zero_and_one_is_pytorchs():
    x = torch.tensor([0.0, 1.0, 0.5, 1e-20, 0.3], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.2])
    loss = F.binary_cross_entropy(x, y, reduction="none")
    assert loss.grad_fn.name() == "BinaryCrossEntropyBackward0"
    assert np.allclose(loss.tolist(), [100.0, 100.0, 0.6931472, 46.0517, 0.5261345], rtol=1e-6)
    loss.sum().backward()
    # x = 0 / 1 / below 1e-12: the clamped denominator (PyTorch: -1e12, 1e12, -1e12)
    assert np.allclose(x.grad.tolist(), [-1e12, 1e12, -2.0, -1e12, 0.1 / 0.21], rtol=1e-6)


def test_bce_weighted_mean_and_module_gradients():
    x = torch.tensor([0.0, 1.0, 0.5, 1e-20, 0.3], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.2])
    w = torch.tensor([2.0, 1.0, 1.0, 1.0, 3.0])
    (g,) = torch.autograd.grad(nn.BCELoss(weight=w)(x, y), (x,))
    assert np.allclose(g.tolist(), [-4e11, 2e11, -0.4, -2e11, 0.2857143], rtol=1e-6)


def test_bce_second_derivative_and_target_gradient():
    x = torch.tensor([0.0, 0.5, 0.3], requires_grad=True)
    y = torch.tensor([1.0, 1.0, 0.2], requires_grad=True)
    loss = F.binary_cross_entropy(x, y, reduction="sum")
    gx, gy = torch.autograd.grad(loss, (x, y), create_graph=True)
    # d loss / dy = log(1 - x) - log(x) (clamped at -100: PyTorch gives +inf at x = 0)
    assert np.allclose(gy.tolist(), [100.0, 0.0, 0.8472979], rtol=1e-6)
    gxx, gxy = torch.autograd.grad(gx.sum(), (x, y))
    # PyTorch's double backward: (x^2 - 2xy + y) / max((1-x)x, eps)^2 and -1 / max(...)
    assert np.allclose(gxx.tolist(), [1e24, 4.0, 0.17 / 0.21 ** 2], rtol=1e-5)
    assert np.allclose(gxy.tolist(), [-1e12, -4.0, -1 / 0.21], rtol=1e-6)


# --- optimizers on complex parameters: PyTorch steps view_as_real(p) -------------------------

@pytest.mark.parametrize("name, options, expected", [
    ("Adam", dict(lr=0.1), [0.704871 + 1.700382j, -0.200474 - 0.030208j]),
    ("RMSprop", dict(lr=0.01, centered=True), [0.78876 + 1.771844j, -0.272436 + 0.065083j]),
    ("Adagrad", dict(lr=0.1), [0.790899 + 1.774359j, -0.274939 + 0.066528j]),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1),
     [0.488929 - 0.880582j, 1.846281 + 0.00608j]),
])
def test_optimizers_step_complex_parameters_componentwise(name, options, expected):
    w = torch.tensor([1 + 2j, -0.5 + 0.25j], requires_grad=True)
    opt = getattr(torch.optim, name)([w], **options)
    for _ in range(3):
        opt.zero_grad()
        loss = ((w - torch.tensor([0.5 - 1j, 2 + 0j])).abs() ** 2).sum()
        loss.backward()
        opt.step()
    assert w.dtype == torch.complex64
    assert np.allclose(w.detach().numpy(), expected, atol=2e-6)
    for value in opt.state[w].values():  # moments stay complex, like the parameter
        assert value.dtype == torch.complex64 or value.ndim == 0


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RMSprop", "Adadelta", "Adamax", "NAdam"])
def test_complex_step_equals_the_step_of_its_real_view(name):
    z0 = np.array([[1 + 2j, -0.5 + 0.25j], [3 - 1j, 0.1j]], np.complex64)
    grads = [np.array([[0.3 - 1j, 2 + 0.5j], [-1 + 1j, 0.2 - 0.7j]], np.complex64) * (k + 1)
             for k in range(3)]
    z = torch.tensor(z0, requires_grad=True)
    r = torch.tensor(np.stack([z0.real, z0.imag], -1), requires_grad=True)
    opt_z = getattr(torch.optim, name)([z], lr=0.05)
    opt_r = getattr(torch.optim, name)([r], lr=0.05)
    for g in grads:
        z.grad = torch.tensor(g)
        r.grad = torch.tensor(np.stack([g.real, g.imag], -1))
        opt_z.step()
        opt_r.step()
    got = z.detach().numpy()
    assert np.allclose(np.stack([got.real, got.imag], -1), r.detach().numpy(), atol=1e-6)


# --- finfo / iinfo, dtype equality, dtypes and sizes in checkpoints ----------------------------

def test_finfo_and_iinfo_print_and_behave_as_pytorchs():
    f = torch.finfo(torch.float32)
    assert repr(f) == str(f) == (
        "finfo(resolution=1e-06, min=-3.40282e+38, max=3.40282e+38, eps=1.19209e-07, "
        "smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=float32)")
    assert (f.bits, f.eps, f.dtype) == (32, float(np.finfo(np.float32).eps), "float32")
    assert repr(torch.finfo(torch.float16)) == (
        "finfo(resolution=0.001, min=-65504, max=65504, eps=0.000976562, "
        "smallest_normal=6.10352e-05, tiny=6.10352e-05, dtype=float16)")
    assert repr(torch.finfo(torch.float64)).startswith("finfo(resolution=1e-15, min=-1.79769e+308")
    assert torch.finfo(torch.complex64) == torch.finfo() == f  # real part; default dtype
    assert torch.finfo(torch.float64).resolution == 1e-15
    assert repr(torch.iinfo(torch.int32)) == "iinfo(min=-2.14748e+09, max=2.14748e+09, dtype=int32)"
    assert repr(torch.iinfo(torch.uint8)) == "iinfo(min=0, max=255, dtype=uint8)"
    i = torch.iinfo(torch.int64)
    assert (i.bits, i.max, i.min, i.dtype) == (64, 2 ** 63 - 1, -2 ** 63, "int64")
    assert type(i.max) is int and type(f.max) is float
    with pytest.raises(TypeError, match=r"torch.iinfo\(\) requires an integer input type. "
                                        r"Use torch.finfo to handle 'torch.iinfo'"):
        torch.iinfo(torch.float32)
    with pytest.raises(TypeError, match=r"torch.finfo\(\) requires a floating point input type"):
        torch.finfo(torch.int32)


def test_dtype_never_equals_a_string():
    assert torch.float32 != "float32" and not torch.float32 == "float32"  # noqa: SIM201
    assert "float32" not in [torch.float32]
    assert torch.float32 == np.float32 and torch.int64 == np.dtype("int64")  # NumPy's still do


def test_dtypes_sizes_and_devices_round_trip_through_save_and_load(tmp_path):
    path = tmp_path / "meta.pt"
    x = torch.ones(2, 3, dtype=torch.float64)
    torch.save({"dtype": x.dtype, "shape": x.shape, "device": torch.device("cuda:0"),
                "all": [torch.float16, torch.int64, torch.complex64, torch.bool],
                "numpy": np.dtype("int32"), "empty": torch.Size([])}, path)
    for weights_only in (False, True):
        out = torch.load(path, weights_only=weights_only)
        assert out["dtype"] is torch.float64 and repr(out["dtype"]) == "torch.float64"
        assert out["shape"] == (2, 3) and repr(out["shape"]) == "torch.Size([2, 3])"
        assert out["device"] == torch.device("cuda", 0)
        assert out["all"] == [torch.float16, torch.int64, torch.complex64, torch.bool]
        assert all(isinstance(d, torch.dtype) for d in out["all"])
        assert type(out["numpy"]) is type(np.dtype("int32"))  # a NumPy dtype stays one
        assert repr(out["empty"]) == "torch.Size([])"
    torch.save(torch.float32, path)
    assert torch.load(path, weights_only=True) is torch.float32


# --- CUDA autocast on a machine without CUDA: a warning, then full precision -----------------

def test_cuda_autocast_without_cuda_warns_and_disables_itself():
    lin = nn.Linear(3, 2)
    x = torch.ones(4, 3)
    for make in (lambda: torch.autocast("cuda"), lambda: torch.amp.autocast("cuda"),
                 lambda: torch.autocast(device_type="cuda", dtype=torch.float16)):
        with pytest.warns(UserWarning, match=r"^CUDA is not available or torch_xla is imported. "
                                             r"Disabling autocast.$"):
            ctx = make()
        with ctx:
            assert not torch.is_autocast_enabled()
            out = lin(x)
            h = x @ lin.weight.t()
        assert out.dtype == h.dtype == torch.float32
        out.sum().backward()
        assert lin.weight.grad.dtype == torch.float32


def test_cuda_autocast_as_a_decorator_and_disabled_without_a_warning():
    import warnings

    with pytest.warns(UserWarning, match="Disabling autocast"):
        @torch.autocast("cuda")
        def forward(a):
            return a @ a

    assert forward(torch.ones(2, 2)).dtype == torch.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.autocast("cuda", enabled=False):
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


# --- Resize: Pillow's result for PIL images, torchvision's tensor kernel for tensors ---------

def _resize_input():
    return ((np.arange(20, dtype=np.float32).reshape(1, 4, 5) ** 1.5) / 10).astype(np.float32)


@pytest.mark.parametrize("size, antialias, expected", [
    # torch.nn.functional.interpolate(mode="bicubic", align_corners=False, antialias=...),
    # which torchvision's Resize runs on float tensors
    ((3, 2), True, [[0.30325, 0.86078], [2.45316, 3.50674], [5.76533, 7.13898]]),
    ((3, 2), False, [[0.20637, 0.82326], [2.28345, 3.52556], [5.84901, 7.46402]]),
    ((6, 7), False, [[-0.1032, -0.06908, 0.02363, 0.14663, 0.28789, 0.50356, 0.65607],
                     [0.35058, 0.46267, 0.66169, 0.85135, 1.0552, 1.34285, 1.53944],
                     [1.43174, 1.64568, 1.9867, 2.26951, 2.56166, 2.95258, 3.21304],
                     [2.62214, 2.87564, 3.27687, 3.60577, 3.94288, 4.389, 4.68448],
                     [4.63416, 4.93721, 5.41341, 5.79918, 6.19199, 6.7068, 7.04601],
                     [5.99207, 6.32227, 6.83967, 7.25688, 7.68061, 8.23381, 8.59754]]),
    ((6, 7), True, [[-0.07842, -0.03815, 0.05047, 0.17961, 0.33567, 0.53886, 0.69073],
                    [0.39362, 0.50578, 0.68783, 0.8857, 1.10442, 1.37107, 1.56505],
                    [1.37596, 1.58434, 1.89318, 2.18726, 2.49472, 2.85231, 3.107],
                    [2.74877, 3.00453, 3.38029, 3.73258, 4.09628, 4.51402, 4.80973],
                    [4.65199, 4.95347, 5.39387, 5.80258, 6.22119, 6.69811, 7.03434],
                    [5.94883, 6.27697, 6.75513, 7.19694, 7.6479, 8.15982, 8.52009]]),
])
def test_bicubic_resize_of_a_tensor_is_torchvisions(size, antialias, expected):
    from fnarray.data import transforms as T
    out = T.Resize(size, interpolation=T.InterpolationMode.BICUBIC,
                   antialias=antialias)(torch.tensor(_resize_input()))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy()[0], expected, atol=2e-5)


def test_bicubic_resize_of_a_uint8_tensor_rounds_once_like_torchvision():
    from fnarray.data import transforms as T
    u = np.array([[[0, 255, 0, 255, 0], [255, 0, 255, 0, 255], [0, 0, 0, 255, 255],
                   [10, 200, 30, 250, 60]]], np.uint8)
    out = T.Resize((3, 7), interpolation="bicubic", antialias=False)(torch.tensor(u))
    assert out.dtype == torch.uint8
    assert out.tolist() == [[[27, 163, 183, 41, 180, 158, 23], [166, 18, 0, 149, 103, 180, 255],
                             [0, 117, 140, 21, 205, 210, 75]]]


def test_resize_of_pil_images_is_pillows_to_the_level():
    Image = pytest.importorskip("PIL.Image")
    from fnarray.data import transforms as T
    rng = np.random.default_rng(0)
    smooth = np.clip(np.cumsum(rng.integers(-20, 21, (41, 57, 3)), axis=1) + 128, 0, 255)
    noise = rng.integers(0, 256, (41, 57, 3))
    sizes = [(10, 17), (64, 20), (50, 90), (7, 64), (12, 50), (30, 5), (3, 56), (40, 56)]
    for pixels in (smooth.astype(np.uint8), noise.astype(np.uint8)):
        for mode, code in (("bicubic", Image.BICUBIC), ("bilinear", Image.BILINEAR)):
            for img in (Image.fromarray(pixels), Image.fromarray(pixels[..., 0]),
                        Image.fromarray(np.dstack([pixels, pixels[..., :1]]), "RGBA")):
                for oh, ow in sizes:
                    ref = np.asarray(img.resize((ow, oh), code))
                    # antialias=False is ignored for PIL images, as in torchvision
                    out = T.Resize((oh, ow), interpolation=mode, antialias=False)(img)
                    assert out.mode == img.mode
                    np.testing.assert_array_equal(np.asarray(out), ref,
                                                  err_msg=f"{img.mode} {mode} {(oh, ow)}")


# --- operand shape mistakes are RuntimeErrors too (PyTorch's type), ValueErrors as before ----

@pytest.mark.parametrize("run, message", [
    (lambda: torch.ones(2, 3) @ torch.ones(2, 3), r"matmul: shapes .* are not aligned"),
    (lambda: torch.mm(torch.ones(2, 3), torch.ones(2, 3)), "not aligned"),
    (lambda: torch.ones(2) + torch.ones(3), r"add: cannot apply to operands float32\[2\] and "
                                            r"float32\[3\]"),
    (lambda: torch.ones(3).view(2, 2), r"reshape: cannot reshape array of shape"),
    (lambda: torch.cat([torch.ones(2, 2), torch.ones(3, 3)]), "concatenate: all input shapes"),
    (lambda: torch.stack([torch.ones(2), torch.ones(3)]), "stack: all input arrays"),
    (lambda: torch.ones(2, 3).expand(3, 3), "broadcast"),
])
def test_operand_shape_errors_are_runtime_errors(run, message):
    import fnarray as fa
    from fnarray.core.shapes import ShapeError
    with pytest.raises(RuntimeError, match=message) as info:
        run()
    assert isinstance(info.value, ValueError) and isinstance(info.value, ShapeError)
    with pytest.raises(ValueError):  # fnarray's own API: still its ValueError
        fa.matmul(fa.ones((2, 3)), fa.ones((2, 3)))


def test_std_and_var_of_integer_tensors_raise_as_pytorch():
    for run in (lambda: torch.arange(3).var(), lambda: torch.std(torch.arange(3)),
                lambda: torch.arange(4).reshape(2, 2).std(dim=0)):
        with pytest.raises(RuntimeError, match="std and var only support floating point and "
                                               "complex dtypes"):
            run()
    assert abs(torch.arange(3.0).std().item() - 1.0) < 1e-6


def test_trunc_division_of_integers_stays_integer_and_exact():
    a, b = torch.tensor([7, -7, 9, -9]), torch.tensor([2, 2, -4, -4])
    q = torch.div(a, b, rounding_mode="trunc")  # PyTorch: tensor([ 3, -3, -2,  2])
    assert q.dtype == torch.int64 and q.tolist() == [3, -3, -2, 2]
    assert a.div(2, rounding_mode="trunc").tolist() == [3, -3, 4, -4]
    assert torch.div(torch.tensor([2**60 + 1]), 1, rounding_mode="trunc").item() == 2**60 + 1
    f = torch.div(a.float(), b, rounding_mode="trunc")
    assert f.dtype == torch.float32 and f.tolist() == [3.0, -3.0, -2.0, 2.0]
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        torch.div(a, torch.tensor([0, 1, 1, 1]), rounding_mode="trunc")


def test_tensor_type_names_the_legacy_tensor_type():
    assert torch.tensor([1.0]).type() == "torch.FloatTensor"
    assert torch.tensor([1]).type() == "torch.LongTensor"
    assert torch.tensor([True]).type() == "torch.BoolTensor"
    assert torch.tensor([1.0]).type(torch.float64).dtype == torch.float64
