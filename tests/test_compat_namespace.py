"""``torch`` functions found missing by running tutorial programs under
``import fnarray.compat as torch`` (``compat/ops_extra.py``), the ``out=`` argument, and
small namespace items (``is_inference_mode_enabled``, ``torch.return_types`` reprs, loss
``grad_fn`` names).  Expected values are PyTorch 2.x's for the same calls.
"""

import math
import warnings

import numpy as np
import pytest

import fnarray.compat as torch

x = torch.tensor([[0.5, -1.25, 2.0], [3.0, 0.0, -0.75]])
y = torch.tensor([[1.0, 2.0, float('nan')], [0.5, float('nan'), 4.0]])
p = torch.tensor([0.1, 0.5, 0.9])
m = torch.tensor([[2.0, 1.0], [1.0, 3.0]])

CASES = {
    "reshape": lambda: torch.reshape(x, (3, 2)).tolist(),
    "transpose": lambda: torch.transpose(x, 0, 1).tolist(),
    "squeeze": lambda: list(torch.squeeze(x[None]).shape),
    "unsqueeze": lambda: list(torch.unsqueeze(x, 1).shape),
    "permute": lambda: list(torch.permute(x[None], (2, 0, 1)).shape),
    "t": lambda: torch.t(x).tolist(),
    "narrow": lambda: torch.narrow(x, 1, 1, 2).tolist(),
    "select": lambda: torch.select(x, 1, 2).tolist(),
    "unbind": lambda: [t.tolist() for t in torch.unbind(x, 1)],
    "chunk": lambda: [t.tolist() for t in torch.chunk(x, 2, 1)],
    "clamp_min": lambda: torch.clamp_min(x, 0.0).tolist(),
    "clamp_max": lambda: x.clamp_max(1.0).tolist(),
    "lerp": lambda: torch.lerp(x, torch.ones(2, 3), 0.25).tolist(),
    "addcmul": lambda: torch.addcmul(x, x, x, value=0.5).tolist(),
    "addcdiv": lambda: torch.addcdiv(x, x, m[:, :1] + 1, value=2).tolist(),
    "logit": lambda: torch.logit(p).tolist(),
    "logit_eps": lambda: torch.logit(torch.tensor([0.0, 1.0]), eps=1e-6).tolist(),
    "xlogy": lambda: torch.xlogy(torch.tensor([0.0, 2.0, 0.0]),
                                 torch.tensor([0.0, 3.0, float('nan')])).tolist(),
    "frac": lambda: torch.frac(x).tolist(),
    "sinc": lambda: torch.sinc(torch.tensor([0.0, 0.5, 1.5])).tolist(),
    "fmax": lambda: torch.fmax(x, y).tolist(),
    "fmin": lambda: torch.fmin(x, y).tolist(),
    "float_power": lambda: [str(torch.float_power(torch.tensor([2, 3]), 2).dtype),
                            torch.float_power(torch.tensor([2, 3]), 2).tolist()],
    "heaviside": lambda: torch.heaviside(torch.tensor([-1.5, 0.0, 2.0]), torch.tensor([0.5])).tolist(),
    "logaddexp": lambda: torch.logaddexp(torch.tensor([1.0, -2.0]), torch.tensor([2.0, -3.0])).tolist(),
    "deg2rad": lambda: torch.deg2rad(torch.tensor([180.0, 90.0])).tolist(),
    "angle": lambda: torch.angle(torch.tensor([-2.0, 0.0, 3.0])).tolist(),
    "tile": lambda: torch.tile(torch.tensor([1, 2]), (2, 2)).tolist(),
    "masked_select": lambda: torch.masked_select(x, x > 0).tolist(),
    "fliplr": lambda: torch.fliplr(x).tolist(),
    "rot90": lambda: torch.rot90(x, 1, [0, 1]).tolist(),
    "rot90_3": lambda: torch.rot90(x, -1, [0, 1]).tolist(),
    "addmm": lambda: torch.addmm(torch.ones(2, 2), x, x.T, beta=0.5, alpha=2).tolist(),
    "baddbmm": lambda: torch.baddbmm(torch.zeros(1, 2, 2), x[None], x.T[None], alpha=0.5).tolist(),
    "kron": lambda: torch.kron(m, torch.tensor([[1.0, -1.0]])).tolist(),
    "tensordot": lambda: torch.tensordot(x, x, dims=([1], [1])).tolist(),
    "nansum": lambda: torch.nansum(y, 1).tolist(),
    "nanmean": lambda: torch.nanmean(y).item(),
    "cov": lambda: torch.cov(x).tolist(),
    "cov_w": lambda: torch.cov(x, fweights=torch.tensor([1, 2, 1]),
                               aweights=torch.tensor([0.5, 1.0, 2.0])).tolist(),
    "corrcoef": lambda: torch.corrcoef(x).tolist(),
    "trapz": lambda: torch.trapezoid(torch.tensor([1.0, 4.0, 9.0])).item(),
    "trapz_x": lambda: torch.trapezoid(torch.tensor([1.0, 4.0, 9.0]), torch.tensor([0.0, 1.0, 3.0])).item(),
    "tril_indices": lambda: torch.tril_indices(3, 3).tolist(),
    "triu_indices": lambda: torch.triu_indices(2, 4, 1).tolist(),
    "logspace": lambda: torch.logspace(0, 2, 3).tolist(),
    "complex": lambda: str(torch.complex(torch.tensor([1.0]), torch.tensor([2.0]))),
    "polar": lambda: torch.view_as_real(torch.polar(torch.tensor([2.0]),
                                                    torch.tensor([math.pi / 2]))).tolist(),
    "view_as_complex": lambda: str(torch.view_as_complex(torch.tensor([[1.0, 2.0], [3.0, -4.0]]))),
    "inverse": lambda: torch.inverse(m).tolist(),
    "logdet": lambda: torch.logdet(m).item(),
    "broadcast": lambda: [list(t.shape) for t in torch.broadcast_tensors(torch.ones(3, 1), torch.ones(2))],
    "atleast_2d": lambda: list(torch.atleast_2d(torch.tensor(1.0)).shape),
    "fill_diagonal": lambda: torch.zeros(3, 3).fill_diagonal_(5).tolist(),
    "fill_diagonal_wrap": lambda: torch.zeros(7, 3).fill_diagonal_(1, wrap=True).tolist(),
}

