"""Hard constraints of PINNs: the smooth built-in distance, HardConstraint / HardConstrained, and the jet."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from sciml import diff
from sciml.errors import ConfigError, SciMLWarning, ShapeError
from sciml.geometry import Domain
from sciml.models.mlp import MLP
from sciml.pinn import HardConstrained, HardConstraint, PINNTask, sample_boundary
from sciml.problem import Dirichlet, Initial, Problem
from sciml.train import Trainer

LSHAPE = [[-1, -1], [0, -1], [0, 0], [1, 0], [1, 1], [-1, 1]]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threads only add overhead
    yield
    torch.set_num_threads(threads)


def _poisson(domain, conditions=None, name="poisson_hard"):
    return Problem(name=name, inputs=[], outputs=["u"], domain=domain,
                   equation=lambda u, x, inputs: diff.laplacian(u, x) + 1.0,
                   conditions=[Dirichlet("x*y")] if conditions is None else conditions)


def _helmholtz(k0):
    def equation(u, x, inputs):
        f = k0**2 * torch.sin(k0 * x[:, 0]) * torch.sin(k0 * x[:, 1])
        return -diff.laplacian(u, x) - k0**2 * u[:, 0] - f

    return Problem(name="helmholtz_hard", inputs=[], outputs=["u"], domain=Domain.rectangle([0, 0], [1, 1]),
                   equation=equation, conditions=[Dirichlet(0.0)])


# -- the built-in constraint ----------------------------------------------------------------------
@pytest.mark.parametrize("domain", [Domain.polygon(LSHAPE),
                                    Domain.rectangle([-1, -1], [1, 1]) - Domain.rectangle([0, -1], [1, 0]),
                                    Domain.rectangle([0, 0], [1, 1]) - Domain.disk([0.5, 0.5], 0.2)],
                         ids=["polygon", "csg_difference", "plate"])
def test_builtin_hard_dirichlet_holds_exactly_on_polygons_and_csg(domain):
    torch.manual_seed(0)
    task = PINNTask(_poisson(domain), MLP(2, 1, hidden=[8], activation="tanh").double(), hard=["dirichlet"],
                    n_interior=32, dtype=torch.float64, reference=None)
    assert task.term_names == ["pde"]
    b = domain.sample_boundary(200, seed=1)
    np.testing.assert_allclose(task.predict(b)[:, 0], b[:, 0] * b[:, 1], atol=1e-12)
    inside = domain.sample_interior(200, seed=1)
    assert np.abs(task.predict(inside)[:, 0] - inside[:, 0] * inside[:, 1]).max() > 1e-3  # the network acts


def test_builtin_hard_box_constraint_is_as_accurate_as_the_hand_written_product():
    """The issue's comparison at a tiny size: Helmholtz with k0 = pi, u = sin(k0 x) sin(k0 y).

    Measured here (300 Adam steps, 16x16 tanh, 256 Sobol points): built-in 0.0011 and 0.0009 for
    seeds 0 and 1, the hand-written ``x (1 - x) y (1 - y)`` 0.0060 and 0.0064, the former R0
    distance 0.010 and 0.024. (At k0 = 2 pi, 24x24, 600 steps: 0.005-0.014, 0.09-0.28, 0.04-0.11.)
    """
    k0 = math.pi
    problem = _helmholtz(k0)
    g = np.linspace(0, 1, 41)
    x = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    reference = (x, np.sin(k0 * x[:, 0]) * np.sin(k0 * x[:, 1]))
    errors = {}
    for name, hard in (("builtin", ["dirichlet"]), ("hand", [HardConstraint(distance="x*(1-x)*y*(1-y)")])):
        torch.manual_seed(0)
        task = PINNTask(problem, MLP(2, 1, [16, 16], "tanh"), hard=hard, n_interior=256, sampler="sobol",
                        reference=reference, seed=0)
        Trainer(task, steps=300, lr=1e-2, progress=False, seed=0).fit()
        errors[name] = task.relative_error()["rel_l2"]
    assert errors["builtin"] < 0.02 and errors["hand"] < 0.05  # both learn
    assert errors["builtin"] <= 1.5 * errors["hand"], errors


# -- constraints of one's own ---------------------------------------------------------------------
def test_a_hard_constraint_with_its_own_distance_and_value():
    square = Domain.rectangle([0, 0], [1, 1])
    problem = _poisson(square, [Dirichlet("sin(pi*x)*y")])
    torch.manual_seed(0)
    net = MLP(2, 1, hidden=[8], activation="tanh").double()
    task = PINNTask(problem, net, hard=[HardConstraint(distance=lambda x, y: x * (1 - x) * y * (1 - y))],
                    n_interior=16, dtype=torch.float64, reference=None)
    assert task.term_names == ["pde"]  # the Dirichlet condition it replaces is no loss term
    b = square.sample_boundary(100, seed=0)
    np.testing.assert_allclose(task.predict(b)[:, 0], np.sin(np.pi * b[:, 0]) * b[:, 1], atol=1e-12)
    # u = A + D N exactly, with the condition's value as the lifting A
    x = square.sample_interior(20, seed=0)
    with torch.no_grad():
        n = net(torch.as_tensor(x))[:, 0].numpy()
    expected = np.sin(np.pi * x[:, 0]) * x[:, 1] + x[:, 0] * (1 - x[:, 0]) * x[:, 1] * (1 - x[:, 1]) * n
    np.testing.assert_allclose(task.predict(x)[:, 0], expected, rtol=1e-12)


def test_a_partial_dirichlet_condition_is_hard_with_a_distance_that_vanishes_there():
    square = Domain.rectangle([0, 0], [1, 1])
    left = Dirichlet(2.0, where=lambda p: np.isclose(p[:, 0], 0.0))
    problem = _poisson(square, [left, Dirichlet(0.0, where=lambda p: np.isclose(p[:, 0], 1.0))])
    with pytest.raises(ConfigError, match="whole"):  # the built-in needs the whole boundary
        PINNTask(problem, MLP(2, 1, hidden=[4]), hard=["dirichlet"], n_interior=8)
    # a transform that meets both parts: u = 2 (1 - x) + x (1 - x) N
    both = HardConstraint(transform=lambda x, out: 2 * (1 - x[:, :1]) + x[:, :1] * (1 - x[:, :1]) * out)
    task = PINNTask(problem, MLP(2, 1, hidden=[8], activation="tanh").double(), hard=[both], n_interior=16,
                    dtype=torch.float64, reference=None)
    assert task.term_names == ["pde"]
    edge = np.stack([np.zeros(5), np.linspace(0, 1, 5)], 1)
    np.testing.assert_allclose(task.predict(edge)[:, 0], 2.0, atol=1e-12)
    # the same as a distance and a lifting
    task = PINNTask(problem, MLP(2, 1, hidden=[8], activation="tanh").double(), n_interior=16, dtype=torch.float64,
                    hard=[HardConstraint(distance="x*(1-x)", value="2 - 2*x")], reference=None)
    assert task.term_names == ["pde"]  # both Dirichlet conditions of u are replaced ...
    np.testing.assert_allclose(task.predict(edge)[:, 0], 2.0, atol=1e-12)
    # ... so one that does not meet the right-hand one is refused, naming the gap
    with pytest.raises(ConfigError, match="differs from the condition's value"):
        PINNTask(problem, MLP(2, 1, hidden=[8]).double(), n_interior=16, dtype=torch.float64,
                 hard=[HardConstraint(distance="x", value=2.0)], reference=None)


def test_bad_hard_constraints_are_refused_with_the_reason():
    lshape = Domain.polygon(LSHAPE)
    problem = _poisson(lshape)
    net = MLP(2, 1, hidden=[4]).double()
    kwargs = {"n_interior": 8, "dtype": torch.float64, "reference": None}
    # a box product does not vanish on the L's re-entrant edges
    with pytest.raises(ConfigError, match="distance must vanish"):
        PINNTask(problem, net, hard=[HardConstraint(distance="(1-x**2)*(1-y**2)")], **kwargs)
    with pytest.raises(ConfigError, match="two hard value constraints"):
        PINNTask(problem, net, hard=["dirichlet", HardConstraint(distance="x")], **kwargs)
    with pytest.raises(ConfigError, match="torch"):
        PINNTask(problem, net, hard=[HardConstraint(distance=lambda x, y: np.abs(x))], **kwargs)
    with pytest.raises(ConfigError, match="no initial condition"):
        PINNTask(problem, net, hard=[HardConstraint(replaces=["initial"])], **kwargs)
    with pytest.raises(ConfigError, match="either transform"):
        HardConstraint(distance="x", transform=lambda x, out: out)
    with pytest.raises(ConfigError, match="replaces"):
        HardConstraint(replaces=["neumann"])
    with pytest.raises(ConfigError, match="HardConstraint"):
        PINNTask(problem, net, hard=["dirichlet", "robin"], **kwargs)
    bad_shape = HardConstraint(transform=lambda x, out: out[:, 0])
    with pytest.raises(ShapeError, match="transform"):
        PINNTask(problem, net, hard=[bad_shape], **kwargs)


def test_hard_initial_and_boundary_through_one_transform_in_space_time():
    """Heat equation u_t = u_xx: a transform imposing u(x, 0) = sin(pi x) and u = 0 at x = 0, 1."""
    problem = Problem(name="heat_hard", inputs=[], outputs=["u"], domain=Domain.rectangle([0, 0], [1, 1]),
                      equation=lambda u, x, inputs: diff.partial(u, x, 1) - diff.partial(u, x, (0, 0)),
                      conditions=[Dirichlet(0.0), Initial("sin(pi*x)", time_axis=1)])

    def transform(x, out):
        s, t = x[:, :1], x[:, 1:]
        return torch.sin(math.pi * s) + t * s * (1 - s) * out

    task = PINNTask(problem, MLP(2, 1, hidden=[8], activation="tanh").double(), dtype=torch.float64,
                    hard=[HardConstraint(transform=transform, replaces=["dirichlet", "initial"])], n_interior=16,
                    reference=None)
    assert task.term_names == ["pde"]
    x0 = np.stack([np.linspace(0, 1, 7), np.zeros(7)], 1)
    np.testing.assert_allclose(task.predict(x0)[:, 0], np.sin(np.pi * x0[:, 0]), atol=1e-12)
    # the built-in distance of a HardConstraint in space-time is the lateral one: free at the last time
    task = PINNTask(problem, MLP(2, 1, hidden=[8], activation="tanh").double(), dtype=torch.float64,
                    hard=[HardConstraint()], n_interior=16,
                    reference=None)
    assert task.term_names == ["pde", "ic"]
    ends = np.array([[0.0, 0.5], [1.0, 0.7], [0.5, 1.0]])
    u = task.predict(ends)[:, 0]
    np.testing.assert_allclose(u[:2], 0.0, atol=1e-12)
    assert abs(u[2]) > 1e-6  # not pinned to 0 at t = 1


# -- Taylor-mode derivatives through hard constraints ---------------------------------------------
def _jet_vs_autograd(problem, make_model, hard=(), n_features=2):
    torch.manual_seed(0)
    model = make_model().double()
    kwargs = {"hard": hard, "n_interior": 64, "dtype": torch.float64, "reference": None, "seed": 0}
    auto = PINNTask(problem, model, **kwargs)
    jet = PINNTask(problem, model, derivatives="jet", **kwargs)
    assert jet._jet is not None and not jet._jet_direct
    x = auto.point_sets()["interior"]
    ra = auto.residuals(torch.as_tensor(x).requires_grad_(True))["pde"]
    rj = jet.residuals(torch.as_tensor(x).requires_grad_(True))["pde"]
    scale = float(ra.detach().abs().max())
    assert float((ra - rj).detach().abs().max()) <= 1e-10 * max(scale, 1.0)
    params = list(model.parameters())
    ga = torch.autograd.grad(ra.square().mean(), params)
    gj = torch.autograd.grad(rj.square().mean(), params)
    for a, b in zip(ga, gj):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_jet_derivatives_of_hard_constrained_models_equal_autograd_in_float64():
    lshape = _poisson(Domain.polygon(LSHAPE))
    square = _poisson(Domain.rectangle([0, 0], [1, 1]), [Dirichlet("sin(pi*x)*y")])
    mlp = lambda: MLP(2, 1, hidden=[12, 12], activation="tanh")  # noqa: E731
    _jet_vs_autograd(lshape, mlp, hard=["dirichlet"])  # the built-in smooth distance of a polygon
    _jet_vs_autograd(square, mlp, hard=[HardConstraint(distance="x*(1-x)*y*(1-y)")])
    _jet_vs_autograd(square, mlp, hard=[HardConstraint(
        transform=lambda x, out: torch.sin(math.pi * x[:, :1]) * x[:, 1:] + torch.sin(math.pi * x[:, :1])
        * torch.sin(math.pi * x[:, 1:]) * out)])
    # a network wrapped by a hard-constraint module (the hand-written way) splits for the jet
    box = Domain.rectangle([0, 0], [1, 1])
    wrapped = lambda: HardConstrained(MLP(2, 1, hidden=[12, 12], activation="sin"),  # noqa: E731
                                      distance=box.smooth_distance, value=lambda x: x[:, 0] * x[:, 1])
    _jet_vs_autograd(_poisson(box, []), wrapped)


def test_jet_falls_back_to_autograd_with_a_warning_for_models_it_cannot_follow():
    class Scaled(nn.Module):  # a wrapper the jet knows nothing about
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

        def forward(self, x):
            return 2.0 * self.net(x)

    problem = _poisson(Domain.rectangle([0, 0], [1, 1]), [])
    for model in (Scaled(), MLP(2, 1, hidden=[8], activation="gelu")):
        with pytest.warns(SciMLWarning, match="nested autograd"):
            task = PINNTask(problem, model, n_interior=16, derivatives="jet", reference=None)
        assert task._jet is None
        plain = PINNTask(problem, model, n_interior=16, reference=None)
        assert float(task.loss_terms()["pde"].detach()) == float(plain.loss_terms()["pde"].detach())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a supported model: no warning
        PINNTask(problem, MLP(2, 1, hidden=[8], activation="tanh"), n_interior=16, derivatives="jet", reference=None)


def test_the_boundary_sampler_still_serves_soft_conditions():
    """Soft Dirichlet conditions keep their term next to a hard constraint on another output."""
    problem = Problem(name="two", inputs=[], outputs=["u", "v"], domain=Domain.rectangle([0, 0], [1, 1]),
                      equation=lambda u, x, inputs: {"u": diff.laplacian(u[:, :1], x), "v": diff.laplacian(u[:, 1:], x)},
                      conditions=[Dirichlet(1.0, output="u"), Dirichlet(0.0, output="v")])
    task = PINNTask(problem, MLP(2, 2, hidden=[8], activation="tanh").double(), dtype=torch.float64,
                    hard=[HardConstraint(output="u")], n_interior=16, reference=None)
    assert task.term_names == ["pde_u", "pde_v", "bc"]
    b = sample_boundary(problem.domain, 50, "uniform", 0)
    np.testing.assert_allclose(task.predict(b)[:, 0], 1.0, atol=1e-12)
