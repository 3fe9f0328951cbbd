"""optim.fused donation: a step writes the new parameter values and moments into the buffers
of the old ones when nothing else can see those, and never when something can.

Reuse is observed through a weak reference to the parameter's NumPy buffer (a weak
reference does not keep it alive or count as a holder): after a donating step the
parameter's new array wraps that very buffer.  Every aliasing case keeps the old values
and gives the same trajectory as the plain program; a run compiles one program per
signature.
"""

import copy
import importlib
import io
import tracemalloc
import weakref

import numpy as np
import pytest

import fnarray as fa
import fnarray.compat as torch
import fnarray.nn.functional as F
from fnarray import nn, optim
from fnarray.backends import accel
from fnarray.optim import functional as of

jit_module = importlib.import_module("fnarray.transforms.jit")

SHAPES = [(40, 30), (30,), (3, 2, 5), ()]

OPTIMIZERS = {
    "sgd": (optim.SGD, of.sgd, dict(lr=0.1)),
    "sgd-momentum": (optim.SGD, of.sgd, dict(lr=0.1, momentum=0.9, nesterov=True)),
    "adam": (optim.Adam, of.adam, dict(lr=0.01)),
    "adam-amsgrad": (optim.Adam, of.adam, dict(lr=0.01, amsgrad=True)),
    "adamw": (optim.AdamW, of.adamw, dict(lr=0.01)),
    "rmsprop": (optim.RMSprop, of.rmsprop, dict(lr=0.01, momentum=0.5, centered=True)),
    "nadam": (optim.NAdam, of.nadam, dict(lr=0.01)),
}


def _grads(step):
    rng = np.random.default_rng(step)
    return [rng.standard_normal(s).astype(np.float32) for s in SHAPES]


def _initial():
    rng = np.random.default_rng(100)
    return [np.asarray(rng.standard_normal(s), np.float32) for s in SHAPES]


def _params():
    return [torch.tensor(p, requires_grad=True) for p in _initial()]


def _set_grads(ps, step):
    for p, g in zip(ps, _grads(step)):
        p.grad = torch.tensor(g)


def _buffer_refs(ps):
    """Weak references to the parameters' NumPy buffers (full-size ones only)."""
    return [weakref.ref(p.array._value) for p in ps if p.ndim]


def _reused(ps, refs) -> list:
    return [r() is p.array._value for p, r in zip([p for p in ps if p.ndim], refs)]


def _functional_trajectory(fn, kw, steps):
    params, state, out = [fa.asarray(p) for p in _initial()], None, []
    update = fn(**kw)
    for i in range(steps):
        state = update.init(params) if state is None else state
        params, state = update.update([fa.asarray(g) for g in _grads(i)], state, params)
        out.append([np.asarray(p).copy() for p in params])
    return out


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_parameter_and_state_buffers_are_reused_and_values_unchanged(name, monkeypatch):
    cls, fn, kw = OPTIMIZERS[name]
    compiled = []
    real = jit_module.compile_program

    def counting(prog, xp, donated=frozenset()):
        compiled.append(donated)
        return real(prog, xp, donated)

    monkeypatch.setattr(jit_module, "compile_program", counting)
    ps = _params()
    opt = cls(ps, **kw)
    refs, got = _buffer_refs(ps), []
    for i in range(4):
        _set_grads(ps, i)
        opt.step()
        got.append([p.detach().numpy().copy() for p in ps])
        assert all(_reused(ps, refs)), f"step {i}: a parameter buffer was not reused"
    for step_got, step_want in zip(got, _functional_trajectory(fn, kw, 4)):
        for a, b in zip(step_got, step_want):
            assert a.tobytes() == b.tobytes()
    # one program for the run (step 0 included), traced and compiled once, donating every
    # full-size parameter and state buffer
    (program,) = opt._fused.programs()
    assert program.trace_count == 1
    buffers = [b for p in ps for b in opt.state.leaf(p)[1:] if b is not None and b.ndim]
    assert len(compiled) == 1
    assert len(compiled[0]) == sum(p.ndim > 0 for p in ps) + len(buffers)


def _aliasing_run(name, hold):
    """Four steps of ``OPTIMIZERS[name]``; before each, ``hold(ps, opt)`` returns what a
    user keeps across the step and a function giving the values it should still show.
    Returns the trajectory and whether any parameter buffer was reused."""
    cls, _, kw = OPTIMIZERS[name]
    ps = _params()
    opt = cls(ps, **kw)
    out, reused = [], False
    for i in range(4):
        _set_grads(ps, i)
        kept, expected = hold(ps, opt)
        before = expected()
        refs = _buffer_refs(ps)
        opt.step()
        after = expected()
        for a, b in zip(before, after):
            assert a.tobytes() == b.tobytes(), "a value held across the step changed"
        reused = reused or any(_reused(ps, refs))
        del kept
        out.append([p.detach().numpy().copy() for p in ps])
    return out, reused


