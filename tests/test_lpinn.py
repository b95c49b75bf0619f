"""Lagrangian PINNs (sciml.pinn.lpinn) and the periodic transport problems they solve."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sciml.errors import ConfigError, NonFiniteError, ProblemError, ShapeError, UnknownNameError
from sciml.fields import Grid
from sciml.geometry import Domain
from sciml.models.mlp import MLP
from sciml.pinn import PrecisionSwitch, pinn_phases
from sciml.pinn.lpinn import LagrangianPINNTask, lagrangian_to_eulerian
from sciml.problem import Dirichlet, Initial, Problem, load_problem
from sciml.train import Trainer

TWO_PI = 2.0 * math.pi


def _solve(problem: Problem, grid: Grid | None = None) -> np.ndarray:
    """The reference on ``grid`` (Problem.solve needs an input; these problems have none)."""
    grid = grid or problem.grid
    return problem.reference({}, grid, dict(problem.params))["u"][0]


def _module(name: str):
    """The problem file's module (for its make_problem factory)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"lpinn_test_{name}", load_problem(name).source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _with(name: str, **params: float) -> Problem:
    """A variant of a problem from its factory (the Burgers initial condition depends on C)."""
    return _module(name).make_problem(**params)


class Lambda(nn.Module):
    """A fixed branch from a formula of the features ``(cos x0, sin x0, tau)``."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn
        self.dummy = nn.Parameter(torch.zeros(()))  # the Trainer wants something to train

    def forward(self, f):
        return self.fn(f)[:, None] + 0.0 * self.dummy


class Exact(nn.Module):
    """The exact Eulerian solution of a problem as a network of the points (float64)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x[:, 0], x[:, 1])[:, None]


