"""Model registry, MLP and Fourier Neural Operator."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from sciml.errors import ConfigError, DTypeError, ShapeError, UnknownNameError
from sciml.models import FNO, MLP, SpectralConv, build_model, list_models, model_from_spec, register
from sciml.models import registry as reg
from sciml.models.fno import _LowModesRFFT


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    # Small tensors: one thread avoids OpenMP spin-waiting against other processes on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


# -- registry -------------------------------------------------------------------------------------
def test_registry_lists_builtins_without_importing_them():
    code = (
        "import sys, sciml\n"
        "assert 'sciml.models' not in sys.modules\n"
        "from sciml.models import list_models\n"
        "names = list_models()\n"
        "assert {'mlp', 'fno'} <= set(names), names\n"
        "assert 'sciml.models.fno' not in sys.modules and 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_build_model_records_json_spec_and_round_trips():
    model = build_model(
        "fno", in_channels=2, out_channels=1, n_modes=(4, 3), width=8, n_layers=2, padding=0.25
    )
    spec = model.model_spec
    assert spec == {
        "name": "fno",
        "kwargs": {
            "in_channels": 2,
            "out_channels": 1,
            "n_modes": [4, 3],
            "width": 8,
            "n_layers": 2,
            "padding": 0.25,
        },
    }
    assert json.loads(json.dumps(spec)) == spec  # canonical JSON form: tuples stored as lists

    twin = model_from_spec(json.dumps(spec))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    twin.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(3, 2, 20, 18)
    assert torch.equal(model(x), twin(x))
    # a freshly initialised twin differs: the equality above comes from the loaded weights
    assert not torch.equal(model(x), model_from_spec(spec)(x))


def test_build_model_converts_numpy_scalars():
    model = build_model("mlp", in_features=np.int64(3), out_features=1, hidden=[np.int32(4)])
    assert model.model_spec["kwargs"] == {"in_features": 3, "out_features": 1, "hidden": [4]}
    assert type(model.model_spec["kwargs"]["in_features"]) is int


@pytest.mark.parametrize(
    "bad",
    [
        {"hidden": torch.tensor([4])},
        {"hidden": {4}},
        {"activation": nn.GELU()},
        {"hidden": [4], "extra": float("nan")},
    ],
)
def test_build_model_rejects_non_json_kwargs(bad):
    with pytest.raises(ConfigError):
        build_model("mlp", in_features=2, out_features=1, **bad)


def test_unknown_model_and_bad_arguments():
    with pytest.raises(UnknownNameError) as info:
        build_model("fourier")
    assert "fno" in str(info.value) and "mlp" in str(info.value)
    with pytest.raises(ConfigError, match="widht"):
        build_model("fno", in_channels=1, out_channels=1, widht=8)
    with pytest.raises(ConfigError, match="spec"):
        model_from_spec({"name": "fno"})


def test_register_user_model_and_conflicts():
    @register("_test_affine")
    class Affine(nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.lin = nn.Linear(n, n)

    try:
        assert "_test_affine" in list_models()
        model = build_model("_test_affine", n=3)
        assert isinstance(model, Affine) and model.model_spec == {"name": "_test_affine", "kwargs": {"n": 3}}
        register("_test_affine")(Affine)  # the same class again (module reload) is fine

        class Other(nn.Module):
            pass

        with pytest.raises(ConfigError, match="already taken"):
            register("_test_affine")(Other)
        with pytest.raises(ConfigError, match="nn.Module"):
            register("_test_plain")(object)
        with pytest.raises(ConfigError):
            register("")
    finally:
        reg._REGISTRY.pop("_test_affine", None)
    assert "_test_affine" not in list_models()


# -- MLP ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["gelu", "relu", "tanh", "silu", "sin"])
def test_mlp_shapes_and_activations(act):
    net = MLP(3, 2, hidden=[8, 8], activation=act, layer_norm=True)
    assert net(torch.randn(4, 5, 3)).shape == (4, 5, 2)
    kinds = [type(m).__name__ for m in net.net]
    assert kinds.count("Linear") == 3 and kinds.count("LayerNorm") == 2
    if act == "sin":  # the sine really is sin
        x = torch.linspace(-3, 3, 7)
        assert torch.allclose(net.net[2](x), torch.sin(x))


def test_mlp_init_and_errors():
    net = MLP(4, 1, hidden=[], init="xavier_uniform")
    assert len(net.net) == 1 and torch.count_nonzero(net.net[0].bias) == 0
    net = MLP(2, 2, hidden=[16], init="kaiming_normal", activation="tanh")
    assert torch.count_nonzero(net.net[0].bias) == 0
    with pytest.raises(UnknownNameError, match="gelu"):
        MLP(2, 1, activation="swish")
    with pytest.raises(UnknownNameError):
        MLP(2, 1, init="orthogonal")
    with pytest.raises(ConfigError):
        MLP(2, 1, hidden=[8, 0])
    with pytest.raises(ConfigError):
        MLP(2, 1, hidden=8)
    with pytest.raises(ShapeError, match=r"\(\.\.\., 2\)"):
        MLP(2, 1)(torch.randn(5, 3))


# -- spectral convolution -------------------------------------------------------------------------
def naive_spectral(layer: SpectralConv, x: torch.Tensor) -> torch.Tensor:
    """Reference: full rfftn, one complex einsum per corner block, zero-filled irfftn."""
    d, modes = layer.ndim, layer.n_modes
    w = torch.view_as_complex(layer.weight.detach().double())
    xf = torch.fft.rfftn(x.double(), dim=tuple(range(2, 2 + d)))
    out = torch.zeros(x.shape[0], layer.out_channels, *xf.shape[2:], dtype=xf.dtype)
    letters = "xyz"[:d]
    for corner in range(2 ** (d - 1)):
        idx_x, idx_w = [], []
        for axis, m in enumerate(modes[:-1]):
            negative = (corner >> axis) & 1
            idx_x.append(slice(-m, None) if negative else slice(0, m))
            idx_w.append(slice(m, 2 * m) if negative else slice(0, m))
        idx_x.append(slice(0, modes[-1]))
        idx_w.append(slice(0, modes[-1]))
        block = torch.einsum(f"bi{letters},io{letters}->bo{letters}", xf[(..., *idx_x)], w[(..., *idx_w)])
        out[(..., *idx_x)] = block
    return torch.fft.irfftn(out, s=x.shape[2:], dim=tuple(range(2, 2 + d)))


@pytest.mark.parametrize("modes, shape", [((5,), (20,)), ((4, 3), (16, 11)), ((3, 2, 3), (8, 9, 10))])
def test_spectral_conv_matches_naive_reference(modes, shape):
    layer = SpectralConv(3, 2, modes)
    x = torch.randn(2, 3, *shape)
    y = layer(x)
    assert y.shape == (2, 2, *shape) and y.dtype == torch.float32
    ref = naive_spectral(layer, x)
    assert rel(y.double(), ref) < 1e-5


def test_spectral_conv_parameter_count():
    for modes in [(7,), (5, 4), (3, 4, 2)]:
        layer = SpectralConv(6, 5, modes)
        d = len(modes)
        assert layer.weight.numel() == 2 * 2 ** (d - 1) * math.prod(modes) * 6 * 5
    # the paper's 2-D Darcy model: 2,368,001 parameters, 2,359,296 of them spectral
    fno = FNO(1, 1, n_modes=(12, 12), width=32, n_layers=4, padding=8)
    assert sum(p.numel() for p in fno.parameters()) == 2_368_001
    assert sum(s.weight.numel() for s in fno.spectral) == 4 * 2 * 2 * 12 * 12 * 32 * 32


def test_spectral_conv_commutes_with_subsampling_of_band_limited_input():
    # modes < N/4 and an input band-limited below the coarse Nyquist: sampling on the coarse grid
    # loses nothing, so the layer must give exactly the subsampled fine output.
    layer = SpectralConv(2, 3, (5, 5))
    n = 64
    grid = torch.arange(n, dtype=torch.float64) / n
    X, Y = torch.meshgrid(grid, grid, indexing="ij")
    gen = torch.Generator().manual_seed(1)
    x = torch.zeros(2, 2, n, n, dtype=torch.float64)
    for k1 in range(-10, 11):
        for k2 in range(0, 11):
            coef = torch.randn(2, 2, 2, generator=gen, dtype=torch.float64) / (1 + k1 * k1 + k2 * k2)
            phase = 2 * math.pi * (k1 * X + k2 * Y)
            x += coef[..., 0, None, None] * torch.cos(phase) + coef[..., 1, None, None] * torch.sin(phase)
    x = x.float()
    fine, coarse = layer(x), layer(x[..., ::2, ::2])
    assert rel(fine[..., ::2, ::2], coarse) < 1e-5
    # sanity: the layer is not trivial on this input
    assert coarse.abs().max() > 1e-3


def test_spectral_conv_on_grid_coarser_than_modes_drops_missing_modes():
    layer = SpectralConv(2, 2, (12, 12))
    x = torch.randn(1, 2, 16, 12)  # holds 8 (+/-) modes along x and 7 along y
    y = layer(x)
    small = SpectralConv(2, 2, (8, 7))
    w = layer.weight.detach()
    small.weight.data = torch.cat([w[:, :, :8], w[:, :, 24 - 8 :]], dim=2)[:, :, :, :7].clone()
    assert rel(y.double(), naive_spectral(small, x)) < 1e-5
    with pytest.raises(ShapeError):
        layer(torch.randn(1, 2, 1, 12))


def test_low_modes_rfft_gradients():
    for n, m in [(8, 5), (9, 3)]:  # even n with its Nyquist mode kept, odd n
        x = torch.randn(2, n, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t, m=m: _LowModesRFFT.apply(t, m), (x,))
        assert torch.autograd.gradgradcheck(lambda t, m=m: _LowModesRFFT.apply(t, m), (x,))
    layer = SpectralConv(2, 2, (3, 2)).double()
    x = torch.randn(1, 2, 8, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


# -- FNO ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "modes, shape, kwargs",
    [
        ((8,), (40,), {"padding": 5}),
        ((6, 5), (24, 20), {"padding": 0.1, "lifting_channels": 16, "norm": "instance"}),
        ((3, 3, 2), (10, 8, 6), {"padding": [2, 0, 1], "norm": "layer", "activation": "silu"}),
    ],
)
def test_fno_output_shapes(modes, shape, kwargs):
    model = FNO(2, 3, n_modes=modes, width=8, n_layers=2, projection_channels=16, **kwargs)
    y = model(torch.randn(2, 2, *shape))
    assert y.shape == (2, 3, *shape) and torch.isfinite(y).all()
    finer = tuple(2 * n for n in shape)  # same weights on a finer grid
    assert model(torch.randn(1, 2, *finer)).shape == (1, 3, *finer)


def test_fno_consistent_across_resolutions():
    n = 64
    grid = torch.arange(n) / n
    X, Y = torch.meshgrid(grid, grid, indexing="ij")
    f = (
        torch.sin(2 * math.pi * X)
        + 0.5 * torch.cos(2 * math.pi * (2 * X + Y))
        + 0.3 * torch.sin(6 * math.pi * Y)
    )
    f = f[None, None]
    periodic = FNO(1, 1, n_modes=(6, 6), width=16, append_coords=False)
    with torch.no_grad():
        # only aliasing of what the activations create beyond the kept modes separates the two
        assert rel(periodic(f)[..., ::2, ::2], periodic(f[..., ::2, ::2])) < 1e-4
        with_coords = FNO(1, 1, n_modes=(6, 6), width=16, padding=4)
        # node coordinates of the two grids differ by O(1/n) as well
        assert rel(with_coords(f)[..., ::2, ::2], with_coords(f[..., ::2, ::2])) < 1e-2


def test_fno_padded_by_points_is_bound_to_its_training_grid():
    """An int padding fixes the FFT period in points, so another grid means other frequencies: the
    task answers a finer grid through the training grid; a fractional padding stays (nearly) free."""
    from _poisson1d import poisson_1d

    from sciml.fields import Grid
    from sciml.operators import OperatorTask

    def rel_l2(pred: torch.Tensor, true: torch.Tensor) -> float:
        return float(((pred - true).flatten(1).norm(dim=1) / true.flatten(1).norm(dim=1)).mean())

    assert FNO(1, 1, n_modes=4).resolution_invariant and FNO(1, 1, n_modes=4, padding=0.25).resolution_invariant
    assert not FNO(1, 1, n_modes=(4, 4), padding=[0, 8]).resolution_invariant
    f_train, u_train = poisson_1d(64, 33, seed=0)
    f_fine, u_fine = poisson_1d(32, 65, seed=1)
    torch.manual_seed(0)
    net = FNO(1, 1, n_modes=8, width=16, n_layers=2, padding=8, projection_channels=32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        loss = ((net(f_train) - u_train).flatten(1).norm(dim=1) / u_train.flatten(1).norm(dim=1)).mean()
        loss.backward()
        opt.step()
    task = OperatorTask(net, Grid(33, ndim=1), ["f"], ["u"])
    assert not task.resolution_invariant
    with torch.no_grad():
        on_training_grid = rel_l2(net(f_fine[..., ::2]), u_fine[..., ::2])
        through = rel_l2(task(f_fine), u_fine)
        task.resample_off_grid = False
        direct = rel_l2(task(f_fine), u_fine)
    # Measured (torch 2.13, CPU): 0.080 on the training grid, 0.079 through it at 65 nodes, 0.22 called
    # at 65 nodes as it is.
    assert on_training_grid < 0.15 and through < 1.2 * on_training_grid
    assert direct > 2 * through, (through, direct)


def test_fno_input_checks():
    model = FNO(2, 1, n_modes=(4, 4), width=8, n_layers=1)
    with pytest.raises(ShapeError, match="2 spatial axes"):
        model(torch.randn(1, 2, 16))
    with pytest.raises(ShapeError, match=r"\(B, 2"):
        model(torch.randn(1, 3, 16, 16))
    with pytest.raises(DTypeError):
        model(torch.randn(1, 2, 16, 16, dtype=torch.float64))
    with pytest.raises(DTypeError):
        model(torch.ones(1, 2, 16, 16, dtype=torch.int64))
    for bad in [
        {"n_modes": [4, 0]},
        {"n_modes": [2, 2, 2, 2]},
        {"padding": -1},
        {"padding": 1.5},
        {"padding": [1, 2, 3]},
        {"width": 0},
        {"append_coords": 1},
    ]:
        with pytest.raises(ConfigError):
            FNO(2, 1, **{"n_modes": (4, 4), **bad})
    with pytest.raises(UnknownNameError):
        FNO(2, 1, n_modes=(4, 4), norm="batch")
    with pytest.raises(UnknownNameError):
        FNO(2, 1, n_modes=(4, 4), activation="swish")


def test_fno_double_precision_and_bf16_autocast():
    model = FNO(1, 1, n_modes=(4, 4), width=8, n_layers=2).double()
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    assert model(x).dtype == torch.float64
    model = FNO(1, 1, n_modes=(4, 4), width=8, n_layers=2)
    xf = x.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(xf)
    assert torch.isfinite(y).all()
    assert rel(y.float(), model(xf)) < 5e-2  # bf16 matmuls, float32 FFTs


def smoothing_data(n_samples: int, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random periodic f (modes 1..8) and u = (1 - d^2/dx^2 / (6 pi)^2)^-1 f on n points."""
    k = torch.arange(1, 9, dtype=torch.float64)
    c = torch.randn(n_samples, 8, generator=gen, dtype=torch.float64) / k
    s = torch.randn(n_samples, 8, generator=gen, dtype=torch.float64) / k
    angle = 2 * math.pi * k[:, None] * torch.arange(n, dtype=torch.float64) / n
    mult = 1.0 / (1.0 + (k / 3.0) ** 2)
    f = c @ torch.cos(angle) + s @ torch.sin(angle)
    u = (c * mult) @ torch.cos(angle) + (s * mult) @ torch.sin(angle)
    return f[:, None].float(), u[:, None].float()


def test_fno_learns_a_smoothing_operator_and_generalises_to_finer_grids():
    gen = torch.Generator().manual_seed(0)
    x_train, y_train = smoothing_data(256, 64, gen)
    x_test, y_test = smoothing_data(64, 64, gen)
    x_fine, y_fine = smoothing_data(64, 128, gen)
    model = FNO(1, 1, n_modes=12, width=16, n_layers=2, append_coords=False, projection_channels=32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    steps = 250
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def error(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        return ((pred - true).flatten(1).norm(dim=1) / true.flatten(1).norm(dim=1)).mean()

    with torch.no_grad():
        initial = float(error(model(x_test), y_test))
    for _ in range(steps):
        idx = torch.randint(0, 256, (32,), generator=gen)
        loss = error(model(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        test, fine = float(error(model(x_test), y_test)), float(error(model(x_fine), y_fine))
    assert initial > 0.5
    assert test < 5e-2, test
    assert fine < 5e-2, fine  # zero-shot on a twice finer grid
