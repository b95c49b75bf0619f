"""PointSolver: a trained DeepONet answers new boundary data at arbitrary points."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.interpolate import RegularGridInterpolator

import sciml
from sciml.deeponet import DeepONetTask, Sensors, make_deeponet_data
from sciml.deeponet.solver import PointSolver
from sciml.errors import FixedInputError, ProblemError, ShapeError, UnknownNameError
from sciml.fields import Field
from sciml.models import build_model
from sciml.problem import Input
from sciml.train import Trainer

NEW_G = "sin(pi*x)*y + 0.5*cos(2*pi*y)*x"


@pytest.fixture(scope="module")
def laplace_solver():
    """A DeepONet for Laplace's equation (Poisson with f = 0): the branch reads g at boundary sensors."""
    torch.manual_seed(0)
    poisson = sciml.load_problem("poisson")
    laplace = dataclasses.replace(poisson, name="poisson_laplace",
                                  inputs=[poisson.input("g"), Input("f", value=0.0, description="no source")])
    grid = sciml.Grid(17, ndim=2)
    sensors = Sensors.boundary(grid, "g", every=2)  # 32 of the 64 boundary nodes, perimeter order
    train = make_deeponet_data(laplace, 300, sensors, seed=0)
    model = build_model("deeponet", branch=[sensors.size, 64, 64], trunk=[2, 64, 64], activation="relu")
    task = DeepONetTask(model, sensors, ["u"], train=train, normalize=True, problem=laplace)
    Trainer(task, steps=2500, lr=2e-3, device="cpu", progress=False, log_every=500).fit()
    return PointSolver(task, laplace)


def test_new_boundary_data_at_arbitrary_points(laplace_solver):
    solver = laplace_solver
    query = solver(g=NEW_G)  # f is fixed by the problem: g alone is a complete instance
    points = np.random.default_rng(1).random((200, 2))
    values = query(points)
    assert set(values) == {"u"} and values["u"].shape == (200,)
    # against the finite-difference solution on a 4x finer grid, interpolated to the points
    fine = sciml.Grid(65, ndim=2)
    reference = solver.problem.solve(fine, g=NEW_G)["u"].numpy()
    exact = RegularGridInterpolator(fine.axes, reference, method="cubic")(points)
    error = np.linalg.norm(values["u"] - exact) / np.linalg.norm(exact)
    assert error < 0.15, error  # ~0.075
    # on a grid: Fields, consistent with the point evaluation and with Solver-style comparisons
    fields = query.on(solver.grid)
    assert isinstance(fields["u"], Field) and fields["u"].values.shape == (17, 17)
    np.testing.assert_allclose(fields["u"].numpy().reshape(-1), query(solver.grid.points())["u"])
    assert solver.error(g=NEW_G)["u"] < 0.15
    one = query(np.array([0.3, 0.6]))["u"]  # a single point
    assert one.shape == (1,)


