"""``fnarray.nn``: PyTorch-style modules on the functional core.

``from fnarray import nn`` gives ``Module``, ``Parameter``, the containers, the layers,
``nn.functional`` (as ``F``), ``nn.init``, ``nn.utils`` and ``nn.functional_call``.
"""

from fnarray.nn import functional, init, parallel, utils  # noqa: F401
from fnarray.nn.containers import (  # noqa: F401
    Flatten, Identity, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential, Unflatten)
from fnarray.nn.functional_call import functional_call  # noqa: F401
from fnarray.nn.layers.activation import (  # noqa: F401
    CELU, ELU, GELU, SELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax,
    Mish, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Softmin, Softplus, Softsign, Tanh, Tanhshrink)
from fnarray.nn.layers.attention import (  # noqa: F401
    MultiheadAttention, NonDynamicallyQuantizableLinear)
from fnarray.nn.layers.conv import (  # noqa: F401
    Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)
from fnarray.nn.layers.dropout import Dropout, Dropout1d, Dropout2d, Dropout3d  # noqa: F401
from fnarray.nn.layers.embedding import Embedding, EmbeddingBag  # noqa: F401
from fnarray.nn.layers.linear import Bilinear, Linear  # noqa: F401
from fnarray.nn.layers.loss import (  # noqa: F401
    BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss, GaussianNLLLoss,
    HingeEmbeddingLoss, HuberLoss, KLDivLoss, L1Loss, MarginRankingLoss, MSELoss,
    MultiLabelSoftMarginLoss, NLLLoss, PoissonNLLLoss, SmoothL1Loss, SoftMarginLoss,
    TripletMarginLoss)
from fnarray.nn.layers.misc import (  # noqa: F401
    GLU, CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
    CosineSimilarity, Hardshrink, PairwiseDistance, PReLU, ReflectionPad1d, ReflectionPad2d,
    ReplicationPad1d, ReplicationPad2d, Softmax2d, Softshrink, Threshold, Upsample,
    UpsamplingBilinear2d, UpsamplingNearest2d, ZeroPad1d, ZeroPad2d)
from fnarray.nn.layers.normalization import (  # noqa: F401
    BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d,
    InstanceNorm3d, LayerNorm, SyncBatchNorm)
from fnarray.nn.layers.pooling import (  # noqa: F401
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d, AdaptiveMaxPool2d,
    AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d)
from fnarray.nn.layers.patches import Fold, PixelShuffle, PixelUnshuffle, Unfold  # noqa: F401
from fnarray.nn.layers.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: F401
from fnarray.nn.layers.transformer import (  # noqa: F401
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer)
from fnarray.nn.module import Module  # noqa: F401
from fnarray.nn.parameter import Buffer, Parameter  # noqa: F401
