"""``fnarray.testing.check_grads`` in float64 for every layer and loss in ``fnarray.nn``.

Each case builds a module, converts it to float64 and checks the derivatives of
``functional_call(module, params, inputs)`` with respect to its parameters and its
floating-point inputs (integer inputs such as class targets are held constant).  Dropout
runs in eval mode (the mask is random); BatchNorm runs in both modes.  Order 2 is checked
for a representative few; the rest use order 1 to keep the file fast.
"""

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
from fnarray import nn
from fnarray.testing import check_grads

RNG = np.random.default_rng(0)


def r(*shape, low=None, high=None):
    """A float64 array: standard normal, or uniform on [low, high]."""
    v = RNG.normal(size=shape) if low is None else RNG.uniform(low, high, size=shape)
    return fa.asarray(v, dtype=fa.float64)


def ints(high, *shape):
    return fa.asarray(RNG.integers(0, high, size=shape), dtype=fa.int64)


def probs(*shape):
    p = RNG.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    return fa.asarray(p, dtype=fa.float64)


ACTIVATIONS = ["CELU", "ELU", "GELU", "SELU", "Hardsigmoid", "Hardswish", "Hardtanh",
               "LeakyReLU", "LogSigmoid", "Mish", "ReLU", "ReLU6", "Sigmoid", "SiLU",
               "Softplus", "Softsign", "Tanh", "Tanhshrink"]

