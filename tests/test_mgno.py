"""MgNO: parameter count against the reference, any grid size and boundary mode, equivariance,
residual restriction, argument checks, registry round trip, and a small training run."""

from __future__ import annotations

import json
import re

import pytest
import torch
from _poisson1d import poisson_1d as _poisson_1d

from sciml.errors import ConfigError, DTypeError, SciMLError, ShapeError
from sciml.fields import Grid
from sciml.models import MgConv, MgNO, build_model, model_from_spec
from sciml.models.mgno import PADDING_MODES, _Prolong, level_shapes


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def small(**kw) -> MgNO:
    torch.manual_seed(0)
    args = {"in_channels": 2, "out_channels": 3, "channels": 4, "n_layers": 2, "levels": 4}
    args.update(kw)
    return build_model("mgno", **args)


# -- size of the reference configuration ------------------------------------------------------------
def test_parameter_count_of_the_rough_darcy_configuration():
    # MgNO_DC of xlliu2017/MgNO for rough Darcy: 4 layers, 24 channels, 6 levels, pre-smoothing
    # 1,1,1,1,1,2, one input and one output channel. Per V-cycle with f-channels c_f and u-channels c:
    # S 9 c_f c + 6 smoothing steps (A and S) 6 * 18 c_f c + Pi 5 * 9 c^2 + R 5 * 9 c_f^2 + 5
    # prolongations k c^2 with k = kernel points: 16 in the reference (kernel 4), 9 here (kernel 3).
    # Each layer adds a 1x1 conv with bias, the output a bias-free 1x1 conv.
    def count(kernel_points: int) -> int:
        c = 24
        total = c  # output projection, 24 -> 1
        for c_f in (1, c, c, c):
            total += 9 * c_f * c + 6 * 18 * c_f * c + 45 * c * c + 45 * c_f * c_f + 5 * kernel_points * c * c
            total += c_f * c + c  # W and b
        return total

    # The research note's "about 573k" is the reference's kernel-4 arithmetic.
    assert count(16) == 572_661
    model = MgNO(1, 1, channels=24, n_layers=4, levels=6, pre_smooth=[1, 1, 1, 1, 1, 2])
    # Here the prolongation is a 3-point transposed convolution (it fits any grid size, see the
    # module notes): 5 levels x 7 fewer kernel points x 576 x 4 layers = 80,640 fewer weights.
    assert n_params(model) == count(9) == 492_021
    assert n_params(MgNO(1, 1, channels=24, n_layers=4, levels=6)) == 492_021  # the default pre_smooth
    # restrict_residual adds one A (u -> f) per restriction: 5 x 9 x (24 + 3 x 576).
    with_res = MgNO(1, 1, channels=24, n_layers=4, levels=6, restrict_residual=True)
    assert n_params(with_res) - 492_021 == 5 * 9 * (24 + 3 * 576)


# -- any grid size, every boundary mode ---------------------------------------------------------------
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_output_keeps_the_grid_for_odd_and_even_sizes(padding_mode):
    net2 = small(padding_mode=padding_mode, levels=6, n_layers=1, post_smooth=1)
    for shape in [(17, 17), (32, 32), (43, 43), (64, 64), (85, 85), (43, 64), (5, 3)]:
        # 17 and (5, 3) reach one-node levels, which every mode must handle.
        assert net2(torch.randn(1, 2, *shape)).shape == (1, 3, *shape), shape
    net1 = small(padding_mode=padding_mode, levels=6, ndim=1, n_layers=1)
    for n in (33, 100, 512, 2):
        assert net1(torch.randn(2, 2, n)).shape == (2, 3, n), n
    net3 = small(padding_mode=padding_mode, levels=3, ndim=3, n_layers=1)
    assert net3(torch.randn(1, 2, 9, 12, 7)).shape == (1, 3, 9, 12, 7)


def test_level_shapes_halve_rounding_up():
    assert level_shapes((43, 64), 4) == [(43, 64), (22, 32), (11, 16), (6, 8)]
    assert level_shapes((17,), 6)[-1] == (1,)


@pytest.mark.parametrize("n", [16, 17, 2, 3, 1])
def test_prolongation_is_the_3_point_transposed_stencil(n):
    # Coarse node i feeds fine nodes 2i - 1, 2i, 2i + 1 with the kernel's 3 taps; nodes outside the
    # grid are dropped (zeros) or wrapped around (circular, where the coarse grid tiles: even n).
    torch.manual_seed(1)
    m = (n + 1) // 2
    coarse = torch.randn(2, 3, m)
    for mode in ("zeros", "circular"):
        prolong = _Prolong(3, 1, mode)
        w = prolong.weight.detach()  # (in, out, 3)
        expected = torch.zeros(2, 3, n)
        for i in range(m):
            for k in range(3):
                j = 2 * i + k - 1
                if mode == "circular" and n % 2 == 0:
                    j %= n
                if 0 <= j < n:
                    expected[:, :, j] += coarse[:, :, i] @ w[:, :, k]
        if mode == "zeros" or n % 2 == 0:
            torch.testing.assert_close(prolong(coarse, (n,)).detach(), expected)


