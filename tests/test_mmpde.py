"""MM-PDE: the learned interpolation (bilinear when untrained), locating points in moved meshes, the
stepper network with and without its moving branch, the tasks and the rollout, on tiny fake data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml.errors import ConfigError, InvalidMeshError, ShapeError
from sciml.grid import Grid
from sciml.meshmove.mmpde import MMPDETask, RoundTripTask, distinct, rollout, stepper_dataset
from sciml.meshmove.move import bilinear
from sciml.models import build_model, list_models, model_from_spec
from sciml.models.learned_interp import LearnedInterpolation, MeshInterpolation
from sciml.models.mesh_locate import locate_in_mesh, mesh_channels, uniform_cells, unit_nodes, wrap
from sciml.train import Trainer

N = 16  # distinct periodic nodes per axis of the fake data


def sheared_mesh(n: int, amp: float = 0.02, batch: int = 1, nodes: int | None = None) -> torch.Tensor:
    """An untangled periodic mesh ``x = xi + amp (sin 2 pi eta, sin 2 pi xi)`` (``nodes`` per axis: ``n`` distinct,
    ``n + 1`` with the repeated row and column)."""
    s = torch.arange(nodes or n, dtype=torch.float64) / n
    xi = torch.stack(torch.meshgrid(s, s, indexing="ij"), dim=-1)
    d = amp * torch.stack([torch.sin(2 * math.pi * xi[..., 1]), torch.sin(2 * math.pi * xi[..., 0])], dim=-1)
    return (xi + d).expand(batch, -1, -1, -1).clone()


class FakeMover:
    """A periodic 'DMM' of the unit square: a sheared mesh whose amplitude follows the field's mean square."""

    periodic = True

    def __init__(self, n: int) -> None:
        self.n, self.grid, self.last_fallbacks = n, Grid((n + 1, n + 1)), {}

    def __call__(self, fields: np.ndarray) -> np.ndarray:
        amp = 0.01 + 0.02 * np.tanh((np.asarray(fields) ** 2).mean(axis=(1, 2)))
        base = sheared_mesh(self.n, 1.0, nodes=self.n + 1).numpy()[0]
        xi = unit_nodes(self.n + 1, torch.float64).numpy() * (self.n + 1) / self.n
        return xi[None] + amp[:, None, None, None] * (base - xi)[None]


def trajectories(samples: int = 4, frames: int = 6, n: int = N, seed: int = 0) -> np.ndarray:
    """Periodic node-grid trajectories ``(S, K, n + 1, n + 1)``: smooth waves advected along the diagonal."""
    rng = np.random.default_rng(seed)
    s = np.arange(n + 1) / n
    x, y = np.meshgrid(s, s, indexing="ij")
    out = np.empty((samples, frames, n + 1, n + 1))
    for i in range(samples):
        a, b, phase = rng.uniform(0.5, 1.0), rng.uniform(0.2, 0.5), rng.uniform(0, 2 * np.pi)
        for k in range(frames):
            shift = 0.03 * k
            out[i, k] = a * np.sin(2 * np.pi * (x - shift) + phase) + b * np.cos(2 * np.pi * (y - shift))
    return out


# -- interpolation ------------------------------------------------------------------------------------------------
def test_untrained_learned_interpolation_is_bilinear():
    torch.manual_seed(0)
    itp = LearnedInterpolation()
    n = 12
    nodes = unit_nodes(n, torch.float64)
    linear = (0.3 + 1.7 * nodes[..., 0] - 0.6 * nodes[..., 1])[None].float()  # not periodic: stay off the seam
    pts = (0.1 + 0.7 * torch.rand(1, 50, 2)).float()
    cell, local = uniform_cells(pts, n)
    got = itp(linear, None, pts, cell, local)
    exact = 0.3 + 1.7 * pts[..., 0] - 0.6 * pts[..., 1]
    assert torch.allclose(got, exact, atol=1e-5)
    # and on a periodic field anywhere (the seam included) it is the bilinear interpolation of move.py
    field = torch.randn(2, n, n)
    pts = torch.rand(2, 40, 2) * 1.4 - 0.2
    cell, local = uniform_cells(pts, n)
    padded = torch.cat([field, field[:, :1]], dim=1)
    padded = torch.cat([padded, padded[:, :, :1]], dim=2)
    assert torch.allclose(itp(field, None, pts, cell, local), bilinear(padded, pts, periodic=True), atol=1e-5)
    w = itp.weights(local, torch.randn(2, 40, 16, 2))
    assert torch.allclose(w.sum(-1), torch.ones(2, 40), atol=1e-6)


