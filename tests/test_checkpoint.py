"""``fa.checkpoint`` with JAX's keywords: static_argnums, policies, keyword arguments,
closures over traced values, and a recomputation that jit's CSE cannot merge away."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import fnarray as fa
from fnarray.transforms.checkpoint import checkpoint_call, optimization_barrier

P = fa.checkpoint_policies
RNG = np.random.default_rng(0)
W = fa.asarray(RNG.standard_normal((4, 4)) / 2, dtype=fa.float64)
X = fa.asarray(RNG.standard_normal((3, 4)), dtype=fa.float64)


def layer(w, h):
    return fa.tanh(h @ w)


def plain_loss(w, x):
    return (layer(w, layer(w, x)) ** 2).sum()


def ckpt_loss(policy):
    c = fa.checkpoint(layer, policy=policy)
    return lambda w, x: (c(w, c(w, x)) ** 2).sum()


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def top_level(prog):
    return prog.primitive_names()


@pytest.mark.parametrize("policy", [None, P.nothing_saveable, P.dots_saveable,
                                    P.dots_with_no_batch_dims_saveable, P.everything_saveable])
def test_gradients_match_for_every_policy(policy):
    loss = ckpt_loss(policy)
    g = fa.grad(plain_loss)(W, X)
    close(fa.grad(loss)(W, X), g)
    close(fa.jit(fa.grad(loss))(W, X), g)
    close(fa.grad(fa.grad(lambda s: loss(W * s, X)))(1.0),
          fa.grad(fa.grad(lambda s: plain_loss(W * s, X)))(1.0), 1e-8)
    xs = fa.stack([X, 2 * X])
    close(fa.vmap(fa.grad(loss), in_axes=(None, 0))(W, xs),
          fa.vmap(fa.grad(plain_loss), in_axes=(None, 0))(W, xs))
    close(fa.grad(lambda w: fa.vmap(loss, in_axes=(None, 0))(w, xs).sum())(W),
          fa.grad(lambda w: fa.vmap(plain_loss, in_axes=(None, 0))(w, xs).sum())(W))
    close(fa.jvp(lambda w: loss(w, X), (W,), (W,))[1], fa.jvp(lambda w: plain_loss(w, X), (W,), (W,))[1])


def _counts(policy):
    prog = fa.make_ir(fa.grad(ckpt_loss(policy)))(W, X)
    names = top_level(prog)
    calls = [e for e in prog.eqns if e.prim is checkpoint_call]
    return names, [len(e.outvars) for e in calls]


def test_policies_change_what_is_saved_and_recomputed():
    # nothing saved: the backward pass recomputes both the product and the tanh
    names, outs = _counts(None)
    assert outs == [1, 1]
    # (3 backward products: w's cotangent in both layers, the hidden state's in the second)
    assert names.count("tanh") == 2 and names.count("dot_general") == 2 + 3
    # dots saved: the products are stored (one residual each), only tanh is recomputed
    names, outs = _counts(P.dots_saveable)
    assert outs == [2, 2]
    assert names.count("tanh") == 2 and names.count("dot_general") == 3
    # everything saved: nothing is recomputed
    names, outs = _counts(P.everything_saveable)
    assert outs == [3, 3]
    assert names.count("tanh") == 0 and names.count("dot_general") == 3


def test_dots_with_batch_dims_are_not_saved_by_the_no_batch_policy():
    f = fa.checkpoint(lambda a: fa.tanh(fa.matmul(a, a)).sum(),
                      policy=P.dots_with_no_batch_dims_saveable)
    batched = fa.asarray(RNG.standard_normal((2, 3, 3)))
    prog = fa.make_ir(fa.value_and_grad(f))(batched)
    assert [len(e.outvars) for e in prog.eqns if e.prim is checkpoint_call] == [1]
    prog = fa.make_ir(fa.value_and_grad(f))(batched[0])
    assert [len(e.outvars) for e in prog.eqns if e.prim is checkpoint_call] == [2]


def test_jitted_recomputation_reads_the_barrier():
    prog = fa.make_ir(fa.grad(ckpt_loss(None)))(W, X)
    barrier_outs = {id(v) for e in prog.eqns if e.prim is optimization_barrier for v in e.outvars}
    recomputed = [e for e in prog.eqns if e.prim.name == "dot_general"
                  and all(id(v) in barrier_outs for v in e.invars)]
    assert len(recomputed) == 2  # one forward product per checkpointed layer, redone
    # the forward pass keeps no intermediates: its only equations are the two calls
    first_use = min(i for i, e in enumerate(prog.eqns) if e.prim is optimization_barrier)
    assert all(e.prim.name != "tanh" for e in prog.eqns[:first_use])


def test_cse_respects_the_barrier_and_prevent_cse_false_drops_it():
    merged = fa.make_ir(lambda x: fa.sin(x) + fa.sin(x))(X)
    assert top_level(merged).count("sin") == 1
    kept = fa.make_ir(lambda x: fa.sin(x) + fa.sin(optimization_barrier.bind(x)[0]))(X)
    assert top_level(kept).count("sin") == 2
    loss = lambda w, x: (fa.checkpoint(layer, prevent_cse=False)(w, x) ** 2).sum()  # noqa: E731
    assert "optimization_barrier" not in top_level(fa.make_ir(fa.grad(loss))(W, X))
    close(fa.grad(loss)(W, X), fa.grad(lambda w, x: (layer(w, x) ** 2).sum())(W, X))


def test_static_argnums_and_keyword_arguments():
    def block(x, n, *, scale):
        for _ in range(n):  # needs a Python int
            x = fa.sin(x) * scale
        return x

    ck = fa.checkpoint(block, static_argnums=(1,))
    ref = lambda x, s: block(x, 3, scale=s).sum()  # noqa: E731
    got = lambda x, s: ck(x, 3, scale=s).sum()  # noqa: E731
    close(got(X, 1.5), ref(X, 1.5))
    gx, gs = fa.grad(got, argnums=(0, 1))(X, 1.5)
    rx, rs = fa.grad(ref, argnums=(0, 1))(X, 1.5)
    close(gx, rx)
    close(gs, rs)
    with pytest.raises(fa.ConcretizationError, match="static_argnums"):
        fa.checkpoint(block)(X, fa.asarray(3), scale=1.0)


def test_decorator_forms():
    @functools.partial(fa.checkpoint, policy=P.dots_saveable)
    def f(w, x):
        return layer(w, x).sum()

    @fa.checkpoint
    def g(w, x):
        return layer(w, x).sum()

    expected = fa.grad(lambda w: layer(w, X).sum())(W)
    close(fa.grad(f)(W, X), expected)
    close(fa.grad(g)(W, X), expected)


def test_closure_over_a_differentiated_value():
    # JAX idiom: checkpoint a layer that closes over the parameters being differentiated
    def loss(w, x):
        h = fa.checkpoint(lambda h: layer(w, h))(x)
        h = fa.checkpoint(lambda h: layer(w, h), policy=P.dots_saveable)(h)
        return (h ** 2).sum()

    close(fa.grad(loss)(W, X), fa.grad(plain_loss)(W, X))
    close(fa.jit(fa.grad(loss))(W, X), fa.grad(plain_loss)(W, X))
    close(fa.vmap(fa.grad(loss), in_axes=(None, 0))(W, fa.stack([X, X]))[1],
          fa.grad(plain_loss)(W, X))


def test_outputs_of_any_structure_and_no_array_operand():
    out = fa.checkpoint(lambda x: {"same": x, "const": 2.0, "none": None})(X)
    close(out["same"], X)
    assert out["none"] is None and float(out["const"]) == 2.0
    close(fa.checkpoint(lambda n: fa.ones(3) * n, static_argnums=0)(2), np.full(3, 2.0))
    idx = fa.asarray([0, 2])
    g = fa.grad(lambda x: fa.checkpoint(lambda v, i: v[i].sum())(x, idx))(fa.ones(3))
    close(g, [1.0, 0.0, 1.0])


def test_named_values_policies():
    def block(w, x):
        h = fa.checkpoint_name(x @ w, "pre")
        return fa.checkpoint_name(fa.tanh(h), "act") @ w

    def counts(policy):
        loss = lambda w, x: (fa.checkpoint(block, policy=policy)(w, x) ** 2).sum()  # noqa: E731
        close(fa.grad(loss)(W, X), fa.grad(lambda w, x: (block(w, x) ** 2).sum())(W, X))
        prog = fa.make_ir(fa.grad(loss))(W, X)
        call, = [e for e in prog.eqns if e.prim is checkpoint_call]
        return len(call.outvars) - 1, prog.primitive_names().count("tanh")

    assert counts(None) == (0, 1)  # nothing saved: tanh recomputed
    assert counts(P.save_only_these_names("act")) == (1, 0)  # tanh's output stored
    assert counts(P.save_only_these_names("pre")) == (1, 1)
    assert counts(P.save_any_names_but_these("pre")) == (1, 0)
    assert counts(P.save_from_both_policies(P.save_only_these_names("pre"),
                                            P.save_only_these_names("act"))) == (2, 0)
    tagged = fa.checkpoint_name({"a": X}, "t")
    close(tagged["a"], X)
