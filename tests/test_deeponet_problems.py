"""DeepONet problems and their reference solvers; sensors and the two data layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp
from scipy.interpolate import CubicSpline

import sciml
from sciml.deeponet.data import DeepONetData, Sensors, interpolate_cubic, make_deeponet_data
from sciml.errors import ConfigError, ShapeError, UnknownNameError
from sciml.numerics import rk4, solve_diffusion_reaction, spline_antiderivative
from sciml.numerics.diffusion_reaction import thomas


# -- reference solvers --------------------------------------------------------------------------------
def test_spline_antiderivative_is_exact():
    x = np.linspace(0.0, 1.0, 11)
    cubic = 1 - 2 * x + 3 * x**2 - 4 * x**3  # a cubic is its own spline: the integral is exact
    s = spline_antiderivative(cubic, x)
    np.testing.assert_allclose(s[0], x - x**2 + x**3 - x**4, atol=1e-14)
    fine = np.linspace(0.0, 1.0, 991)
    s = spline_antiderivative(np.cos(2 * np.pi * fine), fine)
    np.testing.assert_allclose(s[0], np.sin(2 * np.pi * fine) / (2 * np.pi), atol=1e-11)
    with pytest.raises(ShapeError):
        spline_antiderivative(np.ones((2, 10)), x)


def test_antiderivative_problem_labels():
    problem = sciml.load_problem("antiderivative")
    assert problem.grid.shape == (100,) and problem.solve_stride == 10
    inputs, outputs = problem.make_samples(4, problem.grid, seed=0)
    u, s = inputs["u"], outputs["s"]
    assert u.shape == s.shape == (4, 100)
    assert np.all(s[:, 0] == 0)
    # ds/dx = u: centred differences of the labels match u to O(h^2)
    h = problem.grid.spacing[0]
    np.testing.assert_allclose((s[:, 2:] - s[:, :-2]) / (2 * h), u[:, 1:-1], atol=2e-3 * np.abs(u).max())
    # the labels of a formula: the exact integral of its spline on the grid, O(h^4) from the true one
    s = problem.solve(u="cos(2*pi*x)")["s"].numpy()
    np.testing.assert_allclose(s, np.sin(2 * np.pi * problem.grid.axes[0]) / (2 * np.pi), atol=1e-8)


def test_rk4_matches_a_tight_adaptive_solver():
    t = np.linspace(0.0, 1.0, 201)
    forcing = np.stack([np.cos(3 * t), np.exp(-t) * np.sin(7 * t)])

    def rhs(time, s, u):
        return np.stack([s[:, 1], -np.sin(s[:, 0]) + u], axis=1)

    states = rk4(rhs, [0.0, 0.0], t, forcing=forcing)
    assert states.shape == (2, 201, 2)
    for k in range(2):
        spline = CubicSpline(t, forcing[k])

        def pendulum(tt, y, spline=spline):
            return [y[1], -np.sin(y[0]) + spline(tt)]

        ref = solve_ivp(pendulum, (0, 1), [0, 0], t_eval=t, method="DOP853", rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(states[k], ref.y.T, atol=1e-10)
    # fourth order: halving the step divides the error by ~16
    exact = np.exp(-t)[None, :, None]
    coarse = rk4(lambda tt, y, u: -y, [1.0], t[::40])
    fine = rk4(lambda tt, y, u: -y, [1.0], t[::20])
    ratio = np.abs(coarse[0, -1, 0] - exact[0, -1, 0]) / np.abs(fine[0, -1, 0] - exact[0, -1, 0])
    assert 12 < ratio < 20
    with pytest.raises(ShapeError):
        rk4(rhs, [0.0, 0.0], t, forcing=np.ones((2, 50)))


def test_pendulum_problem():
    problem = sciml.load_problem("pendulum")
    assert problem.outputs == ("s1", "s2") and problem.params["k"] == 1.0
    s = problem.solve(u="0*x")
    np.testing.assert_array_equal(s["s1"].numpy(), 0.0)  # at rest without forcing
    # small constant forcing: the linearised pendulum s1'' + s1 = eps, s1 = eps (1 - cos t)
    eps = 1e-4
    s1 = problem.solve(u=eps)["s1"].numpy()
    t = problem.grid.axes[0]
    np.testing.assert_allclose(s1, eps * (1 - np.cos(t)), atol=1e-11)
    inputs, outputs = problem.make_samples(3, problem.grid, seed=1)
    slope = np.gradient(outputs["s1"], t, axis=1)
    np.testing.assert_allclose(slope[:, 1:-1], outputs["s2"][:, 1:-1], atol=2e-3)


def test_diffusion_reaction_converges_at_second_order():
    d, k = 0.01, 0.01

    def error(n: int) -> float:
        x = t = np.linspace(0.0, 1.0, n)
        X, T = np.meshgrid(x, t, indexing="ij")
        exact = T * np.sin(np.pi * X)
        source = np.sin(np.pi * X) * (1 + d * np.pi**2 * T) - k * exact**2
        return float(np.abs(solve_diffusion_reaction(source[None], x, t, d, k)[0] - exact).max())

    e1, e2 = error(26), error(51)
    assert e2 < 1e-4 and 3.5 < e1 / e2 < 4.5


def test_diffusion_reaction_problem():
    problem = sciml.load_problem("diffusion_reaction")
    assert problem.grid.shape == (100, 100)
    inputs, outputs = problem.make_samples(3, problem.grid, seed=2)
    u, s = inputs["u"], outputs["s"]
    np.testing.assert_array_equal(u, np.broadcast_to(u[:, :, :1], u.shape))  # u(x) is constant in time
    assert np.all(s[:, :, 0] == 0) and np.all(s[:, 0] == 0) and np.all(s[:, -1] == 0)
    # a constant source for a short time: s ~ t u away from the boundary (diffusion and reaction small)
    s = problem.solve(u=1.0)["s"].numpy()
    t = problem.grid.axes[1]
    np.testing.assert_allclose(s[50, :10], t[:10], rtol=2e-3)


def test_thomas_matches_a_dense_solve():
    rng = np.random.default_rng(0)
    n = 9
    lower, upper = rng.normal(size=(3, n)), rng.normal(size=(3, n))
    diag = 4 + rng.random((3, n))
    rhs = rng.normal(size=(3, n))
    x = thomas(lower, diag, upper, rhs)
    for b in range(3):
        a = np.diag(diag[b]) + np.diag(lower[b, 1:], -1) + np.diag(upper[b, :-1], 1)
        np.testing.assert_allclose(a @ x[b], rhs[b], atol=1e-12)


# -- sensors and data ------------------------------------------------------------------------------------
def test_sensors():
    grid = sciml.Grid(9, ndim=2)
    boundary = Sensors.boundary(grid, "g", every=2)
    assert boundary.size == 16
    np.testing.assert_array_equal(boundary.nodes["g"][:3], [[0, 0], [2, 0], [4, 0]])  # perimeter order
    interior = Sensors.interior(grid, "f", stride=4)
    np.testing.assert_array_equal(interior.nodes["f"], [[4, 4]])
    both = boundary + interior
    assert both.names == ("g", "f") and both.size == 17
    values = {"g": np.arange(81.0).reshape(1, 9, 9), "f": np.full((1, 9, 9), 7.0)}
    read = both.read(values)
    assert read.shape == (1, 17) and read[0, 1] == 18.0 and read[0, -1] == 7.0
    np.testing.assert_allclose(both.coords("g")[1], [0.25, 0.0])
    assert Sensors.from_dict(both.to_dict()).to_dict() == both.to_dict()
    line = Sensors.grid_nodes(sciml.Grid((5, 4)), "u", fix={1: 0})
    np.testing.assert_array_equal(line.nodes["u"][:, 1], 0)
    with pytest.raises(ConfigError):
        boundary + Sensors.boundary(grid, "g")
    with pytest.raises(ConfigError):
        Sensors(grid, {"g": [[0, 9]]})
    with pytest.raises(ShapeError):
        Sensors(grid, {"g": [[0, 1, 2]]})
    with pytest.raises(UnknownNameError):
        both.read({"g": values["g"]})


def test_data_layouts():
    problem = sciml.load_problem("antiderivative")
    grid = sciml.Grid(21)
    sensors = Sensors.grid_nodes(grid, "u")
    aligned = make_deeponet_data(problem, 5, sensors, seed=3)
    assert aligned.layout == "cartesian" and aligned.x.shape == (21, 1) and aligned.y.shape == (5, 1, 21)
    again = make_deeponet_data(problem, 5, sensors, seed=3)
    assert torch.equal(again.u, aligned.u) and torch.equal(again.y, aligned.y)  # seeded
    nodes = make_deeponet_data(problem, 5, sensors, seed=3, query="nodes", n_points=4)
    assert nodes.layout == "pointwise" and nodes.x.shape == (5, 4, 1) and nodes.y.shape == (5, 1, 4)
    torch.testing.assert_close(nodes.u, aligned.u)  # same functions, other query points
    idx = torch.round(nodes.x[..., 0] * 20).long()
    torch.testing.assert_close(nodes.y[:, 0], torch.gather(aligned.y[:, 0], 1, idx))
    uniform = make_deeponet_data(problem, 5, sensors, seed=3, query="uniform", n_points=3)
    assert uniform.x.shape == (5, 3, 1) and float(uniform.x.min()) >= 0 and float(uniform.x.max()) <= 1
    # labels between nodes: the exact spline integral of the fine-grid sample, to interpolation accuracy
    fine = problem.solve_grid(grid)
    rng = np.random.default_rng(3)
    sample_rng, _ = rng.spawn(2)
    u_fine = problem.sample_inputs(5, fine, sample_rng)["u"]
    anti = CubicSpline(fine.axes[0], u_fine, axis=1).antiderivative()
    exact = np.stack([anti(uniform.x[i, :, 0].double().numpy())[i] for i in range(5)])
    np.testing.assert_allclose(uniform.y[:, 0].double().numpy(), exact, atol=1e-6)
    torch.testing.assert_close(uniform.u, aligned.u)
    subset = aligned.subset(slice(1, 3))
    assert len(subset) == 2 and subset.x.shape == (21, 1)
    batches = list(aligned.loader(batch_size=2))
    assert [b["u"].shape[0] for b in batches] == [2, 2, 1]
    with pytest.raises(ShapeError):
        DeepONetData(aligned.u, aligned.x, aligned.y[:, :, :20])


def test_local_cubic_interpolation_is_fourth_order():
    points = np.random.default_rng(4).random((1, 200, 2)) * [2.0, 2.0] - [0.0, 1.0]
    exact = np.sin(points[..., 0]) * np.cos(2 * points[..., 1])
    errors = []
    for shape in ((21, 16), (41, 31)):  # the spacing halves on both axes
        grid = sciml.Grid(shape, [(0.0, 2.0), (-1.0, 1.0)])
        X, Y = grid.coord_arrays().values()
        values = np.sin(X) * np.cos(2 * Y)
        errors.append(np.abs(interpolate_cubic(values[None], grid, points) - exact).max())
    assert errors[1] < 1e-5 and 10 < errors[0] / errors[1] < 24
