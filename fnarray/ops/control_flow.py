"""``cond`` (also ``switch``) and ``while_loop`` as primitives with sub-program parameters.

``cond``: operands ``(index, *operands)``; ``branches`` is a tuple of closed programs with
the same input and output types.  The kernel runs only the branch ``index`` selects
(clamped into range, as ``fa.switch`` promises).  JVP and VJP are a ``cond`` over the
branches' JVPs / VJPs, so only the taken branch is differentiated.  Batching with an
unbatched index batches every branch (outputs no branch batches stay unbatched); with a
batched index it evaluates every branch and selects per example.

``while``: operands ``cond_consts + body_consts + carry``; ``cond_prog`` maps
``(cond_consts, carry)`` to a boolean scalar, ``body_prog`` maps ``(body_consts, carry)``
to the next carry.  Its JVP is a loop over (carry, tangent) pairs; reverse mode is refused
(the trip count is unknown until the loop ends, so there is nowhere to store residuals) and
the error names ``fa.fori_loop``/``fa.scan``.  Batching keeps carries that do not vary
across the batch unbatched; when the predicate then varies, the loop runs until every
example's predicate is false, freezing the carries of the finished examples.
"""

from __future__ import annotations

from fnarray.core.primitive import declare
from fnarray.ops.scan import _fill, _pick, _unpick
from fnarray.transforms import subprogram as sp


# --- cond ------------------------------------------------------------------------------------

def _cond_impl(xp, index, *ops, branches):
    i = min(max(int(index), 0), len(branches) - 1)
    return [xp.asarray(o) for o in sp.runner(branches[i], xp)(*ops)]


def _cond_abstract(index, *avals, branches):
    return sp.out_avals(branches[0])


def _cond_jvp(primals, tangents, *, branches):
    from fnarray.transforms.jvp import jvp_flat
    index, ops = primals[0], list(primals[1:])
    nz = [t is not None and sp.is_float(p.aval) for p, t in zip(ops, tangents[1:])]
    in_av = sp.in_avals(branches[0])
    # an output has a tangent if it does in any branch
    f_out = [any(col) for col in zip(*[sp.nonzero_tangents(b, nz) for b in branches])]
    n = len(ops)

    def jvp_of(prog):
        def f(*args):
            o, o_t = jvp_flat(lambda *a: sp.call(prog, a), list(args[:n]), _unpick(args[n:], nz))
            return list(o) + _pick(o_t, f_out)
        return sp.trace_avals(f, in_av + _pick(in_av, nz), "cond_jvp")

    outs = cond_p.bind(index, *ops, *_pick(tangents[1:], nz),
                       branches=tuple(jvp_of(b) for b in branches))
    k = len(f_out)
    return list(outs[:k]), _unpick(outs[k:], f_out)


def _cond_vjp(cts, index, *ops, out, branches):
    from fnarray.transforms.reverse import vjp_flat
    in_av, out_av = sp.in_avals(branches[0]), sp.out_avals(branches[0])
    f_in = [sp.is_float(a) for a in in_av]
    f_out = [sp.is_float(a) for a in out_av]
    n = len(ops)

    def vjp_of(prog):
        def f(*args):
            _, pullback = vjp_flat(lambda *a: sp.call(prog, a), list(args[:n]))
            return _pick(pullback(_fill(args[n:], f_out, out_av)), f_in)
        return sp.trace_avals(f, in_av + _pick(out_av, f_out), "cond_transpose")

    grads = cond_p.bind(index, *ops, *_pick(cts, f_out),
                        branches=tuple(vjp_of(b) for b in branches))
    return (None, *_unpick(grads, f_in))


