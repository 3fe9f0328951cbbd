"""``stop_gradient``, ``custom_jvp`` and ``custom_vjp``.

A custom rule is applied through a primitive (``custom_jvp_call`` / ``custom_vjp_call``)
whose parameters carry the user's functions, so every transformation handles it through
the ordinary rule slots:

* the JVP of ``custom_jvp`` calls the user rule; its VJP is the transpose of that rule,
  obtained by reverse-differentiating the rule in its (linear) tangent argument;
* the VJP of ``custom_vjp`` calls the user's ``bwd``; its JVP is obtained the same way in
  the other direction (``bwd`` is linear in the cotangent);
* batching vmaps the function and the rules.

What the user's rules return is checked (``rule_checks``): a ``bwd`` returns a tuple with one
cotangent per differentiable argument, shaped and typed like it, ``None`` standing for a
zero cotangent of that argument (or subtree); a JVP rule returns ``(out, tangent_out)`` with
matching structure, shapes and dtypes.  A mismatch is an error naming the rule, never a
silently shifted or broadcast derivative.  The flat functions carried by the primitives'
parameters return lists with ``None`` for zero cotangents.
"""

from __future__ import annotations

import functools

from fnarray.core import tree as tree_util
from fnarray.core.primitive import declare
from fnarray.core.trace import Tracer
from fnarray.ops import sorting
from fnarray.transforms import rule_checks
from fnarray.core.shapes import is_inexact


def is_tracer(x) -> bool:
    """Tracers are leaves when a call primitive flattens its arguments, even those of a type
    registered as a pytree node (a compat ``Tensor`` flattens to its value elsewhere): the call
    must reach the trace that records it, not a detached copy of its value."""
    return isinstance(x, Tracer)


def stop_gradient(x):
    """The identity, with a zero derivative in every transformation."""
    from fnarray.api._convert import as_operand
    return tree_util.map(lambda a: sorting.stop_gradient.bind(as_operand(a)), x)


def _transpose_linear(linear_fn, in_examples, cts):
    """Given a function linear in its arguments, apply its transpose to ``cts``."""
    from fnarray.transforms.reverse import vjp_flat
    from fnarray import api as fa
    zeros = [fa.zeros_like(e) for e in in_examples]
    _, pullback = vjp_flat(linear_fn, zeros)
    return pullback(list(cts))


def _call_abstract(*avals, fun, **_):
    from fnarray.transforms.ir import call_abstract
    return call_abstract(*avals, fun=fun)


# --- custom_jvp ------------------------------------------------------------------------------

def call_impl(xp, *buffers, fun, **_):
    """Kernel of a call primitive: run the Python function on the buffers as Arrays."""
    from fnarray.core.array import Array
    from fnarray.core.device import device_of_buffer
    outs = fun(*[Array(b, device_of_buffer(b)) for b in buffers])
    return [o._value for o in outs]


def _cj_jvp(primals, tangents, *, fun, jvp, out_tree):
    from fnarray import api as fa
    ts = [fa.zeros_like(p) if t is None else t for p, t in zip(primals, tangents)]
    out, t_out = jvp(list(primals), ts)
    return out, t_out


def _cj_vjp(cts, *primals, out, fun, jvp, out_tree):
    cts = list(cts)
    tangent_map = lambda *ts: jvp(list(primals), list(ts))[1]  # noqa: E731
    grads = _transpose_linear(tangent_map, primals, cts)
    return tuple(g if is_inexact(p.dtype) else None for g, p in zip(grads, primals))