nan = math.nan

EXPECTED = {
    'reshape': [[0.5, -1.25], [2.0, 3.0], [0.0, -0.75]],
    'transpose': [[0.5, 3.0], [-1.25, 0.0], [2.0, -0.75]],
    'squeeze': [2, 3],
    'unsqueeze': [2, 1, 3],
    'permute': [3, 1, 2],
    't': [[0.5, 3.0], [-1.25, 0.0], [2.0, -0.75]],
    'narrow': [[-1.25, 2.0], [0.0, -0.75]],
    'select': [2.0, -0.75],
    'unbind': [[0.5, 3.0], [-1.25, 0.0], [2.0, -0.75]],
    'chunk': [[[0.5, -1.25], [3.0, 0.0]], [[2.0], [-0.75]]],
    'clamp_min': [[0.5, 0.0, 2.0], [3.0, 0.0, 0.0]],
    'clamp_max': [[0.5, -1.25, 1.0], [1.0, 0.0, -0.75]],
    'lerp': [[0.625, -0.6875, 1.75], [2.5, 0.25, -0.3125]],
    'addcmul': [[0.625, -0.46875, 4.0], [7.5, 0.0, -0.46875]],
    'addcdiv': [[0.8333333730697632, -2.0833332538604736, 3.3333334922790527], [6.0, 0.0, -1.5]],
    'logit': [-2.1972246170043945, 0.0, 2.1972243785858154],
    'logit_eps': [-13.815509796142578, 13.80231761932373],
    'xlogy': [0.0, 2.1972246170043945, nan],
    'frac': [[0.5, -0.25, 0.0], [0.0, 0.0, -0.75]],
    'sinc': [1.0, 0.6366197466850281, -0.21220658719539642],
    'fmax': [[1.0, 2.0, 2.0], [3.0, 0.0, 4.0]],
    'fmin': [[0.5, -1.25, 2.0], [0.5, 0.0, -0.75]],
    'float_power': ['torch.float64', [4.0, 9.0]],
    'heaviside': [0.0, 0.5, 1.0],
    'logaddexp': [2.3132617473602295, -1.6867382526397705],
    'deg2rad': [3.1415927410125732, 1.5707963705062866],
    'angle': [3.1415927410125732, 0.0, 0.0],
    'tile': [[1, 2, 1, 2], [1, 2, 1, 2]],
    'masked_select': [0.5, 2.0, 3.0],
    'fliplr': [[2.0, -1.25, 0.5], [-0.75, 0.0, 3.0]],
    'rot90': [[2.0, -0.75], [-1.25, 0.0], [0.5, 3.0]],
    'rot90_3': [[3.0, 0.5], [0.0, -1.25], [-0.75, 2.0]],
    'addmm': [[12.125, 0.5], [0.5, 19.625]],
    'baddbmm': [[[2.90625, 0.0], [0.0, 4.78125]]],
    'kron': [[2.0, -2.0, 1.0, -1.0], [1.0, -1.0, 3.0, -3.0]],
    'tensordot': [[5.8125, 0.0], [0.0, 9.5625]],
    'nansum': [3.0, 4.5],
    'nanmean': 1.875,
    'cov': [[2.6458334922790527, -0.46875], [-0.46875, 3.9375]],
    'cov_w': [[3.3973214626312256, -0.7232142686843872], [-0.7232142686843872, 1.8080357313156128]],
    'corrcoef': [[1.0, -0.14522778987884521], [-0.14522778987884521, 1.0]],
    'trapz': 9.0,
    'trapz_x': 15.5,
    'tril_indices': [[0, 1, 1, 2, 2, 2], [0, 0, 1, 0, 1, 2]],
    'triu_indices': [[0, 0, 0, 1, 1], [1, 2, 3, 2, 3]],
    'logspace': [1.0, 10.0, 100.0],
    'complex': 'tensor([1.+2.j])',
    'polar': [[-8.742277657347586e-08, 2.0]],
    'view_as_complex': 'tensor([1.+2.j, 3.-4.j])',
    'inverse': [[0.6000000238418579, -0.20000000298023224], [-0.20000000298023224, 0.4000000059604645]],
    'logdet': 1.6094379425048828,
    'broadcast': [[3, 2], [3, 2]],
    'atleast_2d': [1, 1],
    'fill_diagonal': [[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]],
    'fill_diagonal_wrap': [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0],
                           [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
}


def _close(got, want):
    if isinstance(want, str):
        return got == want
    if isinstance(want, list) and want and isinstance(want[0], str):
        return got[0] == want[0] and _close(got[1], want[1])
    if isinstance(want, list) and want and isinstance(want[0], list) \
            and len({np.shape(w) for w in want}) > 1:  # ragged (chunk)
        return len(got) == len(want) and all(_close(g, w) for g, w in zip(got, want))
    return np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float),
                       rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_function_matches_pytorch(name):
    got = CASES[name]()
    assert _close(got, EXPECTED[name]), (name, got, EXPECTED[name])


