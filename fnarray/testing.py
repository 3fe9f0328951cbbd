"""Testing helpers for derivative rules: ``check_grads`` and ``numerical_jvp``.

``check_grads(f, args)`` checks a function's derivatives the way the registry test checks
every primitive, so users can test their own ``custom_jvp`` / ``custom_vjp`` rules:

* forward mode: ``jvp(f)`` against central finite differences along random tangents;
* reverse mode: ``vjp(f)`` against ``jvp(f)`` through the dot-product identity
  ``<ct, J t> == <J^T ct, t>`` for random tangents ``t`` and cotangents ``ct``;
* higher orders: the same checks applied to the functions ``(x, t) -> jvp(f)(x, t)`` and
  ``(x, ct) -> vjp(f)(x)(ct)``, recursively, ``order`` levels deep.

Only floating-point (and complex) leaves of ``args`` are differentiated; integer and boolean
leaves are held constant.  Checks are deterministic (fixed random seed).  Complex values
follow JAX's convention: ``<a, b> = Re sum(a * b)`` (no conjugation), so a correct VJP is the
transpose of the JVP, and ``grad`` of a real function of ``z = x + iy`` is
``df/dx - i df/dy``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from fnarray.core import tree as tree_util
from fnarray.core.shapes import is_inexact

__all__ = ["check_grads", "check_jvp", "check_vjp", "numerical_jvp", "default_tolerance"]

# Finite-difference step and comparison tolerance per precision.  float64 is tight: the
# central difference's truncation error (~eps**2) and rounding error (~1e-16 / eps) are
# both far below the tolerance for well-conditioned functions.
_EPS = {np.dtype(np.float16): 3e-2, np.dtype(np.float32): 2e-3, np.dtype(np.float64): 1e-6}
_TOL = {np.dtype(np.float16): 1e-1, np.dtype(np.float32): 2e-2, np.dtype(np.float64): 1e-6}


def _real_dtype(dtype) -> np.dtype:
    return np.zeros((), dtype).real.dtype


def _lowest_precision(values) -> np.dtype:
    dts = [_real_dtype(np.asarray(v).dtype) for v in values] or [np.dtype(np.float64)]
    return min(dts, key=lambda d: d.itemsize)


def default_tolerance(dtype) -> float:
    """The default ``atol`` (== ``rtol``) of ``check_grads`` for values of ``dtype``."""
    return _TOL.get(_real_dtype(dtype), 1e-6)


def _inexact(x) -> bool:
    return is_inexact(np.dtype(x.dtype))


def _host(x) -> np.ndarray:
    return np.asarray(x)


def _inner(xs, ys) -> tuple[float, float]:
    """The pairing of cotangents with tangents, ``Re sum(x * y)`` (JAX's convention: a VJP
    is the transpose of the JVP, not its conjugate transpose), and the sum of the absolute
    values of its terms (the scale that its rounding error is relative to)."""
    total, scale = 0.0, 0.0
    for x, y in zip(xs, ys):
        x, y = _host(x), _host(y)
        prod = (x.real * y.real - x.imag * y.imag) if np.iscomplexobj(x) or np.iscomplexobj(y) \
            else x.astype(np.float64) * y.astype(np.float64)
        total += float(np.sum(prod))
        scale += float(np.sum(np.abs(prod)))
    return total, scale


def _random_like(rng: np.random.Generator, x):
    """A standard-normal array shaped and typed like ``x`` (complex: both parts random)."""
    from fnarray import api as fa
    shape, dtype = tuple(x.shape), np.dtype(x.dtype)
    v = rng.standard_normal(shape)
    if dtype.kind == "c":
        v = v + 1j * rng.standard_normal(shape)
    return fa.asarray(np.asarray(v, dtype=dtype), device=fa.asarray(x).device)


def _perturb(xs, ts, step):
    from fnarray import api as fa
    out = []
    for x, t in zip(xs, ts):
        hx = _host(x)
        moved = hx.astype(np.complex128 if hx.dtype.kind == "c" else np.float64) + step * _host(t)
        out.append(fa.asarray(moved.astype(hx.dtype), device=fa.asarray(x).device))
    return out


def _as_list(out) -> list:
    from fnarray import api as fa
    return [fa.asarray(o) for o in tree_util.leaves(out)]


def numerical_jvp(f: Callable, primals: Sequence, tangents: Sequence, eps: float | None = None):
    """Central finite difference ``(f(x + eps t) - f(x - eps t)) / (2 eps)``.

    ``f`` takes the arrays of ``primals`` positionally and returns a pytree of arrays;
    the result is the list of its leaves' directional derivatives (float64 NumPy arrays,
    complex128 for complex outputs).  ``eps`` defaults to a step suited to the lowest
    precision among the primals.
    """
    primals, tangents = list(primals), list(tangents)
    if eps is None:
        eps = _EPS.get(_lowest_precision(primals), 1e-6)
    plus = _as_list(f(*_perturb(primals, tangents, eps)))
    minus = _as_list(f(*_perturb(primals, tangents, -eps)))
    out = []
    for p, m in zip(plus, minus):
        hp, hm = _host(p), _host(m)
        wide = np.complex128 if hp.dtype.kind == "c" else np.float64
        out.append((hp.astype(wide) - hm.astype(wide)) / (2 * eps))
    return out


def _assert_close(what: str, actual, expected, atol: float, rtol: float) -> None:
    for i, (a, e) in enumerate(zip(actual, expected)):
        a, e = _host(a), _host(e)
        if a.shape != e.shape:
            raise AssertionError(f"check_grads: {what}: output {i} has shape {a.shape}, "
                                 f"expected {e.shape}")
        if a.size == 0:
            continue
        a64 = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)
        err = np.abs(a64 - e)
        bound = atol + rtol * np.abs(e)
        if not np.all(err <= bound) or not np.all(np.isfinite(a64) == np.isfinite(e)):
            worst = int(np.nanargmax(err - bound)) if err.size else 0
            raise AssertionError(
                f"check_grads: {what} failed for output {i} (shape {a.shape}): max abs error "
                f"{np.nanmax(err):.3g} exceeds the tolerance atol={atol:.3g}, rtol={rtol:.3g} "
                f"(worst element {tuple(int(k) for k in np.unravel_index(worst, a.shape))}: "
                f"got {a64.flat[worst].item()!r}, expected {e.flat[worst].item()!r})")


def check_jvp(f: Callable, primals: Sequence, *, atol=None, rtol=None, eps=None,
              name: str = "f", seed: int = 0) -> None:
    """``jvp(f)`` agrees with central finite differences along a random tangent."""
    from fnarray.transforms.jvp import jvp
    primals = list(primals)
    rng = np.random.default_rng(seed)
    tangents = [_random_like(rng, p) for p in primals]
    tol = default_tolerance(_lowest_precision(primals))
    atol, rtol = tol if atol is None else atol, tol if rtol is None else rtol
    _, t_out = jvp(lambda *xs: _as_list(f(*xs)), tuple(primals), tuple(tangents))
    expected = numerical_jvp(f, primals, tangents, eps)
    pairs = [(t, e) for t, e in zip(t_out, expected) if _inexact(t)]
    _assert_close(f"JVP of {name} vs central finite differences",
                  [t for t, _ in pairs], [e for _, e in pairs], atol, rtol)


def check_vjp(f: Callable, primals: Sequence, *, atol=None, rtol=None, eps=None,
              name: str = "f", seed: int = 0, numerical: bool = False) -> None:
    """``vjp(f)`` agrees with ``jvp(f)``: ``<ct, J t> == <J^T ct, t>`` for random t, ct.

    With ``numerical=True``, ``J t`` comes from central finite differences instead of
    ``jvp(f)`` (so the check does not trust the forward-mode rule either)."""
    from fnarray.transforms.jvp import jvp
    from fnarray.transforms.reverse import vjp
    primals = list(primals)
    rng = np.random.default_rng(seed + 1)
    tangents = [_random_like(rng, p) for p in primals]
    flat = lambda *xs: _as_list(f(*xs))  # noqa: E731
    out, pullback = vjp(flat, *primals)
    cts = [_random_like(rng, o) if _inexact(o) else _zeros(o) for o in out]
    ct_in = pullback(cts)
    if numerical:
        t_out = numerical_jvp(f, primals, tangents, eps)
    else:
        t_out = jvp(flat, tuple(primals), tuple(tangents))[1]
    keep = [i for i, o in enumerate(out) if _inexact(o)]
    lhs, lscale = _inner([cts[i] for i in keep], [t_out[i] for i in keep])
    rhs, rscale = _inner(ct_in, tangents)
    tol = default_tolerance(_lowest_precision(primals))
    atol, rtol = tol if atol is None else atol, tol if rtol is None else rtol
    bound = atol + rtol * max(lscale, rscale)
    if numerical:  # each finite-difference entry may be off by atol
        bound += atol * sum(float(np.sum(np.abs(_host(cts[i])))) for i in keep)
    reference = "finite differences" if numerical else "JVP"
    if not abs(lhs - rhs) <= bound:
        raise AssertionError(
            f"check_grads: VJP of {name} vs {reference} (dot-product identity "
            f"<ct, J t> == <J^T ct, t>) "
            f"failed: <ct, J t> = {lhs!r} but <J^T ct, t> = {rhs!r}; abs error "
            f"{abs(lhs - rhs):.3g} exceeds the tolerance {bound:.3g} (atol={atol:.3g}, "
            f"rtol={rtol:.3g} relative to the terms' magnitude {max(lscale, rscale):.3g})")


def _zeros(x):
    from fnarray import api as fa
    return fa.zeros_like(x)


def check_grads(f: Callable, args: Sequence, order: int = 2, modes=("fwd", "rev"),
                atol: float | None = None, rtol: float | None = None,
                eps: float | None = None) -> None:
    """Check ``f``'s derivatives at ``args`` up to ``order`` (see the module docstring).

    ``f`` is called as ``f(*args)`` and returns a pytree of arrays; ``modes`` selects
    forward (``"fwd"``) and/or reverse (``"rev"``) mode.  Raises ``AssertionError`` naming
    the failing check, its maximum error and the tolerance.
    """
    from fnarray import api as fa
    for m in modes:
        if m not in ("fwd", "rev"):
            raise ValueError(f"check_grads: unknown mode {m!r}; use 'fwd' and/or 'rev'")
    leaves, in_tree = tree_util.flatten(tuple(args))
    leaves = [fa.asarray(x) for x in leaves]
    diff_pos = [i for i, x in enumerate(leaves) if _inexact(x)]
    if not diff_pos:
        raise TypeError("check_grads: no floating-point argument to differentiate")

    def flat_f(*xs):
        full = list(leaves)
        for i, x in zip(diff_pos, xs):
            full[i] = x
        return _as_list(f(*tree_util.unflatten(in_tree, full)))

    _check(flat_f, [leaves[i] for i in diff_pos], order, tuple(modes),
           dict(atol=atol, rtol=rtol), eps, "f")


def _check(f, xs, order, modes, tols, eps, name):
    from fnarray.transforms.jvp import jvp
    from fnarray.transforms.reverse import vjp
    n = len(xs)
    rng = np.random.default_rng(order)
    if "fwd" in modes:
        check_jvp(f, xs, eps=eps, name=name, **tols)
        if order > 1:
            ts = [_random_like(rng, x) for x in xs]

            def f_jvp(*xt):
                out, t_out = jvp(f, tuple(xt[:n]), tuple(xt[n:]))
                return list(out) + list(t_out)

            _check(f_jvp, xs + ts, order - 1, modes, tols, eps, f"jvp({name})")
    if "rev" in modes:
        # Without the forward check, J t comes from finite differences so that a wrong
        # rule cannot vouch for itself (a custom_vjp's JVP is derived from its VJP).
        check_vjp(f, xs, eps=eps, name=name, numerical="fwd" not in modes, **tols)
        if order > 1:
            outs = f(*xs)
            diff_out = [i for i, o in enumerate(outs) if _inexact(o)]
            if not diff_out:
                return
            cts = [_random_like(rng, outs[i]) for i in diff_out]

            def f_vjp(*xc):
                out, pullback = vjp(f, *xc[:n])
                full = [_zeros(o) for o in out]
                for i, c in zip(diff_out, xc[n:]):
                    full[i] = c
                return list(pullback(full))

            _check(f_vjp, xs + cts, order - 1, modes, tols, eps, f"vjp({name})")