def _cj_batch(vals, dims, *, fun, jvp, out_tree):
    from fnarray.transforms.vmap import vmap_flat
    size = next(v.shape[d] for v, d in zip(vals, dims) if d is not None)
    bfun = lambda *a: vmap_flat(fun, list(a), list(dims), size)  # noqa: E731

    def bjvp(ps, ts):
        n = len(ps)
        res = vmap_flat(lambda *a: _pair(jvp(list(a[:n]), list(a[n:]))),
                        list(ps) + list(ts), list(dims) + list(dims), size)
        return res[:len(res) // 2], res[len(res) // 2:]

    outs = custom_jvp_call.bind(*vals, fun=bfun, jvp=bjvp, out_tree=out_tree)
    return outs, [0] * len(outs)


def _pair(res):
    out, t = res
    return list(out) + list(t)


custom_jvp_call = declare("custom_jvp_call", impl=call_impl, abstract=_call_abstract, jvp=_cj_jvp,
                          vjp=_cj_vjp, batch=_cj_batch, multiple_results=True,
                          widen_bfloat16=False)


class _CustomRule:
    """What ``custom_jvp`` and ``custom_vjp`` share: the wrapped function, its
    non-differentiable (static) arguments, and flattening of the differentiable ones."""

    def __init__(self, fun, nondiff_argnums: tuple = ()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)

    def _prepare(self, args):
        """``(leaves, in_tree, rebuild, static_args, flat_fun, out_trees)`` for one call."""
        from fnarray import api as fa
        static = {i: args[i] for i in self.nondiff_argnums}
        dyn = [a for i, a in enumerate(args) if i not in static]
        leaves, in_tree = tree_util.flatten(tuple(dyn), is_leaf=is_tracer)
        leaves = [fa.asarray(x) for x in leaves]
        out_trees: list = []

        def rebuild(flat):
            """All positional arguments, with ``flat`` as the differentiable leaves."""
            it = iter(tree_util.unflatten(in_tree, flat))
            return [static[i] if i in static else next(it) for i in range(len(args))]

        def flat_fun(*xs):
            o, t = tree_util.flatten(self.fun(*rebuild(xs)))
            out_trees.append(t)
            return [fa.asarray(v) for v in o]

        static_args = [args[i] for i in self.nondiff_argnums]
        return leaves, in_tree, rebuild, static_args, flat_fun, out_trees


class custom_jvp(_CustomRule):  # noqa: N801 - JAX's name
    """A function with a user-defined JVP rule: ``@custom_jvp`` then ``f.defjvp(rule)``
    where ``rule(primals, tangents) -> (primal_out, tangent_out)``."""

    def __init__(self, fun, nondiff_argnums: tuple = ()):
        super().__init__(fun, nondiff_argnums)
        self.jvp_rule = None

    def defjvp(self, rule):
        self.jvp_rule = rule
        return rule

    def __call__(self, *args):
        from fnarray import api as fa
        if self.jvp_rule is None:
            raise AttributeError(f"custom_jvp {self.fun.__name__}: no JVP rule; call .defjvp first")
        leaves, _, rebuild, static_args, flat_fun, out_trees = self._prepare(args)
        static = set(self.nondiff_argnums)

        def flat_jvp(ps, ts):
            dyn_p = tuple(a for i, a in enumerate(rebuild(ps)) if i not in static)
            dyn_t = tuple(a for i, a in enumerate(rebuild(ts)) if i not in static)
            out, t_out = rule_checks.unpack_pair(
                "custom_jvp", self.fun, "JVP", self.jvp_rule,
                self.jvp_rule(*static_args, dyn_p, dyn_t), "primal_out, tangent_out")
            o_leaves, o_tree = tree_util.flatten(out)
            out_trees.append(o_tree)
            return ([fa.asarray(v) for v in o_leaves],
                    rule_checks.check_tangents(self.fun, self.jvp_rule, out, t_out))

        outs = custom_jvp_call.bind(*leaves, fun=flat_fun, jvp=flat_jvp, out_tree=None)
        return tree_util.unflatten(out_trees[-1], outs)


# --- custom_vjp ------------------------------------------------------------------------------

def _cv_jvp(primals, tangents, *, fun, fwd, bwd):
    from fnarray import api as fa
    outs, res = fwd(*primals)
    ts = [fa.zeros_like(p) if t is None else t for p, t in zip(primals, tangents)]
    # bwd is linear in the cotangent; its transpose applied to the tangents is J t.
    t_out = _transpose_linear(lambda *c: list(bwd(res, list(c))), outs, ts)
    return outs, t_out


def _cv_vjp(cts, *primals, out, fun, fwd, bwd):
    _, res = fwd(*primals)
    grads = bwd(res, list(cts))
    return tuple(g if is_inexact(p.dtype) else None for g, p in zip(grads, primals))


def _cv_batch(vals, dims, *, fun, fwd, bwd):
    from fnarray.transforms.vmap import vmap
    size = next(v.shape[d] for v, d in zip(vals, dims) if d is not None)
    from fnarray.ops._util import bdim_to_front
    vals = [bdim_to_front(v, d, size) for v, d in zip(vals, dims)]
    bfun = vmap(lambda *a: fun(*a))
    bfwd = vmap(lambda *a: fwd(*a))
    bbwd = vmap(lambda r, c: bwd(r, c))
    outs = custom_vjp_call.bind(*vals, fun=bfun, fwd=bfwd, bwd=bbwd)
    return outs, [0] * len(outs)


custom_vjp_call = declare("custom_vjp_call", impl=call_impl, abstract=_call_abstract, jvp=_cv_jvp,
                          vjp=_cv_vjp, batch=_cv_batch, multiple_results=True,
                          widen_bfloat16=False)


class custom_vjp(_CustomRule):  # noqa: N801 - JAX's name
    """A function with a user-defined VJP: ``f.defvjp(fwd, bwd)`` where
    ``fwd(*args) -> (out, residuals)`` and ``bwd(residuals, ct) -> tuple of cts``."""

    def __init__(self, fun, nondiff_argnums: tuple = ()):
        super().__init__(fun, nondiff_argnums)
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        from fnarray import api as fa
        if self.fwd is None:
            raise AttributeError(f"custom_vjp {self.fun.__name__}: no rule; call .defvjp first")
        leaves, in_tree, rebuild, static_args, flat_fun, out_trees = self._prepare(args)

        def flat_fwd(*xs):
            out, res = rule_checks.unpack_pair("custom_vjp", self.fun, "fwd", self.fwd,
                                               self.fwd(*rebuild(xs)), "output, residuals")
            o, t = tree_util.flatten(out)
            out_trees.append(t)
            return [fa.asarray(v) for v in o], res

        def flat_bwd(res, cts):
            grads = self.bwd(*static_args, res, tree_util.unflatten(out_trees[-1], cts))
            return rule_checks.match_cotangents(self.fun, self.bwd, grads, in_tree, leaves)

        outs = custom_vjp_call.bind(*leaves, fun=flat_fun, fwd=flat_fwd, bwd=flat_bwd)
        return tree_util.unflatten(out_trees[-1], outs)
