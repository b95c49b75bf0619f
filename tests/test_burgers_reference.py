"""The Cole-Hopf reference of viscous Burgers (sciml.numerics.burgers) and the burgers1d_pinn problem."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from sciml.errors import ConfigError, NonFiniteError, ShapeError
from sciml.numerics.burgers import burgers_grid_solution, cole_hopf
from sciml.problem import load_problem

NU = 0.01 / math.pi


def test_steepest_slope_matches_basdevant():
    # Basdevant et al. (1986): max_t |u_x(0, t)| = 152.00516 at t = 1.6037 / pi for nu = 0.01 / pi.
    def slope(t):
        return -abs(float(cole_hopf(0.0, t, NU, derivative=True)[1]))

    best = minimize_scalar(slope, bounds=(0.4, 0.6), method="bounded", options={"xatol": 1e-9})
    assert -best.fun == pytest.approx(152.00516, abs=5e-5)
    assert best.x * math.pi == pytest.approx(1.6037, abs=1e-4)


def test_quadrature_has_converged_on_deepxde_grid():
    x, t, u = burgers_grid_solution(n_quad=100)
    _, _, fine = burgers_grid_solution(n_quad=400)
    assert u.shape == (256, 100) and x[0] == -1 and t[-1] == pytest.approx(0.99)
    assert np.abs(u - fine).max() < 1e-12
    np.testing.assert_allclose(u[:, 0], -np.sin(np.pi * x), atol=1e-15)
    assert np.abs(u[[0, -1]]).max() < 1e-12  # u(+-1, t) = 0
    np.testing.assert_allclose(u, -u[::-1], atol=1e-12)  # odd in x


def test_pde_residual_by_finite_differences():
    rng = np.random.default_rng(0)
    x, t = rng.uniform(-0.9, 0.9, 40), rng.uniform(0.1, 0.9, 40)
    h = 1e-5  # the front is steep (u_x ~ 100): truncation error ~ h^2 u_xxx
    u, ux = cole_hopf(x, t, NU, derivative=True)
    u_t = (cole_hopf(x, t + h, NU) - cole_hopf(x, t - h, NU)) / (2 * h)
    slope_right = cole_hopf(x + h, t, NU, derivative=True)[1]
    u_xx = (slope_right - cole_hopf(x - h, t, NU, derivative=True)[1]) / (2 * h)
    residual = u_t + u * ux - NU * u_xx
    scale = np.abs(u_t) + np.abs(u * ux) + NU * np.abs(u_xx)
    assert np.all(np.abs(residual) <= 1e-5 * np.maximum(scale, 1.0))
    # u_x returned by the quadrature is the derivative of u
    fd = (cole_hopf(x + h, t, NU) - cole_hopf(x - h, t, NU)) / (2 * h)
    np.testing.assert_allclose(ux, fd, rtol=1e-6, atol=1e-6)


def test_constant_data_stays_constant_and_custom_data():
    u = cole_hopf(np.linspace(-2, 2, 7), 0.3, 0.05, u0=lambda y: 0.7 + 0 * y, potential=lambda y: 0.7 * y)
    np.testing.assert_allclose(u, 0.7, atol=1e-12)


def test_input_checks():
    with pytest.raises(ConfigError, match="nu > 0"):
        cole_hopf(0.0, 0.5, 0.0)
    with pytest.raises(ConfigError, match="t >= 0"):
        cole_hopf(0.0, -0.1, NU)
    with pytest.raises(ConfigError, match="both"):
        cole_hopf(0.0, 0.5, NU, u0=np.sin)
    with pytest.raises(NonFiniteError):
        cole_hopf(np.nan, 0.5, NU)
    with pytest.raises(ShapeError):
        cole_hopf(np.zeros(3), np.zeros(4), NU)


def test_problem_reference_is_the_cole_hopf_solution():
    problem = load_problem("burgers1d_pinn")
    assert problem.params["nu"] == pytest.approx(NU)
    out = problem.reference({}, problem.grid, problem.params)["u"]
    _, _, u = burgers_grid_solution()
    assert out.shape == (1, 256, 100)
    np.testing.assert_allclose(out[0], u, atol=1e-13)