# --- out= -------------------------------------------------------------------------------------

def test_out_argument_writes_into_the_given_tensor():
    c = torch.empty(2, 2)
    assert torch.matmul(torch.ones(2, 3), torch.ones(3, 2), out=c) is c
    assert c.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    z3 = torch.rand(2, 2)
    torch.mul(c, c, out=z3)  # the quickstart's own line
    assert z3.tolist() == [[9.0, 9.0], [9.0, 9.0]]
    wide = torch.zeros(3, dtype=torch.float64)
    torch.sin(torch.zeros(3), out=wide)
    assert wide.dtype == torch.float64
    v, i = torch.zeros(2), torch.zeros(2, dtype=torch.long)
    torch.max(torch.tensor([[1.0, 5.0], [7.0, 2.0]]), 1, out=(v, i))
    assert v.tolist() == [5.0, 7.0] and i.tolist() == [1, 0]


def test_out_argument_checks_as_pytorch_does():
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired "
                                           "output type Long"):
        torch.add(torch.arange(3), 0.5, out=torch.zeros(3, dtype=torch.long))
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"mul\(\): functions with out=... arguments don't "
                                           r"support automatic differentiation"):
        torch.mul(w, 2, out=torch.zeros(2))
    o = torch.zeros(5)
    with pytest.warns(UserWarning, match=r"An output with one or more elements was resized since "
                                         r"it had shape \[5\], which does not match the required "
                                         r"output shape \[2\]"):
        torch.mul(torch.ones(2), 3, out=o)
    assert o.tolist() == [3.0, 3.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # resizing an empty out is silent
        e = torch.empty(0)
        torch.add(torch.ones(2), 1, out=e)
    assert e.tolist() == [2.0, 2.0]
    assert isinstance(torch.finfo(torch.float32), torch.finfo)  # classes stay classes


# --- gradients, in-place methods, namespace items ---------------------------------------------

def test_new_functions_record_gradients():
    p = torch.tensor([0.25, 0.5], requires_grad=True)
    torch.logit(p).sum().backward()
    assert np.allclose(p.grad.tolist(), [1 / (0.25 * 0.75), 4.0])
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    out = torch.lerp(x, torch.tensor([3.0, 3.0]), 0.25)
    assert out.grad_fn.name() == "LerpBackward0"
    out.sum().backward()
    assert x.grad.tolist() == [0.75, 0.75]
    m = torch.tensor([[2.0, 1.0], [1.0, 3.0]], requires_grad=True)
    torch.addmm(torch.zeros(2, 2), m, m).sum().backward()
    assert m.grad.tolist() == [[6.0, 7.0], [7.0, 8.0]]


def test_inplace_activations_and_memory_methods():
    t = torch.tensor([-1.0, 2.0])
    assert t.relu_() is t and t.tolist() == [0.0, 2.0]
    s = torch.tensor([0.0])
    s.sigmoid_()
    assert s.tolist() == [0.5]
    assert t.pin_memory() is t and not t.is_pinned() and t.get_device() == -1
    assert t.nbytes == 8 and t.itemsize == 4
    assert torch.zeros(7, 3).fill_diagonal_(1, wrap=True).sum().item() == 6.0


def test_inference_mode_is_visible():
    assert not torch.is_inference_mode_enabled()
    with torch.inference_mode():
        assert torch.is_inference_mode_enabled() and not torch.is_grad_enabled()
        with torch.inference_mode(False):
            assert not torch.is_inference_mode_enabled()

    @torch.inference_mode()
    def f():
        return torch.is_inference_mode_enabled()

    assert f() and not torch.is_inference_mode_enabled()


def test_return_types_and_loss_grad_fns_print_as_pytorch():
    m = torch.tensor([[1.0, 5.0], [4.0, 2.0]])
    assert repr(torch.max(m, 1)) == ("torch.return_types.max(\nvalues=tensor([5., 4.]),\n"
                                     "indices=tensor([1, 0]))")
    F = torch.nn.functional
    x = torch.tensor([[0.2, -0.4, 1.0], [0.3, 0.1, -0.2]], requires_grad=True)
    y = torch.tensor([2, 0])
    names = {"cross_entropy": F.cross_entropy(x, y), "nll_loss": F.nll_loss(x, y),
             "mse_loss": F.mse_loss(x, torch.zeros(2, 3)),
             "smooth_l1_loss": F.smooth_l1_loss(x, torch.zeros(2, 3)),
             "huber_loss": F.huber_loss(x, torch.zeros(2, 3)),
             "binary_cross_entropy": F.binary_cross_entropy(torch.sigmoid(x), torch.ones(2, 3)),
             "binary_cross_entropy_with_logits":
                 F.binary_cross_entropy_with_logits(x, torch.ones(2, 3)),
             "softmax": F.softmax(x, 1), "relu": F.relu(x), "gelu": F.gelu(x)}
    expected = {"cross_entropy": "NllLossBackward0", "nll_loss": "NllLossBackward0",
                "mse_loss": "MseLossBackward0", "smooth_l1_loss": "SmoothL1LossBackward0",
                "huber_loss": "HuberLossBackward0",
                "binary_cross_entropy": "BinaryCrossEntropyBackward0",
                "binary_cross_entropy_with_logits": "BinaryCrossEntropyWithLogitsBackward0",
                "softmax": "SoftmaxBackward0", "relu": "ReluBackward0", "gelu": "GeluBackward0"}
    assert {k: v.grad_fn.name() for k, v in names.items()} == expected
    assert str(F.cross_entropy(x, y)).endswith("grad_fn=<NllLossBackward0>)")
    assert F.cross_entropy(x, y).grad_fn.next_functions[0][0].name() == "LogSoftmaxBackward0"


# --- optimizers take PyTorch's implementation switches; torch.accelerator -------------------

def test_optimizers_accept_pytorch_switches_and_keep_them_in_param_groups():
    p = [torch.nn.Parameter(torch.ones(1))]
    sgd = torch.optim.SGD(p, lr=0.1, foreach=False)
    assert {k: sgd.param_groups[0][k] for k in ("foreach", "differentiable", "fused")} == \
        {"foreach": False, "differentiable": False, "fused": None}
    adamw = torch.optim.AdamW(p, lr=0.1, betas=(0.9, 0.95), fused=True)  # nanoGPT's line
    assert adamw.param_groups[0]["capturable"] is False
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True
    with pytest.raises(RuntimeError, match=r"differentiable=True\): the optimizer step is not "
                                           r"recorded"):
        torch.optim.Adam(p, differentiable=True)
    with pytest.raises(TypeError, match="unexpected option"):
        torch.optim.SGD(p, lr=0.1, bogus=1)


def test_adam_with_decoupled_weight_decay_is_adamw():
    def run(make):
        w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        opt = make([w])
        for _ in range(2):
            opt.zero_grad()
            (w ** 2).sum().backward()
            opt.step()
        return w.tolist()

    expected = [0.7082484364509583, -1.6104121208190918]  # PyTorch, both spellings
    got_adam = run(lambda ps: torch.optim.Adam(ps, lr=0.1, weight_decay=0.5,
                                               decoupled_weight_decay=True))
    got_adamw = run(lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.5))
    assert np.allclose(got_adam, expected, rtol=1e-6) and got_adam == got_adamw