# -- periodic grids ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "levels", "shift"), [((64,), 4, (8,)), ((32, 24), 3, (4, -8))])
def test_circular_padding_commutes_with_periodic_shifts(shape, levels, shift):
    # Shifts by multiples of 2**(levels - 1) on grids divisible by it move every level by whole nodes.
    net = small(padding_mode="circular", levels=levels, ndim=len(shape), post_smooth=1).eval()
    x = torch.randn(2, 2, *shape)
    dims = tuple(range(2, 2 + len(shape)))
    with torch.no_grad():
        y = net(x)
        y_shifted = net(torch.roll(x, shift, dims))
        torch.testing.assert_close(y_shifted, torch.roll(y, shift, dims), atol=1e-5, rtol=1e-4)
        # A one-node shift moves the coarse grids off their nodes: not equivariant, the check bites.
        one = (1,) * len(shape)
        off = (net(torch.roll(x, one, dims)) - torch.roll(y, one, dims)).norm() / y.norm()
    assert off > 1e-3


# -- restriction of f or of the residual ------------------------------------------------------------
def test_restrict_residual_both_ways():
    plain = small(levels=3, post_smooth=[1, 0])
    res = small(levels=3, post_smooth=[1, 0], restrict_residual=True)
    extra = set(res.state_dict()) - set(plain.state_dict())
    assert extra and all(".residual_A." in k for k in extra)
    assert set(plain.state_dict()) < set(res.state_dict())
    x = torch.randn(2, 2, 19, 20)
    res.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        # With every residual A zero, f - A u = f: exactly the plain V-cycle.
        for k in extra:
            res.state_dict()[k].zero_()
        torch.testing.assert_close(res(x), plain(x))
        for k in extra:
            res.state_dict()[k].normal_()
        assert (res(x) - plain(x)).norm() > 1e-3 * plain(x).norm()
    res(x).square().mean().backward()  # gradients reach the residual operators
    assert all(p.grad is not None for n, p in res.named_parameters() if ".residual_A." in n)


# -- argument and input checks ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"levels": 0}, "levels: expected a positive integer, got 0"),
        ({"levels": True}, "levels: expected a positive integer"),
        ({"channels": 0}, "channels: expected a positive integer"),
        ({"n_layers": 2.0}, "n_layers: expected a positive integer"),
        ({"levels": 3, "pre_smooth": [1, 1]}, "pre_smooth: expected an int >= 0 or a list of 3 ints"),
        ({"levels": 2, "pre_smooth": [0, 1]}, "at least 1 step on the finest level"),
        ({"levels": 2, "pre_smooth": [1, -1]}, "got [1, -1]"),
        ({"levels": 2, "pre_smooth": "11"}, "pre_smooth"),
        ({"levels": 3, "post_smooth": [1, 1, 1]}, "post_smooth: expected an int >= 0 or a list of 2 ints"),
        ({"post_smooth": -1}, "post_smooth"),
        ({"ndim": 4}, "ndim: expected 1, 2 or 3 spatial dimensions, got 4"),
        ({"padding_mode": "replicate"}, "replicate"),
        ({"restrict_residual": "yes"}, "restrict_residual: expected a bool"),
        ({"activation": "nope"}, "nope"),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs, message):
    args = {"in_channels": 1, "out_channels": 1, "channels": 4}
    args.update(kwargs)
    with pytest.raises(SciMLError) as info:
        MgNO(**args)
    assert message in str(info.value)


def test_the_v_cycle_checks_its_own_arguments():
    assert MgConv(2, 4, 1, [1, 0, 2], [0, 1])(torch.randn(1, 2, 11)).shape == (1, 4, 11)
    for args, message in [
        ((2, 4, 1, [], []), "pre_smooth: expected a list of counts"),
        ((2, 4, 1, [0, 1], [0]), "at least 1 step on the finest level"),
        ((2, 4, 1, [1, 1], []), "post_smooth: expected an int >= 0 or a list of 1 ints"),
        ((2, 4, 5, [1], []), "ndim: expected 1, 2 or 3"),
        ((0, 4, 1, [1], []), "in_channels: expected a positive integer"),
    ]:
        with pytest.raises(SciMLError, match=re.escape(message)):
            MgConv(*args)


