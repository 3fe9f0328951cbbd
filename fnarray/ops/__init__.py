"""Primitives grouped by family; importing this package declares all of them."""

from fnarray.ops import (  # noqa: F401  (import for the side effect of declaring)
    elementwise,
    reduction,
    shape,
    indexing,
    linalg,
    decompositions,
    eig,
    fft,
    conv, conv_transpose, conv_weight, pooling, random_bits,
    special,
    activation, loss,
    collectives,
)
