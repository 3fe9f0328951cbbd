"""Derivative transforms built on ``jvp``, ``vjp`` and ``vmap``: ``grad``,
``value_and_grad``, ``jacfwd``, ``jacrev``, ``hessian``, ``linearize``."""

from __future__ import annotations

import functools
from typing import Callable, Sequence

from fnarray.core import tree as tree_util
from fnarray.transforms.jvp import jvp
from fnarray.transforms.reverse import vjp
from fnarray.transforms.vmap import vmap
from fnarray.core.shapes import is_inexact


def _argnums_tuple(argnums) -> tuple[tuple, bool]:
    if isinstance(argnums, int):
        return (argnums,), True
    return tuple(argnums), False


def _split_args(args, argnums, fname):
    for i in argnums:
        if not -len(args) <= i < len(args):
            raise TypeError(f"{fname}: argnums {i} is out of range for {len(args)} positional "
                            f"argument(s)")
    argnums = tuple(i % len(args) for i in argnums)

    def with_diff(diff):
        full = list(args)
        for i, d in zip(argnums, diff):
            full[i] = d
        return full

    return [args[i] for i in argnums], with_diff


def _check_float_inputs(diff_args, fname, holomorphic=False, complex_ok=True):
    """Inputs to differentiate: floating point; complex only with ``holomorphic=True`` (which
    requires it) or in reverse mode (``complex_ok``), as in JAX."""
    from fnarray import api as fa
    for leaf in tree_util.leaves(diff_args):
        a = fa.asarray(leaf)
        if not is_inexact(a.dtype):
            raise TypeError(
                f"{fname} requires floating-point inputs, but got an input of dtype {a.dtype} "
                f"(shape {a.shape}). Convert it with x.astype(fa.float32), or exclude it with "
                f"argnums")
        if holomorphic and a.dtype.kind != "c":
            raise TypeError(f"{fname} with holomorphic=True requires inputs with complex "
                            f"dtype, but got {a.dtype} (shape {a.shape}); convert it with "
                            f"x.astype(fa.complex64)")
        if not holomorphic and not complex_ok and a.dtype.kind == "c":
            raise TypeError(
                f"{fname} requires real-valued inputs, but got {a.dtype} (shape {a.shape}). "
                f"For holomorphic differentiation, pass holomorphic=True; for non-holomorphic "
                f"functions of complex inputs use fa.jvp directly or {_OTHER_MODE[fname]}")


_OTHER_MODE = {"jacfwd": "fa.jacrev", "jacrev": "fa.jacfwd", "grad": "fa.jacfwd"}


def _check_output_dtype(out_leaves, fname, holomorphic):
    """Outputs: real unless ``holomorphic=True``, which requires complex (as in JAX)."""
    for o in out_leaves:
        kind = o.dtype.kind
        if holomorphic and kind != "c":
            raise TypeError(f"{fname} with holomorphic=True requires outputs with complex "
                            f"dtype, but got {o.dtype} (shape {o.shape})")
        if not holomorphic and kind == "c" and fname != "jacfwd":
            raise TypeError(
                f"{fname} requires real-valued outputs, but got {o.dtype} (shape {o.shape}). "
                f"For holomorphic differentiation, pass holomorphic=True. For differentiation "
                f"of non-holomorphic functions with complex outputs, use fa.vjp directly (or "
                f"differentiate fa.real(f) and fa.imag(f) separately)")


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
                   holomorphic: bool = False):
    """``(fun(*args), ∇fun(*args))`` for a scalar-output ``fun``.

    Complex numbers follow JAX: for a real-valued ``fun`` of complex ``z = x + iy`` the
    result is ``∂f/∂x - i ∂f/∂y`` (the conjugate of the steepest-ascent direction); with
    ``holomorphic=True`` (complex inputs and output) it is the complex derivative ``f'(z)``.
    """
    nums, single = _argnums_tuple(argnums)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        from fnarray import api as fa
        diff, with_diff = _split_args(args, nums, "grad")
        _check_float_inputs(diff, "grad", holomorphic)
        res = vjp(lambda *d: fun(*with_diff(d), **kwargs), *diff, has_aux=has_aux)
        out, pullback = res[0], res[1]
        if not (hasattr(out, "shape") and out.shape == ()):
            shape = getattr(out, "shape", type(out).__name__)
            raise TypeError(
                f"grad requires a function with a scalar (shape ()) output, but it returned "
                f"shape {shape}. For vector outputs use fa.vjp (a vector-Jacobian product) "
                f"or fa.jacrev / fa.jacfwd (the full Jacobian); or reduce the output, e.g. "
                f"with .sum()")
        if not is_inexact(out.dtype):
            raise TypeError(f"grad requires a floating-point output, got {out.dtype}")
        _check_output_dtype([out], "grad", holomorphic)
        g = pullback(tree_util.map(lambda o: fa.ones((), dtype=o.dtype), out))  # out may be a
        # one-leaf pytree such as a compat Tensor
        g = g[0] if single else tuple(g)
        return ((out, res[2]), g) if has_aux else (out, g)

    return wrapped


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
         holomorphic: bool = False):
    """The gradient of a scalar-output ``fun`` with respect to ``argnums`` (complex
    numbers: see ``value_and_grad``)."""
    vg = value_and_grad(fun, argnums, has_aux, holomorphic)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        (out, g) = vg(*args, **kwargs)
        return (g, out[1]) if has_aux else g

    return wrapped


