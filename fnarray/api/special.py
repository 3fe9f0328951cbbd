"""Special functions: ``lgamma``, ``digamma``, ``polygamma`` (differentiable to any order)."""

from __future__ import annotations

from fnarray.api._convert import to_inexact


def lgamma(x):
    """Elementwise ``log |Gamma(x)|``; ``+inf`` at the poles 0, -1, -2, ...."""
    from fnarray.ops import special
    return special.lgamma.bind(to_inexact(x))


def digamma(x):
    """Elementwise ``psi(x) = d/dx log Gamma(x)``; ``-inf`` at 0, NaN at negative integers."""
    from fnarray.ops import special
    return special.digamma.bind(to_inexact(x))


def polygamma(n: int, x):
    """Elementwise ``n``-th derivative of ``digamma`` (``polygamma(0, x) == digamma(x)``)."""
    from fnarray.ops import special
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative int, got {n!r}")
    x = to_inexact(x)
    return special.digamma.bind(x) if n == 0 else special.polygamma.bind(x, n=n)
