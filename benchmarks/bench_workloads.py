"""The workloads of ``benchmarks/compare.py``: each builds its variants (fnarray, NumPy,
PyTorch, JAX) over the same data and returns them with the target ratios of issue 10.

Every variant is a zero-argument callable running one complete step; the PyTorch and JAX
ones exist only when those libraries import.
"""

from __future__ import annotations

import importlib

import numpy as np

import fnarray as fa
import fnarray.compat as fc
import fnarray.nn.functional as FF
from fnarray import nn as fnn
from fnarray import optim as foptim

SIZES, MLP_BATCH, LR = (784, 512, 256, 10), 128, 0.01
CONV_BATCH = 64


def one_thread(step, torch=None):
    """``step`` with BLAS (threadpoolctl) or PyTorch limited to one thread: on a shared,
    oversubscribed machine threaded GEMMs spin-wait for descheduled workers, and the
    one-thread variants show the comparison without that effect."""
    if torch is not None:
        def run():
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                step()
            finally:
                torch.set_num_threads(before)
        return run
    limits = optional("threadpoolctl")
    if limits is None:
        return None
    # One controller, built once: ``threadpool_limits(1)`` rescans the loaded libraries on
    # every entry (~0.8 ms), which would be charged to the step being timed.
    controller = limits.ThreadpoolController()

    def run():
        with controller.limit(limits=1, user_api="blas"):
            step()
    return run


def _add_one_thread(variants: dict, names: list, torch) -> None:
    for name in names:
        if name in variants:
            run = one_thread(variants[name], torch if name.startswith("PyTorch") else None)
            if run is not None:
                variants[name + ", 1 thread"] = run


def optional(name: str):
    """The module, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# ------------------------------------------------------------------ sin(x) * x + 1, 16 floats

def eager() -> dict:
    x_np = np.linspace(0.1, 1.6, 16, dtype=np.float32)
    x = fa.asarray(x_np)
    xt = fc.tensor(x_np, requires_grad=True)
    variants = {
        "NumPy": lambda: np.sin(x_np) * x_np + 1,
        "fnarray core": lambda: fa.sin(x) * x + 1,
        "fnarray compat, requires_grad": lambda: fc.sin(xt) * xt + 1,
    }
    torch = optional("torch")
    if torch is not None:
        tx = torch.from_numpy(x_np.copy())
        tg = tx.clone().requires_grad_(True)
        variants["PyTorch eager"] = lambda: torch.sin(tx) * tx + 1
        variants["PyTorch, requires_grad"] = lambda: torch.sin(tg) * tg + 1
    return dict(
        title="`sin(x) * x + 1` on 16 floats, eager",
        note="Three ops per call: the cost is dispatch, not arithmetic.",
        number=20000, variants=variants,
        targets={("fnarray core", "PyTorch eager"): 0.8,
                 ("fnarray compat, requires_grad", "PyTorch, requires_grad"): 1.0},
        extra_pairs=[("fnarray core", "NumPy")])


# ------------------------------------------------------------------ MLP SGD step

def _mlp_init(rng):
    return [(rng.normal(0, n ** -0.5, (n, m)).astype(np.float32), np.zeros(m, np.float32))
            for n, m in zip(SIZES[:-1], SIZES[1:])]


def _mlp_loss_fa(params, x, labels):
    h = x
    for w, b in params[:-1]:
        h = fa.relu(h @ w + b)
    w, b = params[-1]
    logp = fa.log_softmax(h @ w + b, axis=1)
    return -fa.mean(fa.take_along_axis(logp, labels[:, None], axis=1))


def _mlp_step_fa(params, x, labels):
    loss, grads = fa.value_and_grad(_mlp_loss_fa)(params, x, labels)
    return loss, fa.tree.map(lambda p, g: p - LR * g, params, grads)


def _stateful(step, state):
    """A callable that runs ``state[0] = step(state[0])`` (the training loop's rebinding)."""
    def run():
        state[0] = step(state[0])[1]
    return run


def _torch_mlp(torch, params_np):
    layers = []
    for i, (w, b) in enumerate(params_np):
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin] if i == len(params_np) - 1 else [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


def _compat_mlp(params_np):
    layers = []
    for i, (w, b) in enumerate(params_np):
        lin = fnn.Linear(*w.shape)
        lin.weight.data = fc.tensor(w.T.copy()).data
        lin.bias.data = fc.tensor(b).data
        layers += [lin] if i == len(params_np) - 1 else [lin, fnn.ReLU()]
    return fnn.Sequential(*layers)


def _train_step(lib, functional, model, opt, x, y):
    def step():
        opt.zero_grad()
        loss = functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    step.parts = (functional, model, opt, x, y)  # for step_phases.py's per-phase timing
    return step


def mlp() -> dict:
    rng = np.random.default_rng(0)
    params_np = _mlp_init(rng)
    x_np = rng.normal(size=(MLP_BATCH, SIZES[0])).astype(np.float32)
    y_np = rng.integers(0, SIZES[-1], MLP_BATCH)
    params = [(fa.asarray(w), fa.asarray(b)) for w, b in params_np]
    x, y = fa.asarray(x_np), fa.asarray(y_np)
    jitted = fa.jit(_mlp_step_fa)
    variants = {"fa.jit(value_and_grad) step": _stateful(lambda p: jitted(p, x, y), [params])}
    model = _compat_mlp(params_np)
    opt = foptim.SGD(model.parameters(), lr=LR)
    xt, yt = fc.tensor(x_np), fc.tensor(y_np)
    variants["compat eager"] = _train_step(fc, FF, model, opt, xt, yt)
    compiled = getattr(fc, "compile", None)
    if compiled is not None:
        cmodel = _compat_mlp(params_np)
        copt = foptim.SGD(cmodel.parameters(), lr=LR)
        variants["compat.compile"] = _train_step(fc, FF, compiled(cmodel), copt, xt, yt)
    torch = optional("torch")
    if torch is not None:
        tmodel = _torch_mlp(torch, params_np)
        topt = torch.optim.SGD(tmodel.parameters(), lr=LR)
        variants["PyTorch eager"] = _train_step(
            torch, torch.nn.functional, tmodel, topt, torch.from_numpy(x_np),
            torch.from_numpy(y_np))
    jax = optional("jax")
    if jax is not None:
        jnp = jax.numpy

        def jloss(p, xb, yb):
            h = xb
            for w, b in p[:-1]:
                h = jax.nn.relu(h @ w + b)
            w, b = p[-1]
            logp = jax.nn.log_softmax(h @ w + b, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

        @jax.jit
        def jstep(p, xb, yb):
            loss, g = jax.value_and_grad(jloss)(p, xb, yb)
            return loss, jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g)

        jx, jy = jnp.asarray(x_np), jnp.asarray(y_np)
        jparams = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params_np]
        state = [jparams]

        def jrun():
            state[0] = jstep(state[0], jx, jy)[1]
            jax.block_until_ready(state[0])
        variants["JAX jit step"] = jrun
    _add_one_thread(variants, ["fa.jit(value_and_grad) step", "compat eager", "compat.compile",
                               "PyTorch eager"], torch)
    return dict(
        title="MLP 784-512-256-10, SGD step, batch 128",
        note="ReLU hidden layers, log-softmax cross-entropy, SGD lr 0.01; the compat and "
             "PyTorch variants are the same nn.Sequential training loop (zero_grad, "
             "forward, loss, backward, step).",
        number=10, variants=variants,
        targets={("fa.jit(value_and_grad) step", "JAX jit step"): 1.0,
                 ("compat eager", "PyTorch eager"): 1.2,
                 ("compat.compile", "PyTorch eager"): 1.0},
        extra_pairs=[("fa.jit(value_and_grad) step, 1 thread", "JAX jit step"),
                     ("compat eager, 1 thread", "PyTorch eager, 1 thread"),
                     ("compat.compile, 1 thread", "PyTorch eager, 1 thread")])