def test_accelerator_api_on_a_cpu_only_machine():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    device = (torch.accelerator.current_accelerator().type if torch.accelerator.is_available()
              else "cpu")  # the PyTorch quickstart's line
    assert device == "cpu" and torch.accelerator.current_accelerator() is None
    assert torch.accelerator.device_count() == 0


# --- F.interpolate: bicubic and antialias -----------------------------------------------------

@pytest.mark.parametrize("options, expected", [
    (dict(size=(3, 4), mode="bicubic", align_corners=False),
     [0.3786, 0.7077, 1.1458, 1.6115, 3.6883, 4.2927, 4.9529, 5.5991, 8.2519, 8.974, 9.7506,
      10.5012]),
    (dict(size=(2, 3), mode="bicubic", antialias=True),
     [1.5247, 2.1253, 2.7964, 6.7852, 7.6839, 8.6051]),
    (dict(size=(2, 3), mode="bilinear", antialias=True),
     [1.9101, 2.4795, 3.1027, 6.5382, 7.342, 8.1665]),
])
def test_interpolate_bicubic_and_antialias_match_pytorch(options, expected):
    img = (torch.arange(30.0).reshape(1, 1, 5, 6) ** 1.3) / 7
    out = torch.nn.functional.interpolate(img, **options)
    assert np.allclose(out.flatten().tolist(), expected, atol=1e-4)