def _snap(arrays):
    return lambda: [np.array(a) for a in arrays]


HOLDERS = {
    "array": lambda ps, opt: (k := [p.array for p in ps], _snap(k)),
    "numpy view": lambda ps, opt: (k := [p.detach().numpy() for p in ps], _snap(k)),
    "numpy view of one": lambda ps, opt: (k := [ps[0].detach().numpy()], _snap(k)),
    "numpy of array": lambda ps, opt: (k := [np.asarray(p.array) for p in ps], _snap(k)),
    "view tensor": lambda ps, opt: (k := [ps[0][1:3], ps[2].view(-1)],
                                    _snap([t.array for t in k])),
    "memoryview": lambda ps, opt: (k := [memoryview(p.array._value) for p in ps if p.ndim],
                                   _snap(k)),
    "deepcopy": lambda ps, opt: (k := copy.deepcopy(ps), _snap([t.detach() for t in k])),
    "optimizer state read": lambda ps, opt: (
        k := [opt.state[p] for p in ps if p in opt.state],
        _snap([b for s in k for b in s._leaf()[1:] if b is not None])),
    "optimizer state_dict": lambda ps, opt: (
        k := opt.state_dict(),
        _snap([t.array for s in k["state"].values() for t in s.values() if t is not None])),
}


@pytest.mark.parametrize("held", sorted(HOLDERS))
@pytest.mark.parametrize("name", ["adam", "sgd-momentum"])
def test_values_someone_holds_keep_their_values(name, held):
    got, reused = _aliasing_run(name, HOLDERS[held])
    want, _ = _aliasing_run(name, lambda ps, opt: (None, list))
    for step_got, step_want in zip(got, want):
        for a, b in zip(step_got, step_want):
            assert a.tobytes() == b.tobytes()
    if held in ("array", "numpy view", "numpy of array", "memoryview", "deepcopy"):
        assert not reused


def test_one_aliased_parameter_leaves_the_others_donated():
    ps = _params()
    opt = optim.Adam(ps, lr=0.01)
    _set_grads(ps, 0)
    opt.step()
    view = ps[0].detach().numpy()
    snapshot = view.copy()
    refs = _buffer_refs(ps)
    _set_grads(ps, 1)
    opt.step()
    np.testing.assert_array_equal(view, snapshot)
    assert _reused(ps, refs) == [False, True, True]


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))


def _data():
    rng = np.random.default_rng(3)
    return (torch.tensor(rng.standard_normal((8, 12)).astype(np.float32)),
            torch.tensor(rng.integers(0, 3, 8)))


@pytest.mark.parametrize("compiled", [False, True])
def test_training_loop_donates_and_module_views_keep_pytorch_semantics(compiled):
    model = _mlp()
    run = torch.compile(model) if compiled else model
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = _data()
    refs = _buffer_refs(list(model.parameters()))
    for _ in range(3):
        opt.zero_grad()
        loss = F.cross_entropy(run(x), y)
        loss.backward()
        opt.step()
    assert all(_reused(list(model.parameters()), refs))
    # a state_dict() taken before a step is a detached alias: it shows the new values
    # afterwards (as in PyTorch), and the buffer under it is not reused meanwhile
    sd = model.state_dict()
    old = {k: v.array for k, v in sd.items()}
    snapshots = {k: np.array(a) for k, a in old.items()}
    opt.zero_grad()
    F.cross_entropy(run(x), y).backward()
    opt.step()
    for k, p in model.named_parameters():
        np.testing.assert_array_equal(sd[k].numpy(), p.detach().numpy())
        np.testing.assert_array_equal(np.asarray(old[k]), snapshots[k])


@pytest.mark.parametrize("compiled", [False, True])
def test_a_graph_that_saved_the_parameters_keeps_them(compiled):
    model = _mlp()
    run = torch.compile(model) if compiled else model
    opt = optim.Adam(model.parameters(), lr=0.1)
    x, y = _data()
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(run(x), y).backward()
        opt.step()
    opt.zero_grad()
    loss = F.cross_entropy(run(x), y)
    loss.backward(retain_graph=True)
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    opt.step()  # the retained graph still holds the old values it reads
    opt.zero_grad()
    if compiled:  # the staged node checks its inputs' versions, as without donation
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            loss.backward()
    else:  # eager backward reads the values it saved: the same gradients again
        loss.backward()
        for p, g in zip(model.parameters(), grads):
            np.testing.assert_array_equal(p.grad.numpy(), g)


