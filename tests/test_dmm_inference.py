"""The DMM's inference path (sciml.models.dmm_net.DMMNet.grad_potential / encode_inference, and DMM.__call__
built on them) against the autograd path it replaces: the same displacements and meshes up to float32
round-off, for every activation, periodic or not, shared or per-field points, one block or many; and the
faster tangle check of sciml.meshmove.move against its former formula, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.errors import ShapeError
from sciml.grid import Grid
from sciml.meshmove import DMM, GradientMonitor
from sciml.meshmove.dmm import WEIGHTS_DIR
from sciml.meshmove.move import min_corner_jacobians, snap_unit_mesh
from sciml.models import build_model

TOL = 1e-5


def _net(periodic: bool, activation: str = "tanh", hidden: tuple[int, ...] = (32, 32, 32), std: float = 0.5):
    torch.manual_seed(0)
    net = build_model("dmm_net", periodic=periodic, channels=8, latent=32, hidden=list(hidden), pool=3,
                      activation=activation)
    torch.nn.init.normal_(net.head.weight, std=std)  # the head starts at zero: phi would be flat
    return net.eval()


def _autograd_grad(net, code: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
    """grad phi by autograd through DMMNet.potential (the former answering path)."""
    pts = (xi.expand(len(code), -1, -1) if xi.ndim == 2 else xi).clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(net.potential(code, pts).sum(), pts)
    return grad


def _fields(n: int, count: int) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)
    x, y = np.meshgrid(s, s, indexing="ij")
    return np.stack([np.tanh(6 * np.sin(2 * np.pi * (x + c * y - 0.1 * c))) for c in np.linspace(0.3, 1.7, count)])


# -- the network --------------------------------------------------------------------------------------
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("activation", ["tanh", "softplus", "silu"])
def test_grad_potential_matches_autograd(periodic, activation):
    net = _net(periodic, activation)
    code = torch.randn(5, 32)
    shared, per_field = torch.rand(300, 2), 3.0 * torch.rand(5, 300, 2) - 1.0
    for xi in (shared, per_field):
        expected = _autograd_grad(net, code, xi)
        assert expected.abs().max() > 0.1
        for rows in (7, 100, 2048):  # many blocks with a padded last one, a few, one
            got = net.grad_potential(code, xi, block_rows=rows)
            assert got.shape == expected.shape and not got.requires_grad
            assert (got - expected).abs().max() < TOL


def test_grad_potential_large_pre_activations_and_one_hidden_layer():
    net = _net(True, hidden=(16,))
    code = torch.randn(3, 32)
    xi = torch.rand(50, 2)
    assert (net.grad_potential(code, xi) - _autograd_grad(net, code, xi)).abs().max() < TOL
    big = _net(True)
    with torch.no_grad():
        big.code_in.weight.mul_(100.0)  # |pre-activation| > 40: the plain sigmoid instead of exp products
    code = torch.randn(3, 32)
    expected = _autograd_grad(big, code, xi)
    assert (big.grad_potential(code, xi) - expected).abs().max() < TOL * max(1.0, float(expected.abs().max()))


def test_grad_potential_rejects_bad_shapes():
    net = _net(True)
    with pytest.raises(ShapeError, match="grad_potential"):
        net.grad_potential(torch.randn(2, 32), torch.rand(3, 10, 2))
    with pytest.raises(ShapeError, match="grad_potential"):
        net.grad_potential(torch.randn(2, 32), torch.rand(10, 3))


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("activation", ["tanh", "silu"])
def test_encode_inference_matches_encode(periodic, activation):
    net = _net(periodic, activation)
    u = torch.as_tensor(_fields(25, 4), dtype=torch.float32)
    with torch.no_grad():
        assert (net.encode_inference(u) - net.encode(u)).abs().max() < TOL
        flat = torch.ones(2, 25, 25)  # constant fields: normalised to zero
        assert (net.encode_inference(flat) - net.encode(flat)).abs().max() < TOL


# -- the mover ----------------------------------------------------------------------------------------
def _autograd_meshes(dmm: DMM, u: np.ndarray, n: int) -> np.ndarray:
    """DMM meshes the former way: autograd grad phi at all n x n nodes, float64 sum, snap (no tangles)."""
    s = np.linspace(0.0, 1.0, n)
    xi = np.stack(np.meshgrid(s, s, indexing="ij"), axis=-1)
    with torch.no_grad():
        code = dmm.model.encode(torch.as_tensor(u, dtype=torch.float32))
    grad = _autograd_grad(dmm.model, code, torch.as_tensor(xi.reshape(-1, 2), dtype=torch.float32))
    x = snap_unit_mesh(xi[None] + grad.double().numpy().reshape(len(u), n, n, 2), dmm.periodic)
    assert (min_corner_jacobians(x) > 0).all()
    return x


@pytest.mark.parametrize("periodic", [True, False])
def test_dmm_meshes_match_the_autograd_path(periodic):
    grid = Grid(25, ndim=2)
    dmm = DMM(_net(periodic, std=0.005), grid, GradientMonitor(beta=1.0, periodic=periodic), batch_size=3)
    u = _fields(25, 7)  # batches of 3, 3 and 1 fields
    for n in (25, 13):
        got = dmm(u, n)
        assert dmm.last_fallbacks == {}
        assert np.abs(got - _autograd_meshes(dmm, u, n)).max() < TOL
    pts = np.random.default_rng(0).uniform(size=(40, 2))
    with torch.no_grad():
        code = dmm.model.encode(torch.as_tensor(u, dtype=torch.float32))
    expected = _autograd_grad(dmm.model, code, torch.as_tensor(pts, dtype=torch.float32)).double().numpy()
    assert np.abs(dmm.displacement(u, pts) - expected).max() < TOL


@pytest.mark.skipif(not (WEIGHTS_DIR / "dmm_burgers2d.pt").is_file(), reason="no shipped DMM weights")
def test_pretrained_meshes_match_the_autograd_path():
    dmm = DMM.pretrained()
    grid = dmm.grid
    u = _fields(grid.shape[0], 5)
    got = dmm(u)
    assert got.shape == (5, grid.shape[0], grid.shape[0], 2) and dmm.last_fallbacks == {}
    assert np.abs(got - _autograd_meshes(dmm, u, grid.shape[0])).max() < TOL


# -- the tangle check ---------------------------------------------------------------------------------
def _former_min_corner_jacobians(points: np.ndarray) -> np.ndarray:
    """min_corner_jacobians as it was: the four corners of each quad from its own vertices."""
    x = np.asarray(points, dtype=np.float64)
    a, b, c, d = x[:, :-1, :-1], x[:, 1:, :-1], x[:, 1:, 1:], x[:, :-1, 1:]

    def cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    corners = np.stack([cross(b - a, d - a), cross(c - b, a - b), cross(d - c, b - c), cross(a - d, c - d)])
    span = np.ptp(x.reshape(len(x), -1, 2), axis=1)
    cell = span[:, 0] * span[:, 1] / ((x.shape[1] - 1) * (x.shape[2] - 1))
    return corners.reshape(4, len(x), -1).min(axis=(0, 2)) / cell


def test_min_corner_jacobians_is_bit_for_bit_the_former_formula():
    rng = np.random.default_rng(1)
    s0, s1 = np.linspace(-1.0, 2.0, 13), np.linspace(0.5, 1.0, 9)
    nodes = np.stack(np.meshgrid(s0, s1, indexing="ij"), axis=-1)
    for scale in (0.0, 0.01, 0.1):  # untangled to badly tangled
        x = nodes[None] + scale * rng.standard_normal((37, 13, 9, 2))  # more than one chunk of 16
        assert np.array_equal(min_corner_jacobians(x), _former_min_corner_jacobians(x))
    x[5, 3, 4, 1] = np.nan
    got = min_corner_jacobians(x)
    assert np.isnan(got[5]) and np.array_equal(np.delete(got, 5), np.delete(_former_min_corner_jacobians(x), 5))


def test_snap_unit_mesh_in_place():
    x = np.random.default_rng(2).uniform(-0.1, 1.1, size=(2, 5, 5, 2))
    expected = snap_unit_mesh(x, False)
    assert expected is not x and snap_unit_mesh(x, False, copy=False) is x and np.array_equal(x, expected)
    y = np.zeros((1, 4, 4, 2))
    assert np.array_equal(snap_unit_mesh(y, True, copy=False)[0, -1, 0], [1.0, 0.0])