def test_inputs_are_read_exactly_at_the_sensors(laplace_solver):
    solver = laplace_solver
    coords = solver.sensors.coords("g")
    def g(x, y):
        return np.sin(np.pi * x) * y + 0.5 * np.cos(2 * np.pi * y) * x

    expected = g(coords[:, 0], coords[:, 1])
    np.testing.assert_allclose(solver.sensor_values(g=NEW_G), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(solver.sensor_values(g=g), expected, atol=1e-15)
    on_grid = solver.problem.prepare_inputs({"g": NEW_G}, solver.grid)["g"][0]
    np.testing.assert_allclose(solver.sensor_values(g=on_grid), expected, atol=1e-15)
    finer = sciml.Grid(33, ndim=2)  # a Field on another grid: its nodes include the sensors
    field = Field(solver.problem.prepare_inputs({"g": NEW_G}, finer)["g"][0], finer, "g")
    np.testing.assert_allclose(solver.sensor_values(g=field), expected, atol=1e-12)
    np.testing.assert_allclose(solver.sensor_values(g=2.5), 2.5)


def test_invalid_queries_are_rejected(laplace_solver):
    solver = laplace_solver
    with pytest.raises(FixedInputError, match="'f' was fixed when the model was trained"):
        solver(g=NEW_G, f=1.0)  # the network was trained with f = 0 and cannot respond to it
    solver(g=NEW_G, f=0.0)  # the fixed value itself is fine
    with pytest.raises(UnknownNameError):
        solver(h=NEW_G)
    with pytest.raises(ProblemError):
        solver()
    with pytest.raises(ShapeError):
        solver(g=NEW_G)(np.zeros((4, 3)))
    with pytest.raises(ShapeError):
        solver(g=np.zeros((16, 16)))
    with pytest.warns(RuntimeWarning, match="outside"):
        solver(g=NEW_G)(np.array([[1.5, 0.5]]))


def test_source_and_boundary_sensors_compose_exactly():
    """Branch vector = g at boundary sensors then f at interior sensors; the answer is the network's."""
    torch.manual_seed(2)
    poisson = sciml.load_problem("poisson")
    grid = sciml.Grid(17, ndim=2)
    sensors = Sensors.boundary(grid, "g", every=4) + Sensors.interior(grid, "f", stride=4)
    model = build_model("deeponet", branch=[sensors.size, 16, 16], trunk=[2, 16, 16])
    solver = PointSolver(DeepONetTask(model, sensors, ["u"], problem=poisson), poisson)
    values = solver.sensor_values(g="x + y", f="10*x*y")
    cg, cf = sensors.coords("g"), sensors.coords("f")
    np.testing.assert_allclose(values, np.concatenate([cg.sum(1), 10 * cf.prod(1)]))
    points = np.random.default_rng(3).random((9, 2))
    with torch.no_grad():
        direct = model(torch.tensor(values[None], dtype=torch.float32),
                       torch.tensor(points, dtype=torch.float32))
    answer = solver(g="x + y", f="10*x*y")(points)["u"]
    np.testing.assert_allclose(answer, direct[0, 0].double().numpy(), rtol=1e-6)
    with pytest.raises(ProblemError):
        solver(g="x + y")  # f is random in this problem and read by the branch


def test_load_from_a_run_directory(tmp_path):
    torch.manual_seed(4)
    problem = sciml.load_problem("antiderivative")
    grid = sciml.Grid(21)
    sensors = Sensors.grid_nodes(grid, "u")
    train = make_deeponet_data(problem, 40, sensors, seed=0)
    model = build_model("deeponet", branch=[21, 32, 32], trunk=[1, 32, 32])
    task = DeepONetTask(model, sensors, ["s"], train=train, normalize=True, problem=problem)
    Trainer(task, steps=300, lr=2e-3, device="cpu", progress=False, out_dir=tmp_path / "run").fit()
    loaded = PointSolver.load(tmp_path / "run", device="cpu")
    in_memory = PointSolver(task, problem)
    points = np.linspace(0, 1, 13)[:, None]
    answer = loaded(u="cos(3*x)")(points)["s"]
    np.testing.assert_allclose(answer, in_memory(u="cos(3*x)")(points)["s"], rtol=1e-6)
    assert loaded.task.normalize and loaded.output_names == ("s",)
    assert "antiderivative" in repr(loaded)
    # the one entry point: Solver.load sees a DeepONet run and rebuilds the point solver
    generic = sciml.Solver.load(tmp_path / "run", device="cpu")
    assert isinstance(generic, PointSolver)
    np.testing.assert_allclose(generic(u="cos(3*x)")(points)["s"], answer, rtol=1e-6)
    # and so does the command line, sampling the answer on the training grid
    from sciml.cli import main

    png = tmp_path / "s.png"
    assert main(["solve", str(tmp_path / "run"), "--set", "u=cos(3*x)", "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000