def test_interpolate_bicubic_gradient_and_align_corners():
    x = ((torch.arange(30.0).reshape(1, 1, 5, 6) ** 1.3) / 7).requires_grad_()
    torch.nn.functional.interpolate(x, size=(3, 4), mode="bicubic").sum().backward()
    assert np.allclose(x.grad.flatten().tolist()[:6],
                       [0.5059, 0.3587, 0.5059, 0.5059, 0.3587, 0.5059], atol=1e-4)
    out = torch.nn.functional.interpolate(x.detach(), size=(7, 9), mode="bicubic",
                                          align_corners=True)
    assert np.allclose(out[0, 0, 0, :4].tolist(), [0.0, 0.0684, 0.1967, 0.3139], atol=1e-4)
    with pytest.raises(ValueError, match="antialias=True needs mode 'bilinear' or 'bicubic'"):
        torch.nn.functional.interpolate(x, size=(2, 2), mode="nearest", antialias=True)


def test_clip_grad_norm_takes_inf_as_a_string_and_defaults_print_as_pytorch():
    w = torch.nn.Parameter(torch.ones(3))
    (w * 2).sum().backward()
    assert np.isclose(float(torch.nn.utils.clip_grad_norm_([w], 1.0)), 3.4641, atol=1e-4)
    assert np.allclose(w.grad.tolist(), [0.5774] * 3, atol=1e-4)
    assert np.isclose(float(torch.nn.utils.clip_grad_norm_([w], 1.0, norm_type="inf")), 0.5774,
                      atol=1e-4)
    opt = torch.optim.SGD([w], lr=0.1)
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.01})
    assert repr(opt.param_groups[1]["momentum"]) == "0"  # PyTorch's int default