def _std_basis(flat):
    """Identity basis over the flattened inputs: one tangent tuple per input element."""
    from fnarray import api as fa
    total = sum(x.size for x in flat)
    dtype = flat[0].dtype if flat else fa.float32
    eye = fa.eye(total, dtype=dtype)
    out, start = [], 0
    for x in flat:
        out.append(fa.reshape(eye[:, start:start + x.size], (total,) + x.shape).astype(x.dtype))
        start += x.size
    return out, total


def _flat_diff_args(args, nums, fname, holomorphic):
    """The differentiated arguments as flat float arrays, their structure, and a function
    rebuilding the full argument list from them."""
    from fnarray import api as fa
    diff, with_diff = _split_args(args, nums, fname)
    diff = tree_util.map(fa.asarray, diff)
    _check_float_inputs(diff, fname, holomorphic, complex_ok=fname == "jacrev")
    flat, in_tree = tree_util.flatten(tuple(diff))
    return flat, in_tree, with_diff


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False):
    """Jacobian by forward mode: one batched JVP over the input basis (``vmap`` of ``jvp``).

    Inputs must be real unless ``holomorphic=True`` (complex inputs and outputs: the
    Jacobian of complex derivatives), as in JAX."""
    nums, single = _argnums_tuple(argnums)

    def jacfun(*args):
        from fnarray import api as fa
        flat, in_tree, with_diff = _flat_diff_args(args, nums, "jacfwd", holomorphic)
        basis, total = _std_basis(flat)

        def f_flat(*leaves):
            return fun(*with_diff(tree_util.unflatten(in_tree, leaves)))

        def push(*tangents):
            res = jvp(f_flat, tuple(flat), tuple(tangents), has_aux=has_aux)
            return (res[1], res[2]) if has_aux else res[1]

        # each Jacobian leaf: (total,) + out.shape; aux depends on no tangent, so it comes
        # out of the one traced call unbatched (f runs once, as in JAX)
        jac = vmap(push, out_axes=(0, None) if has_aux else 0)(*basis)
        jac, aux = jac if has_aux else (jac, None)
        if holomorphic:
            _check_output_dtype([fa.asarray(j) for j in tree_util.leaves(jac)], "jacfwd", True)
        res = tree_util.map(lambda j: _split_jac(j, flat, in_tree, single), jac)
        return (res, aux) if has_aux else res

    return jacfun


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False):
    """Jacobian by reverse mode: one batched VJP over the output basis (``vmap`` of the
    pullback).  Outputs must be real unless ``holomorphic=True``, as in JAX."""
    nums, single = _argnums_tuple(argnums)

    def jacfun(*args):
        from fnarray import api as fa
        flat, in_tree, with_diff = _flat_diff_args(args, nums, "jacrev", holomorphic)
        res = vjp(lambda *leaves: fun(*with_diff(tree_util.unflatten(in_tree, leaves))), *flat,
                  has_aux=has_aux)
        out, pullback = res[0], res[1]
        o_flat, o_tree = tree_util.flatten(out)
        _check_output_dtype([fa.asarray(o) for o in o_flat], "jacrev", holomorphic)
        basis, total = _std_basis([fa.asarray(o) for o in o_flat])
        grads = vmap(lambda *cts: pullback(tree_util.unflatten(o_tree, cts)))(*basis)
        # grads: tuple over inputs, each (total_out,) + in.shape
        per_out, start = [], 0
        for o in o_flat:
            o = fa.asarray(o)
            block = [fa.reshape(g[start:start + o.size], o.shape + g.shape[1:]) for g in grads]
            start += o.size
            per_in = tree_util.unflatten(in_tree, block)
            per_out.append(per_in[0] if single else per_in)
        jac = tree_util.unflatten(o_tree, per_out)
        return (jac, res[2]) if has_aux else jac

    return jacfun


def _split_jac(j, flat, in_tree, single):
    """Cut a forward-mode Jacobian ``(total_in,) + out.shape`` into per-input blocks
    shaped ``out.shape + in.shape``."""
    from fnarray import api as fa
    blocks, start = [], 0
    out_nd = j.ndim - 1
    for x in flat:
        blk = j[start:start + x.size]
        blk = fa.reshape(blk, x.shape + j.shape[1:])
        blk = fa.moveaxis(blk, tuple(range(x.ndim)), tuple(range(out_nd, out_nd + x.ndim))) if x.ndim else blk
        blocks.append(blk)
        start += x.size
    per_in = tree_util.unflatten(in_tree, blocks)
    return per_in[0] if single else per_in


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
            holomorphic: bool = False):
    """Second derivatives: ``jacfwd(jacrev(fun))``."""
    return jacfwd(jacrev(fun, argnums, has_aux, holomorphic), argnums, has_aux, holomorphic)


def linearize(fun: Callable, *primals, has_aux: bool = False):
    """``(fun(*primals), f_jvp)``; ``f_jvp(*tangents)`` reuses the recorded linearization.
    With ``has_aux=True`` ``fun`` returns ``(output, aux)`` and the result is
    ``(out, f_jvp, aux)`` (as JAX).

    The forward pass runs once, recording its residuals in a reverse-mode tape; ``f_jvp``
    applies ``J`` by transposing that tape's (linear) pullback — no re-evaluation of ``fun``.
    """
    from fnarray import api as fa
    res = vjp(fun, *primals, has_aux=has_aux)
    out, pullback = res[0], res[1]
    out_zero = tree_util.map(fa.zeros_like, out)

    def f_jvp(*tangents):
        if len(tangents) != len(primals):
            raise TypeError(f"linearize: f_jvp expects {len(primals)} tangent(s), got {len(tangents)}")
        _, transpose = vjp(lambda ct: pullback(ct), out_zero)
        return transpose(tuple(tangents))[0]

    return (out, f_jvp, res[2]) if has_aux else (out, f_jvp)