def test_grads_hooks_versions_and_zero_grad_are_as_without_donation():
    ps = _params()
    opt = optim.Adam(ps, lr=0.01)
    seen = []
    ps[0].register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.shape))
    for i in range(3):
        versions = [p._version[0] for p in ps]
        _set_grads(ps, i)
        grads = [p.grad for p in ps]
        opt.step()
        assert [p._version[0] for p in ps] == [v + 1 for v in versions]
        assert all(p.grad is g for p, g in zip(ps, grads))
        np.testing.assert_array_equal(ps[0].grad.numpy(), _grads(i)[0])
        opt.zero_grad(set_to_none=False)
        assert all(not np.any(p.grad.numpy()) for p in ps)
        opt.zero_grad()
        assert all(p.grad is None for p in ps)
    (ps[0] * 2).sum().backward()
    assert seen == [ps[0].shape]


def test_save_load_and_schedulers_resume_identically():
    def run(steps, resume_at=None):
        model = _mlp()
        opt = optim.AdamW(model.parameters(), lr=0.05)
        sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        x, y = _data()
        for i in range(steps):
            if i == resume_at:
                buf = io.BytesIO()
                torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
                buf.seek(0)
                saved = torch.load(buf)
                model = _mlp()
                opt = optim.AdamW(model.parameters(), lr=0.05)
                model.load_state_dict(saved["model"])
                opt.load_state_dict(saved["opt"])
                sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5,
                                                  last_epoch=i - 1)
                del saved
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
        return [p.detach().numpy().copy() for p in model.parameters()]

    for a, b in zip(run(6), run(6, resume_at=3)):
        assert a.tobytes() == b.tobytes()


def test_read_only_and_borrowed_buffers_are_never_written():
    frozen = np.ones((5, 4), np.float32)
    frozen.flags.writeable = False
    base = np.ones((10, 4), np.float32)
    ps = [torch.tensor(1.0, requires_grad=True) for _ in range(2)]
    ps[0].data = fa.asarray(frozen, copy=False)
    ps[1].data = fa.asarray(base[:5], copy=False)  # a view of someone else's memory
    assert ps[0].array._value is frozen
    refs = [weakref.ref(frozen), weakref.ref(base)]
    del frozen
    opt = optim.SGD(ps, lr=0.5)
    for p in ps:
        p.grad = torch.ones(5, 4)
    opt.step()
    assert refs[0]() is not ps[0].array._value  # dead, or at least not rewritten
    np.testing.assert_array_equal(base, np.ones((10, 4), np.float32))
    for p in ps:
        np.testing.assert_array_equal(p.detach().numpy(), np.full((5, 4), 0.5, np.float32))


@pytest.mark.parametrize("name", ["sgd", "sgd-momentum", "adam", "rmsprop"])
def test_a_compiled_step_allocates_nothing_proportional_to_the_model(name):
    """Where compiled loops run (the ``accel`` extra), every new value of a step lands in
    a donated buffer: NumPy allocates next to nothing during ``step()``."""
    if not accel.available():
        pytest.skip("compiled loops need the 'accel' extra (numba)")
    cls, _, kw = OPTIMIZERS[name]
    ps = [torch.tensor(np.ones((300, 400), np.float32), requires_grad=True)]
    opt = cls(ps, **kw)
    with accel.forced(True):
        for i in range(3):
            ps[0].grad = torch.full((300, 400), float(i + 1))
            if i == 2:
                tracemalloc.start()
                base = tracemalloc.get_traced_memory()[0]
            opt.step()
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    assert peak < 0.05 * ps[0].numel() * 4


def test_param_groups_donate_separately_and_match_the_plain_program():
    def run(hold: bool):
        ps = _params()
        opt = optim.Adam([{"params": ps[:2], "lr": 0.01},
                          {"params": ps[2:], "lr": 0.05, "weight_decay": 0.1}])
        reused = []
        for i in range(3):
            kept = [p.array for p in ps] if hold else None
            refs = _buffer_refs(ps)
            _set_grads(ps, i)
            opt.step()
            reused.append(all(_reused(ps, refs)))
            del kept
        return [p.detach().numpy().copy() for p in ps], reused, opt

    got, reused, opt = run(hold=False)
    want, held_reused, _ = run(hold=True)
    assert all(reused) and not any(held_reused)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(got, want))
    assert [j.trace_count for j in opt._fused.programs()] == [1, 1]  # one per group
