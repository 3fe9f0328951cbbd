"""Function transformations, re-exported at the top level of ``fnarray``."""

from fnarray.transforms.custom import custom_jvp, custom_vjp, stop_gradient  # noqa: F401
from fnarray.transforms.grad import (  # noqa: F401
    grad, hessian, jacfwd, jacrev, linearize, value_and_grad)
from fnarray.transforms.jvp import jvp  # noqa: F401
from fnarray.transforms.reverse import vjp  # noqa: F401
from fnarray.transforms.vmap import vmap  # noqa: F401

__all__ = ["custom_jvp", "custom_vjp", "stop_gradient", "grad", "hessian", "jacfwd", "jacrev",
           "linearize", "value_and_grad", "jvp", "vjp", "vmap"]

from fnarray.transforms.ir import make_ir  # noqa: E402,F401
from fnarray.transforms.jit import jit  # noqa: E402,F401
from fnarray.transforms import staged  # noqa: E402,F401  (declares staged_call)

__all__ += ["make_ir", "jit"]
from fnarray.transforms.checkpoint import (  # noqa: E402,F401
    checkpoint, checkpoint_name, checkpoint_policies, optimization_barrier, remat)

__all__ += ["checkpoint", "checkpoint_name", "checkpoint_policies", "remat"]
from fnarray.transforms.disable_jit import disable_jit  # noqa: E402,F401

__all__ += ["disable_jit"]