def test_untrained_itp2_inverts_the_bilinear_map_exactly_for_linear_functions():
    n = 16
    mesh = sheared_mesh(n, amp=0.03).float()
    interp = MeshInterpolation()
    f = lambda p: 0.5 - 1.3 * p[..., 0] + 2.1 * p[..., 1]  # noqa: E731
    back = interp.to_uniform(f(mesh.double()).float(), mesh)
    q = unit_nodes(n)
    inside = ((q > 0.2) & (q < 0.7)).all(-1)  # stencils away from the seam, where f is not periodic
    assert torch.allclose(back[0][inside], f(q)[inside], atol=1e-5)


def test_locate_in_mesh_places_points_exactly():
    n = 12
    mesh = sheared_mesh(n, amp=0.05, batch=2)
    pts = torch.rand(30, 2, dtype=torch.float64)
    cell, local = locate_in_mesh(mesh, pts)
    assert cell.shape == (2, 30, 2) and cell.dtype == torch.long and ((local >= 0) & (local <= 1)).all()
    flat = mesh.reshape(2, -1, 2)

    def corner(di, dj):
        idx = ((cell[..., 0] + di) % n) * n + (cell[..., 1] + dj) % n
        return torch.gather(flat, 1, idx[..., None].expand(-1, -1, 2))

    c00 = corner(0, 0)
    img = lambda c: c00 + wrap(c - c00)  # noqa: E731
    s, t = local[..., :1], local[..., 1:]
    x = (1 - s) * (1 - t) * c00 + s * (1 - t) * img(corner(1, 0)) + (1 - s) * t * img(corner(0, 1)) \
        + s * t * img(corner(1, 1))
    assert wrap(x - pts).abs().max() < 1e-8
    # the uniform mesh: locating is division
    ucell, ulocal = uniform_cells(pts, n)
    cell, local = locate_in_mesh(unit_nodes(n, torch.float64)[None], pts)
    assert torch.equal(cell[0], ucell) and torch.allclose(local[0], ulocal, atol=1e-9)


def test_round_trip_of_a_smooth_field_is_small_and_second_order():
    interp, errors = MeshInterpolation(), []
    for n in (32, 64):
        mesh = sheared_mesh(n, amp=0.04, batch=2).float()
        q = unit_nodes(n)
        u = (torch.sin(2 * math.pi * q[..., 0]) * torch.cos(2 * math.pi * q[..., 1]))[None].expand(2, -1, -1)
        with torch.no_grad():
            back = interp.round_trip(u, mesh)
        errors.append(float((back - u).norm() / u.norm()))
    assert errors[0] < 2e-2 and errors[1] < errors[0] / 3, errors


def test_mesh_channels_of_the_uniform_mesh():
    ch = mesh_channels(unit_nodes(8)[None])
    assert ch.shape == (1, 6, 8, 8)
    assert torch.allclose(ch[0, :, 3, 4], torch.tensor([0.0, 0, 1, 0, 0, 1]), atol=1e-6)


# -- network ------------------------------------------------------------------------------------------------------
def test_baseline_has_no_moving_branch_and_counts_are_close():
    base = build_model("mmpde", moving=False, width=26)
    assert base.branch is None and base.interp is None
    assert not any(name.startswith(("branch", "interp")) for name, _ in base.named_parameters())
    u = torch.randn(2, N, N)
    assert torch.equal(base(u), base(u, sheared_mesh(N, batch=2).float()))  # a mesh is ignored
    moving = build_model("mmpde", moving=True, width=16)
    assert moving.branch is not None and moving.interp is not None
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert abs(count(moving) - count(base)) < 0.02 * count(base)  # the benchmark's defaults
    with pytest.raises(ConfigError, match="moving_width"):
        build_model("mmpde", moving=False, moving_width=8)


def test_registry_and_untrained_stepper_is_persistence():
    assert "mmpde" in list_models()
    net = build_model("mmpde", moving=True, width=4, depth=2, kernel=3, interp_hidden=[8])
    again = model_from_spec(net.model_spec)
    assert again.model_spec == net.model_spec and sum(p.numel() for p in again.parameters()) == \
        sum(p.numel() for p in net.parameters())
    u = torch.randn(3, N, N)
    assert torch.allclose(net(u, sheared_mesh(N, batch=3).float()), u)


