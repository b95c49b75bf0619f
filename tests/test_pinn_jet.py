"""The jet's derivatives handed straight to the equation, one jet pass for all point sets, Hammersley points."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml import diff
from sciml.errors import ConfigError, ShapeError
from sciml.geometry import Domain
from sciml.models.mlp import MLP
from sciml.pinn import PINNTask
from sciml.pinn.jet import JetEngine
from sciml.pinn.sampling import hammersley, sample_boundary, sample_interior
from sciml.problem import load_problem

NU = 0.01 / math.pi


def test_jet_streams_are_the_network_derivatives():
    """The streams are the input derivatives of the network (checked against nested autograd)."""
    torch.manual_seed(1)
    net = MLP(2, 1, hidden=[9, 9], activation="tanh").double()
    engine = JetEngine(net)
    engine.configure([0, 1], [(0, 0), (0, 1)])
    x = torch.rand(17, 2, dtype=torch.float64, requires_grad=True)
    value, first, second = engine.derivatives(x)
    u = net(x)
    d = diff.Derivatives(u, x)
    torch.testing.assert_close(value, u.detach())
    torch.testing.assert_close(first[0][:, 0], d.partial(0).detach())
    torch.testing.assert_close(first[1][:, 0], d.partial(1).detach())
    torch.testing.assert_close(second[(0, 0)][:, 0], d.partial(0, 0).detach())
    torch.testing.assert_close(second[(0, 1)][:, 0], d.partial(0, 1).detach())


def test_attached_derivatives_are_used_and_checked():
    x = torch.rand(5, 2, requires_grad=True)
    u = (x**2).sum(1, keepdim=True)
    fake = torch.full((5,), 7.0)
    diff.with_derivatives(u, x, {(0, 0): fake})
    d = diff.Derivatives(u, x)
    assert torch.equal(d.partial(0, 0), fake)  # the attached one, not autograd's 2
    torch.testing.assert_close(d.partial(1), 2 * x[:, 1])  # not attached: autograd
    other = x.detach().clone().requires_grad_(True)
    v = (other**2).sum(1, keepdim=True)
    diff.with_derivatives(v, x, {(0, 0): fake})  # attached for other points: ignored
    torch.testing.assert_close(diff.partial(v, other, (0, 0)), torch.full((5,), 2.0))
    with pytest.raises(ShapeError):
        diff.with_derivatives(u, x, {(0,): torch.zeros(4)})
    with pytest.raises(ShapeError):
        diff.with_derivatives(u, x, {(1, 0): torch.zeros(5)})  # not sorted


def test_joint_jet_pass_equals_separate_autograd_terms():
    """With observations, conditions and residual in one jet pass, terms and gradients are autograd's."""
    problem = load_problem("burgers1d_pinn")
    rng = np.random.default_rng(0)
    obs = (np.stack([rng.uniform(-1, 1, 50), rng.uniform(0, 0.99, 50)], 1), rng.normal(size=50))
    torch.manual_seed(0)
    net = MLP(2, 1, hidden=[12, 12], activation="tanh")
    kwargs = dict(n_interior=128, n_boundary=16, n_initial=16, observations=obs, reference=None)
    auto = PINNTask(problem, net, **kwargs)
    jet = PINNTask(problem, net, derivatives="jet", **kwargs)
    assert jet._jet_direct
    ta, tj = auto.loss_terms(), jet.loss_terms()
    assert set(ta) == set(tj) == {"pde", "bc", "ic", "data"}
    for name in ta:
        assert float(tj[name].detach()) == pytest.approx(float(ta[name].detach()), rel=1e-5)
    params = list(net.parameters())
    for a, b in zip(torch.autograd.grad(sum(ta.values()), params), torch.autograd.grad(sum(tj.values()), params)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_hammersley_points():
    points = hammersley(8, 2)
    np.testing.assert_allclose(points[:, 0], (np.arange(8) + 0.5) / 8)
    np.testing.assert_allclose(points[:, 1], [0, 0.5, 0.25, 0.75, 0.125, 0.625, 0.375, 0.875])
    third = hammersley(9, 3)[:, 2]
    np.testing.assert_allclose(third[:4], [0, 1 / 3, 2 / 3, 1 / 9])  # base 3
    # evenly spread: every cell of a 16 x 16 grid gets one of 256 points
    cells = np.floor(hammersley(256, 2) * 16).astype(int)
    assert len({tuple(c) for c in cells}) == 256
    box = Domain.rectangle([-1.0, 0.0], [1.0, 0.99])
    x = sample_interior(box, 100, "hammersley")
    assert x.shape == (100, 2) and (x[:, 0] >= -1).all() and (x[:, 1] <= 0.99).all()
    np.testing.assert_array_equal(x, sample_interior(box, 100, "hammersley", seed=5))  # deterministic
    edges = sample_boundary(box, 40, "hammersley", time_axis=1)
    assert np.all(np.isclose(np.abs(edges[:, 0]), 1.0))
    # other domains: the smallest whole set with enough points inside, thinned evenly
    disk = sample_interior(Domain.disk([0.0, 0.0], 1.0), 500, "hammersley")
    assert disk.shape == (500, 2) and (np.sum(disk ** 2, 1) <= 1 + 1e-12).all()
    assert abs(np.mean(np.sum(disk ** 2, 1)) - 0.5) < 5e-3  # E|x|^2 = 1/2 on the unit disk
    lshape = Domain.polygon([[0, 0], [1, 0], [1, -1], [-1, -1], [-1, 1], [0, 1]])
    inner = sample_interior(lshape, 1200, "hammersley")
    assert inner.shape == (1200, 2) and lshape.inside(inner).all()
    np.testing.assert_array_equal(inner, sample_interior(lshape, 1200, "hammersley", seed=3))
    assert np.allclose(inner.mean(0), [-1 / 6, -1 / 6], atol=5e-3)  # the L-shape's centroid
    # per quadrant of the box: a third of the points in each of the three quadrants of the L
    quadrants = np.histogram2d(inner[:, 0], inner[:, 1], bins=2, range=[[-1, 1], [-1, 1]])[0]
    assert quadrants[1, 1] == 0 and np.allclose(quadrants.ravel()[:3], 400, atol=6)
    edge = sample_boundary(lshape, 120, "hammersley")
    assert edge.shape == (120, 2) and lshape.on_boundary(edge).all()
    # a part of the boundary (`where`): the whole part covered, no repeated points (a prefix of the
    # set would cover only its first stretch)
    for domain in (box, Domain.disk([0.0, 0.0], 1.0)):
        part = sample_boundary(domain, 60, "hammersley", where=lambda x: x[:, 1] >= 0.5)
        assert part.shape == (60, 2) and (part[:, 1] >= 0.5).all()
        assert len(np.unique(part.round(12), axis=0)) == 60
        assert part[:, 0].min() < -0.5 and part[:, 0].max() > 0.5
    with pytest.raises(ConfigError):
        hammersley(4, 40)


def test_pinn_task_accepts_hammersley():
    task = PINNTask(load_problem("burgers1d_pinn"), MLP(2, 1, hidden=[8], activation="tanh"),
                    n_interior=64, n_boundary=8, n_initial=8, sampler="hammersley", reference=None)
    x = task.point_sets()["interior"]
    np.testing.assert_allclose(np.sort(x[:, 0]), -1 + 2 * (np.arange(64) + 0.5) / 64)