# ------------------------------------------------------------------ tutorial ConvNet, Adam

def convnet() -> dict:
    from fnarray.examples.mnist import Net
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((CONV_BATCH, 1, 28, 28)).astype(np.float32)
    y_np = rng.integers(0, 10, CONV_BATCH)
    xt, yt = fc.tensor(x_np), fc.tensor(y_np)
    fc.manual_seed(0)
    model = Net()
    variants = {"compat eager": _train_step(fc, FF, model, foptim.Adam(model.parameters()),
                                            xt, yt)}
    compiled = getattr(fc, "compile", None)
    if compiled is not None:
        cmodel = Net()
        variants["compat.compile"] = _train_step(
            fc, FF, compiled(cmodel), foptim.Adam(cmodel.parameters()), xt, yt)
    torch = optional("torch")
    if torch is not None:
        sys_path_reference()
        from mnist_torch_reference import Net as TorchNet
        torch.manual_seed(0)
        tmodel = TorchNet()
        variants["PyTorch eager"] = _train_step(
            torch, torch.nn.functional, tmodel, torch.optim.Adam(tmodel.parameters()),
            torch.from_numpy(x_np), torch.from_numpy(y_np))
    _add_one_thread(variants, ["compat eager", "compat.compile", "PyTorch eager"], torch)
    return dict(
        title="Tutorial ConvNet, Adam step, batch 64",
        note="conv 1→32, conv 32→64, max-pool, dropout, fc 9216→128→10, log-softmax + NLL, "
             "Adam lr 1e-3, training mode.",
        number=3, variants=variants,
        targets={("compat eager", "PyTorch eager"): 1.2,
                 ("compat.compile", "PyTorch eager"): 1.0},
        extra_pairs=[("compat eager, 1 thread", "PyTorch eager, 1 thread"),
                     ("compat.compile, 1 thread", "PyTorch eager, 1 thread")])


def sys_path_reference() -> None:
    """Make ``benchmarks/`` importable (for the PyTorch reference model)."""
    import sys
    from pathlib import Path
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
