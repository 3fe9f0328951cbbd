"""Differentiate an ODE solve with respect to its parameters: fixed-step RK4 in
``fa.fori_loop`` (a ``scan`` under the hood, so ``fa.grad`` runs backwards through the
steps and ``fa.jit`` compiles one step whatever their number).

The system is Lotka-Volterra predator-prey dynamics::

    dx/dt = a x - b x y        dy/dt = d x y - c y

``main`` observes the populations of a system with known parameters every half time unit,
then recovers the parameters from a wrong initial guess by Levenberg-Marquardt on the
simulated observations, with the Jacobian from ``fa.jacfwd``; ``fa.grad`` of the loss
(reverse mode through the loops) is checked against finite differences in the tests.

Run: ``python -m fnarray.examples.ode_rk4 [--steps N]``.
"""

from __future__ import annotations

import argparse

import fnarray as fa

TRUE_PARAMS = (1.0, 0.4, 0.8, 0.2)  # a, b, c, d


def lotka_volterra(state, params):
    """Time derivative of ``state = [prey, predators]``."""
    a, b, c, d = params[0], params[1], params[2], params[3]
    x, y = state[0], state[1]
    return fa.stack([a * x - b * x * y, d * x * y - c * y])


def rk4_step(f, state, params, dt):
    k1 = f(state, params)
    k2 = f(state + 0.5 * dt * k1, params)
    k3 = f(state + 0.5 * dt * k2, params)
    k4 = f(state + dt * k3, params)
    return state + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def solve(params, state0, t_end: float, n_steps: int, f=lotka_volterra):
    """The state at ``t_end`` after ``n_steps`` RK4 steps from ``state0``."""
    dt = t_end / n_steps
    return fa.fori_loop(0, n_steps, lambda i, s: rk4_step(f, s, params, dt), state0)


def observe(params, state0, n_obs: int, interval: float, steps_per_interval: int = 10):
    """The state after each of ``n_obs`` intervals: a ``scan`` over the intervals whose
    body is an RK4 solve in ``fori_loop`` (nested loops, one traced step each)."""
    def one(state, _):
        nxt = solve(params, state, interval, steps_per_interval)
        return nxt, nxt

    return fa.scan(one, state0, None, length=n_obs)[1]


def residuals(params, state0, target, interval: float = 0.5):
    return fa.reshape(observe(params, state0, target.shape[0], interval) - target, (-1,))


def loss(params, state0, target, interval: float = 0.5):
    return fa.mean(residuals(params, state0, target, interval) ** 2)


def main(argv=None) -> tuple[float, float, list[float]]:
    """Fit the parameters by Levenberg-Marquardt (the Jacobian of the residuals by
    ``fa.jacfwd`` through the loops); returns (initial loss, final loss, parameters)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args(argv)
    state0 = fa.asarray([2.0, 1.0], dtype=fa.float64)
    target = observe(fa.asarray(TRUE_PARAMS, dtype=fa.float64), state0, 8, 0.5)
    params = fa.asarray([0.8, 0.5, 0.9, 0.25], dtype=fa.float64)
    res = fa.jit(lambda p: residuals(p, state0, target))
    jac = fa.jit(fa.jacfwd(lambda p: residuals(p, state0, target)))
    damping, first = 1e-2, None
    for i in range(args.steps):
        r, j = res(params), jac(params)
        value = float(fa.mean(r ** 2))
        first = value if first is None else first
        step = fa.linalg.solve(j.T @ j + damping * fa.eye(4, dtype=fa.float64), j.T @ r)
        candidate = params - step
        if float(fa.mean(res(candidate) ** 2)) < value:
            params, damping = candidate, damping * 0.3
        else:
            damping *= 10.0
        print(f"step {i:3d}  loss {value:.3e}  params {[round(v, 6) for v in params.tolist()]}")
    return first, float(fa.mean(res(params) ** 2)), params.tolist()


if __name__ == "__main__":
    main()
