"""``scan``: a loop over the leading axis of its inputs, carrying a state.

Operands are ``consts + init + xs``; the parameter ``body`` is a closed program
``(consts, carry, x) -> (carry, y)`` traced once from the user's function, so a scan of any
length is one equation (the IR does not grow with the trip count).  The kernel runs the
body's compiled code once per step (``unroll`` steps per call when ``unroll > 1``: the
body repeated in one compiled program, fewer Python-level iterations) and stacks the ``y``s.

Rules transform the body and bind ``scan`` again:

* JVP — a scan of the JVP of the body (the tangents of the carries become carries);
* VJP — the body's forward-and-backward program is split once (``_Linearized``): the
  ``fwd`` rule is a scan that also stacks, per iteration, the values the backward part
  needs (the residuals) — reverse mode runs it instead of the plain scan when it records
  one, so the forward loop runs once — and the VJP is a scan in the opposite direction
  over the backward part, accumulating the cotangents of the constants in its carry.
  With ``checkpoint`` around the body, only the body's inputs are stored;
* batching — a scan of the vmapped body, with the batch axis of ``xs`` just after time.
"""

from __future__ import annotations

from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray
from fnarray.transforms import subprogram as sp


def _split(seq, n_consts, n_carry):
    seq = list(seq)
    return seq[:n_consts], seq[n_consts:n_consts + n_carry], seq[n_consts + n_carry:]


def _impl(xp, *bufs, body, n_consts, n_carry, length, reverse, unroll):
    consts, carry, xs = _split(bufs, n_consts, n_carry)
    order = range(length - 1, -1, -1) if reverse else range(length)
    k = max(min(unroll, length), 1)
    n_y = len(body.outvars) - n_carry
    steps, pos = [], 0
    if k > 1:  # ``unroll`` steps per call of the compiled code
        block = sp.runner(_unrolled(body, n_consts, n_carry, k), xp)
        while pos + k <= length:
            out = block(*consts, *carry, *[x[t, ...] for t in order[pos:pos + k] for x in xs])
            carry = out[:n_carry]
            steps += [out[n_carry + j * n_y:n_carry + (j + 1) * n_y] for j in range(k)]
            pos += k
    run = sp.runner(body, xp)
    for t in order[pos:]:
        out = run(*consts, *carry, *[x[t, ...] for x in xs])
        carry = out[:n_carry]
        steps.append(out[n_carry:])
    if reverse:
        steps.reverse()
    y_avals = sp.out_avals(body)[n_carry:]
    ys = [xp.stack([s[i] for s in steps]) if steps else xp.empty((0, *a.shape), a.dtype)
          for i, a in enumerate(y_avals)]
    return [xp.asarray(c) for c in carry] + ys


def _unrolled(body, n_consts, n_carry, k):
    """The body applied ``k`` times in one program: ``(consts, carry, x_1, ..., x_k)`` to
    ``(carry, y_1, ..., y_k)`` (steps in execution order); cached on the body."""
    cache = body.__dict__.setdefault("_unrolled", {})
    prog = cache.get(k)
    if prog is None:
        c_av, k_av, x_av = _split(sp.in_avals(body), n_consts, n_carry)
        n_x = len(x_av)

        def steps(*args):
            consts, carry, xs = _split(args, n_consts, n_carry)
            ys = []
            for j in range(k):
                out = sp.call(body, consts + carry + xs[j * n_x:(j + 1) * n_x])
                carry = out[:n_carry]
                ys += out[n_carry:]
            return carry + ys

        prog = cache[k] = sp.trace_avals(steps, c_av + k_av + x_av * k, "scan_unrolled")
    return prog


def _abstract(*avals, body, n_consts, n_carry, length, reverse, unroll):
    outs = sp.out_avals(body)
    return outs[:n_carry] + [ShapedArray((length, *a.shape), a.dtype, a.weak_type)
                             for a in outs[n_carry:]]


def _slice_aval(a: ShapedArray) -> ShapedArray:
    return ShapedArray(a.shape[1:], a.dtype, a.weak_type)


