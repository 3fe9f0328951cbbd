"""``torch.special``: the special functions under their ``torch.special`` names, as the
compat functions they alias (``expit`` is ``sigmoid``, ``gammaln`` is ``lgamma``, ...) plus
``ndtr``, ``log_ndtr``, ``entr``, ``xlog1py`` and ``erfc`` written from recorded operations."""

from __future__ import annotations

import math

from fnarray import api as fa


def _compat(name: str):
    import fnarray.compat as torch
    return getattr(torch, name)


def expit(input):
    return _compat("sigmoid")(input)


def logit(input, eps=None):
    return _compat("logit")(input, eps)


def erf(input):
    return _compat("erf")(input)


def erfc(input):
    """``1 - erf(x)``, formed in float64 so that the tail keeps its digits."""
    wide = fa.astype(input, "float64")
    return fa.astype(1 - fa.erf(wide), input.dtype)


def gammaln(input):
    return _compat("lgamma")(input)


def digamma(input):
    return _compat("digamma")(input)


psi = digamma


def polygamma(n: int, input):
    return _compat("polygamma")(n, input)


def xlogy(input, other):
    return _compat("xlogy")(input, other)


def xlog1py(input, other):
    """``x * log1p(y)``, 0 where ``x`` is 0."""
    zero = input == 0
    return fa.where(zero, 0.0, input * fa.log1p(fa.where(zero, 0.0, other)))


def entr(input):
    """``-x log x`` (0 at 0, ``-inf`` below 0)."""
    safe = fa.where(input > 0, input, 1.0)
    return fa.where(input > 0, -input * fa.log(safe), fa.where(input == 0, 0.0, -math.inf))


def ndtr(input):
    """The standard normal CDF."""
    return 0.5 * (1 + fa.erf(input / math.sqrt(2.0)))


def log_ndtr(input):
    return fa.log(ndtr(input))


def sinc(input):
    return _compat("sinc")(input)


def expm1(input):
    return fa.expm1(input)


def exp2(input):
    return fa.exp2(input)


def log1p(input):
    return fa.log1p(input)


def round(input, decimals: int = 0):  # noqa: A001
    return _compat("round")(input, decimals=decimals)


def logsumexp(input, dim, keepdim: bool = False):
    return _compat("logsumexp")(input, dim, keepdim)


def softmax(input, dim, *, dtype=None):
    from fnarray.nn import functional as F
    return F.softmax(input, dim, dtype=dtype)


def log_softmax(input, dim, *, dtype=None):
    from fnarray.nn import functional as F
    return F.log_softmax(input, dim, dtype=dtype)