def _cond_batch(vals, dims, *, branches):
    from fnarray import api as fa
    from fnarray.ops._util import batch_size, move_bdim
    from fnarray.transforms.vmap import vmap_flat
    size = batch_size(vals, dims)
    index, ops, op_dims = vals[0], list(vals[1:]), list(dims[1:])
    if dims[0] is None:  # one branch for the whole batch
        ops = [o if d is None else move_bdim(o, d, 0) for o, d in zip(ops, op_dims)]
        in_b = [d is not None for d in op_dims]
        # an output is batched if it is in any branch (the branches must agree on types)
        out_b = [any(col) for col in zip(*[sp.vmap_program(b, in_b, size, "cond_batch")[1]
                                           for b in branches])]
        progs = tuple(sp.vmap_program(b, in_b, size, "cond_batch", force_out=out_b)[0]
                      for b in branches)
        return cond_p.bind(index, *ops, branches=progs), [0 if b else None for b in out_b]
    # A different branch per example: evaluate them all, then select.
    idx = fa.clip(move_bdim(index, dims[0], 0), 0, len(branches) - 1)
    results = [vmap_flat(lambda *a, b=b: sp.call(b, a), ops, op_dims, size) for b in branches]
    outs = results[-1]
    for i in range(len(branches) - 2, -1, -1):
        outs = [fa.where(_lanes(idx == i, o), r, o) for r, o in zip(results[i], outs)]
    return outs, [0] * len(outs)


def _lanes(mask, like):
    """A (batch,) mask reshaped to broadcast against ``like`` (batch axis first)."""
    from fnarray import api as fa
    return fa.reshape(mask, (mask.shape[0],) + (1,) * (like.ndim - 1))


cond_p = declare("cond", impl=_cond_impl, abstract=_cond_abstract, jvp=_cond_jvp,
                 vjp=_cond_vjp, batch=_cond_batch, multiple_results=True,
                 widen_bfloat16=False)


# --- while -----------------------------------------------------------------------------------

def _while_impl(xp, *bufs, cond_prog, body_prog, n_cc, n_bc):
    cond, body = sp.runner(cond_prog, xp), sp.runner(body_prog, xp)
    cc, bc, carry = bufs[:n_cc], bufs[n_cc:n_cc + n_bc], list(bufs[n_cc + n_bc:])
    while bool(cond(*cc, *carry)[0]):
        carry = body(*bc, *carry)
    return [xp.asarray(c) for c in carry]


def _while_abstract(*avals, cond_prog, body_prog, n_cc, n_bc):
    return sp.out_avals(body_prog)


def _while_jvp(primals, tangents, *, cond_prog, body_prog, n_cc, n_bc):
    from fnarray.transforms.jvp import jvp_flat
    cc, bc, carry = (list(primals[:n_cc]), list(primals[n_cc:n_cc + n_bc]),
                     list(primals[n_cc + n_bc:]))
    nz = [t is not None and sp.is_float(p.aval)
          for p, t in zip(bc, tangents[n_cc:n_cc + n_bc])]
    b_av = sp.in_avals(body_prog)
    bc_av, k_av = b_av[:n_bc], b_av[n_bc:]
    f_k = [t is not None and sp.is_float(p.aval)
           for p, t in zip(carry, tangents[n_cc + n_bc:])]
    while True:  # carries with a tangent: a fixed point over the body
        grown = [a or b for a, b in zip(f_k, sp.nonzero_tangents(body_prog, nz + f_k))]
        if grown == f_k:
            break
        f_k = grown
    n_bc2, n_k = n_bc + sum(nz), len(carry)

    def body(*args):
        consts, tc = args[:n_bc], _unpick(args[n_bc:n_bc2], nz)
        k, tk = args[n_bc2:n_bc2 + n_k], _unpick(args[n_bc2 + n_k:], f_k)
        o, o_t = jvp_flat(lambda *a: sp.call(body_prog, a), list(consts) + list(k), tc + tk)
        return list(o) + _pick(o_t, f_k)

    def cond(*args):
        return sp.call(cond_prog, args[:n_cc + n_k])

    new_body = sp.trace_avals(body, bc_av + _pick(bc_av, nz) + k_av + _pick(k_av, f_k),
                              "while_jvp")
    new_cond = sp.trace_avals(cond, sp.in_avals(cond_prog) + _pick(k_av, f_k), "while_jvp")
    tk0 = [(_zeros_like(p) if t is None else t)
           for p, t, m in zip(carry, tangents[n_cc + n_bc:], f_k) if m]
    outs = while_p.bind(*cc, *bc, *_pick(tangents[n_cc:n_cc + n_bc], nz), *carry, *tk0,
                        cond_prog=new_cond, body_prog=new_body, n_cc=n_cc, n_bc=n_bc2)
    return list(outs[:n_k]), _unpick(outs[n_k:], f_k)