def _jvp(primals, tangents, *, body, n_consts, n_carry, length, reverse, unroll):
    from fnarray.transforms.jvp import jvp_flat
    consts, init, xs = _split(primals, n_consts, n_carry)
    tc, _, tx = _split(tangents, n_consts, n_carry)
    nz_c = [t is not None and sp.is_float(p.aval) for p, t in zip(consts, tc)]
    nz_x = [t is not None and sp.is_float(p.aval) for p, t in zip(xs, tx)]
    # Carries with a tangent: those perturbed on entry and any the body perturbs from a
    # perturbed value (a fixed point); the others, and ys nothing perturbs, stay zero.
    f_carry = [t is not None and sp.is_float(p.aval)
               for p, t in zip(init, tangents[n_consts:n_consts + n_carry])]
    while True:
        nz_out = sp.nonzero_tangents(body, nz_c + f_carry + nz_x)
        grown = [a or b for a, b in zip(f_carry, nz_out[:n_carry])]
        if grown == f_carry:
            break
        f_carry = grown
    f_y = nz_out[n_carry:]
    body_in = sp.in_avals(body)
    c_av, k_av, x_av = _split(body_in, n_consts, n_carry)
    avals = (c_av + _pick(c_av, nz_c) + k_av + _pick(k_av, f_carry) + x_av + _pick(x_av, nz_x))
    n_c2, n_k2 = n_consts + sum(nz_c), n_carry + sum(f_carry)

    def jbody(*args):
        cs, ks, xx = _split(args, n_c2, n_k2)
        # tangents of None are symbolic zeros: no tangent arithmetic for them
        c, c_t = cs[:n_consts], _unpick(cs[n_consts:], nz_c)
        k, k_t = ks[:n_carry], _unpick(ks[n_carry:], f_carry)
        x, x_t = xx[:len(x_av)], _unpick(xx[len(x_av):], nz_x)
        o, o_t = jvp_flat(lambda *a: sp.call(body, a), c + k + x, c_t + k_t + x_t)
        return (o[:n_carry] + _pick(o_t[:n_carry], f_carry) + o[n_carry:]
                + _pick(o_t[n_carry:], f_y))

    jprog = sp.trace_avals(jbody, avals, "scan_jvp")
    t_c, t_k, t_x = _pick(tc, nz_c), _instantiate(tangents[n_consts:n_consts + n_carry], init,
                                                 f_carry), _pick(tx, nz_x)
    res = scan_p.bind(*consts, *t_c, *init, *t_k, *xs, *t_x, body=jprog, n_consts=n_c2,
                      n_carry=n_k2, length=length, reverse=reverse, unroll=unroll)
    k_out, kt_out, ys = res[:n_carry], res[n_carry:n_k2], res[n_k2:]
    y_out, yt_out = ys[:len(f_y)], ys[len(f_y):]
    return (list(k_out) + list(y_out),
            _unpick(kt_out, f_carry) + _unpick(yt_out, f_y))


def _pick(seq, mask):
    return [s for s, m in zip(seq, mask) if m]


def _unpick(seq, mask):
    it = iter(seq)
    return [next(it) if m else None for m in mask]


def _fill(given, mask, avals):
    """Full cotangent list: ``given`` where ``mask``, zeros elsewhere."""
    it = iter(given)
    return [next(it) if m else sp.zeros_for(a) for m, a in zip(mask, avals)]


def _instantiate(tangents, primals, mask):
    from fnarray import api as fa
    return [(fa.zeros_like(p) if t is None else t) for t, p, m in zip(tangents, primals, mask) if m]


class _Linearized:
    """The body split for reverse mode, traced once per body program (cached on it).

    ``fwd`` maps ``(consts, carry, x)`` to the body's outputs followed by the residuals
    that change per iteration (stacked by the forward scan); ``back`` is the body of the
    transposed scan: ``(const residuals; cotangent accumulators of the float consts,
    cotangents of the float carries; stacked residuals, cotangents of the float ys)`` to
    ``(accumulators, carry cotangents; x cotangents)``.
    """

    def __init__(self, body, n_consts, n_carry):
        from fnarray.transforms.reverse import vjp_flat
        c_av, k_av, x_av = _split(sp.in_avals(body), n_consts, n_carry)
        o_av = sp.out_avals(body)
        f_in = [sp.is_float(a) for a in c_av + k_av + x_av]
        f_out = [sp.is_float(a) for a in o_av]
        n_in = len(f_in)

        def joint(*args):
            prim_in, cts_in = args[:n_in], args[n_in:]
            o, pullback = vjp_flat(lambda *a: sp.call(body, a), list(prim_in))
            grads = pullback(_fill(cts_in, f_out, o_av))
            return list(o) + _pick(grads, f_in)

        jprog = sp.optimize(sp.trace_avals(joint, c_av + k_av + x_av + _pick(o_av, f_out),
                                           "scan_vjp"))
        fwd, bwd, residuals = sp.split_forward_backward(jprog, n_in, len(o_av))
        const_ids = {id(v): i for i, v in enumerate(jprog.invars[:n_consts])}
        stacked = [v for v in residuals if id(v) not in const_ids]
        self.const_res = [const_ids[id(v)] for v in residuals if id(v) in const_ids]
        fwd.outvars = fwd.outvars[:len(o_av)] + stacked
        self.fwd, self.n_out = fwd, len(o_av)
        self.f_c, self.f_k, self.f_x = _split(f_in, n_consts, n_carry)
        f_y = f_out[n_carry:]
        self.f_y = f_y
        n_fc, n_fk = sum(self.f_c), sum(self.f_k)
        n_cr = len(self.const_res)
        # Residuals in the order ``bwd`` takes them: const residuals come from the scan's
        # consts, the others from the stacked ys of the forward scan.
        order = {id(v): i for i, v in enumerate(residuals)}
        slots = ([order[id(jprog.invars[i])] for i in self.const_res]
                 + [order[id(v)] for v in stacked])

        def back(*args):
            bc, carry, xx = _split(args, n_cr, n_fc + n_fk)
            acc, ct_k = carry[:n_fc], carry[n_fc:]
            res_vals = [None] * len(residuals)
            for slot, val in zip(slots, list(bc) + list(xx[:len(stacked)])):
                res_vals[slot] = val
            g = sp.call(bwd, res_vals + list(ct_k) + list(xx[len(stacked):]))
            g_c, g_k, g_x = g[:n_fc], g[n_fc:n_fc + n_fk], g[n_fc + n_fk:]
            return [a + b for a, b in zip(acc, g_c)] + list(g_k) + list(g_x)

        self.back = sp.trace_avals(
            back, [jprog.invars[i].aval for i in self.const_res] + _pick(c_av, self.f_c)
            + _pick(k_av, self.f_k) + [v.aval for v in stacked] + _pick(o_av[n_carry:], f_y),
            "scan_transpose")


