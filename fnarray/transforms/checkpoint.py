"""``checkpoint`` (rematerialisation): keep only what a policy allows from a function's
forward pass and recompute the rest when the cotangents arrive.

``checkpoint(f)`` traces ``f`` once per call into a closed ``Program`` (closure conversion:
values of enclosing transformations that ``f`` reads become extra operands) and applies it
through the call primitive ``checkpoint_call``.  When reverse mode records it, the
primitive's ``fwd`` rule also returns the *residuals*: the outputs of the equations the
``policy`` marks saveable (none by default), computed by the same call of the program.  The
tape therefore stores the call's inputs, outputs and residuals, never the other
intermediates; the VJP rule re-evaluates the program under ``vjp`` on the stored inputs,
putting each saved equation on the tape with its stored value instead of recomputing it.

The recomputation reads its inputs through ``optimization_barrier``, an identity primitive
that no pass can see through, so under ``jit`` common-subexpression elimination cannot merge
the recomputed equations back into the forward pass (which would keep every intermediate
alive until the backward pass and save nothing).

A policy is a callable ``policy(prim, *in_avals, **params) -> bool`` (JAX's convention);
``checkpoint_policies`` has the usual ones.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Callable, Sequence

from fnarray.core import tree as tree_util
from fnarray.core.primitive import declare
from fnarray.transforms.custom import is_tracer
from fnarray.transforms.ir import Program, eval_program
from fnarray.core.shapes import is_inexact


# --- optimization_barrier ------------------------------------------------------------------

def _barrier_jvp(primals, tangents):
    return list(optimization_barrier.bind(*primals)), list(tangents)


def _barrier_vjp(cts, *primals, out):
    return tuple(cts)


# The identity on any number of operands, opaque to every optimisation pass: equations
# reading its outputs are never merged (CSE) with equations reading its inputs.
# ``checkpoint`` routes its recomputations through it (JAX: ``lax.optimization_barrier``).
optimization_barrier = declare(
    "optimization_barrier",
    impl=lambda xp, *xs: list(xs),
    abstract=lambda *avals: list(avals),
    jvp=_barrier_jvp, vjp=_barrier_vjp,
    batch=lambda vals, dims: (optimization_barrier.bind(*vals), list(dims)),
    multiple_results=True)


# --- checkpoint_name -------------------------------------------------------------------------

checkpoint_name_p = declare(
    "checkpoint_name",
    impl=lambda xp, x, *, name: x,
    abstract=lambda a, *, name: a,
    jvp=lambda primals, tangents, *, name: (checkpoint_name_p.bind(primals[0], name=name),
                                             tangents[0]),
    vjp=lambda ct, x, *, out, name: (ct,),
    batch=lambda vals, dims, *, name: (checkpoint_name_p.bind(vals[0], name=name), dims[0]))


def checkpoint_name(x, name: str):
    """``x`` unchanged, tagged ``name`` for the ``save_only_these_names`` /
    ``save_any_names_but_these`` policies (JAX's ``ad_checkpoint.checkpoint_name``)."""
    from fnarray.api._convert import as_operand
    return tree_util.map(lambda a: checkpoint_name_p.bind(as_operand(a), name=name), x)


# --- policies ------------------------------------------------------------------------------

def _is_dot(prim) -> bool:
    return prim.name in ("dot_general", "conv")


def everything_saveable(prim, *avals, **params) -> bool:
    """Save every intermediate: nothing is recomputed (checkpoint becomes a no-op)."""
    return True


def nothing_saveable(prim, *avals, **params) -> bool:
    """Save nothing: every intermediate is recomputed (the default)."""
    return False


def dots_saveable(prim, *avals, **params) -> bool:
    """Save the results of matrix products and convolutions; recompute the cheap rest."""
    return _is_dot(prim)


def dots_with_no_batch_dims_saveable(prim, *avals, **params) -> bool:
    """Like ``dots_saveable``, but only products without batch dimensions."""
    if prim.name == "dot_general":
        return not params["batch"][0]
    return prim.name == "conv"


def save_only_these_names(*names: str) -> Callable:
    """Save only the values tagged with one of ``names`` by ``checkpoint_name``."""
    def policy(prim, *avals, **params):
        return prim is checkpoint_name_p and params["name"] in names
    return policy


def save_any_names_but_these(*names: str) -> Callable:
    """Save every value tagged by ``checkpoint_name`` except those tagged with ``names``."""
    def policy(prim, *avals, **params):
        return prim is checkpoint_name_p and params["name"] not in names
    return policy


def save_from_both_policies(first: Callable, second: Callable) -> Callable:
    """Save what either policy saves."""
    def policy(prim, *avals, **params):
        return first(prim, *avals, **params) or second(prim, *avals, **params)
    return policy


checkpoint_policies = SimpleNamespace(
    everything_saveable=everything_saveable, nothing_saveable=nothing_saveable,
    dots_saveable=dots_saveable, checkpoint_dots=dots_saveable,
    dots_with_no_batch_dims_saveable=dots_with_no_batch_dims_saveable,
    checkpoint_dots_with_no_batch_dims=dots_with_no_batch_dims_saveable,
    save_only_these_names=save_only_these_names,
    save_any_names_but_these=save_any_names_but_these,
    save_from_both_policies=save_from_both_policies)


# --- checkpoint_call -----------------------------------------------------------------------

def _with_residuals(program: Program, policy) -> Program:
    """``program`` with the outputs of its saveable equations appended (cached)."""
    if policy is None:
        return program
    cache = program.__dict__.setdefault("_remat", {})
    full = cache.get(policy)
    if full is None:
        saved = [v for e in program.eqns
                 if policy(e.prim, *[x.aval for x in e.invars], **e.params) for v in e.outvars]
        full = Program(program.invars, program.constvars, program.consts, program.eqns,
                       program.outvars + saved)
        cache[policy] = full
    return full


def _impl(xp, *bufs, program, policy, prevent_cse, residuals=None):
    """Run the program: compiled once it has run before (a program held by a jitted
    caller), equation by equation on its first run (an eager call traces a fresh one)."""
    from fnarray.core.array import Array
    from fnarray.core.device import device_of_buffer
    from fnarray.transforms.subprogram import runner
    if program.__dict__.setdefault("_runs", 0):
        return runner(program, xp)(*bufs)
    program._runs = 1
    return [o._value for o in eval_program(program, [Array(b, device_of_buffer(b)) for b in bufs])]


def _abstract(*avals, program, policy, prevent_cse, residuals=None):
    return [v.aval for v in program.outvars]


def _fwd(*primals, program, policy, prevent_cse):
    """Reverse mode's forward: the outputs, and the values the policy saves (computed by
    one call of the program extended with them, which saves nothing itself)."""
    full = _with_residuals(program, policy)
    if full is program:
        return checkpoint_call.bind(*primals, program=program, policy=None,
                                    prevent_cse=prevent_cse), []
    outs = checkpoint_call.bind(*primals, program=full, policy=None, prevent_cse=prevent_cse)
    n_out = len(program.outvars)
    return list(outs[:n_out]), list(outs[n_out:])


def _jvp(primals, tangents, *, program, policy, prevent_cse, residuals=None):
    from fnarray import api as fa
    from fnarray.transforms.jvp import jvp_flat
    ts = [fa.zeros_like(p) if t is None else t for p, t in zip(primals, tangents)]
    return jvp_flat(functools.partial(_evaluate, program), list(primals), ts)


def _evaluate(program, *args):
    return eval_program(program, list(args))


def _vjp(cts, *primals, out, program, policy, prevent_cse, residuals=None):
    """Re-evaluate the program under ``vjp`` on the (barriered) inputs; the values the
    forward pass saved (``residuals``, from ``_fwd``) are replayed, not recomputed.  Recorded
    without residuals (e.g. replayed inside another checkpoint), everything is recomputed."""
    from fnarray.transforms.reverse import vjp_flat
    saved = {}
    if residuals:
        extra = _with_residuals(program, policy).outvars[len(program.outvars):]
        saved = {id(v): r for v, r in zip(extra, residuals)}
    ins = list(optimization_barrier.bind(*primals)) if prevent_cse and primals else list(primals)
    _, pullback = vjp_flat(functools.partial(_replay, program, saved), ins)
    grads = pullback(list(cts))
    return tuple(g if is_inexact(p.dtype) else None for g, p in zip(grads, primals))


def _replay(program: Program, saved: dict, *args):
    """Evaluate ``program`` on reverse-mode tracers, recomputing every equation except the
    saved ones (and the producers of values a saved ``checkpoint_name`` tags), which go on
    the tape with their stored values.  (Derivatives through the saved values themselves,
    for higher orders, flow through the forward call that produced them.)"""
    from fnarray.transforms.reverse import record
    main = args[0]._trace.main  # vjp_flat's trace (every argument is one of its tracers)
    known = dict(saved)
    for e in program.eqns:  # a saved name tag also gives the value it tags
        if e.prim is checkpoint_name_p and id(e.outvars[0]) in saved:
            known[id(e.invars[0])] = saved[id(e.outvars[0])]
    env = {id(v): c for v, c in zip(program.constvars, program.consts)}
    env.update({id(v): a for v, a in zip(program.invars, args)})
    for e in program.eqns:
        ins = [env[id(v)] for v in e.invars]
        if all(id(v) in known for v in e.outvars):
            outs = [known[id(v)] for v in e.outvars]
            taped = record(main, e.prim, ins, e.params,
                           tuple(outs) if e.prim.multiple_results else outs[0])
            outs = list(taped) if e.prim.multiple_results else [taped]
        else:
            res = e.prim.bind(*ins, **e.params)
            outs = list(res) if e.prim.multiple_results else [res]
        env.update({id(v): o for v, o in zip(e.outvars, outs)})
    return [env[id(v)] for v in program.outvars]


def _batch(vals, dims, *, program, policy, prevent_cse, residuals=None):
    """A checkpoint (same policy) of the vmapped program."""
    from fnarray.transforms.subprogram import trace_avals
    size = next(v.shape[d] for v, d in zip(vals, dims) if d is not None)
    fun = functools.partial(_vmapped, program, tuple(dims), size)
    batched = trace_avals(fun, [v.aval for v in vals], "checkpoint")
    outs = checkpoint_call.bind(*vals, program=batched, policy=policy, prevent_cse=prevent_cse)
    return outs, [0] * len(outs)


def _vmapped(program, dims, size, *args):
    from fnarray.transforms.vmap import vmap_flat
    return vmap_flat(functools.partial(_evaluate, program), list(args), list(dims), size)


checkpoint_call = declare("checkpoint_call", impl=_impl, abstract=_abstract, jvp=_jvp,
                          vjp=_vjp, batch=_batch, multiple_results=True, fwd=_fwd,
                          widen_bfloat16=False)


# --- the user-facing transformation --------------------------------------------------------

def checkpoint(fun: Callable | None = None, *, prevent_cse: bool = True,
               policy: Callable | None = None,
               static_argnums: int | Sequence[int] = ()) -> Callable:
    """``fun`` whose intermediates are recomputed in the backward pass instead of stored.

    As ``jax.checkpoint``: ``policy(prim, *avals, **params)`` says which intermediates may
    be saved (see ``checkpoint_policies``; default: none), ``static_argnums`` are passed
    to ``fun`` as Python values (use them for values that steer Python control flow:
    ``fun`` is traced on abstract values), keyword arguments are traced like positional
    ones, and ``prevent_cse=False`` drops the barrier that keeps ``jit`` from merging the
    recomputation into the forward pass.  Usable as ``@checkpoint`` or
    ``@partial(checkpoint, policy=...)``."""
    if fun is None:
        return functools.partial(checkpoint, prevent_cse=prevent_cse, policy=policy,
                                 static_argnums=static_argnums)
    statics = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        from fnarray import api as fa
        from fnarray.transforms.subprogram import trace_closed
        n = len(args)
        static = {i % n: args[i] for i in statics if -n <= i < n}
        dyn = [a for i, a in enumerate(args) if i not in static]
        leaves, in_tree = tree_util.flatten((dyn, kwargs), is_leaf=is_tracer)
        leaves = [fa.asarray(x) for x in leaves]
        out_trees: list = []

        def flat_fun(*xs):
            d_args, d_kwargs = tree_util.unflatten(in_tree, xs)
            it = iter(d_args)
            full = [static[i] if i in static else next(it) for i in range(n)]
            out = fun(*full, **d_kwargs)
            o, t = tree_util.flatten(out)
            out_trees.append(t)
            return [fa.asarray(v) for v in o]

        device = leaves[0].device if leaves else None
        if device is None:
            from fnarray.core.device import default
            device = default()
        program, captured = trace_closed(flat_fun, [x.aval for x in leaves], device,
                                         "checkpoint")
        if captured or leaves:
            outs = checkpoint_call.bind(*captured, *leaves, program=program, policy=policy,
                                        prevent_cse=prevent_cse)
        else:  # no operand: nothing to differentiate or batch, just constants to compute
            outs = eval_program(program, [])
        return tree_util.unflatten(out_trees[-1], list(outs))

    return wrapped


remat = checkpoint
