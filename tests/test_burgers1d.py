"""The FNO Burgers problem (problems/burgers1d.py) and its spectral reference (sciml.numerics.spectral)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sciml.errors import ConfigError, NonFiniteError, ShapeError
from sciml.fields import Grid
from sciml.numerics.burgers import cole_hopf
from sciml.numerics.spectral import burgers_etdrk4, etdrk4_coefficients
from sciml.problem import load_problem
from sciml.spaces import GRF

NU = 0.1


def _fourier_interpolate(u: np.ndarray, n: int) -> np.ndarray:
    """The trigonometric interpolant of periodic samples ``(B, m)`` at ``n >= m`` points (Nyquist split)."""
    m = u.shape[-1]
    spec = np.zeros((u.shape[0], n // 2 + 1), dtype=complex)
    spec[:, : m // 2 + 1] = np.fft.rfft(u, axis=-1)
    if m % 2 == 0:
        spec[:, m // 2] *= 0.5
    return np.fft.irfft(spec * (n / m), n, axis=-1)


def _band_limited_data(batch: int, modes: int, seed: int) -> np.ndarray:
    """The FNO initial-data law truncated to ``modes`` wavenumbers, on ``2 modes`` periodic points."""
    space = load_problem("burgers1d").input("u0").space
    return space.sample(batch, Grid(2 * modes + 1), seed)[:, :-1]


def test_input_space_is_the_fno_gaussian_field():
    problem = load_problem("burgers1d")
    space = problem.input("u0").space
    assert isinstance(space, GRF)
    assert (space.alpha, space.tau, space.sigma, space.boundary) == (2.0, 5.0, 25.0, "periodic")
    assert (
        problem.params == {"nu": 0.1, "t_end": 1.0}
        and problem.grid == Grid(513)
        and problem.solve_stride == 2
    )
    # Pointwise variance of N(0, 625 (-Laplace + 25)^-2) on [0, 1) without the constant mode, truncated to
    # the 64 modes of a 128-point grid (the rest adds < 1e-6).
    k = np.arange(1, 65)
    variance = 2 * np.sum(625.0 * ((2 * np.pi * k) ** 2 + 25.0) ** -2.0)
    u = space.sample(4000, Grid(129), 0)
    assert np.array_equal(u[:, 0], u[:, -1])  # the last node is the first one again
    np.testing.assert_allclose(u[:, :-1].mean(axis=1), 0.0, atol=1e-12)  # zero-mean samples
    assert u[:, :-1].var() == pytest.approx(variance, rel=0.03)
    assert variance == pytest.approx(0.35, abs=0.01)


def test_reference_converges_spectrally_in_space():
    # The same band-limited data (8 modes, the FNO law) on 16 .. 64 points against 512: the error falls
    # faster than any power of the grid and reaches round-off by 64 points (nu = 0.1 smooths quickly).
    u0 = _band_limited_data(6, modes=8, seed=1)
    fine = burgers_etdrk4(_fourier_interpolate(u0, 512), NU, 1.0, n_steps=200)
    scale = np.abs(fine).max()
    errors = {}
    for n in (16, 32, 64):
        u = burgers_etdrk4(_fourier_interpolate(u0, n), NU, 1.0, n_steps=200)
        errors[n] = np.abs(u - fine[:, :: 512 // n]).max() / scale
    assert 1e-8 < errors[16] < 1e-4
    assert errors[32] < 1e-11 and errors[32] < 1e-4 * errors[16]
    assert errors[64] < 1e-13


def test_problem_resolution_is_converged_for_the_rough_fno_data():
    # A GRF drawn on 1024 points (the problem's solve grid) has modes up to 512 decaying like k^-2;
    # solving it on 1024 or 2048 points gives the same u(., 1) to round-off.
    space = load_problem("burgers1d").input("u0").space
    u0 = space.sample(2, Grid(1025), 3)[:, :-1]
    coarse = burgers_etdrk4(u0, NU, 1.0, n_steps=250)
    fine = burgers_etdrk4(_fourier_interpolate(u0, 2048), NU, 1.0, n_steps=250)
    assert np.abs(coarse - fine[:, ::2]).max() < 1e-12 * np.abs(fine).max()


def test_reference_is_fourth_order_in_time_and_default_step_is_accurate():
    u0 = _fourier_interpolate(_band_limited_data(4, modes=8, seed=2), 64)
    exact = burgers_etdrk4(u0, NU, 1.0, n_steps=4096)
    scale = np.abs(exact).max()
    errors = [
        np.abs(burgers_etdrk4(u0, NU, 1.0, n_steps=s) - exact).max() / scale for s in (64, 128, 256, 512)
    ]
    ratios = [a / b for a, b in zip(errors[:-1], errors[1:])]
    assert all(12.0 < r < 20.0 for r in ratios[1:]), (errors, ratios)  # 2^4 = 16 once asymptotic
    assert errors[-1] < 1e-8
    # the default step (h = 1e-3) on the rough data of the problem: about 4e-9 relative
    rough = load_problem("burgers1d").input("u0").space.sample(2, Grid(257), 4)[:, :-1]
    default = burgers_etdrk4(rough, NU, 1.0)
    accurate = burgers_etdrk4(rough, NU, 1.0, n_steps=4000)
    assert np.abs(default - accurate).max() < 2e-8 * np.abs(accurate).max()


def _initial(y):
    return np.sin(2 * np.pi * y) + 0.5 * np.cos(4 * np.pi * y)


def _potential(y):  # int_0^y of _initial
    return (1 - np.cos(2 * np.pi * y)) / (2 * np.pi) + 0.5 * np.sin(4 * np.pi * y) / (4 * np.pi)


def test_problem_reference_matches_cole_hopf():
    problem = load_problem("burgers1d")
    grid = Grid(65)
    u = problem.solve(grid, u0="sin(2*pi*x) + 0.5*cos(4*pi*x)")["u"].numpy()
    exact = cole_hopf(grid.axes[0], 1.0, NU, u0=_initial, potential=_potential, n_quad=800)
    assert np.abs(u - exact).max() < 1e-11  # |u| is about 0.02 at t = 1
    assert u[0] == u[-1]
    # at an earlier time, where the solution is still O(1) and steeper
    x = np.arange(64) / 64
    early = burgers_etdrk4(_initial(x), NU, 0.25)
    exact = cole_hopf(x, 0.25, NU, u0=_initial, potential=_potential, n_quad=800)
    assert np.abs(early - exact).max() < 1e-10


def test_make_samples_subsamples_the_fine_solve():
    problem = load_problem("burgers1d")
    inputs, outputs = problem.make_samples(3, Grid(33), seed=5)
    u0, u = inputs["u0"], outputs["u"]
    assert u0.shape == u.shape == (3, 33) and u.dtype == np.float64
    assert np.array_equal(u[:, 0], u[:, -1])
    np.testing.assert_allclose(u[:, :-1].mean(axis=1), 0.0, atol=1e-14)  # Burgers conserves the mean
    # the pair is the fine solve (65 nodes, 64 periodic points) subsampled
    fine = problem.sample_inputs(3, Grid(65), seed=5)["u0"]
    np.testing.assert_array_equal(fine[:, ::2], u0)
    np.testing.assert_allclose(
        problem.solve_batch({"u0": fine}, Grid(65))["u"][:, ::2], u, rtol=0, atol=1e-15
    )
    # translation equivariance: shifting the data by whole grid cells shifts the solution
    rolled = np.roll(u0[:, :-1], 5, axis=1)
    shifted = problem.solve_batch({"u0": np.concatenate([rolled, rolled[:, :1]], axis=1)}, Grid(33))["u"]
    base = problem.solve_batch({"u0": u0}, Grid(33))["u"]  # solved on 32 points (not the data's 64)
    np.testing.assert_allclose(shifted[:, :-1], np.roll(base[:, :-1], 5, axis=1), rtol=0, atol=1e-15)


def test_input_checks():
    problem = load_problem("burgers1d")
    with pytest.raises(ConfigError, match="periodic"):
        problem.solve(Grid(33), u0="x")
    with pytest.raises(ConfigError, match="nu > 0"):
        burgers_etdrk4(np.zeros(16), 0.0, 1.0)
    with pytest.raises(ConfigError, match="t_end >= 0"):
        burgers_etdrk4(np.zeros(16), 0.1, -1.0)
    with pytest.raises(ConfigError, match="at least 4"):
        burgers_etdrk4(np.zeros(3), 0.1, 1.0)
    with pytest.raises(ShapeError):
        burgers_etdrk4(np.zeros((2, 2, 8)), 0.1, 1.0)
    with pytest.raises(NonFiniteError):
        burgers_etdrk4(np.full(8, np.nan), 0.1, 1.0)
    with pytest.raises(ConfigError, match="n_steps"):
        burgers_etdrk4(np.zeros(8), 0.1, 1.0, n_steps=0)
    np.testing.assert_array_equal(burgers_etdrk4(np.arange(8.0), 0.1, 0.0), np.arange(8.0))


def test_etdrk4_coefficients_match_their_closed_forms():
    # away from z = h L = 0 the closed forms are accurate; the contour means must agree with them
    lin, h = -np.array([5.0, 30.0, 400.0, 1e5]), 0.1
    z = h * lin
    c = etdrk4_coefficients(lin, h)
    np.testing.assert_allclose(c["Q"], h * (np.exp(z / 2) - 1) / z, rtol=1e-12)
    np.testing.assert_allclose(c["f1"], h * (-4 - z + np.exp(z) * (4 - 3 * z + z**2)) / z**3, rtol=1e-12)
    np.testing.assert_allclose(c["f2"], h * (2 + z + np.exp(z) * (z - 2)) / z**3, rtol=1e-12)
    np.testing.assert_allclose(c["f3"], h * (-4 - 3 * z - z**2 + np.exp(z) * (4 - z)) / z**3, rtol=1e-12)
    # and at z = 0 their limits h/2, h/6, h/6, h/6
    np.testing.assert_allclose(
        [etdrk4_coefficients(np.zeros(1), h)[k][0] for k in ("Q", "f1", "f2", "f3")],
        [h / 2, h / 6, h / 6, h / 6],
        rtol=1e-13,
    )
    assert math.isclose(float(c["E"][0]), math.exp(-0.5)) and math.isclose(float(c["E2"][0]), math.exp(-0.25))
