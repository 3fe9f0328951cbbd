"""compat.compile reads the module's parameters, buffers and submodules on every call (the
walk is reused while every table it read holds the same entries): rebinding a parameter,
editing a table directly, adding a submodule or a buffer, or flipping a training flag
takes effect on the next call, exactly as in eager code.  The compiled node is recorded
directly (no ``bind``) for concrete operands; under autocast the call runs eagerly."""

import numpy as np

import fnarray.compat as torch
import fnarray.nn.functional as F
from fnarray import nn

rng = np.random.default_rng(3)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))


def _check(compiled, eager_model, x):
    """Forward values and parameter gradients of the compiled call equal the eager ones."""
    for p in eager_model.parameters():
        p.grad = None
    out_c = compiled(x)
    out_e = eager_model(x)
    np.testing.assert_array_equal(out_c.detach().numpy(), out_e.detach().numpy())
    out_c.sum().backward()
    grads_c = [p.grad.numpy().copy() for p in eager_model.parameters()]
    for p in eager_model.parameters():
        p.grad = None
    out_e.sum().backward()
    for gc, p in zip(grads_c, eager_model.parameters()):
        np.testing.assert_array_equal(gc, p.grad.numpy())


def test_rebinding_and_table_edits_take_effect_on_the_next_call():
    model = _model()
    compiled = torch.compile(model)
    x = torch.tensor(rng.standard_normal((3, 6)).astype(np.float32))
    _check(compiled, model, x)
    _check(compiled, model, x)  # the reused walk
    # a new Parameter through setattr
    model[0].weight = nn.Parameter(torch.tensor(rng.standard_normal((5, 6)).astype(np.float32)))
    _check(compiled, model, x)
    # a table edited directly, bypassing Module.__setattr__
    model[2]._parameters["bias"] = nn.Parameter(torch.ones(4))
    _check(compiled, model, x)
    assert compiled(x).detach().numpy()[0, 0] != _model()(x).detach().numpy()[0, 0]
    # a submodule appended, then a registered buffer
    model.append(nn.Tanh())
    _check(compiled, model, x)
    model[3].register_buffer("unused", torch.zeros(2))
    names, handles, _ = compiled._compiler.state()
    assert names[-1] == "3.unused" and handles[-1] is model[3].unused
    # a parameter removed
    model[2].bias = None
    _check(compiled, model, x)
    assert "2.bias" not in compiled._compiler.state()[0]


def test_training_flags_are_read_on_every_call():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.Dropout(0.5))
    compiled = torch.compile(model)
    x = torch.ones(4, 6)
    assert compiled._compiler.state()[2] == (True, True, True)
    model[1].eval()
    assert compiled._compiler.state()[2] == (True, True, False)
    np.testing.assert_array_equal(compiled(x).detach().numpy(), model(x).detach().numpy())
    model.eval()
    assert compiled._compiler.state()[2] == (False, False, False)


def test_compiled_node_and_staged_loss_record_as_before(monkeypatch):
    # a fresh staging cache: earlier tests may have filled nll_loss's (LIMIT signatures,
    # past which new ones run eagerly and list their constants in next_functions)
    from fnarray.nn import _staged
    monkeypatch.setattr(F, "_NLL", _staged.StagedEager(F._nll, "nll_loss"))
    model = _model()
    compiled = torch.compile(model)
    x = torch.tensor(rng.standard_normal((3, 6)).astype(np.float32))
    y = torch.tensor(np.array([0, 3, 1]))
    for _ in range(2):  # the loss is staged on its second sighting
        out = compiled(x)
        loss = F.cross_entropy(out, y)
    assert type(loss.grad_fn).__name__ == "NllLossBackward0"
    (log_softmax, _), (none, _) = loss.grad_fn.next_functions
    assert type(log_softmax).__name__ == "LogSoftmaxBackward0" and none is None
    assert log_softmax.next_functions[0][0] == out.grad_fn
    nodes = {type(f).__name__ for f, _ in out.grad_fn.next_functions if f is not None}
    assert nodes == {"AccumulateGrad"}
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_compiled_call_under_autocast_runs_eagerly_with_the_regions_casts():
    model = _model()
    compiled = torch.compile(model)
    x = torch.tensor(rng.standard_normal((3, 6)).astype(np.float32))
    compiled(x)  # a staged program exists for this signature
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = compiled(x)
        eager = model(x)
    assert out.dtype == eager.dtype == torch.bfloat16
    np.testing.assert_array_equal(out.float().detach().numpy(), eager.float().detach().numpy())
    assert type(out.grad_fn).__name__ != "StagedCallBackward0"
    out.float().sum().backward()
    assert model[0].weight.grad is not None and model[0].weight.grad.dtype == torch.float32