def _zeros_like(x):
    from fnarray import api as fa
    return fa.zeros_like(x)


def _while_vjp(cts, *primals, out, cond_prog, body_prog, n_cc, n_bc):
    shapes = ", ".join(a.str_short() for a in sp.out_avals(body_prog))
    raise TypeError(
        f"while_loop: reverse-mode differentiation (grad, vjp, jacrev) of a loop with carry "
        f"({shapes}) is not supported: its trip count is only known when it ends, so there "
        f"is nowhere to store the per-iteration values. Use fa.fori_loop with concrete "
        f"bounds or fa.scan with a fixed length (both are reverse-differentiable), or "
        f"forward mode (fa.jvp, fa.jacfwd)")


def _while_batch(vals, dims, *, cond_prog, body_prog, n_cc, n_bc):
    from fnarray.ops._util import batch_size, bdim_to_front, move_bdim
    size = batch_size(vals, dims)
    front = [v if d is None else move_bdim(v, d, 0) for v, d in zip(vals, dims)]
    cc, bc, carry = front[:n_cc], front[n_cc:n_cc + n_bc], front[n_cc + n_bc:]
    cc_b, bc_b, k_b = ([d is not None for d in dims[:n_cc]],
                       [d is not None for d in dims[n_cc:n_cc + n_bc]],
                       [d is not None for d in dims[n_cc + n_bc:]])
    # Carries that vary across the batch: a fixed point over the body.
    while True:
        body_b, out_b = sp.vmap_program(body_prog, bc_b + k_b, size, "while_batch",
                                        force_out=k_b)
        grown = [a or b for a, b in zip(k_b, out_b)]
        if grown == k_b:
            break
        k_b = grown
    cond_b, pred_b = sp.vmap_program(cond_prog, cc_b + k_b, size, "while_batch")
    if not pred_b[0]:  # every example stops at the same step: one plain loop
        outs = while_p.bind(*cc, *bc, *[bdim_to_front(k, d, size) if b else k for k, d, b in
                                       zip(vals[n_cc + n_bc:], dims[n_cc + n_bc:], k_b)],
                            cond_prog=cond_b, body_prog=body_b, n_cc=n_cc, n_bc=n_bc)
        return outs, [0 if b else None for b in k_b]
    # Each example has its own trip count: run until all are done, freezing finished ones.
    carry = [bdim_to_front(k, d, size) for k, d in zip(vals[n_cc + n_bc:], dims[n_cc + n_bc:])]
    n_k = len(carry)
    body_b, _ = sp.vmap_program(body_prog, bc_b + [True] * n_k, size, "while_batch",
                                force_out=[True] * n_k)
    cond_b, _ = sp.vmap_program(cond_prog, cc_b + [True] * n_k, size, "while_batch",
                                force_out=[True])

    def any_running(*args):
        from fnarray import api as fa
        return [fa.any(sp.call(cond_b, args)[0])]

    def masked_step(*args):
        from fnarray import api as fa
        c, b, k = args[:n_cc], args[n_cc:n_cc + n_bc], args[n_cc + n_bc:]
        running = sp.call(cond_b, list(c) + list(k))[0]
        new = sp.call(body_b, list(b) + list(k))
        return [fa.where(_lanes(running, o), n, o) for n, o in zip(new, k)]

    k_av = sp.out_avals(body_b)
    cc_av = sp.in_avals(cond_b)[:n_cc]
    new_cond = sp.trace_avals(any_running, cc_av + k_av, "while_batch")
    new_body = sp.trace_avals(masked_step, cc_av + sp.in_avals(body_b)[:n_bc] + k_av,
                              "while_batch")
    outs = while_p.bind(*cc, *cc, *bc, *carry, cond_prog=new_cond, body_prog=new_body,
                        n_cc=n_cc, n_bc=n_cc + n_bc)
    return outs, [0] * n_k


while_p = declare("while", impl=_while_impl, abstract=_while_abstract, jvp=_while_jvp,
                  vjp=_while_vjp, batch=_while_batch, multiple_results=True,
                  widen_bfloat16=False)