# --- torch.fft, torch.special, torch.version, runtime queries, Variable, cuda memory -------------

def _pairs(z):
    return [(v.real, v.imag) for v in np.asarray(z.detach().numpy()).ravel()]


def test_fft_module_matches_pytorch():
    x = torch.tensor([1.0, 2.0, 0.5, -1.0, 3.0, 0.0])
    assert np.allclose(_pairs(torch.fft.fft(x)), [(5.5, 0.0), (1.25, 0.433), (-2.75, -3.8971),
                                                 (3.5, 0.0), (-2.75, 3.8971), (1.25, -0.433)],
                       atol=1e-4)
    assert np.allclose(_pairs(torch.fft.rfft(x, norm="ortho")),
                       [(2.2454, 0.0), (0.5103, 0.1768), (-1.1227, -1.591), (1.4289, 0.0)],
                       atol=1e-4)
    assert np.allclose(_pairs(torch.fft.fft2(x.reshape(2, 3))),
                       [(5.5, 0.0), (-2.75, -3.8971), (-2.75, 3.8971), (1.5, 0.0),
                        (2.25, 1.299), (2.25, -1.299)], atol=1e-4)
    assert np.allclose(torch.fft.irfft(torch.fft.rfft(x), n=6).tolist(), x.tolist(), atol=1e-6)
    assert torch.fft.fftfreq(4).tolist() == [0.0, 0.25, -0.5, -0.25]
    assert np.allclose(torch.fft.rfftfreq(5, d=0.5).tolist(), [0.0, 0.4, 0.8])
    assert torch.fft.fftshift(torch.arange(5)).tolist() == [3, 4, 0, 1, 2]
    y = x.clone().requires_grad_()
    torch.fft.rfft(y).abs().sum().backward()
    assert np.allclose(y.grad.tolist(), [2.3684, 1.1849, 0.8248, -1.5215, 2.8069, 0.3366],
                       atol=1e-4)


def test_special_module_matches_pytorch():
    sp = torch.special
    assert np.allclose(sp.erfc(torch.tensor([0.5, 3.0])).tolist(), [0.4795, 2.209e-05],
                       rtol=1e-3)
    assert sp.entr(torch.tensor([0.0, 0.5, 1.0, -1.0])).tolist()[::3] == [0.0, -math.inf]
    assert np.allclose(sp.xlog1py(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 3.0])).tolist(),
                       [0.0, 2.7725887])
    assert np.allclose(sp.ndtr(torch.tensor([-1.0, 0.0, 2.0])).tolist(),
                       [0.158655, 0.5, 0.97725], atol=1e-6)
    assert np.allclose(sp.log_ndtr(torch.tensor([-1.0])).tolist(), [-1.841021], atol=1e-6)
    assert np.allclose(sp.expit(torch.tensor([0.0])).tolist(), [0.5])
    assert np.allclose(sp.gammaln(torch.tensor([0.5, 3.0])).tolist(), [0.5724, 0.6931],
                       atol=1e-4)