def test_bad_inputs_say_what_was_expected():
    net = small()
    with pytest.raises(ShapeError, match=r"\(B, 2, 2 spatial axes.*\(2, 2, 16\)"):
        net(torch.randn(2, 2, 16))  # a 1-D input to a 2-D model
    with pytest.raises(ShapeError, match=r"\(B, 2, .*\(2, 3, 16, 16\)"):
        net(torch.randn(2, 3, 16, 16))
    with pytest.raises(ShapeError, match=r"\(2, 2, 0, 16\)"):
        net(torch.randn(2, 2, 0, 16))
    with pytest.raises(DTypeError, match="floating-point"):
        net(torch.ones(2, 2, 16, 16, dtype=torch.int64))
    with pytest.raises(DTypeError, match="expected dtype torch.float32"):
        net(torch.randn(2, 2, 16, 16, dtype=torch.float64))
    with pytest.raises(ConfigError, match="JSON-serialisable"):
        build_model("mgno", in_channels=1, out_channels=1, pre_smooth={1, 2})


# -- registry -------------------------------------------------------------------------------------------
def test_registry_round_trip_gives_identical_outputs():
    net = small(
        pre_smooth=(2, 1, 1, 3),
        post_smooth=(1, 0, 2),
        padding_mode="reflect",
        restrict_residual=True,
        activation="tanh",
    )
    kwargs = net.model_spec["kwargs"]
    assert net.model_spec["name"] == "mgno"
    assert kwargs["pre_smooth"] == [2, 1, 1, 3] and kwargs["post_smooth"] == [1, 0, 2]
    for spec in (net.model_spec, json.dumps({"name": "mgno", "kwargs": kwargs})):
        again = model_from_spec(spec)
        again.load_state_dict(net.state_dict())
        x = torch.randn(2, 2, 21, 14)
        with torch.no_grad():
            torch.testing.assert_close(again(x), net(x), rtol=0, atol=0)


def test_default_model_kwargs_fit_the_grid():
    from sciml.problem import load_problem
    from sciml.workflows.operator import default_model_kwargs

    darcy = load_problem("darcy")
    kw = default_model_kwargs("mgno", darcy, Grid(43, ndim=2))
    assert kw == {"in_channels": 1, "out_channels": 1, "ndim": 2, "levels": 4}
    assert level_shapes((43, 43), kw["levels"])[-1] == (6, 6)
    for n, levels in [(85, 5), (256, 5), (17, 3), (8, 2), (3, 1)]:
        assert default_model_kwargs("mgno", darcy, Grid(n, ndim=2))["levels"] == levels
        assert min(level_shapes((n,), levels)[-1]) >= min(n, 4)
    net = build_model("mgno", **kw, channels=4, n_layers=1)
    assert net(torch.randn(1, 1, 43, 43)).shape == (1, 1, 43, 43)


# -- learning ---------------------------------------------------------------------------------------------
def test_small_mgno_learns_the_1d_poisson_solution_operator():
    def rel_l2(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        return ((pred - true).flatten(1).norm(dim=1) / true.flatten(1).norm(dim=1)).mean()

    f_train, u_train = _poisson_1d(64, 33, seed=0)
    f_test, u_test = _poisson_1d(32, 33, seed=1)
    torch.manual_seed(0)
    net = build_model("mgno", in_channels=1, out_channels=1, channels=8, n_layers=1, levels=4, ndim=1)
    with torch.no_grad():
        untrained = float(rel_l2(net(f_test), u_test))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        rel_l2(net(f_train), u_train).backward()
        opt.step()
    with torch.no_grad():
        trained = float(rel_l2(net(f_test), u_test))
    # Measured (torch 2.13, CPU, one thread): untrained 6.6, trained 0.087 on the test samples.
    assert untrained > 1.0
    assert trained < 0.2, trained
    # Another resolution (the same functions on 65 nodes): the stencils belong to the training
    # spacing, so OperatorTask answers through the 33-node training grid; the network called on
    # the finer grid itself computes another operator.
    from sciml.grid import Grid
    from sciml.operators import OperatorTask

    task = OperatorTask(net, Grid(33, ndim=1), ["f"], ["u"])
    f_fine, u_fine = _poisson_1d(32, 65, seed=1)
    with torch.no_grad():
        through = float(rel_l2(task(f_fine), u_fine))
        task.resample_off_grid = False
        direct = float(rel_l2(task(f_fine), u_fine))
    assert not task.resolution_invariant
    assert through < 0.2 and direct > 2 * through, (through, direct)
