"""The data-free mesh mover (sciml.meshmove.dmm) and the mover entry point (sciml.meshmove.move):
a tiny training run through the shared Trainer lowers the Monge-Ampere residual and beats the uniform
mesh, walls slide, tangles fall back, runs reload, bad inputs fail clearly, the classical mover behind
``move`` validates and pays off, and the bilinear interpolations are exact on bilinear functions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sciml.errors import (
    CheckpointError,
    ConfigError,
    InvalidMeshError,
    NonFiniteError,
    SciMLWarning,
    ShapeError,
    UnknownNameError,
)
from sciml.fields import Field
from sciml.geometry.mesh import Mesh
from sciml.grid import Grid
from sciml.meshmove import DMM, DMMTask, GradientMonitor, MongeAmpere, interpolate_to_mesh, mesh_quality, move
from sciml.meshmove.dmm import TRAIN_SCRIPT, WEIGHTS_DIR
from sciml.meshmove.move import bilinear, min_corner_jacobians
from sciml.models import build_model
from sciml.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
N = 24
GRID = Grid(N, ndim=2)
H = 1.0 / (N - 1)
# Six straight tanh fronts (angle, offset from the centre), all crossing two walls.
FRONTS = [(0.3, 0.05), (1.2, -0.1), (2.0, 0.12), (2.7, -0.05), (0.8, 0.15), (1.6, 0.0)]


def front(p: np.ndarray, angle: float, offset: float, k: float = 12.0) -> np.ndarray:
    return np.tanh(k * ((p[..., 0] - 0.5) * np.cos(angle) + (p[..., 1] - 0.5) * np.sin(angle) - offset))


FIELDS = np.stack([front(GRID.coords(), a, c) for a, c in FRONTS])


def _net(periodic: bool = False, **kw):
    return build_model("dmm_net", periodic=periodic, channels=8, latent=32, hidden=[32, 32, 32], pool=3, **kw)


def _full_batch(ds) -> dict:
    return torch.utils.data.default_collate([ds[i] for i in range(len(ds))])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """200 Adam steps on the six fronts (measured on one busy CPU thread: about 6 s; the node residual
    falls from 0.67 to about 0.06)."""
    torch.manual_seed(0)
    task = DMMTask(_net(), GRID, monitor="gradient", beta=1.0)
    data = task.dataset(FIELDS)
    batch = _full_batch(data)
    before = task.metrics(batch)
    run = tmp_path_factory.mktemp("dmm_run")
    result = Trainer(task, train_data=data, batch_size=len(FIELDS), steps=200, lr=3e-3, schedule="cosine",
                     device="cpu", seed=0, progress="off", out_dir=run).fit()
    after = task.metrics(batch)
    dmm = DMM(task.model, GRID, task.monitor)
    return {"task": task, "before": before, "after": after, "dmm": dmm, "run": run, "result": result}


# -- training ------------------------------------------------------------------------------------------
def test_tiny_training_lowers_the_equidistribution_residual(trained):
    before, after = trained["before"], trained["after"]
    assert trained["result"].reason == "completed"
    assert before["equidistribution"] > 0.5  # the uniform mesh: phi = 0 at the start
    assert after["equidistribution"] < before["equidistribution"] / 4
    assert after["convexity"] == 0.0 and after["min_det"] > 0.05
    assert after["boundary"] < 1e-4


def test_trained_meshes_are_untangled_and_beat_the_uniform_mesh(trained):
    points = trained["dmm"](FIELDS)
    assert points.shape == (len(FIELDS), N, N, 2) and trained["dmm"].last_fallbacks == {}
    assert (min_corner_jacobians(points) > 0).all()
    for i in range(3):
        q = mesh_quality(points[i], lambda p, i=i: front(p, *FRONTS[i]))
        assert q["tangled"] == 0
        assert q["interp_l2"] < q["uniform_interp_l2"] / 1.3, q  # measured ratios 1.6 to 2.1


def test_walls_slide_and_corners_stay(trained):
    dmm = trained["dmm"]
    s = np.linspace(0.0, 1.0, 41)
    zeros, ones = np.zeros_like(s), np.ones_like(s)
    walls = [np.stack(w, axis=1) for w in ((zeros, s), (ones, s), (s, zeros), (s, ones))]
    raw = dmm.displacement(FIELDS, np.concatenate(walls))  # (B, 4 * 41, 2), no snapping
    normal = np.concatenate([raw[:, :82, 0], raw[:, 82:, 1]], axis=1)
    tangential = np.concatenate([raw[:, :82, 1], raw[:, 82:, 0]], axis=1)
    assert np.sqrt((normal**2).mean()) < 0.15 * H  # the network itself nearly slides (measured 0.065 h)
    assert np.abs(tangential).max() > 0.3 * H  # ... and its wall nodes do move, along the wall
    x = dmm(FIELDS)
    assert (x[:, 0, :, 0] == 0).all() and (x[:, -1, :, 0] == 1).all()
    assert (x[:, :, 0, 1] == 0).all() and (x[:, :, -1, 1] == 1).all()
    assert np.array_equal(x[:, [0, 0, -1, -1], [0, -1, 0, -1]], np.array([[0, 0], [0, 1], [1, 0], [1, 1]])[None]
                          .repeat(len(FIELDS), 0).astype(float))


def test_a_run_reloads_and_moves_a_field_into_a_valid_mesh(trained):
    loaded = DMM.load(trained["run"])
    assert np.allclose(loaded(FIELDS[:2]), trained["dmm"](FIELDS[:2]), atol=1e-6)
    assert loaded.monitor.beta == 1.0 and loaded.grid == GRID and loaded.periodic is False
    u = Field(FIELDS[0], GRID)
    mesh = move(u, loaded)
    assert isinstance(mesh, Mesh) and mesh.n_points == N * N
    mesh.validate()
    assert np.allclose(mesh.points.reshape(N, N, 2), loaded(u)[0])
    with pytest.raises(ConfigError, match="learnt to equidistribute"):
        move(u, loaded, GradientMonitor(beta=0.1))
    # A Field on a finer grid of the same box: same network, any resolution, any n.
    fine = Grid(49, ndim=2)
    assert loaded(Field(front(fine.coords(), *FRONTS[0]), fine), n=17).shape == (1, 17, 17, 2)


def test_save_and_pretrained_round_trip(trained, tmp_path):
    trained["dmm"].save(tmp_path / "mine.pt", {"note": "test"})
    again = DMM.pretrained("mine", weights_dir=tmp_path)
    assert np.allclose(again(FIELDS[:1]), trained["dmm"](FIELDS[:1]), atol=1e-6)
    assert json.loads((tmp_path / "mine.json").read_text())["note"] == "test"


# -- answering edge cases ---------------------------------------------------------------------------
def test_tangled_meshes_fall_back_or_raise():
    torch.manual_seed(1)
    net = _net()
    torch.nn.init.normal_(net.head.weight, std=3.0)  # a wild potential: folded meshes
    dmm = DMM(net, GRID, GradientMonitor(beta=1.0))
    with pytest.warns(SciMLWarning, match="tangled"):
        x = dmm(FIELDS[:2])
    assert set(dmm.last_fallbacks) == {0, 1} and (min_corner_jacobians(x) > 0).all()
    classical = DMM(net, GRID, GradientMonitor(beta=1.0), on_tangle="classical")
    with pytest.warns(SciMLWarning, match="1 of 1 meshes tangled"):
        y = classical(FIELDS[:1])
    assert classical.last_fallbacks == {0: "classical Monge-Ampere"}
    expected = MongeAmpere().mesh_points(Field(FIELDS[0], GRID), GradientMonitor(beta=1.0), N)
    assert np.allclose(y[0], expected)
    strict = DMM(net, GRID, GradientMonitor(beta=1.0), on_tangle="raise")
    with pytest.raises(InvalidMeshError, match="tangled"):
        strict(FIELDS[:1])


def test_periodic_network_gives_periodic_maps():
    torch.manual_seed(0)
    net = _net(periodic=True)
    torch.nn.init.normal_(net.head.weight, std=1e-3)
    grid = Grid(25, ndim=2)
    x = grid.coords()
    fields = np.tanh(3 * np.sin(2 * np.pi * (x[..., 0] + x[..., 1] - 0.2)))[None]
    dmm = DMM(net, grid, GradientMonitor(beta=1.0, periodic=True))
    xi = np.random.default_rng(0).uniform(size=(50, 2))
    d0, d1 = dmm.displacement(fields, xi), dmm.displacement(fields, xi + np.array([1.0, -1.0]))
    assert np.abs(d0).max() > 1e-5 and np.allclose(d0, d1, atol=1e-6)
    points = dmm(fields)[0]
    assert np.allclose(points[-1] - points[0], [1.0, 0.0]) and np.allclose(points[:, -1] - points[:, 0], [0.0, 1.0])
    task = DMMTask(net, grid, monitor=GradientMonitor(beta=1.0, periodic=True), points=16)
    terms = task.loss_terms(_full_batch(task.dataset(fields)))
    assert set(terms) == {"equidistribution", "convexity"}  # no wall term on the torus


# -- errors -------------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors():
    task = DMMTask(_net(), GRID, beta=1.0)
    bad = FIELDS[:2].copy()
    bad[0, 3, 4] = np.nan
    with pytest.raises(NonFiniteError):
        task.dataset(bad)
    with pytest.raises(ShapeError, match=r"\(N, 24, 24\)"):
        task.dataset(np.zeros((3, 24, 20)))
    with pytest.raises(UnknownNameError, match="laplace"):
        DMMTask(_net(), GRID, monitor="laplace")
    with pytest.raises(UnknownNameError):
        DMMTask(_net(), GRID, weights={"bc": 1.0})
    with pytest.raises(ConfigError, match="periodic"):
        DMMTask(_net(), GRID, monitor=GradientMonitor(periodic=True))
    with pytest.raises(ConfigError, match="DMMNet"):
        DMMTask(torch.nn.Linear(2, 1), GRID)
    dmm = DMM(_net(), GRID, GradientMonitor(beta=1.0))
    with pytest.raises(NonFiniteError):
        dmm(bad)
    with pytest.raises(ShapeError):
        dmm(np.zeros((2, 20, 24)))
    with pytest.raises(UnknownNameError):
        DMM(_net(), GRID, GradientMonitor(), on_tangle="ignore")
    u = Field(FIELDS[0], GRID)
    with pytest.raises(UnknownNameError, match="monitor"):
        move(u, MongeAmpere(), monitor="curvature")
    with pytest.raises(ConfigError, match="mover"):
        move(u, "monge-ampere")
    with pytest.raises(NonFiniteError):
        move(Field(bad[0], GRID), MongeAmpere())
    with pytest.raises(ConfigError):
        MongeAmpere(tol=-1.0)


def test_pretrained_without_weights_names_the_training_script(tmp_path):
    with pytest.raises(CheckpointError, match=TRAIN_SCRIPT):
        DMM.pretrained(weights_dir=tmp_path)
    if not (WEIGHTS_DIR / "dmm_burgers2d.pt").is_file():
        with pytest.raises(CheckpointError, match="dmm_burgers2d"):
            DMM.pretrained()


# -- the classical mover behind move() ------------------------------------------------------------------
def test_move_with_monge_ampere_validates_and_beats_the_uniform_mesh():
    f = lambda p: front(p, 0.9, 0.1)  # noqa: E731
    u = Field(f(GRID.coords()), GRID)
    mesh = move(u, MongeAmpere(smooth=4), GradientMonitor(beta=1.0))
    assert isinstance(mesh, Mesh) and mesh.n_points == N * N
    assert mesh.validate().ok
    q = mesh_quality(mesh.points.reshape(N, N, 2), f)
    assert q["tangled"] == 0 and q["interp_ratio"] > 1.5, q  # measured 2.3
    # The nodal values of the interpolated field are close to f (bilinear on the 24 x 24 data).
    assert np.abs(interpolate_to_mesh(u, mesh) - f(mesh.points)).max() < 0.2
    assert move(u, MongeAmpere(), n=9, cell_type="quad").n_cells == 64


# -- bilinear interpolation ------------------------------------------------------------------------------
def test_bilinear_interpolation_is_exact_on_bilinear_functions():
    grid = Grid((7, 11), bounds=[(-1.0, 2.0), (0.5, 1.5)])
    f = lambda p: 0.3 - 1.2 * p[..., 0] + 2.5 * p[..., 1] + 0.7 * p[..., 0] * p[..., 1]  # noqa: E731
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(-1, 2, 200), rng.uniform(0.5, 1.5, 200)], axis=1)
    assert np.allclose(interpolate_to_mesh(Field(f(grid.coords()), grid), pts), f(pts), atol=1e-12)
    # The torch version (unit square), in float64, and its gradient in x within the cells.
    unit = Grid((7, 11))
    values = torch.tensor(f(unit.coords()))[None]
    x = torch.tensor(rng.uniform(size=(1, 200, 2)), requires_grad=True)
    out = bilinear(values, x)
    assert torch.allclose(out, torch.tensor(f(x.detach().numpy())), atol=1e-12)
    (g,) = torch.autograd.grad(out.sum(), x)
    p = x.detach().numpy()[0]
    exact = np.stack([-1.2 + 0.7 * p[:, 1], 2.5 + 0.7 * p[:, 0]], axis=1)
    assert np.allclose(g[0].numpy(), exact, atol=1e-10)
    # Periodic: a whole period away is the same point.
    shifted = bilinear(values, x.detach() + torch.tensor([1.0, -2.0]), periodic=True)
    assert torch.allclose(shifted, out.detach(), atol=1e-12)


def test_import_sciml_meshmove_does_not_import_torch():
    code = "import sys, sciml.meshmove as m; m.move; m.MongeAmpere; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
