"""``torch.version``: the PyTorch API release the compat layer follows, and no CUDA/HIP
toolkit (fnarray reaches GPUs through CuPy, not a compiled CUDA build)."""

from fnarray.compat import __version__  # noqa: F401

cuda = None
hip = None
debug = False
