"""The multilevel SPD network for DCDM (sciml/models/dcdm_multilevel.py): restriction and prolongation
are transposes, the network is a symmetric positive definite linear map on the fluid cells of any grid
(2-D and 3-D), and DCDM with it, untrained, already needs far fewer iterations than CG."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import sciml
from sciml.errors import ConfigError, ShapeError
from sciml.fields import Grid
from sciml.linalg import CG, solve
from sciml.linalg.dcdm import DCDM, network_matrix
from sciml.models import build_model
from sciml.models.dcdm_multilevel import MultilevelSPDNet, prolong, restrict

PROBLEM = sciml.load_problem("poisson_obstacles")
po = sys.modules[PROBLEM.reference.__module__]


@pytest.mark.parametrize("shape", [(7, 10), (5, 4, 3)])
def test_prolongation_is_the_transpose_of_restriction(shape):
    d = len(shape)
    x = torch.randn(1, 1, *shape, dtype=torch.float64)
    coarse = restrict(x, d)
    assert coarse.shape[2:] == tuple((n + 1) // 2 for n in shape)
    y = torch.randn_like(coarse)
    # <P^T x, y> = <x, P y>
    torch.testing.assert_close((coarse * y).sum(), (x * prolong(y, shape)).sum())


@pytest.mark.parametrize("shape", [(11, 9), (6, 5, 7)])
def test_the_network_is_symmetric_positive_definite_on_the_fluid_cells(shape):
    torch.manual_seed(0)
    net = MultilevelSPDNet(ndim=len(shape), noise=0.3).double()  # far from the smooth start
    mask = torch.ones(shape)
    mask[(slice(2, 5),) * len(shape)] = 0
    M = network_matrix(net, mask)
    torch.testing.assert_close(M, M.T, rtol=1e-10, atol=1e-12)
    assert float(torch.linalg.eigvalsh(M)[0]) > 0
    out = net(torch.randn(2, 1, *shape, dtype=torch.float64), mask.double())
    assert out.shape == (2, 1, *shape) and float(out[:, :, ~mask.bool()].abs().max()) == 0.0


def test_untrained_dcdm_with_it_beats_cg_and_grows_slowly():
    """Measured (module notes): 48 / 63 iterations at 64^2 / 128^2 against CG's 192 / 383."""
    torch.manual_seed(0)
    net = build_model("dcdm_multilevel", ndim=2)
    its = {}
    for n in (64, 128):
        solid = po.ObstacleLayout().draw(1, Grid(n, ndim=2), np.random.default_rng(5000))[0]
        A, mask = po.obstacle_system(solid)
        b = po.rhs("smoke", mask, np.random.default_rng(1))
        sol = solve(A, b, method=DCDM(net), mask=mask)
        assert sol.converged and np.linalg.norm(b - A @ sol.value) <= 1.01e-6 * np.linalg.norm(b)
        its[n] = (sol.iterations, solve(A, b, method=CG()).iterations)
    assert its[64][0] < 0.35 * its[64][1] and its[128][0] < 0.25 * its[128][1], its
    assert its[128][0] < 1.6 * its[64][0], its  # CG doubles


def test_bad_arguments():
    with pytest.raises(ConfigError, match="ndim"):
        MultilevelSPDNet(ndim=1)
    with pytest.raises(ConfigError, match="channels"):
        MultilevelSPDNet(channels=0)
    with pytest.raises(ShapeError, match="MultilevelSPDNet input"):
        MultilevelSPDNet()(torch.randn(2, 3, 8, 8))