def test_bad_inputs_raise_clear_errors():
    net = build_model("mmpde", moving=True, width=4, depth=2, kernel=3)
    u = torch.randn(2, N, N)
    with pytest.raises(ConfigError, match="mesh=None"):
        net(u)
    with pytest.raises(ShapeError):
        net(torch.randn(2, N, N + 1), sheared_mesh(N, batch=2).float())
    with pytest.raises(ShapeError):
        net(u, sheared_mesh(N, batch=3).float())
    with pytest.raises(ShapeError):
        net(u, torch.zeros(2, N, N, 3))
    bad = sheared_mesh(N, batch=2).float()
    bad[0, 1, 1, 0] = float("nan")
    with pytest.raises(InvalidMeshError):
        net(u, bad)
    with pytest.raises(ConfigError):
        build_model("mmpde", scale=0.0)
    with pytest.raises(ConfigError):
        build_model("mmpde", depth=1)
    with pytest.raises(ConfigError, match="periodic"):
        distinct(np.random.default_rng(0).normal(size=(2, 9, 9)))
    with pytest.raises(ShapeError):
        stepper_dataset(trajectories()[0])  # one trajectory without its sample axis
    with pytest.raises(ConfigError):
        MMPDETask(torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError):
        MMPDETask(net, scale=-1.0)
    with pytest.raises(ConfigError, match="moving=False"):
        RoundTripTask(build_model("mmpde", moving=False, width=4, depth=2, kernel=3))
    data = stepper_dataset(trajectories(samples=1, frames=3))  # no meshes
    with pytest.raises(ConfigError, match="no 'mesh'"):
        MMPDETask(net).loss_terms(next(iter(torch.utils.data.DataLoader(data, batch_size=2))))
    with pytest.raises(ConfigError, match="mover"):
        rollout(net, u, 2)


# -- data, training, rollout ------------------------------------------------------------------------------------------
def test_dataset_pairs_and_cached_meshes():
    mover = FakeMover(N)
    traj = trajectories(samples=2, frames=4)
    data = stepper_dataset(traj, mover)
    assert len(data) == 2 * 3
    item = data[4]  # trajectory 1, pair 1 -> 2
    assert torch.allclose(item["u"], torch.as_tensor(traj[1, 1, :-1, :-1], dtype=torch.float32))
    assert torch.allclose(item["target"], torch.as_tensor(traj[1, 2, :-1, :-1], dtype=torch.float32))
    assert item["mesh"].shape == (N, N, 2) and item["cell"].shape == (N * N, 2) and item["local"].shape == (N * N, 2)
    cell, local = MeshInterpolation.where(item["mesh"][None])
    assert torch.equal(cell[0], item["cell"].long()) and torch.allclose(local[0], item["local"])


def test_tiny_training_lowers_the_loss_and_rolls_out():
    torch.manual_seed(0)
    mover = FakeMover(N)
    train, val = stepper_dataset(trajectories(4, 6, seed=0), mover), stepper_dataset(trajectories(1, 6, seed=1), mover)
    scale = float(torch.sqrt(((train.target - train.u) ** 2).mean()))
    net = build_model("mmpde", moving=True, width=8, depth=3, kernel=3, interp_hidden=[16], scale=scale)
    rt = RoundTripTask(net)
    before = rt.metrics(next(iter(torch.utils.data.DataLoader(val, batch_size=len(val)))))
    Trainer(rt, train_data=train, batch_size=10, steps=30, lr=3e-3, device="cpu", progress="off",
            eval_every=10**6).fit()
    after = rt.metrics(next(iter(torch.utils.data.DataLoader(val, batch_size=len(val)))))
    assert after["round_trip"] < before["round_trip"]
    task = MMPDETask(net, scale=scale)
    result = Trainer(task, train_data=train, val_data=val, batch_size=10, steps=80, lr=3e-3, device="cpu",
                     progress="off", eval_every=80).fit()
    assert result.metrics["val/mse"] < 0.5  # persistence (the untrained stepper) scores 1
    assert "val/round_trip" in result.metrics
    states, fallbacks = rollout(net, val.u[:2], 3, mover)
    assert states.shape == (4, 2, N, N) and fallbacks == 0 and np.isfinite(states).all()
    assert np.array_equal(states[0], val.u[:2].numpy())
