"""NIO (sciml.models.nio): shapes for any number of measurements, permutation invariance, randomised
batching, the frozen/trained lift, registry round trip, input and argument checks, and learning."""

from __future__ import annotations

import json
import math

import pytest
import torch

from sciml.errors import ConfigError, DTypeError, ShapeError, UnknownNameError
from sciml.models import build_model, model_from_spec
from sciml.models.nio import NIO

SMALL = {
    "n_sensors": 32,
    "grid_size": 16,
    "width": 8,
    "n_modes": 4,
    "n_layers": 2,
    "n_basis": 10,
    "branch_hidden": [24],
    "trunk_hidden": [24, 24],
    "projection_channels": 16,
}


def small(**kw) -> NIO:
    torch.manual_seed(0)
    return NIO(**{**SMALL, **kw})


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- shapes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("branch", ["mlp", "cnn"])
def test_output_shape_for_any_number_of_measurements_and_grid(branch):
    net = small(branch=branch, out_channels=2).eval()
    for n_meas in (1, 5, 20):
        assert net(torch.randn(3, n_meas, 32)).shape == (3, 2, 16, 16)
    assert net(torch.randn(2, 4, 32), out_shape=(20, 12)).shape == (2, 2, 20, 12)
    assert net(torch.randn(2, 4, 32), out_shape=9).shape == (2, 2, 9, 9)
    # the default grid is unchanged by a call on another one
    assert net(torch.randn(1, 3, 32)).shape == (1, 2, 16, 16)


def test_one_dimensional_output_and_bounds():
    net = small(ndim=1, grid_size=24, n_modes=5, bounds=[[-1.0, 2.0]]).eval()
    assert net(torch.randn(2, 3, 32)).shape == (2, 1, 24)
    assert net(torch.randn(2, 3, 32), out_shape=40).shape == (2, 1, 40)
    coords, basis = net.basis(7)
    torch.testing.assert_close(coords[0], torch.linspace(-1.0, 2.0, 7))
    assert basis.shape == (7, 10)