def _linearized(body, n_consts, n_carry) -> _Linearized:
    cache = body.__dict__.setdefault("_linearized", {})
    lin = cache.get((n_consts, n_carry))
    if lin is None:
        lin = cache[(n_consts, n_carry)] = _Linearized(body, n_consts, n_carry)
    return lin


def _fwd(*primals, body, n_consts, n_carry, length, reverse, unroll):
    """The scan's outputs plus its per-iteration residuals (reverse mode's forward pass)."""
    lin = _linearized(body, n_consts, n_carry)
    outs = scan_p.bind(*primals, body=lin.fwd, n_consts=n_consts, n_carry=n_carry,
                       length=length, reverse=reverse, unroll=unroll)
    return list(outs[:lin.n_out]), list(outs[lin.n_out:])


def _vjp(cts, *primals, out, body, n_consts, n_carry, length, reverse, unroll,
         residuals=None):
    from fnarray import api as fa
    lin = _linearized(body, n_consts, n_carry)
    if residuals is None:  # not recorded through ``fwd``: run the forward pass again
        residuals = _fwd(*primals, body=body, n_consts=n_consts, n_carry=n_carry,
                         length=length, reverse=reverse, unroll=unroll)[1]
    consts = primals[:n_consts]
    n_fc, n_fk = sum(lin.f_c), sum(lin.f_k)
    acc0 = [fa.zeros_like(c) for c in _pick(consts, lin.f_c)]
    res = scan_p.bind(*[consts[i] for i in lin.const_res], *acc0,
                      *_pick(cts[:n_carry], lin.f_k), *residuals,
                      *_pick(cts[n_carry:], lin.f_y), body=lin.back,
                      n_consts=len(lin.const_res), n_carry=n_fc + n_fk, length=length,
                      reverse=not reverse, unroll=unroll)
    g_c, g_k, g_x = res[:n_fc], res[n_fc:n_fc + n_fk], res[n_fc + n_fk:]
    return tuple(_unpick(g_c, lin.f_c) + _unpick(g_k, lin.f_k) + _unpick(g_x, lin.f_x))


def _batch(vals, dims, *, body, n_consts, n_carry, length, reverse, unroll):
    from fnarray.ops._util import batch_size, bdim_to_front, move_bdim
    size = batch_size(vals, dims)
    consts, init, xs = _split(vals, n_consts, n_carry)
    dc, dk, dx = _split(dims, n_consts, n_carry)
    c_b, x_b = [d is not None for d in dc], [d is not None for d in dx]
    # Which carries vary across the batch: those batched on entry, and any the body makes
    # depend on a batched value (iterate to a fixed point).
    k_b = [d is not None for d in dk]
    while True:
        bprog, out_b = sp.vmap_program(body, c_b + k_b + x_b, size, "scan_batch",
                                       force_out=k_b + [False] * (len(body.outvars) - n_carry))
        grown = [a or b for a, b in zip(k_b, out_b[:n_carry])]
        if grown == k_b:
            break
        k_b = grown
    consts = [c if d is None else move_bdim(c, d, 0) for c, d in zip(consts, dc)]
    init = [bdim_to_front(k, d, size) if b else k for k, d, b in zip(init, dk, k_b)]
    xs = [x if d is None else move_bdim(x, d, 1) for x, d in zip(xs, dx)]
    outs = scan_p.bind(*consts, *init, *xs, body=bprog, n_consts=n_consts, n_carry=n_carry,
                       length=length, reverse=reverse, unroll=unroll)
    return outs, ([0 if b else None for b in k_b]
                  + [1 if b else None for b in out_b[n_carry:]])


scan_p = declare("scan", impl=_impl, abstract=_abstract, jvp=_jvp, vjp=_vjp, batch=_batch,
                 multiple_results=True, fwd=_fwd, widen_bfloat16=False)
