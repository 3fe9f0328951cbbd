"""The RK4 ODE example: gradients through ``fori_loop``/``scan`` w.r.t. the parameters
agree with finite differences, and the parameter fit recovers the true values."""

from __future__ import annotations

import numpy as np

import fnarray as fa
from fnarray.examples import ode_rk4

STATE0 = fa.asarray([2.0, 1.0], dtype=fa.float64)
TRUE = fa.asarray(ode_rk4.TRUE_PARAMS, dtype=fa.float64)
GUESS = fa.asarray([0.8, 0.5, 0.9, 0.25], dtype=fa.float64)


def test_grad_of_rk4_solve_matches_finite_differences():
    target = ode_rk4.observe(TRUE, STATE0, 4, 0.5)
    f = lambda p: ode_rk4.loss(p, STATE0, target)  # noqa: E731
    g = np.asarray(fa.grad(f)(GUESS))
    eps, p0 = 1e-6, np.asarray(GUESS)
    fd = [(float(f(fa.asarray(p0 + eps * e))) - float(f(fa.asarray(p0 - eps * e)))) / (2 * eps)
          for e in np.eye(4)]
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(fa.jit(fa.grad(f))(GUESS)), g, rtol=1e-10)
    # forward and reverse mode agree on the Jacobian of the final state
    end = lambda p: ode_rk4.solve(p, STATE0, 2.0, 20)  # noqa: E731
    np.testing.assert_allclose(np.asarray(fa.jacrev(end)(GUESS)),
                               np.asarray(fa.jacfwd(end)(GUESS)), rtol=1e-9)


def test_jitted_gradient_program_does_not_grow_with_the_number_of_steps():
    def size(n):
        f = lambda p: fa.sum(ode_rk4.solve(p, STATE0, 1.0, n))  # noqa: E731
        return len(fa.make_ir(fa.grad(f))(GUESS))

    assert size(10) == size(1000)


def test_fit_recovers_the_parameters():
    first, last, params = ode_rk4.main(["--steps", "8"])
    assert last < 1e-12 < first
    np.testing.assert_allclose(params, ode_rk4.TRUE_PARAMS, rtol=1e-6)