def test_trunk_sees_the_grid_nodes_including_both_ends():
    net = small(grid_size=(5, 3)).eval()
    coords, basis = net.basis()
    assert coords.shape == (2, 5, 3) and basis.shape == (15, 10)
    torch.testing.assert_close(coords[0, :, 0], torch.linspace(0, 1, 5))
    torch.testing.assert_close(coords[1, 0, :], torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(basis, net.trunk(coords.reshape(2, -1).T))


def test_modes_are_capped_to_the_padded_default_grid():
    net = small(grid_size=10, n_modes=16, padding=0)
    assert net.n_modes == (5, 6)  # 10 // 2 along the first axis, 10 // 2 + 1 along the last
    assert net.spectral[0].weight.shape[2:4] == (10, 6)
    padded = small(grid_size=10, n_modes=16, padding=6)  # 16 nodes after padding
    assert padded.n_modes == (8, 9)


# -- averaging and permutation invariance --------------------------------------------------------------
@pytest.mark.parametrize("branch", ["mlp", "cnn"])
def test_permutation_invariance_in_eval_mode(branch):
    net = small(branch=branch, deeponet_bias=True).eval()
    x = torch.randn(4, 9, 32)
    out = net(x)
    for seed in range(3):
        perm = torch.randperm(9, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(net(x[:, perm]), out, rtol=1e-5, atol=1e-5)
    # repeating every measurement leaves the average, hence the output, unchanged
    torch.testing.assert_close(net(torch.cat([x, x], dim=1)), out, rtol=1e-5, atol=1e-5)


def test_forward_is_the_lift_of_the_mean_deeponet_field():
    net = small(deeponet_bias=True).double().eval()
    with torch.no_grad():
        net.deeponet_bias.fill_(0.3)
    x = torch.randn(3, 6, 32, dtype=torch.float64)
    fields = net.measurement_fields(x)
    assert fields.shape == (3, 6, 16, 16)
    # field l is the inner product of branch(x_l) and the trunk, plus the bias
    coords, basis = net.basis(like=x)
    one = (net.branch(x[1, 4]) @ basis.T + 0.3).reshape(16, 16)
    torch.testing.assert_close(fields[1, 4], one)
    torch.testing.assert_close(net.averaged_field(x), fields.mean(dim=1))
    # the lift sees the averaged field and the coordinates: Linear(3 -> width) point by point
    lifted = net.lift(fields.mean(dim=1), coords)
    inputs = torch.stack([fields.mean(dim=1), *coords.expand(3, 2, 16, 16).unbind(1)], dim=-1)
    expected = (inputs @ net.lift.weight.T + net.lift.bias).movedim(-1, 1)
    torch.testing.assert_close(lifted, expected)


def test_several_averaged_fields_are_lifted_together():
    """n_fields = 3: three DeepONet fields per measurement on one trunk basis, averaged channel by
    channel, lifted by Linear(3 + 2 -> width); still invariant to the order of the measurements."""
    net = small(n_fields=3, deeponet_bias=True).double().eval()
    x = torch.randn(2, 5, 32, dtype=torch.float64)
    fields = net.measurement_fields(x)
    assert fields.shape == (2, 5, 3, 16, 16)
    coords, basis = net.basis(like=x)
    coef = net.branch(x[1, 2]).reshape(3, net.n_basis)
    torch.testing.assert_close(fields[1, 2], (coef @ basis.T + net.deeponet_bias).reshape(3, 16, 16))
    mean = net.averaged_field(x)
    torch.testing.assert_close(mean, fields.mean(dim=1))
    inputs = torch.cat([mean, coords.expand(2, 2, 16, 16)], dim=1).movedim(1, -1)
    expected = (inputs @ net.lift.weight.T + net.lift.bias).movedim(-1, 1)
    torch.testing.assert_close(net.lift(mean, coords), expected)
    assert net.lift.weight.shape == (net.width, 5)
    torch.testing.assert_close(net(x[:, torch.randperm(5)]), net(x))
    assert net(x).shape == (2, 1, 16, 16)


# -- randomised batching --------------------------------------------------------------------------------
def test_random_subsets_in_training_vary_and_stay_in_bounds():
    net = small(min_measurements=3).train()
    seen_rows = []
    hook = net.branch.register_forward_hook(lambda mod, inp, out: seen_rows.append(inp[0].shape[0]))
    x = torch.randn(2, 10, 32)
    torch.manual_seed(5)
    counts = []
    for _ in range(40):
        net(x)
        counts.append(net.last_n_measurements)
    hook.remove()
    assert seen_rows == [2 * c for c in counts]  # the branch ran on B * L' rows, L' as recorded
    assert all(3 <= c <= 10 for c in counts)
    assert len(set(counts)) >= 4  # it varies
    assert 10 in counts  # unlike the reference's [2, L - 1], all L can be drawn
    # the same seed gives the same subsets (torch's global RNG)
    torch.manual_seed(5)
    again = []
    for _ in range(40):
        net(x)
        again.append(net.last_n_measurements)
    assert again == counts


def test_subset_is_drawn_without_replacement_and_shared_by_the_batch():
    net = small(branch_hidden=[]).double().train()  # linear branch: coefficients are linear in x
    x = torch.randn(5, 6, 32, dtype=torch.float64)
    torch.manual_seed(11)
    net(x)
    count = net.last_n_measurements
    torch.manual_seed(11)
    low = min(net.min_measurements, 6)
    assert int(torch.randint(low, 7, ()).item()) == count
    index = torch.randperm(6)[:count]
    assert len(set(index.tolist())) == count
    # training output == eval output on exactly that subset, for every sample of the batch
    torch.manual_seed(11)
    train_out = net(x)
    net.eval()
    torch.testing.assert_close(train_out, net(x[:, index]))


def test_eval_mode_and_disabled_subsets_use_all_measurements():
    x = torch.randn(2, 7, 32)
    net = small().eval()
    for _ in range(5):
        net(x)
        assert net.last_n_measurements == 7
    fixed = small(random_subsets=False).train()
    for _ in range(5):
        fixed(x)
        assert fixed.last_n_measurements == 7
    # fewer measurements than min_measurements: all of them, in training too
    few = small(min_measurements=4).train()
    few(torch.randn(2, 2, 32))
    assert few.last_n_measurements == 2


# -- the lift ---------------------------------------------------------------------------------------
def _one_step(net: NIO) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.randn(4, 5, 32), torch.randn(4, 1, 16, 16)
    loss = ((net(x) - y) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_frozen_lift_reproduces_the_reference_and_stays_put():
    net = small(train_lift=False)
    names = {n for n, _ in net.named_parameters()}
    assert not any(n.startswith("lift.") for n in names)
    assert {"lift.weight", "lift.bias"} <= set(net.state_dict())
    assert not net.lift.weight.requires_grad and not net.lift.bias.requires_grad
    before = {k: v.clone() for k, v in net.lift.state_dict().items()}
    trunk_before = net.trunk.net[0].weight.detach().clone()
    _one_step(net)
    assert net.lift.weight.grad is None and net.lift.bias.grad is None
    for k, v in net.lift.state_dict().items():
        assert torch.equal(v, before[k])
    assert not torch.equal(net.trunk.net[0].weight, trunk_before)  # the rest does train
    net.requires_grad_(True)  # buffers are not switched back on by accident
    assert not net.lift.weight.requires_grad
    # same parameter count as the trainable lift minus the lift's (1 + ndim) * width + width
    assert n_params(small()) - n_params(net) == 3 * 8 + 8


def test_trainable_lift_receives_gradients_and_changes():
    net = small(train_lift=True)
    assert isinstance(net.lift.weight, torch.nn.Parameter)
    before = net.lift.weight.detach().clone(), net.lift.bias.detach().clone()
    _one_step(net)
    assert net.lift.weight.grad is not None and net.lift.weight.grad.abs().sum() > 0
    assert not torch.equal(net.lift.weight, before[0]) and not torch.equal(net.lift.bias, before[1])
    # weights load across the two settings: same state-dict names
    frozen = small(train_lift=False)
    frozen.load_state_dict(net.state_dict())
    torch.testing.assert_close(frozen.lift.weight, net.lift.weight.detach())


# -- registry ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("branch", ["mlp", "cnn"])
def test_registry_round_trip_gives_identical_outputs(branch):
    torch.manual_seed(3)
    kwargs = {
        **SMALL,
        "branch": branch,
        "grid_size": (12, 10),
        "padding": [2, 0.25],
        "train_lift": False,
        "bounds": ((0, 2), (-1, 1)),
        "deeponet_bias": True,
    }
    net = build_model("nio", **kwargs).eval()
    spec = net.model_spec
    assert spec["name"] == "nio" and json.loads(json.dumps(spec)) == spec
    assert spec["kwargs"]["grid_size"] == [12, 10]
    again = model_from_spec(json.dumps(spec)).eval()
    again.load_state_dict(net.state_dict())
    x = torch.randn(3, 4, 32)
    assert torch.equal(again(x), net(x))
    assert torch.equal(again(x, out_shape=(7, 9)), net(x, out_shape=(7, 9)))


# -- input and argument checks ------------------------------------------------------------------------
def test_bad_inputs_name_expected_and_got():
    net = small().eval()
    with pytest.raises(ShapeError, match=r"expected shape \(B, L >= 1, 32\).*got \(2, 5, 31\)"):
        net(torch.randn(2, 5, 31))
    with pytest.raises(ShapeError, match=r"32.*got \(5, 32\)"):
        net(torch.randn(5, 32))
    with pytest.raises(ShapeError, match=r"got \(2, 0, 32\)"):
        net(torch.randn(2, 0, 32))
    with pytest.raises(DTypeError, match="floating-point.*torch.int64"):
        net(torch.ones(2, 5, 32, dtype=torch.int64))
    with pytest.raises(DTypeError, match="expected dtype torch.float32.*got torch.float64"):
        net(torch.randn(2, 5, 32, dtype=torch.float64))
    with pytest.raises(ShapeError, match=r"NIO out_shape.*got \(4, 4, 4\)"):
        net(torch.randn(2, 5, 32), out_shape=(4, 4, 4))
    with pytest.raises(ShapeError, match="NIO out_shape.*got 1"):
        net(torch.randn(2, 5, 32), out_shape=1)
    # a too small grid for the Fourier layers is caught before any work
    with pytest.raises(ShapeError, match="got 0"):
        net(torch.randn(2, 5, 32), out_shape=0)


@pytest.mark.parametrize(
    "bad",
    [
        {"n_sensors": 0},
        {"n_sensors": 3.0},
        {"out_channels": 0},
        {"ndim": 4},
        {"ndim": True},
        {"grid_size": 1},
        {"grid_size": [16, 16, 16]},
        {"branch_hidden": 16},
        {"branch_channels": []},
        {"trunk_hidden": [0]},
        {"n_basis": -1},
        {"deeponet_bias": 1},
        {"width": 0},
        {"n_modes": 0},
        {"n_modes": [4, 4, 4]},
        {"n_layers": 0},
        {"padding": -1},
        {"padding": 1.5},
        {"padding": [1, 2, 3]},
        {"projection_channels": 0},
        {"train_lift": "yes"},
        {"random_subsets": None},
        {"min_measurements": 0},
        {"bounds": [[0, 1]]},
        {"bounds": [[1, 0], [0, 1]]},
        {"bounds": [[0, math.inf], [0, 1]]},
    ],
)
def test_bad_constructor_arguments_raise_config_error(bad):
    with pytest.raises(ConfigError):
        NIO(**{**SMALL, **bad})


def test_unknown_names_and_keywords():
    # names go through the package's check_name, as in every model: UnknownNameError lists the known ones
    with pytest.raises(UnknownNameError, match=r"unknown NIO branch 'rnn'; expected one of \['cnn', 'mlp'\]"):
        NIO(**SMALL, branch="rnn")
    with pytest.raises(UnknownNameError, match="swish"):
        NIO(**SMALL, activation="swish")
    with pytest.raises(ConfigError, match="bad arguments"):
        build_model("nio", **SMALL, n_measurements=20)


# -- learning ----------------------------------------------------------------------------------------
def test_learns_a_toy_inverse_map():
    # Target c1 sin(pi x) sin(pi y) + c2 x y on 16 x 16; measurement l is c1 phi_l + c2 psi_l for fixed
    # random vectors phi_l, psi_l (L = 8, M = 32), so every single measurement determines (c1, c2).
    gen = torch.Generator().manual_seed(0)
    n_meas, m = 8, 32
    phi, psi = torch.randn(n_meas, m, generator=gen), torch.randn(n_meas, m, generator=gen)
    axis = torch.linspace(0, 1, 16)
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    f1, f2 = torch.sin(math.pi * gx) * torch.sin(math.pi * gy), gx * gy

    def data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = torch.rand(n, 2, generator=gen) * 2 - 1
        x = c[:, 0, None, None] * phi + c[:, 1, None, None] * psi
        y = (c[:, 0, None, None] * f1 + c[:, 1, None, None] * f2)[:, None]
        return x, y

    x_train, y_train = data(256)
    x_test, y_test = data(64)

    def rel_l2(net: NIO) -> float:
        net.eval()
        with torch.no_grad():
            err = (net(x_test) - y_test).flatten(1).norm(dim=1) / y_test.flatten(1).norm(dim=1)
        net.train()
        return float(err.mean())

    torch.manual_seed(0)
    net = NIO(
        m,
        grid_size=16,
        width=16,
        n_modes=6,
        n_layers=1,
        n_basis=16,
        branch_hidden=[32],
        trunk_hidden=[32, 32],
        projection_channels=32,
    )
    untrained = rel_l2(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 400)
    for _ in range(400):
        idx = torch.randint(0, 256, (32,))
        loss = ((net(x_train[idx]) - y_train[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    trained = rel_l2(net)
    assert trained < 0.1 and trained < 0.2 * untrained, (untrained, trained)
    # trained with random subsets, it still answers from fewer measurements than L
    net.eval()
    with torch.no_grad():
        few = net(x_test[:, :3])
    err_few = float(((few - y_test).flatten(1).norm(dim=1) / y_test.flatten(1).norm(dim=1)).mean())
    assert err_few < 0.2, err_few