# (id, module factory, input factory, order, training)
CASES = [(name, getattr(nn, name), lambda: (r(3, 4) * 2,), 1, False) for name in ACTIVATIONS]
CASES += [
    ("GELU-tanh", lambda: nn.GELU(approximate="tanh"), lambda: (r(3, 4),), 1, False),
    ("Softmax", lambda: nn.Softmax(dim=1), lambda: (r(3, 4),), 1, False),
    ("LogSoftmax", lambda: nn.LogSoftmax(dim=-1), lambda: (r(3, 4),), 1, False),
    ("Softmin", lambda: nn.Softmin(dim=0), lambda: (r(3, 4),), 1, False),
    # linear and containers
    ("Linear", lambda: nn.Linear(3, 2), lambda: (r(4, 3),), 2, False),
    ("Linear-nobias", lambda: nn.Linear(3, 2, bias=False), lambda: (r(2, 5, 3),), 1, False),
    ("Bilinear", lambda: nn.Bilinear(2, 3, 2), lambda: (r(4, 2), r(4, 3)), 1, False),
    ("Identity", nn.Identity, lambda: (r(2, 3),), 1, False),
    ("Flatten", nn.Flatten, lambda: (r(2, 3, 2),), 1, False),
    ("Unflatten", lambda: nn.Unflatten(1, (2, 3)), lambda: (r(2, 6),), 1, False),
    ("Sequential", lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)),
     lambda: (r(5, 3),), 1, False),
    # convolution
    ("Conv1d", lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1), lambda: (r(2, 2, 7),), 1, False),
    ("Conv2d", lambda: nn.Conv2d(2, 2, 3, padding=1, groups=2), lambda: (r(1, 2, 4, 4),), 2,
     False),
    ("Conv2d-dilated-reflect", lambda: nn.Conv2d(1, 2, 2, dilation=2, padding=1,
                                                 padding_mode="reflect"),
     lambda: (r(2, 1, 5, 4),), 1, False),
    ("Conv3d", lambda: nn.Conv3d(1, 2, 2), lambda: (r(1, 1, 3, 3, 3),), 1, False),
    ("ConvTranspose1d", lambda: nn.ConvTranspose1d(2, 1, 3, stride=2), lambda: (r(2, 2, 4),), 1,
     False),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(2, 2, 2, stride=2, output_padding=1),
     lambda: (r(1, 2, 3, 3),), 1, False),
    ("ConvTranspose3d", lambda: nn.ConvTranspose3d(1, 1, 2), lambda: (r(1, 1, 2, 2, 2),), 1,
     False),
    # pooling
    ("MaxPool1d", lambda: nn.MaxPool1d(2), lambda: (r(2, 3, 6),), 1, False),
    ("MaxPool2d", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
     lambda: (r(1, 2, 5, 5),), 1, False),
    ("MaxPool3d", lambda: nn.MaxPool3d(2), lambda: (r(1, 1, 4, 4, 2),), 1, False),
    ("AvgPool1d", lambda: nn.AvgPool1d(3, stride=2, padding=1), lambda: (r(2, 2, 7),), 1, False),
    ("AvgPool2d", lambda: nn.AvgPool2d(2, count_include_pad=False, padding=1),
     lambda: (r(1, 2, 5, 4),), 1, False),
    ("AvgPool3d", lambda: nn.AvgPool3d(2), lambda: (r(1, 1, 4, 2, 2),), 1, False),
    ("AdaptiveAvgPool1d", lambda: nn.AdaptiveAvgPool1d(3), lambda: (r(2, 2, 7),), 1, False),
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d((2, 3)), lambda: (r(1, 2, 5, 7),), 1,
     False),
    ("AdaptiveAvgPool3d", lambda: nn.AdaptiveAvgPool3d(2), lambda: (r(1, 1, 3, 3, 3),), 1,
     False),
    ("AdaptiveMaxPool1d", lambda: nn.AdaptiveMaxPool1d(3), lambda: (r(2, 2, 7),), 1, False),
    ("AdaptiveMaxPool2d", lambda: nn.AdaptiveMaxPool2d(2), lambda: (r(1, 2, 5, 5),), 1, False),
    # normalisation
    ("BatchNorm1d-train", lambda: nn.BatchNorm1d(3), lambda: (r(4, 3),), 1, True),
    ("BatchNorm1d-eval", lambda: nn.BatchNorm1d(3), lambda: (r(4, 3, 2),), 1, False),
    ("BatchNorm2d-train", lambda: nn.BatchNorm2d(2), lambda: (r(2, 2, 3, 3),), 1, True),
    ("BatchNorm2d-eval", lambda: nn.BatchNorm2d(2), lambda: (r(2, 2, 3, 3),), 1, False),
    ("BatchNorm3d-train", lambda: nn.BatchNorm3d(2), lambda: (r(2, 2, 2, 2, 2),), 1, True),
    # one process: plain BatchNorm (tests/distributed_worker.py checks several ranks)
    ("SyncBatchNorm-train", lambda: nn.SyncBatchNorm(2), lambda: (r(2, 2, 3, 3),), 1, True),
    ("SyncBatchNorm-eval", lambda: nn.SyncBatchNorm(2), lambda: (r(3, 2, 4),), 1, False),
    ("InstanceNorm1d", lambda: nn.InstanceNorm1d(2, affine=True), lambda: (r(2, 2, 5),), 1,
     True),
    ("InstanceNorm2d-tracked", lambda: nn.InstanceNorm2d(2, track_running_stats=True),
     lambda: (r(2, 2, 3, 3),), 1, True),
    ("InstanceNorm3d", lambda: nn.InstanceNorm3d(1), lambda: (r(1, 1, 2, 2, 3),), 1, True),
    ("LayerNorm", lambda: nn.LayerNorm((2, 3)), lambda: (r(4, 2, 3),), 2, False),
    ("GroupNorm", lambda: nn.GroupNorm(2, 4), lambda: (r(2, 4, 3),), 1, False),
    # dropout (eval: the identity) and embedding
    ("Dropout", lambda: nn.Dropout(0.3), lambda: (r(3, 4),), 1, False),
    ("Dropout1d", lambda: nn.Dropout1d(0.3), lambda: (r(2, 3, 4),), 1, False),
    ("Dropout2d", lambda: nn.Dropout2d(0.3), lambda: (r(2, 3, 2, 2),), 1, False),
    ("Dropout3d", lambda: nn.Dropout3d(0.3), lambda: (r(1, 2, 2, 2, 2),), 1, False),
    ("Embedding", lambda: nn.Embedding(5, 3), lambda: (ints(5, 2, 4),), 1, False),
    # recurrent
    ("RNN-relu-bidirectional", lambda: nn.RNN(3, 2, nonlinearity="relu", bidirectional=True),
     lambda: (r(3, 2, 3),), 1, False),
    ("LSTM-2layers-batch_first", lambda: nn.LSTM(2, 2, num_layers=2, batch_first=True),
     lambda: (r(2, 3, 2),), 1, False),
    ("GRU", lambda: nn.GRU(2, 3), lambda: (r(3, 2),), 1, False),
    ("RNNCell", lambda: nn.RNNCell(3, 2), lambda: (r(2, 3), r(2, 2)), 1, False),
    ("LSTMCell", lambda: nn.LSTMCell(3, 2), lambda: (r(2, 3), (r(2, 2), r(2, 2))), 1, False),
    ("GRUCell", lambda: nn.GRUCell(2, 2), lambda: (r(3, 2), r(3, 2)), 1, False),
    # attention
    ("MultiheadAttention", lambda: nn.MultiheadAttention(4, 2, kdim=3, vdim=2),
     lambda: (r(3, 2, 4), r(5, 2, 3), r(5, 2, 2)), 1, False),
    ("TransformerEncoderLayer", lambda: nn.TransformerEncoderLayer(4, 2, 6, norm_first=True,
                                                                   activation="gelu"),
     lambda: (r(3, 2, 4),), 1, False),
    ("TransformerEncoder", lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 1, 4), 2),
     lambda: (r(2, 1, 4),), 1, False),
    ("TransformerDecoderLayer", lambda: nn.TransformerDecoderLayer(4, 2, 6, norm_first=True),
     lambda: (r(3, 2, 4), r(2, 2, 4)), 1, False),
    ("TransformerDecoder", lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 1, 4), 2),
     lambda: (r(2, 1, 4), r(3, 1, 4)), 1, False),
    ("Transformer", lambda: nn.Transformer(4, 1, 1, 1, 4), lambda: (r(3, 1, 4), r(2, 1, 4)), 1,
     False),
    ("LSTM-proj_size", lambda: nn.LSTM(2, 3, proj_size=2), lambda: (r(3, 2, 2),), 1, False),
    # patches
    ("Unfold", lambda: nn.Unfold(2, padding=1, stride=2), lambda: (r(1, 2, 3, 3),), 2, False),
    ("Fold", lambda: nn.Fold((3, 3), 2), lambda: (r(1, 8, 4),), 1, False),
    ("PixelShuffle", lambda: nn.PixelShuffle(2), lambda: (r(1, 4, 2, 2),), 1, False),
    ("PixelUnshuffle", lambda: nn.PixelUnshuffle(2), lambda: (r(1, 1, 4, 2),), 1, False),
    # losses
    ("MSELoss", nn.MSELoss, lambda: (r(3, 4), r(3, 4)), 2, False),
    ("L1Loss", lambda: nn.L1Loss(reduction="sum"), lambda: (r(3, 4), r(3, 4)), 1, False),
    ("SmoothL1Loss", lambda: nn.SmoothL1Loss(beta=0.5), lambda: (r(3, 4), r(3, 4)), 1, False),
    ("HuberLoss", lambda: nn.HuberLoss(reduction="none", delta=0.7), lambda: (r(3, 4), r(3, 4)),
     1, False),
    ("CrossEntropyLoss", nn.CrossEntropyLoss, lambda: (r(4, 3), ints(3, 4)), 2, False),
    ("CrossEntropyLoss-weighted-smoothed",
     lambda: nn.CrossEntropyLoss(weight=fa.asarray([1.0, 2.0, 0.5]), label_smoothing=0.1),
     lambda: (r(4, 3, 2), ints(3, 4, 2)), 1, False),
    ("CrossEntropyLoss-probabilities", nn.CrossEntropyLoss, lambda: (r(4, 3), probs(4, 3)), 1,
     False),
    ("NLLLoss", lambda: nn.NLLLoss(reduction="sum"), lambda: (r(4, 3), ints(3, 4)), 1, False),
    ("BCELoss", nn.BCELoss, lambda: (r(3, 2, low=0.1, high=0.9), r(3, 2, low=0, high=1)), 1,
     False),
    ("BCEWithLogitsLoss", lambda: nn.BCEWithLogitsLoss(pos_weight=fa.asarray([2.0, 0.5])),
     lambda: (r(3, 2), r(3, 2, low=0, high=1)), 1, False),
    ("KLDivLoss", lambda: nn.KLDivLoss(reduction="batchmean"),
     lambda: (fa.log(probs(3, 4)), probs(3, 4)), 1, False),
    ("CosineEmbeddingLoss", lambda: nn.CosineEmbeddingLoss(margin=-0.5),
     lambda: (r(4, 3), r(4, 3), fa.asarray([1, -1, 1, -1])), 1, False),
    # nn/layers/misc.py and the losses of nn/functional_more.py
    ("Upsample", lambda: nn.Upsample(scale_factor=2, mode="bicubic"), lambda: (r(1, 2, 3, 3),),
     1, False),
    ("UpsamplingNearest2d", lambda: nn.UpsamplingNearest2d(size=(4, 5)),
     lambda: (r(1, 1, 2, 3),), 1, False),
    ("UpsamplingBilinear2d", lambda: nn.UpsamplingBilinear2d(scale_factor=2),
     lambda: (r(1, 1, 2, 3),), 1, False),
    ("ZeroPad1d", lambda: nn.ZeroPad1d((1, 2)), lambda: (r(2, 3),), 1, False),
    ("ZeroPad2d", lambda: nn.ZeroPad2d(1), lambda: (r(1, 2, 3),), 1, False),
    ("ConstantPad1d", lambda: nn.ConstantPad1d(1, 2.0), lambda: (r(2, 3),), 1, False),
    ("ConstantPad2d", lambda: nn.ConstantPad2d((1, 0, 0, 2), -1.0), lambda: (r(1, 2, 3),), 1,
     False),
    ("ConstantPad3d", lambda: nn.ConstantPad3d(1, 0.5), lambda: (r(1, 2, 2, 2),), 1, False),
    ("ReflectionPad1d", lambda: nn.ReflectionPad1d(2), lambda: (r(2, 4),), 1, False),
    ("ReflectionPad2d", lambda: nn.ReflectionPad2d(1), lambda: (r(1, 3, 3),), 1, False),
    ("ReplicationPad1d", lambda: nn.ReplicationPad1d((2, 1)), lambda: (r(2, 3),), 1, False),
    ("ReplicationPad2d", lambda: nn.ReplicationPad2d(1), lambda: (r(1, 2, 3),), 1, False),
    ("CircularPad1d", lambda: nn.CircularPad1d(1), lambda: (r(2, 3),), 1, False),
    ("CircularPad2d", lambda: nn.CircularPad2d(1), lambda: (r(1, 2, 3),), 1, False),
    ("PReLU", lambda: nn.PReLU(3, 0.2), lambda: (r(2, 3, 4),), 1, False),
    ("Threshold", lambda: nn.Threshold(-3.0, 0.5), lambda: (r(3, 4),), 1, False),
    ("GLU", nn.GLU, lambda: (r(3, 4),), 1, False),
    ("Softshrink", lambda: nn.Softshrink(0.05), lambda: (r(3, 4) * 3,), 1, False),
    ("Hardshrink", lambda: nn.Hardshrink(0.05), lambda: (r(3, 4) * 3,), 1, False),
    ("Softmax2d", nn.Softmax2d, lambda: (r(1, 3, 2, 2),), 1, False),
    ("CosineSimilarity", nn.CosineSimilarity, lambda: (r(3, 4), r(3, 4)), 1, False),
    ("PairwiseDistance", nn.PairwiseDistance, lambda: (r(3, 4), r(3, 4)), 1, False),
    ("TripletMarginLoss", lambda: nn.TripletMarginLoss(margin=5.0, swap=True),
     lambda: (r(3, 4), r(3, 4), r(3, 4)), 1, False),
    ("MarginRankingLoss", lambda: nn.MarginRankingLoss(margin=5.0),
     lambda: (r(4), r(4), fa.asarray([1.0, -1.0, 1.0, -1.0])), 1, False),
    ("HingeEmbeddingLoss", lambda: nn.HingeEmbeddingLoss(margin=5.0),
     lambda: (r(4), fa.asarray([1, -1, 1, -1])), 1, False),
    ("SoftMarginLoss", nn.SoftMarginLoss, lambda: (r(4), fa.asarray([1.0, -1.0, 1.0, -1.0])),
     1, False),
    ("MultiLabelSoftMarginLoss", nn.MultiLabelSoftMarginLoss,
     lambda: (r(3, 4), r(3, 4, low=0, high=1)), 1, False),
    ("PoissonNLLLoss", lambda: nn.PoissonNLLLoss(full=True),
     lambda: (r(3, 4), r(3, 4, low=0, high=4)), 1, False),
    ("EmbeddingBag", lambda: nn.EmbeddingBag(6, 3, mode="max"),
     lambda: (fa.asarray([1, 4, 2, 5, 0]), fa.asarray([0, 2])), 1, False),
    ("EmbeddingBag-sum-weighted", lambda: nn.EmbeddingBag(6, 3, mode="sum"),
     lambda: (fa.asarray([[1, 4], [2, 2]]), None, r(4)), 1, False),
    ("GaussianNLLLoss", nn.GaussianNLLLoss,
     lambda: (r(3, 4), r(3, 4), r(3, 4, low=0.5, high=2)), 1, False),
]


def module_grads_ok(module, args, order):
    """check_grads of ``functional_call`` w.r.t. the parameters and the float inputs."""
    params = {k: v.detach().array for k, v in module.named_parameters()}

    def f(p, *xs):
        return nn.functional_call(module, p, xs)

    check_grads(f, (params, *args), order=order)


@pytest.mark.parametrize("name,build,inputs,order,training", CASES,
                         ids=[c[0] for c in CASES])
def test_check_grads(name, build, inputs, order, training):
    torch.manual_seed(0)
    module = build().double().train(training)
    before = {k: np.array(v.detach().numpy()) for k, v in module.state_dict().items()}
    module_grads_ok(module, inputs(), order)
    # functional_call never writes to the module (running statistics included)
    for k, v in module.state_dict().items():
        np.testing.assert_array_equal(v.detach().numpy(), before[k], err_msg=k)


def test_every_layer_and_loss_is_covered():
    covered = {c[0].split("-")[0] for c in CASES}
    exported = {n for n in dir(nn) if isinstance(getattr(nn, n), type)
                and issubclass(getattr(nn, n), nn.Module)}
    abstract = {"Module", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
                "NonDynamicallyQuantizableLinear"}
    assert exported - abstract - covered == set()
