"""DeepONet model: layouts, forms, strategies, the bias, the fused path, validation, a run that learns."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sciml
from sciml.deeponet import DeepONetTask, Sensors, make_deeponet_data
from sciml.errors import ConfigError, ShapeError
from sciml.models import build_model, model_from_spec
from sciml.models.deeponet import DeepONet, StackedMLP
from sciml.train import Trainer

STRATEGIES = [("single", [10, 8, 8], [2, 8, 8], 1), ("independent", [10, 8, 8], [2, 8, 8], 2),
              ("split_branch", [10, 8, 16], [2, 8, 8], 2), ("split_trunk", [10, 8, 8], [2, 8, 16], 2),
              ("split_both", [10, 8, 8], [2, 8, 8], 2)]


def _inputs(n=5, m=10, p=7, d=2, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, m, generator=g, dtype=dtype), torch.rand(p, d, generator=g, dtype=dtype),
            torch.rand(n, p, d, generator=g, dtype=dtype))


@pytest.mark.parametrize("strategy,branch,trunk,c", STRATEGIES)
def test_layouts_agree_for_every_strategy(strategy, branch, trunk, c):
    torch.manual_seed(0)
    model = build_model("deeponet", branch=branch, trunk=trunk, n_outputs=c, strategy=strategy).double()
    u, x, _ = _inputs()
    cart = model(u, x)
    assert cart.shape == (5, c, 7)
    per_function = model(u, x.expand(5, 7, 2))  # the same points given per function
    assert per_function.shape == (5, c, 7)
    torch.testing.assert_close(per_function, cart, rtol=1e-12, atol=1e-12)
    triplets = model.pointwise(u, x[:5])  # function i at point i
    assert triplets.shape == (5, c)
    torch.testing.assert_close(triplets, cart[torch.arange(5), :, torch.arange(5)], rtol=1e-12, atol=1e-12)
    # the definition: sum_k b_k t_k + b0, output by output
    assert model.p == {"split_both": 4}.get(strategy, 8)


def test_output_is_the_branch_trunk_dot_product():
    torch.manual_seed(1)
    model = build_model("deeponet", branch=[10, 8, 8], trunk=[2, 8, 8], fused=False).double()
    u, x, _ = _inputs()
    layers = model.linear_layers()
    (w1, b1), (w2, b2) = layers["branch"][0]
    (v1, c1), (v2, c2) = layers["trunk"][0]
    b = F.linear(torch.relu(F.linear(u, w1, b1)), w2, b2)
    t = torch.relu(F.linear(torch.relu(F.linear(x, v1, c1)), v2, c2))
    torch.testing.assert_close(model(u, x)[:, 0], b @ t.T + model.bias)


def test_stacked_and_unstacked_parameter_counts():
    m, p, h, d = 100, 40, 40, 1
    unstacked = build_model("deeponet", branch=[m, h, p], trunk=[d, h, p])
    stacked = build_model("deeponet", branch=[m, h, p], trunk=[d, h, p], stacked=True)
    trunk = d * h + h + h * p + p
    n_unstacked = sum(q.numel() for q in unstacked.parameters())
    n_stacked = sum(q.numel() for q in stacked.parameters())
    assert n_unstacked == (m * h + h + h * p + p) + trunk + 1
    assert n_stacked == p * (m * h + h + h * 1 + 1) + trunk + 1  # p networks of widths [m, h, 1]
    assert n_stacked > 30 * n_unstacked // 10


def test_stacked_branch_is_p_independent_networks():
    torch.manual_seed(2)
    net = StackedMLP([6, 5, 1], n_nets=3).double()
    u = torch.randn(4, 6, dtype=torch.float64)
    out = net(u)
    assert out.shape == (4, 3)
    for k in range(3):  # column k only depends on network k's weights
        w1, b1 = net.weights[0][k], net.biases[0][k]
        w2, b2 = net.weights[1][k], net.biases[1][k]
        torch.testing.assert_close(out[:, k], (torch.relu(u @ w1 + b1) @ w2 + b2)[:, 0])
    model = build_model("deeponet", branch=[6, 5, 3], trunk=[1, 5, 3], stacked=True).double()
    assert model(u.float().double(), torch.rand(9, 1, dtype=torch.float64)).shape == (4, 1, 9)


@pytest.mark.parametrize("packed", [True, False])
def test_the_output_bias(packed):
    torch.manual_seed(3)
    kwargs = {"stacked": not packed}
    model = build_model("deeponet", branch=[10, 8, 8], trunk=[2, 8, 8], **kwargs).double()
    u, x, _ = _inputs()
    assert model.bias is not None and model.bias.shape == (1,) and float(model.bias.detach()) == 0.0
    before = model(u, x).detach()
    with torch.no_grad():
        model.bias.fill_(0.75)
    torch.testing.assert_close(model(u, x).detach(), before + 0.75)
    # it is trained: its gradient is the sum of the output gradients
    grad_out = torch.randn_like(before)
    (model(u, x) * grad_out).sum().backward()
    weights = model.weights if packed else model.output_bias
    grad = weights.grad[-1] if packed else weights.grad[0]
    torch.testing.assert_close(grad, grad_out.sum())
    no_bias = build_model("deeponet", branch=[10, 8, 8], trunk=[2, 8, 8], bias=False, **kwargs)
    assert no_bias.bias is None
    assert sum(q.numel() for q in no_bias.parameters()) == sum(q.numel() for q in model.parameters()) - 1


@pytest.mark.parametrize("activation,layout",
                         list(itertools.product(["relu", "tanh", "gelu", "silu", "sin"], [2, 3])))
def test_fused_gradients_equal_autograd(activation, layout):
    for strategy, branch, trunk, c in STRATEGIES:
        kw = dict(branch=branch, trunk=trunk, n_outputs=c, strategy=strategy, activation=activation)
        fused = build_model("deeponet", **kw).double()
        plain = build_model("deeponet", **kw, fused=False).double()
        with torch.no_grad():
            fused.weights[-c:] = torch.randn(c, dtype=torch.float64)
        plain.load_state_dict(fused.state_dict())
        u, x2, x3 = _inputs(seed=4)
        x = x2 if layout == 2 else x3
        y = torch.randn(5, c, 7, dtype=torch.float64)
        reference = F.mse_loss(plain(u, x), y)
        (g_ref,) = torch.autograd.grad(reference, [plain.weights])
        for loss in (F.mse_loss(fused(u, x), y), fused.mse(u, x, y)):
            (g,) = torch.autograd.grad(loss, [fused.weights])
            torch.testing.assert_close(loss, reference, rtol=1e-13, atol=0)
            torch.testing.assert_close(g, g_ref, rtol=1e-11, atol=1e-14)
        # the fused relative L2 loss: value and gradient of the autograd formula
        pred = plain(u, x)
        reference = (torch.linalg.vector_norm(pred - y, dim=(1, 2)) / torch.linalg.vector_norm(y, dim=(1, 2))).mean()
        (g_ref,) = torch.autograd.grad(reference, [plain.weights])
        for model in (fused, plain):
            loss = model.relative_l2(u, x, y)
            (g,) = torch.autograd.grad(loss, [model.weights])
            torch.testing.assert_close(loss, reference, rtol=1e-13, atol=0)
            torch.testing.assert_close(g, g_ref, rtol=1e-11, atol=1e-14)


def test_fused_relative_loss_follows_new_and_changed_targets():
    # the target norms are cached for full-batch steps; a new tensor or an in-place change must count
    torch.manual_seed(2)
    model = build_model("deeponet", branch=[10, 8, 8], trunk=[2, 8, 8]).double()
    plain = build_model("deeponet", branch=[10, 8, 8], trunk=[2, 8, 8], fused=False).double()
    plain.load_state_dict(model.state_dict())
    u, x, _ = _inputs(seed=4)
    y = torch.randn(5, 1, 7, dtype=torch.float64)
    for _ in range(3):
        torch.testing.assert_close(model.relative_l2(u, x, y), plain.relative_l2(u, x, y), rtol=1e-13, atol=0)
        y.mul_(3.0)  # in place: same tensor, new version
        torch.testing.assert_close(model.relative_l2(u, x, y), plain.relative_l2(u, x, y), rtol=1e-13, atol=0)
        y = torch.randn(5, 1, 7, dtype=torch.float64)  # a new batch


def test_derivatives_in_the_points_use_autograd():
    """Points that require grad (PDE residuals) take the plain path: d/dx matches finite differences."""
    torch.manual_seed(5)
    model = build_model("deeponet", branch=[10, 8, 8], trunk=[1, 8, 8], activation="tanh").double()
    u = torch.randn(3, 10, dtype=torch.float64)
    x = torch.linspace(0.1, 0.9, 5, dtype=torch.float64)[:, None].requires_grad_()
    out = model(u, x)
    (dx,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    h = 1e-6
    fd = (model(u, x.detach() + h).sum(0) - model(u, x.detach() - h).sum(0))[0] / (2 * h)
    torch.testing.assert_close(dx[:, 0], fd, rtol=1e-6, atol=1e-8)
    (second,) = torch.autograd.grad(dx.sum(), x)  # twice differentiable
    assert torch.isfinite(second).all()


def test_bad_inputs_are_rejected():
    model = build_model("deeponet", branch=[100, 40, 40], trunk=[1, 40, 40])
    x = torch.rand(50, 1)
    with pytest.raises(ShapeError, match="100"):
        model(torch.randn(8, 99), x)  # a wrong sensor count is an error, never a broadcast
    with pytest.raises(ShapeError):
        model(torch.randn(8, 1), x)
    with pytest.raises(ShapeError):
        model(torch.randn(8, 100), torch.rand(50, 2))  # wrong coordinate dimension
    with pytest.raises(ShapeError):
        model(torch.randn(8, 100), torch.rand(7, 50, 1))  # per-function points for 7 functions, 8 given
    with pytest.raises(ShapeError):
        model(torch.randn(8, 100), None)
    with pytest.raises(ShapeError):
        model.pointwise(torch.randn(8, 100), torch.rand(9, 1))
    with pytest.raises(ShapeError):
        model.mse(torch.randn(8, 100), x, torch.randn(8, 50))  # targets must be (N, C, P)
    with pytest.raises(ConfigError):
        DeepONet([100, 40, 40], [1, 40, 30])  # single strategy needs equal widths
    with pytest.raises(ConfigError):
        DeepONet([100, 40, 40], [1, 40, 40], n_outputs=2, strategy="split_branch")
    with pytest.raises(ConfigError):
        DeepONet([100, 40, 40], [1, 40, 40], n_outputs=2, strategy="single")
    with pytest.raises(ConfigError):
        DeepONet(nn.Linear(100, 40), [1, 40, 40])  # a module branch needs its input shape


def test_module_branch_cnn_on_grid_inputs():
    torch.manual_seed(6)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(16, 12))
    model = DeepONet(cnn, [2, 16, 12], branch_shape=[1, 9, 9])
    images = torch.randn(3, 1, 9, 9)
    x = torch.rand(20, 2)
    out = model(images, x)
    assert out.shape == (3, 1, 20) and model.p == 12
    torch.testing.assert_close(model(images.reshape(3, 81), x), out)  # flat sensor vectors work too
    with pytest.raises(ShapeError):
        model(torch.randn(3, 1, 8, 8), x)
    out.sum().backward()
    assert cnn[0].weight.grad is not None


def test_pod_trunk_reproduces_the_training_outputs():
    torch.manual_seed(7)
    x = torch.linspace(0, 1, 30)[:, None]
    coeff = torch.randn(40, 3)
    modes = torch.stack([torch.sin(np.pi * (k + 1) * x[:, 0]) for k in range(3)])
    y = (coeff @ modes + 0.5)[:, None, :]  # rank 3 plus a mean
    model = build_model("deeponet", branch=[5, 16, 3], pod_modes=3, pod_points=30, coord_dim=1)
    explained = model.fit_pod(y, x)
    assert explained[0] > 1 - 1e-10
    basis = model.pod_basis[0]
    torch.testing.assert_close(basis.T @ basis / 30, torch.eye(3), atol=1e-5, rtol=0)
    # with the best coefficients the POD trunk represents the training outputs exactly
    best = (y[:, 0] - model.pod_mean[0]) @ basis / 30
    torch.testing.assert_close(best @ basis.T + model.pod_mean[0], y[:, 0], atol=1e-5, rtol=0)
    assert model(torch.randn(4, 5)).shape == (4, 1, 30)
    assert model(torch.randn(4, 5), x).shape == (4, 1, 30)
    with pytest.raises(ConfigError):
        model(torch.randn(4, 5), torch.rand(30, 1))  # not the points of the modes


def test_spec_round_trip_and_device_moves():
    torch.manual_seed(8)
    model = build_model("deeponet", branch=[10, 8, 8], trunk=[2, 8, 8])
    u, x, _ = _inputs(dtype=torch.float32)
    rebuilt = model_from_spec(model.model_spec)
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(u, x), model(u, x))
    out32 = model(u, x)
    model.double()  # new storage: the fused path's cached views must follow
    torch.testing.assert_close(model(u.double(), x.double()).float(), out32, rtol=1e-5, atol=1e-6)


def test_tiny_antiderivative_run_learns():
    torch.manual_seed(0)
    problem = sciml.load_problem("antiderivative")
    grid = sciml.Grid(21)  # 21 sensors and points keep the test fast
    sensors = Sensors.grid_nodes(grid, "u")
    train = make_deeponet_data(problem, 60, sensors, seed=0)
    test = make_deeponet_data(problem, 100, sensors, seed=1)
    model = build_model("deeponet", branch=[21, 40, 40], trunk=[1, 40, 40])
    task = DeepONetTask(model, sensors, ["s"], train=train, problem=problem)
    before = task.evaluate(test)["rel_l2_mean"]
    Trainer(task, steps=1500, lr=2e-3, device="cpu", progress=False, log_every=500).fit()
    after = task.evaluate(test)
    assert before > 0.5
    assert after["rel_l2_mean"] < 0.12, after["rel_l2_mean"]  # ~0.08 on this seed
    assert after["mse"] < 2e-3


def test_task_train_switches_every_submodule_and_is_a_no_op_when_all_are_set():
    problem = sciml.load_problem("antiderivative")
    sensors = Sensors.grid_nodes(problem.grid, "u")
    model = build_model("deeponet", branch=[100, 8, 8], trunk=[1, 8, 8])
    task = DeepONetTask(model, sensors, ["s"])
    task.train()
    assert all(m.training for m in task.modules())
    # a nested module left in eval mode (by a user or a callback) is switched back
    inner = [m for m in task.modules() if m is not task and m is not model]
    assert inner, "the model should hold at least one submodule (its activation)"
    inner[0].eval()
    assert task.training and not inner[0].training
    task.train()
    assert all(m.training for m in task.modules())
    task.eval()
    assert not any(m.training for m in task.modules())
