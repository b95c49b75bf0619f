"""Baselines for boundary-measurement inverse problems (sciml.models.measurement_nets): the flat
DeepONet and the FNO on harmonic extensions. Shapes, the fixed number of measurements, the harmonic
extension map, input and argument checks, registry round trips and learning a toy inverse map."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sciml.errors import ConfigError, DTypeError, ShapeError, UnknownNameError
from sciml.grid import Grid
from sciml.models import build_model, list_models, model_from_spec
from sciml.models.measurement_nets import ExtendedFNO, FlatDeepONet, harmonic_extension_matrix
from sciml.numerics.conductivity import boundary_order
from sciml.numerics.fd import harmonic_extension
from sciml.spaces.boundary import boundary_indices

# 9 x 9 grid: M = 4 (9 - 1) = 32 boundary nodes; L = 4 measurements.
DON = {"n_measurements": 4, "n_sensors": 32, "branch_hidden": [24], "trunk_hidden": [24, 24], "p": 10}
EFNO = {"n_measurements": 4, "n_sensors": 32, "n_modes": 4, "width": 8, "n_layers": 2}


def don(**kw) -> FlatDeepONet:
    torch.manual_seed(0)
    return FlatDeepONet(**{**DON, **kw})


def efno(**kw) -> ExtendedFNO:
    torch.manual_seed(0)
    return ExtendedFNO(**{**EFNO, **kw})


# -- shapes ------------------------------------------------------------------------------------------
def test_flat_deeponet_shapes_and_default_grid():
    net = don(out_channels=2).eval()
    assert net.n_measurements == 4 and isinstance(net.n_measurements, int)
    assert net.grid_size == (9, 9)  # None: the square grid whose boundary holds the 32 sensors
    assert net(torch.randn(3, 4, 32)).shape == (3, 2, 9, 9)
    assert net(torch.randn(3, 4, 32), out_shape=(20, 12)).shape == (3, 2, 20, 12)
    assert net(torch.randn(1, 4, 32), out_shape=5).shape == (1, 2, 5, 5)
    assert don(grid_size=(6, 7))(torch.randn(2, 4, 32)).shape == (2, 1, 6, 7)


def test_extended_fno_shapes_and_interpolated_out_shape():
    net = efno(out_channels=2).eval()
    assert net.n_measurements == 4 and net.grid_size == (9, 9)
    assert net.extension.shape == (81, 32) and net.extension.dtype == torch.float32
    x = torch.randn(3, 4, 32)
    out = net(x)
    assert out.shape == (3, 2, 9, 9)
    assert torch.equal(net(x, out_shape=9), out)
    # another grid: the default output interpolated bilinearly, corners kept
    fine = net(x, out_shape=(17, 13))
    assert fine.shape == (3, 2, 17, 13)
    torch.testing.assert_close(fine, F.interpolate(out, size=(17, 13), mode="bilinear", align_corners=True))
    torch.testing.assert_close(fine[..., ::2, ::3], out[..., :, ::2])  # coinciding nodes keep their values
    # a rectangular grid: 2 (nx - 1) + 2 (ny - 1) sensors
    rect = efno(n_sensors=2 * 6 + 2 * 8, grid_size=(7, 9)).eval()
    assert rect(torch.randn(2, 4, 28)).shape == (2, 1, 7, 9)


def test_flat_deeponet_is_branch_of_the_flattened_measurements_times_the_trunk():
    net = don(out_channels=2).double().eval()
    with torch.no_grad():
        net.bias.copy_(torch.tensor([0.3, -0.2], dtype=torch.float64))
    x = torch.randn(3, 4, 32, dtype=torch.float64)
    basis = net.basis((5, 3))
    axis_x, axis_y = torch.linspace(0, 1, 5, dtype=torch.float64), torch.tensor([0.0, 0.5, 1.0]).double()
    coords = torch.stack(torch.meshgrid(axis_x, axis_y, indexing="ij"), dim=-1).reshape(-1, 2)
    torch.testing.assert_close(basis, net.trunk(coords))  # nodes of the unit box, both ends, 'ij'
    coef = net.branch(x.reshape(3, 128)).reshape(3, 2, 10)
    expected = (coef @ basis.T + net.bias[:, None]).reshape(3, 2, 5, 3)
    torch.testing.assert_close(net(x, out_shape=(5, 3)), expected)


# -- the fixed number of measurements -----------------------------------------------------------------
@pytest.mark.parametrize("make", [don, efno])
def test_another_number_of_measurements_is_refused_naming_both_counts(make):
    net = make().eval()
    for n_meas in (1, 3, 5):
        pattern = (
            rf"exactly 4 measurements \(NIO takes any number\).*got \(2, {n_meas}, 32\), i\.e\. {n_meas} "
        )
        with pytest.raises(ShapeError, match=pattern):
            net(torch.randn(2, n_meas, 32))
    net16 = make(n_measurements=16)
    assert net16.n_measurements == 16
    with pytest.raises(ShapeError, match=r"exactly 16 measurements.*8 measurements"):
        net16(torch.randn(2, 8, 32))


@pytest.mark.parametrize("make", [don, efno])
def test_bad_inputs_name_expected_and_got(make):
    net = make().eval()
    name = type(net).__name__
    with pytest.raises(ShapeError, match=rf"{name} input: expected shape \(B, 4, 32\).*got \(2, 4, 31\)"):
        net(torch.randn(2, 4, 31))
    with pytest.raises(ShapeError, match=r"\(B, 4, 32\).*got \(4, 32\)"):
        net(torch.randn(4, 32))
    with pytest.raises(ShapeError, match=r"got \(1, 2, 4, 32\)"):
        net(torch.randn(1, 2, 4, 32))
    with pytest.raises(DTypeError, match="floating-point.*torch.int64"):
        net(torch.ones(2, 4, 32, dtype=torch.int64))
    with pytest.raises(DTypeError, match="expected dtype torch.float32.*got torch.float64"):
        net(torch.randn(2, 4, 32, dtype=torch.float64))
    with pytest.raises(DTypeError, match="torch.Tensor"):
        net(np.zeros((2, 4, 32), dtype=np.float32))
    with pytest.raises(ShapeError, match=rf"{name} out_shape.*got \(4, 4, 4\)"):
        net(torch.randn(2, 4, 32), out_shape=(4, 4, 4))
    with pytest.raises(ShapeError, match=rf"{name} out_shape.*got 1"):
        net(torch.randn(2, 4, 32), out_shape=1)
    # in double precision throughout it runs (the extension buffer is cast with the model)
    assert net.double()(torch.randn(2, 4, 32, dtype=torch.float64)).dtype == torch.float64


# -- the harmonic extension ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(9, 9), (7, 10)])
def test_extension_map_reproduces_harmonic_extension(shape):
    grid = Grid(shape)
    m = 2 * (shape[0] - 1) + 2 * (shape[1] - 1)
    net = efno(n_sensors=m, grid_size=list(shape))
    g = np.random.default_rng(0).standard_normal((4, m))
    full = np.zeros((4, grid.size))
    full[:, boundary_order(grid)] = g
    reference = harmonic_extension(full.reshape(4, *shape), grid)
    ext = net.extend(torch.from_numpy(g[None]).float())[0].double().numpy()  # (L = 4, nx, ny)
    np.testing.assert_allclose(ext, reference, atol=1e-5, rtol=0)
    # on the boundary nodes it is the data, in the order of boundary_indices as well
    idx, _ = boundary_indices(grid)
    np.testing.assert_allclose(ext[:, idx[:, 0], idx[:, 1]], g, atol=1e-6, rtol=0)
    interior = ext[:, 1:-1, 1:-1]
    assert np.abs(interior).max() <= np.abs(g).max()  # maximum principle
    # the buffer is E in float32, E @ g the C-order flattened extension; its boundary rows are I
    matrix = harmonic_extension_matrix(shape)
    np.testing.assert_allclose(net.extension.double().numpy(), matrix, atol=1e-7, rtol=0)
    np.testing.assert_allclose(matrix[boundary_order(grid)], np.eye(m), atol=1e-12)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-10)  # constants extend to constants


# -- argument checks --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        {"n_measurements": 0},
        {"n_measurements": 2.0},
        {"n_sensors": 0},
        {"n_sensors": 30},  # grid_size=None needs a multiple of 4
        {"out_channels": 0},
        {"grid_size": 1},
        {"grid_size": [9, 9, 9]},
        {"branch_hidden": 16},
        {"trunk_hidden": [0]},
        {"p": 0},
    ],
)
def test_flat_deeponet_bad_arguments(bad):
    with pytest.raises(ConfigError):
        FlatDeepONet(**{**DON, **bad})


def test_flat_deeponet_bad_activation_is_an_unknown_name():
    with pytest.raises(UnknownNameError, match="swish"):
        FlatDeepONet(**{**DON, "activation": "swish"})


@pytest.mark.parametrize(
    "bad",
    [
        {"n_measurements": 0},
        {"n_sensors": 36},  # not 4 (9 - 1) with grid_size=9
        {"n_sensors": 30, "grid_size": None},
        {"n_sensors": 4, "grid_size": None},  # a 2 x 2 grid has no interior
        {"grid_size": [9, 10]},  # 34 boundary nodes, not 32
        {"out_channels": 0},
        {"n_modes": 0},
        {"n_modes": [4, 4, 4]},
        {"width": 0},
        {"n_layers": 0},
        {"padding": -1},
        {"padding": 1.5},
        {"padding": [1, 2, 3]},
    ],
)
def test_extended_fno_bad_arguments(bad):
    kwargs = {**EFNO, "grid_size": 9, **bad}
    with pytest.raises(ConfigError):
        ExtendedFNO(**kwargs)


def test_extended_fno_sensor_mismatch_message_and_mode_cap():
    with pytest.raises(ConfigError, match=r"expected the 32 boundary nodes of the 9 x 9 grid.*got 36"):
        ExtendedFNO(**{**EFNO, "n_sensors": 36, "grid_size": 9})
    capped = efno(n_modes=16, padding=0)  # 9 nodes: 4 modes along x, 5 along y
    assert capped.n_modes == (4, 5)
    assert capped.fno.spectral[0].weight.shape[2:4] == (8, 5)


# -- registry ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("flat_deeponet", {**DON, "grid_size": (6, 7), "out_channels": 2}),
        ("extended_fno", {**EFNO, "grid_size": [9, 9], "padding": [2, 0.25], "out_channels": 2}),
    ],
)
def test_registry_round_trip_gives_identical_outputs(name, kwargs):
    assert name in list_models()
    torch.manual_seed(3)
    net = build_model(name, **kwargs).eval()
    spec = net.model_spec
    assert spec["name"] == name and json.loads(json.dumps(spec)) == spec
    assert "extension" not in net.state_dict()  # rebuilt, not stored
    again = model_from_spec(json.dumps(spec)).eval()
    assert type(again) is type(net)
    again.load_state_dict(net.state_dict())
    x = torch.randn(3, 4, 32)
    assert torch.equal(again(x), net(x))
    assert torch.equal(again(x, out_shape=(11, 5)), net(x, out_shape=(11, 5)))


# -- learning ----------------------------------------------------------------------------------------
def _toy(n: int) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Target c1 sin(pi x) sin(pi y) + c2 x y on n x n; measurement l is c1 phi_l + c2 psi_l for fixed
    random vectors (L = 4, M = 4 (n - 1)); (c1, c2) uniform in [-1, 1]^2. Train 256, test 64."""
    gen = torch.Generator().manual_seed(0)
    n_meas, m = 4, 4 * (n - 1)
    phi, psi = torch.randn(n_meas, m, generator=gen), torch.randn(n_meas, m, generator=gen)
    axis = torch.linspace(0, 1, n)
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    f1, f2 = torch.sin(math.pi * gx) * torch.sin(math.pi * gy), gx * gy

    def data(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = torch.rand(k, 2, generator=gen) * 2 - 1
        x = c[:, 0, None, None] * phi + c[:, 1, None, None] * psi
        y = (c[:, 0, None, None] * f1 + c[:, 1, None, None] * f2)[:, None]
        return x, y

    return data(256), data(64)


def _rel_l2(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        err = (net(x) - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)
    net.train()
    return float(err.mean())


def _fit(net: torch.nn.Module, n: int, steps: int) -> tuple[float, float]:
    (x_train, y_train), test = _toy(n)
    untrained = _rel_l2(net, *test)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = torch.randint(0, 256, (32,), generator=gen)
        loss = ((net(x_train[idx]) - y_train[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return untrained, _rel_l2(net, *test)


def test_flat_deeponet_learns_a_toy_inverse_map():
    # measured (seeds 0-2): untrained ~1.0-1.15, trained 0.023-0.027 (1500 steps, ~5 s on one thread)
    torch.manual_seed(0)
    net = FlatDeepONet(4, 32, branch_hidden=[32], trunk_hidden=[32, 32], p=16)
    untrained, trained = _fit(net, 9, 1500)
    assert trained < 0.06 and trained < 0.1 * untrained, (untrained, trained)


def test_extended_fno_learns_a_toy_inverse_map():
    # measured (seeds 0-2): untrained ~1.0-1.07, trained 0.027-0.030 (300 steps, ~6 s on one thread)
    torch.manual_seed(0)
    net = ExtendedFNO(4, 32, n_modes=4, width=16, n_layers=2)
    untrained, trained = _fit(net, 9, 300)
    assert trained < 0.06 and trained < 0.1 * untrained, (untrained, trained)


@pytest.mark.parametrize("backbone", ["uit", "unet"])
def test_extended_image_net_features_shapes_and_round_trip(backbone):
    # The EIT transformer's input: phi_l (the harmonic extension of measurement l) and h * grad phi_l.
    torch.manual_seed(0)
    kwargs = {"n_measurements": 3, "n_sensors": 32, "backbone": backbone,
              "backbone_kwargs": {"dim": 4, "levels": 2, "input_size": 16}}
    net = build_model("extended_net", **kwargs).eval()
    x = torch.randn(2, 3, 32)
    features = net.features(x)
    assert features.shape == (2, 9, 9, 9) and net(x).shape == (2, 1, 9, 9) and net(x, out_shape=17).shape[-1] == 17
    phi = features[:, :3]
    extension = torch.from_numpy(harmonic_extension_matrix(9)).float()
    torch.testing.assert_close(phi, (x @ extension.T).reshape(2, 3, 9, 9))
    torch.testing.assert_close(features[:, 3:6, 1:-1], (phi[:, :, 2:] - phi[:, :, :-2])[:, :, :] / 2)
    again = model_from_spec(json.loads(json.dumps(net.model_spec)))
    again.load_state_dict(net.state_dict())
    torch.testing.assert_close(again.eval()(x), net(x))
    with pytest.raises(ShapeError, match="exactly 3"):
        net(torch.randn(2, 2, 32))
    with pytest.raises(ConfigError, match="boundary nodes"):
        build_model("extended_net", n_measurements=3, n_sensors=30, grid_size=9)