def _points(n: int, t_end: float = 1.0, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = np.stack([rng.uniform(0, TWO_PI, n), rng.uniform(0, t_end, n)], 1)
    return torch.as_tensor(x, dtype=torch.float64)


# -- the problems -----------------------------------------------------------------------------------
@pytest.mark.parametrize("c, nu", [(30.0, 0.0), (50.0, 0.01)])
def test_convection_exact_solution_has_zero_residual(c, nu):
    problem = _with("convection", c=c, nu=nu)
    x = _points(200).requires_grad_(True)
    u = Exact(lambda x, t: torch.exp(-nu * t) * torch.sin(x - c * t))(x)
    res = problem.equation(u, x, dict(problem.params))
    assert float(res.detach().abs().max()) < 1e-10
    wrong = Exact(lambda x, t: torch.sin(x - (c + 1) * t))(x)  # the check can fail
    assert float(problem.equation(wrong, x, dict(problem.params)).detach().abs().max()) > 0.5
    field = _solve(problem)
    xg, tg = np.meshgrid(*problem.grid.axes, indexing="ij")
    assert np.allclose(field, np.exp(-nu * tg) * np.sin(xg - c * tg), atol=1e-14)


@pytest.mark.parametrize("drift", [0.0, 10.0])
def test_periodic_burgers_reference_satisfies_the_equation(drift):
    """Spectral u_x, u_xx and a centred u_t of the Cole-Hopf reference: the residual is round-off small."""
    problem = _with("burgers_periodic", C=drift)
    nu, n, h = problem.params["nu"], 256, 1e-4
    grid = Grid((n + 1, 3), bounds=((0.0, TWO_PI), (0.3 - h, 0.3 + h)))
    u = _solve(problem, grid)[:-1]  # drop x = 2 pi, the copy of x = 0
    k = np.fft.rfftfreq(n, d=1.0 / n)
    spec = np.fft.rfft(u[:, 1])
    u_x = np.fft.irfft(1j * k * spec, n)
    u_xx = np.fft.irfft(-(k**2) * spec, n)
    u_t = (u[:, 2] - u[:, 0]) / (2 * h)
    res = u_t + u[:, 1] * u_x - nu * u_xx
    assert np.abs(res).max() < 1e-5 * (1 + abs(drift))
    assert np.abs(u_t).max() > 0.1  # the solution moves: the check is not vacuous
    full = _solve(problem)
    assert np.allclose(full[0], full[-1], atol=1e-12)  # periodic in x
    x0 = problem.grid.axes[0]
    assert np.allclose(full[:, 0], np.sin(x0) + drift, atol=1e-14)  # the initial condition


def test_problem_factories_validate():
    for name, bad in (("convection", {"nu": -1.0}), ("convection", {"c": math.nan}),
                      ("burgers_periodic", {"nu": 0.0}), ("burgers_periodic", {"t_end": -1.0})):
        with pytest.raises(ConfigError):
            _with(name, **bad)
    assert _with("burgers_periodic", C=3.0, t_end=0.25).domain.bbox[1, 1] == 0.25


# -- the map back to the Eulerian grid --------------------------------------------------------------
def test_interpolation_is_exact_on_coinciding_nodes_and_accurate_elsewhere():
    n = 128
    feet = TWO_PI * np.arange(n) / n
    shift = 37 * TWO_PI / n + 5 * TWO_PI  # positions leave the cell: they must be wrapped
    got = lagrangian_to_eulerian(feet + shift, np.cos(3 * feet), feet, TWO_PI)
    assert np.allclose(got, np.cos(3 * (feet - shift)), atol=1e-12)
    x = np.linspace(-1.0, 8.0, 301)  # outside [0, 2 pi) too
    smooth = lagrangian_to_eulerian(feet + 0.3 * np.sin(feet) + 1.1, np.sin(feet), x, TWO_PI)
    # the exact Eulerian field: invert x = x0 + 0.3 sin x0 + 1.1 by Newton
    x0 = x - 1.1
    for _ in range(50):
        x0 -= (x0 + 0.3 * np.sin(x0) + 1.1 - x) / (1 + 0.3 * np.cos(x0))
    assert np.abs(smooth - np.sin(x0)).max() < 1e-6
    linear = lagrangian_to_eulerian(feet + 0.3 * np.sin(feet) + 1.1, np.sin(feet), x, TWO_PI, method="linear")
    assert 1e-6 < np.abs(linear - np.sin(x0)).max() < 1e-3  # second order, visibly less accurate


def test_interpolation_rejects_bad_input():
    with pytest.raises(ShapeError):
        lagrangian_to_eulerian(np.zeros(10), np.zeros(9), np.zeros(3), 1.0)
    with pytest.raises(NonFiniteError):
        lagrangian_to_eulerian(np.r_[np.nan, np.arange(9.0)], np.zeros(10), np.zeros(3), 1.0)
    with pytest.raises(ConfigError):
        lagrangian_to_eulerian(np.arange(10.0), np.zeros(10), np.zeros(3), 0.0)
    with pytest.raises(UnknownNameError):
        lagrangian_to_eulerian(np.arange(10.0), np.zeros(10), np.zeros(3), 1.0, method="spline")


# -- the task with known branches ---------------------------------------------------------------------
def test_exact_branches_give_zero_residuals_and_the_exact_eulerian_field():
    c, nu = 30.0, 0.01
    problem = _with("convection", c=c, nu=nu)
    # hard initial conditions: X = x0 + t S N_X, U = sin x0 + t N_U with S = c
    chars = Lambda(lambda f: torch.ones_like(f[:, 0]))
    state = Lambda(lambda f: (torch.exp(-nu * f[:, 2]) - 1) / f[:, 2].clamp_min(1e-12) * f[:, 1])
    task = LagrangianPINNTask(problem, chars, state, n_interior=300, dtype=torch.float64)
    x = task._x_interior.detach().requires_grad_(True)
    res = task.residuals(x)
    assert float(res["pde_characteristics"].detach().abs().max()) < 1e-12
    assert float(res["pde_state"].detach().abs().max()) < 1e-7
    m = task.metrics()
    assert m["rel_l2"] < 1e-6 and abs(m["min_jacobian"] - 1) < 1e-9
    assert set(m) >= {"pde_characteristics", "pde_state", "loss", "rel_l2", "mse"}


def test_chain_rule_second_derivative_through_a_converging_map():
    """X = x0 + a t sin x0 (dX/dx0 != 1), U = cos x0: u_x, u_xx from the full chain rule."""
    a = 0.6
    problem = _with("burgers_periodic")
    # soft initial conditions: X = x0 + S N_X with S = 1, U = N_U
    chars = Lambda(lambda f: a * f[:, 2] * 0.5 * f[:, 1])  # tau = t / 0.5 on the default t range
    state = Lambda(lambda f: f[:, 0])
    task = LagrangianPINNTask(problem, chars, state, speed="state", speed_scale=1.0, hard_initial=False,
                              n_interior=64, dtype=torch.float64)
    x = _points(200, t_end=0.5, seed=3).requires_grad_(True)
    d = task.eulerian_derivatives(x)
    x0, t = x[:, 0].detach(), x[:, 1].detach()
    jac = 1 + a * t * torch.cos(x0)
    u_x = -torch.sin(x0) / jac
    u_xx = (-torch.cos(x0) * jac - a * t * torch.sin(x0) ** 2) / jac**3
    assert torch.allclose(d["X_x0"], jac, atol=1e-12)
    assert torch.allclose(d["u_x"], u_x, atol=1e-12)
    assert torch.allclose(d["u_xx"], u_xx, atol=1e-10)
    # the constant-speed shortcut U_x0x0 would be wrong here: the check tells the two apart
    assert float((u_xx + torch.cos(x0)).abs().max()) > 0.1


# -- training ----------------------------------------------------------------------------------------
def test_constant_speed_characteristics_are_learned():
    torch.manual_seed(0)
    problem = _with("convection", c=30.0, nu=0.0)
    task = LagrangianPINNTask(problem, hidden=(16, 16), n_interior=256, n_lagrangian=256, seed=1)
    before = task.metrics()["rel_l2"]
    phases = pinn_phases(50, 8, lr=1e-2, max_iter=20)
    Trainer(task, phases=phases, callbacks=[PrecisionSwitch(50)], progress=False, eval_every=1000).fit()
    feet = np.stack([np.linspace(0, TWO_PI, 50), np.linspace(0, 1, 50)], 1)
    big_x, _ = task.predict_lagrangian(feet)
    assert np.abs(big_x - (feet[:, 0] + 30.0 * feet[:, 1])).max() < 2e-2
    after = task.metrics()["rel_l2"]
    assert after < 2e-2 < before


def test_tiny_burgers_run_learns():
    problem = _with("burgers_periodic", C=2.0)
    task = LagrangianPINNTask(problem, speed="state", hidden=(16, 16), n_interior=256, n_lagrangian=256,
                              seed=0)
    before = task.metrics()["rel_l2"]
    phases = pinn_phases(100, 10, lr=1e-2, max_iter=20)
    Trainer(task, phases=phases, callbacks=[PrecisionSwitch(100)], progress=False, eval_every=1000).fit()
    after = task.metrics()
    assert after["rel_l2"] < 2e-2 and after["rel_l2"] < before / 5
    assert after["min_jacobian"] > 0.3  # converging, not crossing, characteristics


def test_soft_initial_terms_and_checkpoint_state():
    problem = _with("convection", c=10.0, nu=0.0)
    task = LagrangianPINNTask(problem, hidden=(8,), hard_initial=False, n_interior=32, n_initial=16, seed=4,
                              resample_every=1)
    assert set(task.loss_terms()) == {"pde_characteristics", "pde_state", "ic_characteristics", "ic"}
    state = task.state_for_checkpoint()
    other = LagrangianPINNTask(problem, hidden=(8,), hard_initial=False, n_interior=32, n_initial=16, seed=9,
                               resample_every=1)
    other.load_state_for_checkpoint(state)
    assert torch.equal(other._x_interior, task._x_interior)
    task._step = other._step = 3
    task.sample()
    other.sample()  # the same RNG state draws the same fresh points
    assert torch.equal(other._x_interior, task._x_interior)


def test_checkpoint_and_resume_through_the_trainer(tmp_path, monkeypatch):
    from sciml.train import logging as logging_module
    from sciml.train.checkpoint import list_checkpoints

    monkeypatch.setattr(logging_module, "plot_history", lambda *a: None)  # matplotlib's import: seconds

    problem = _with("convection", c=10.0, nu=0.01)

    def make():
        return LagrangianPINNTask(problem, hidden=(8,), n_interior=32, n_lagrangian=64, seed=2, resample_every=2)

    full = Trainer(make(), steps=6, progress=False, seed=0, out_dir=tmp_path, checkpoint_every=3,
                   keep_checkpoints=5, eval_every=100)
    full.fit()
    middle = {int(p.stem.split("_")[1]): p for p in list_checkpoints(tmp_path)}[3]
    resumed = Trainer(make(), steps=6, progress=False, seed=0, eval_every=100).resume(middle)
    assert resumed.step == 3
    resumed.fit()
    for a, b in zip(full.task.parameters(), resumed.task.parameters(), strict=True):
        assert torch.equal(a, b)  # the points drawn after the resume are the same too
    assert torch.equal(full.task._x_interior, resumed.task._x_interior)
    # a trained LPINN is loaded back into a rebuilt task without a Trainer
    from sciml.train import restore

    loaded = make()
    restore(loaded, tmp_path)
    for a, b in zip(full.task.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(a, b)


# -- bad inputs -----------------------------------------------------------------------------------------
def test_bad_problems_and_settings_are_rejected():
    dirichlet = Problem(name="d", inputs=[], outputs=["u"], domain=Domain.rectangle([0, 0], [1, 1]),
                        conditions=[Dirichlet(0.0), Initial(0.0, time_axis=1)], params={"c": 1.0, "nu": 0.0})
    with pytest.raises(ProblemError, match="Periodic"):
        LagrangianPINNTask(dirichlet, hidden=(4,), n_interior=8)
    conv = load_problem("convection")
    with pytest.raises(ProblemError, match="no such param"):
        LagrangianPINNTask(conv, speed="speed", hidden=(4,), n_interior=8)
    with pytest.raises(ConfigError):
        LagrangianPINNTask(conv, nu=-0.1, hidden=(4,), n_interior=8)
    with pytest.raises(ConfigError):
        LagrangianPINNTask(conv, speed_scale=0.0, hidden=(4,), n_interior=8)
    with pytest.raises(UnknownNameError):
        LagrangianPINNTask(conv, interpolation="quadratic", hidden=(4,), n_interior=8)
    with pytest.raises(ConfigError):
        LagrangianPINNTask(conv, "not a module", hidden=(4,), n_interior=8)
    with pytest.raises(ShapeError, match="branch output"):
        LagrangianPINNTask(conv, MLP(3, 2, (4,)), hidden=(4,), n_interior=8)


def test_bad_point_sets_are_rejected():
    conv = load_problem("convection")
    good = np.array([[1.0, 0.5], [2.0, 0.1]])
    with pytest.raises(ShapeError):
        LagrangianPINNTask(conv, hidden=(4,), points={"interior": good[:, :1]})
    with pytest.raises(NonFiniteError):
        LagrangianPINNTask(conv, hidden=(4,), points={"interior": np.r_[good, [[np.nan, 0.2]]]})
    with pytest.raises(ConfigError):  # outside the domain (t > 1)
        LagrangianPINNTask(conv, hidden=(4,), points={"interior": np.r_[good, [[1.0, 3.0]]]})
    with pytest.raises(ConfigError):  # initial points must lie at t = 0
        LagrangianPINNTask(conv, hidden=(4,), hard_initial=False, points={"initial": good})
    with pytest.raises(UnknownNameError):
        LagrangianPINNTask(conv, hidden=(4,), points={"boundary": good})
    task = LagrangianPINNTask(conv, hidden=(4,), points={"interior": good})
    assert task.point_sets()["interior"].shape == (2, 2)
    with pytest.raises(ShapeError):
        task.predict(np.zeros((3, 3)))
    with pytest.raises(NonFiniteError):
        task.predict_lagrangian(np.array([[np.inf, 0.0]]))