def test_runtime_queries_version_variable_and_cuda_memory():
    assert torch.version.cuda is None and torch.version.__version__ == torch.__version__
    assert torch.promote_types(torch.int32, torch.float16) is torch.float16
    assert torch.result_type(torch.tensor([1, 2]), 1.0) is torch.float32
    assert torch.can_cast(torch.double, torch.float) and not torch.can_cast(torch.float,
                                                                            torch.int32)
    assert torch.is_nonzero(torch.tensor([1.5]))
    with pytest.raises(RuntimeError, match="more than one value is ambiguous"):
        torch.is_nonzero(torch.tensor([1, 2]))
    assert torch.typename(torch.ones(2)) == "torch.FloatTensor" and torch.typename(3) == "int"
    assert torch.get_float32_matmul_precision() == "highest"
    torch.set_float32_matmul_precision("high")
    assert torch.get_float32_matmul_precision() == "high"
    with pytest.warns(UserWarning, match="bogus is not one of 'highest', 'high', or 'medium'"):
        torch.set_float32_matmul_precision("bogus")
    torch.set_float32_matmul_precision("highest")
    from fnarray.compat.autograd import Variable
    v = Variable(torch.ones(2), requires_grad=True)
    assert v.requires_grad and v.is_leaf and torch.autograd.Variable is Variable
    if not torch.cuda.is_available():
        assert torch.cuda.memory_allocated() == 0 and torch.cuda.memory_reserved() == 0
        assert torch.cuda.empty_cache() is None and not torch.cuda.is_bf16_supported()


# --- autograd.gradcheck and Function backwards with trailing Nones ----------------------------

class _LinearFunction(torch.autograd.Function):  # PyTorch's "Extending PyTorch" example
    @staticmethod
    def forward(ctx, input, weight, bias=None):
        ctx.save_for_backward(input, weight, bias)
        output = input.mm(weight.t())
        if bias is not None:
            output += bias.unsqueeze(0).expand_as(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, bias = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = grad_output.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_output.t().mm(input)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(0)
        return grad_input, grad_weight, grad_bias  # three, for two inputs: PyTorch allows it


class _WrongSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 2

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x  # should be 2 x


def test_gradcheck_accepts_correct_backwards_and_names_wrong_ones():
    from fnarray.compat.autograd import gradcheck
    rng = np.random.default_rng(0)
    inputs = (torch.tensor(rng.standard_normal((4, 3)), requires_grad=True),
              torch.tensor(rng.standard_normal((2, 3)), requires_grad=True))
    assert gradcheck(_LinearFunction.apply, inputs, eps=1e-6, atol=1e-4)
    assert gradcheck(lambda a, b: (a * b).sin().sum(1),
                     (torch.tensor(rng.standard_normal((3, 2)), requires_grad=True),
                      torch.tensor(rng.standard_normal((3, 2)))))
    x = torch.tensor([1.0, 2.0], dtype=torch.double, requires_grad=True)
    assert gradcheck(_WrongSquare.apply, (x,), raise_exception=False) is False
    with pytest.raises(torch.autograd.GradcheckError,
                       match="Jacobian mismatch for output 0 with respect to input 0"):
        gradcheck(_WrongSquare.apply, (x,))
    assert issubclass(torch.autograd.GradcheckError, RuntimeError)


def test_fork_rng_restores_the_default_stream():
    torch.manual_seed(0)
    expected = torch.rand(2).tolist()
    torch.manual_seed(0)
    with torch.random.fork_rng():
        torch.rand(5)
    assert torch.rand(2).tolist() == expected
    state = torch.random.get_rng_state()
    a = torch.rand(1).item()
    torch.random.set_rng_state(state)
    assert torch.rand(1).item() == a


def test_grad_fn_types_and_next_functions_read_as_in_the_blitz_tutorial():
    torch.manual_seed(0)
    fc = torch.nn.Linear(4, 3)
    output = fc(torch.relu(torch.randn(2, 4)))
    loss = torch.nn.MSELoss()(output, torch.zeros(2, 3))
    assert type(loss.grad_fn).__name__ == "MseLossBackward0"
    # PyTorch lists the operation's inputs once: (AddmmBackward0, 0), (None, 0)
    assert [type(f).__name__ if f is not None else None
            for f, _ in loss.grad_fn.next_functions] == ["AddmmBackward0", None]
    assert type(loss.grad_fn.next_functions[0][0]).__name__ == "AddmmBackward0"
    assert isinstance(loss.grad_fn, type(loss.grad_fn).__mro__[1])  # one GradFn base
    assert repr(loss.grad_fn).startswith("<MseLossBackward0 object at 0x")
