"""fnarray.optim.functional: 20-step trajectories against a NumPy transcription of
PyTorch's documented update equations, on a quadratic and on a small MLP (float64)."""

import numpy as np
import pytest

import fnarray as fa
from fnarray.optim import functional as of

# --- the reference: PyTorch's documented algorithms, one NumPy function per optimizer.
# Each takes (p, g, state dict, t) and returns the new p; state is updated in place.


def ref_sgd(p, g, s, t, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
            nesterov=False, maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        s["b"] = g if t == 1 else momentum * s["b"] + (1 - dampening) * g
        g = g + momentum * s["b"] if nesterov else s["b"]
    return p - lr * g


def ref_adam(p, g, s, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
             amsgrad=False, maximize=False, decoupled=False):
    b1, b2 = betas
    g = -g if maximize else g
    if decoupled:
        p = p - lr * weight_decay * p
    elif weight_decay:
        g = g + weight_decay * p
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g ** 2
    mhat = s["m"] / (1 - b1 ** t)
    if amsgrad:
        s["vmax"] = np.maximum(s.get("vmax", 0), s["v"])
        vhat = s["vmax"] / (1 - b2 ** t)
    else:
        vhat = s["v"] / (1 - b2 ** t)
    return p - lr * mhat / (np.sqrt(vhat) + eps)


def ref_adamw(p, g, s, t, weight_decay=1e-2, **kw):
    return ref_adam(p, g, s, t, weight_decay=weight_decay, decoupled=True, **kw)


def ref_rmsprop(p, g, s, t, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False, maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    s["v"] = alpha * s.get("v", 0) + (1 - alpha) * g ** 2
    vt = s["v"]
    if centered:
        s["gave"] = alpha * s.get("gave", 0) + (1 - alpha) * g
        vt = vt - s["gave"] ** 2
    if momentum > 0:
        s["b"] = momentum * s.get("b", 0) + g / (np.sqrt(vt) + eps)
        return p - lr * s["b"]
    return p - lr * g / (np.sqrt(vt) + eps)


def ref_adagrad(p, g, s, t, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    g = -g if maximize else g
    clr = lr / (1 + (t - 1) * lr_decay)
    if weight_decay:
        g = g + weight_decay * p
    s["sum"] = s.get("sum", initial_accumulator_value) + g ** 2
    return p - clr * g / (np.sqrt(s["sum"]) + eps)


def ref_adadelta(p, g, s, t, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    s["v"] = rho * s.get("v", 0) + (1 - rho) * g ** 2
    dx = np.sqrt(s.get("u", 0) + eps) / np.sqrt(s["v"] + eps) * g
    s["u"] = rho * s.get("u", 0) + (1 - rho) * dx ** 2
    return p - lr * dx


def ref_adamax(p, g, s, t, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
               maximize=False):
    b1, b2 = betas
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["u"] = np.maximum(b2 * s.get("u", 0), np.abs(g) + eps)
    return p - lr * s["m"] / ((1 - b1 ** t) * s["u"])


def ref_nadam(p, g, s, t, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    g = -g if maximize else g
    if weight_decay:
        if decoupled_weight_decay:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
    mu = lambda i: b1 * (1 - 0.5 * 0.96 ** (i * momentum_decay))
    prod_t = np.prod([mu(i) for i in range(1, t + 1)])
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g ** 2
    mhat = mu(t + 1) * s["m"] / (1 - prod_t * mu(t + 1)) + (1 - mu(t)) * g / (1 - prod_t)
    vhat = s["v"] / (1 - b2 ** t)
    return p - lr * mhat / (np.sqrt(vhat) + eps)


CASES = [
    ("sgd", ref_sgd, dict(lr=0.05)),
    ("sgd", ref_sgd, dict(lr=0.05, momentum=0.9)),
    ("sgd", ref_sgd, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    ("sgd", ref_sgd, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("sgd", ref_sgd, dict(lr=0.05, momentum=0.5, maximize=True, weight_decay=0.1)),
    ("adam", ref_adam, dict(lr=0.05)),
    ("adam", ref_adam, dict(lr=0.05, amsgrad=True, weight_decay=0.1, betas=(0.8, 0.9))),
    ("adam", ref_adam, dict(lr=0.05, maximize=True)),
    ("adamw", ref_adamw, dict(lr=0.05)),
    ("adamw", ref_adamw, dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    ("rmsprop", ref_rmsprop, dict()),
    ("rmsprop", ref_rmsprop, dict(centered=True, momentum=0.9, weight_decay=0.1)),
    ("rmsprop", ref_rmsprop, dict(momentum=0.5, alpha=0.9)),
    ("adagrad", ref_adagrad, dict(lr=0.1)),
    ("adagrad", ref_adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.1,
                                  initial_accumulator_value=0.2)),
    ("adadelta", ref_adadelta, dict()),
    ("adadelta", ref_adadelta, dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
    ("adamax", ref_adamax, dict(lr=0.05)),
    ("adamax", ref_adamax, dict(lr=0.05, weight_decay=0.1, betas=(0.7, 0.95))),
    ("nadam", ref_nadam, dict(lr=0.05)),
    ("nadam", ref_nadam, dict(lr=0.05, weight_decay=0.1)),
    ("nadam", ref_nadam, dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
]


# --- problems: a quadratic and a one-hidden-layer tanh MLP, with hand-written NumPy grads.

rng = np.random.default_rng(0)
Q = rng.normal(size=(4, 4))
A = Q @ Q.T + np.eye(4)
B = rng.normal(size=4)
X = rng.normal(size=(8, 3))
Y = rng.normal(size=(8, 2))


def quad_np(params):
    x = params["x"]
    return {"x": A @ x - B}


def quad_fa(params):
    x = params["x"]
    return 0.5 * x @ (fa.asarray(A) @ x) - fa.asarray(B) @ x


def mlp_np(params):
    w1, b1, w2 = params["w1"], params["b1"], params["w2"]
    h = np.tanh(X @ w1 + b1)
    r = h @ w2 - Y
    dout = 2 * r / r.size
    dh = dout @ w2.T * (1 - h ** 2)
    return {"w1": X.T @ dh, "b1": dh.sum(0), "w2": h.T @ dout}


def mlp_fa(params):
    h = fa.tanh(fa.asarray(X) @ params["w1"] + params["b1"])
    return fa.mean((h @ params["w2"] - fa.asarray(Y)) ** 2)


PROBLEMS = {
    "quadratic": (quad_np, quad_fa, {"x": rng.normal(size=4)}),
    "mlp": (mlp_np, mlp_fa, {"w1": rng.normal(size=(3, 5)), "b1": rng.normal(size=5),
                             "w2": rng.normal(size=(5, 2))}),
}


def reference_trajectory(ref, kw, grad_np, p0, steps=20):
    params = {k: v.copy() for k, v in p0.items()}
    states = {k: {} for k in p0}
    out = []
    for t in range(1, steps + 1):
        grads = grad_np(params)
        params = {k: ref(params[k], grads[k], states[k], t, **kw) for k in params}
        out.append(params)
    return out


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("name,ref,kw", CASES)
def test_trajectory_matches_documented_equations(problem, name, ref, kw):
    grad_np, loss_fa, p0 = PROBLEMS[problem]
    expected = reference_trajectory(ref, kw, grad_np, p0)
    opt = getattr(of, name)(**kw)
    params = {k: fa.asarray(v) for k, v in p0.items()}
    state = opt.init(params)
    g_fn = fa.grad(loss_fa)
    for t, want in enumerate(expected, 1):
        params, state = opt.update(g_fn(params), state, params)
        for k in want:
            np.testing.assert_allclose(np.asarray(params[k]), want[k], rtol=1e-6, atol=1e-6,
                                       err_msg=f"{name}{kw} step {t} param {k}")


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "nadam"])
def test_update_runs_under_jit_and_matches_eager(name):
    kw = {"sgd": dict(lr=0.1, momentum=0.9), "adam": dict(lr=0.1, amsgrad=True),
          "rmsprop": dict(centered=True, momentum=0.3), "nadam": dict()}[name]
    opt = getattr(of, name)(**kw)
    _, loss_fa, p0 = PROBLEMS["mlp"]
    p_e = p_j = {k: fa.asarray(v) for k, v in p0.items()}
    s_e = s_j = opt.init(p_e)

    @fa.jit
    def step(p, s):
        return opt.update(fa.grad(loss_fa)(p), s, p)

    for _ in range(5):
        p_e, s_e = opt.update(fa.grad(loss_fa)(p_e), s_e, p_e)
        p_j, s_j = step(p_j, s_j)
    for k in p_e:
        np.testing.assert_allclose(np.asarray(p_j[k]), np.asarray(p_e[k]), rtol=1e-12)


def test_float32_params_stay_float32():
    p = {"w": fa.ones((3,), dtype=fa.float32)}
    for name in ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam"]:
        opt = getattr(of, name)()
        new, _ = opt.update({"w": fa.ones((3,), dtype=fa.float32)}, opt.init(p), p)
        assert new["w"].dtype == fa.float32, name


def test_learning_rate_may_be_an_array():
    opt = of.sgd(lr=fa.asarray(0.5))
    p = [fa.asarray([1.0, 2.0])]
    new, _ = opt.update([fa.asarray([1.0, 1.0])], opt.init(p), p)
    np.testing.assert_allclose(np.asarray(new[0]), [0.5, 1.5])


def test_mismatched_structures_and_shapes_raise():
    opt = of.adam()
    p = {"a": fa.zeros(3)}
    with pytest.raises(ValueError, match="grads have structure"):
        opt.update([fa.zeros(3)], opt.init(p), p)
    with pytest.raises(ValueError, match=r"shape \(2,\) for a parameter of shape \(3,\)"):
        opt.update({"a": fa.zeros(2)}, opt.init(p), p)
    with pytest.raises(ValueError, match="invalid nesterov"):
        of.sgd(nesterov=True)
    with pytest.raises(ValueError, match="invalid beta1"):
        of.adam(betas=(1.0, 0.9))
