"""EIT transformer (UIT) and U-Net baseline: any input size, the softmax-free attention (formula, token
order equivariance), batch-norm modes, registry round trip, argument and input checks, and a small
learning run on ellipse inclusion maps."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from sciml.errors import ConfigError, DTypeError, ShapeError
from sciml.models import build_model, list_models, model_from_spec
from sciml.models.uit import UIT, UITAttention
from sciml.models.unet import UNet, working_size

MODELS = ("uit", "unet")


def tiny(name: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    args = {"in_channels": 3, "dim": 8}
    if name == "uit":
        args["heads"] = 2
    args.update(kw)
    return build_model(name, **args)


# -- shapes -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [(32, 32), (50, 37), (64, 64)])
@pytest.mark.parametrize("in_channels", [1, 3, 9])
def test_output_has_the_input_grid(name, size, in_channels):
    net = tiny(name, in_channels=in_channels, out_channels=2).eval()
    x = torch.randn(2, in_channels, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 2, *size)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", MODELS)
def test_input_size_none_rounds_each_axis_to_the_levels(name):
    assert working_size((50, 37), None, 3) == (48, 40)
    assert working_size((8, 9), None, 3) == (16, 16)  # at least two nodes on the coarsest level
    assert working_size((50, 37), 64, 3) == (64, 64)
    net = tiny(name, input_size=None).eval()
    assert not net.resolution_invariant and tiny(name).resolution_invariant
    seen = []
    net.inc.register_forward_hook(lambda mod, inp, out: seen.append(tuple(out.shape[2:])))
    with torch.no_grad():
        assert net(torch.randn(1, 3, 50, 37)).shape == (1, 1, 50, 37)
        assert net(torch.randn(1, 3, 8, 8)).shape == (1, 1, 8, 8)
    assert seen == [(48, 40), (16, 16)]


@pytest.mark.parametrize("name", MODELS)
def test_resizes_bilinearly_on_nodes_to_the_working_size_and_back(name):
    net = tiny(name, input_size=32).eval()
    seen = {}
    net.inc.register_forward_hook(lambda mod, inp, out: seen.update(inc=inp[0]))
    net.head.register_forward_hook(lambda mod, inp, out: seen.update(head=out))
    x = torch.randn(2, 3, 50, 37)
    with torch.no_grad():
        y = net(x)
    bilinear = {"mode": "bilinear", "align_corners": True}
    torch.testing.assert_close(seen["inc"], F.interpolate(x, size=(32, 32), **bilinear))
    torch.testing.assert_close(y, F.interpolate(seen["head"], size=(50, 37), **bilinear))
    # Node-aligned bilinear interpolation reproduces a linear function exactly.
    s, t = torch.meshgrid(torch.linspace(0, 1, 50), torch.linspace(0, 1, 37), indexing="ij")
    with torch.no_grad():
        net(torch.stack([s, t, 2 * s - t])[None])
    s, t = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    torch.testing.assert_close(seen["inc"][0], torch.stack([s, t, 2 * s - t]), rtol=1e-5, atol=1e-5)


def test_cross_attention_takes_queries_and_keys_from_the_coarse_feature_and_values_from_the_skip():
    net = tiny("uit", levels=3, input_size=32).eval()
    skips, calls = [], []
    net.inc.register_forward_hook(lambda mod, inp, out: skips.append(out))
    for block in net.down:
        block.register_forward_hook(lambda mod, inp, out: skips.append(out))
    for att in net.cross_attn:
        att.register_forward_hook(lambda mod, inp, out: calls.append(inp))
    with torch.no_grad():
        net(torch.randn(2, 3, 32, 32))
    assert [s.shape[-1] for s in skips] == [32, 16, 8, 4]
    assert len(calls) == 3
    for level, (query, key, value, qpos) in zip((2, 1, 0), calls):  # coarsest up block first
        n = 4 * 2 ** (2 - level)  # the coarse grid of this up block: 4, 8, 16 nodes per axis
        assert query.shape == (2, n * n, net.channels[level + 1]) and torch.equal(query, key)
        expected = F.interpolate(skips[level], size=(n, n), mode="bilinear", align_corners=True)
        torch.testing.assert_close(value, expected.flatten(2).transpose(1, 2))
        assert qpos.shape == (n * n, 2)
        torch.testing.assert_close(qpos[1], torch.tensor([0.0, 1.0 / (n - 1)]))  # 'ij' order


def test_default_models_run_at_the_default_working_size():
    for cls in (UIT, UNet):
        net = cls(3).eval()
        assert net.input_size == 64 and net.dim == 32 and net.levels == 3
        with torch.no_grad():
            assert net(torch.randn(1, 3, 50, 37)).shape == (1, 1, 50, 37)
    assert UIT(3).heads == 4 and UIT(3).softmax is False


# -- attention ----------------------------------------------------------------------------------------
def _attention(softmax: bool = False, **kw) -> UITAttention:
    torch.manual_seed(1)
    args = {"query_channels": 6, "key_channels": 6, "value_channels": 5, "d_model": 8, "n_heads": 2}
    args.update(kw)
    return UITAttention(**args, softmax=softmax)


def _naive(att: UITAttention, query, key, value, qpos, kpos) -> torch.Tensor:
    """The definition with the explicit n x n score matrix, from the module's own weights."""
    q = att._with_pos(att.norm_q(att._heads(att.query, query)), qpos)
    k = att._with_pos(att.norm_k(att._heads(att.key, key)), kpos)
    v = att._with_pos(att._heads(att.value, value), kpos)
    d, n = q.shape[-1], key.shape[1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    weights = torch.softmax(scores, dim=-1) if att.softmax else scores / n
    out = (weights @ v).transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)
    return att.merge(out)


@pytest.mark.parametrize("softmax", [False, True])
def test_attention_matches_its_quadratic_definition(softmax):
    att = _attention(softmax)
    query, key, value = torch.randn(3, 7, 6), torch.randn(3, 11, 6), torch.randn(3, 11, 5)
    qpos, kpos = torch.rand(7, 2), torch.rand(11, 2)
    out = att(query, key, value, qpos, kpos)
    assert out.shape == (3, 7, 8)
    torch.testing.assert_close(out, _naive(att, query, key, value, qpos, kpos), rtol=1e-5, atol=1e-6)
    other = _attention(not softmax)  # same weights (same seed), the other attention
    assert not torch.allclose(out, other(query, key, value, qpos, kpos), atol=1e-3)


def test_attention_is_softmax_free_by_default():
    assert UITAttention(4, 4, 4, 4, 2).softmax is False
    net = UIT(3, dim=8, heads=2)
    assert all(not m.softmax for m in net.modules() if isinstance(m, UITAttention))
    assert len([m for m in net.modules() if isinstance(m, UITAttention)]) == net.levels + 1
    # Softmax weights sum to one: with identical value tokens (and coordinates) the output cannot depend
    # on the queries. Without softmax the weights are not normalised and it does.
    key, value, pos = torch.randn(1, 9, 6), torch.randn(1, 1, 5).expand(1, 9, 5), torch.zeros(9, 2)
    q1, q2 = torch.randn(1, 9, 6), torch.randn(1, 9, 6)
    for softmax, depends in ((True, False), (False, True)):
        att = _attention(softmax)
        a, b = att(q1, key, value, pos), att(q2, key, value, pos)
        assert torch.allclose(a, b, atol=1e-5) != depends


@pytest.mark.parametrize("softmax", [False, True])
def test_attention_is_equivariant_to_token_order(softmax):
    att = _attention(softmax)
    n, m = 13, 7
    x, value, pos = torch.randn(2, n, 6), torch.randn(2, n, 5), torch.rand(n, 2)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(5))
    # Self-attention (queries and keys from one token set): permuting every token permutes the output.
    out = att(x, x, value, pos)
    torch.testing.assert_close(att(x[:, perm], x[:, perm], value[:, perm], pos[perm]), out[:, perm])
    # Cross-attention: permuting keys, values and their coordinates together changes nothing ...
    query, qpos = torch.randn(2, m, 6), torch.rand(2, m, 2)
    out = att(query, x, value, qpos, pos)
    torch.testing.assert_close(att(query, x[:, perm], value[:, perm], qpos, pos[perm]), out)
    # ... permuting the queries (with their coordinates) permutes the output.
    qperm = torch.randperm(m, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(att(query[:, qperm], x, value, qpos[:, qperm], pos), out[:, qperm])
    # A permutation applied to keys only breaks the pairing: the test above is not vacuous.
    assert not torch.allclose(att(query, x[:, perm], value, qpos, pos), out, atol=1e-4)


def test_attention_checks_its_inputs():
    att = _attention()
    x, v, pos = torch.randn(2, 5, 6), torch.randn(2, 5, 5), torch.rand(5, 2)
    with pytest.raises(ShapeError, match=r"value: expected shape \(2, 5, 5\), got \(2, 4, 5\)"):
        att(x, x, v[:, :4], pos)
    with pytest.raises(ShapeError, match=r"query: expected shape \(B, n, 6\), got \(2, 5, 5\)"):
        att(v, x, v, pos)
    with pytest.raises(ShapeError, match="coordinates"):
        att(x, x, v, pos[:4])
    with pytest.raises(ConfigError, match="divisible"):
        UITAttention(4, 4, 4, 6, 4)


def test_uit_without_attention_is_the_unet():
    unet, uit = tiny("unet").eval(), tiny("uit").eval()
    missing, unexpected = uit.load_state_dict(unet.state_dict(), strict=False)
    assert not unexpected and missing and all("attn" in k for k in missing)
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        assert not torch.allclose(uit(x), unet(x), atol=1e-4)
        for att in [uit.self_attn, *uit.cross_attn]:
            att.merge.weight.zero_()
            att.merge.bias.zero_()
        torch.testing.assert_close(uit(x), unet(x))


def test_attention_outputs_go_back_to_the_nodes_of_their_tokens():
    # Token k of a (B, C, H, W) grid is node (k // W, k % W) with coordinates (i / (H - 1), j / (W - 1)).
    net = tiny("uit", levels=1, input_size=None).eval()
    h = torch.randn(2, net.channels[1], 5, 3)
    s, t = torch.meshgrid(torch.linspace(0, 1, 5), torch.linspace(0, 1, 3), indexing="ij")
    pos = torch.stack([s.flatten(), t.flatten()], dim=1)
    tokens = torch.stack([h[:, :, k // 3, k % 3] for k in range(15)], dim=1)
    with torch.no_grad():
        a = net.self_attn(tokens, tokens, tokens, pos)
        out = net._bottleneck(h)
    for k in range(15):
        torch.testing.assert_close(out[:, :, k // 3, k % 3], h[:, :, k // 3, k % 3] + a[:, k])
    skip = torch.randn(2, net.channels[0], 10, 6)
    value = F.interpolate(skip, size=(5, 3), mode="bilinear", align_corners=True)
    values = torch.stack([value[:, :, k // 3, k % 3] for k in range(15)], dim=1)
    with torch.no_grad():
        a = net.cross_attn[0](tokens, tokens, values, pos)
        out = net._merge(0, h, skip) - net.up_proj[0](h)
    for k in range(15):
        torch.testing.assert_close(out[:, :, k // 3, k % 3], a[:, k], rtol=1e-5, atol=1e-6)


# -- train / eval -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_eval_mode_is_deterministic_and_batch_independent(name):
    net = tiny(name)
    x = torch.randn(4, 3, 36, 28)
    running = net.inc[1].running_mean.clone()
    net.train()
    with torch.no_grad():
        y_train = net(x)
        # Training mode normalises with the batch's statistics and updates the running ones.
        assert not torch.allclose(net(x[:1]), y_train[:1], atol=1e-4)
    assert not torch.equal(net.inc[1].running_mean, running)
    net.eval()
    running = net.inc[1].running_mean.clone()
    with torch.no_grad():
        a, b = net(x), net(x)
        torch.testing.assert_close(net(x[:1]), a[:1], rtol=1e-5, atol=1e-5)
    assert torch.equal(a, b)
    assert torch.equal(net.inc[1].running_mean, running)


@pytest.mark.parametrize("name", MODELS)
def test_group_norm_is_batch_independent_in_training(name):
    net = tiny(name, norm="group").train()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    x = torch.randn(3, 3, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(net(x[1:2]), net(x)[1:2], rtol=1e-5, atol=1e-5)


# -- registry ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_registry_round_trip_gives_identical_outputs(name):
    assert name in list_models()
    extra = {"softmax": True, "input_size": None} if name == "uit" else {"levels": 2, "input_size": 32}
    net = tiny(name, out_channels=2, **extra).eval()
    assert net.model_spec["name"] == name
    assert net.model_spec["kwargs"]["out_channels"] == 2
    x = torch.randn(2, 3, 33, 45)
    with torch.no_grad():
        expected = net(x)
    for spec in (net.model_spec, json.dumps(net.model_spec)):
        torch.manual_seed(123)  # a different initialisation, overwritten by the weights
        again = model_from_spec(spec)
        assert type(again) is type(net)
        again.load_state_dict(net.state_dict())
        with torch.no_grad():
            assert torch.equal(again.eval()(x), expected)


# -- checks ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_bad_inputs_name_expected_and_got(name):
    net = tiny(name).eval()
    label = "UIT" if name == "uit" else "UNet"
    cases = [
        (torch.randn(2, 4, 16, 16), r"\(2, 4, 16, 16\)"),  # wrong channels
        (torch.randn(3, 16, 16), r"\(3, 16, 16\)"),  # no batch axis
        (torch.randn(1, 3, 7, 20), r"\(1, 3, 7, 20\)"),  # too small
    ]
    for x, got in cases:
        with pytest.raises(
            ShapeError, match=rf"{label} input: expected shape \(B, 3, H, W\) with H, W >= 8, got {got}"
        ):
            net(x)
    with pytest.raises(DTypeError, match="floating-point"):
        net(torch.ones(1, 3, 16, 16, dtype=torch.int64))
    with pytest.raises(DTypeError, match="expected dtype torch.float32"):
        net(torch.randn(1, 3, 16, 16, dtype=torch.float64))


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("uit", {"dim": 10, "heads": 4}, "divisible"),
        ("uit", {"heads": 0}, "heads"),
        ("uit", {"softmax": "yes"}, "softmax"),
        ("uit", {"norm_eps": -1e-5}, "norm_eps"),
        ("uit", {"levels": 0}, "levels"),
        ("unet", {"levels": 9}, "levels"),
        ("unet", {"dim": 0}, "dim"),
        ("unet", {"in_channels": 0}, "in_channels"),
        ("unet", {"input_size": 60}, "input_size"),  # not a multiple of 2**3
        ("unet", {"input_size": 8}, "input_size"),  # one node on the coarsest level
        ("uit", {"input_size": 64.0}, "input_size"),
        ("unet", {"norm": "layer"}, "norm"),
        ("unet", {"heads": 2}, "bad arguments"),  # the U-Net has no attention
    ],
)
def test_bad_constructor_arguments_raise_config_error(name, kwargs, message):
    args = {"in_channels": 3, **kwargs}
    with pytest.raises(ConfigError, match=message):
        build_model(name, **args)


# -- learning ---------------------------------------------------------------------------------------------
def _ellipse_maps(n: int, size: int, seed: int) -> torch.Tensor:
    """``n`` indicator maps ``(n, 1, size, size)`` of one or two random rotated ellipses in the unit square."""
    g = torch.Generator().manual_seed(seed)
    s = torch.linspace(0, 1, size)
    X, Y = torch.meshgrid(s, s, indexing="ij")
    maps = torch.zeros(n, 1, size, size)
    for i in range(n):
        for _ in range(int(torch.randint(1, 3, (1,), generator=g))):
            cx, cy = (0.25 + 0.5 * torch.rand(2, generator=g)).tolist()
            a, b = (0.08 + 0.14 * torch.rand(2, generator=g)).tolist()
            angle = math.pi * float(torch.rand(1, generator=g))
            c, s_ = math.cos(angle), math.sin(angle)
            u, v = (X - cx) * c + (Y - cy) * s_, (Y - cy) * c - (X - cx) * s_
            maps[i, 0] = torch.maximum(maps[i, 0], ((u / a) ** 2 + (v / b) ** 2 <= 1).float())
    return maps


def _features(maps: torch.Tensor, steps: int = 4) -> torch.Tensor:
    """A few Jacobi smoothing steps of the indicator and its central differences: 3 channels."""
    u = maps
    for _ in range(steps):
        p = F.pad(u, (1, 1, 1, 1), mode="replicate")
        u = 0.25 * (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:])
    p = F.pad(u, (1, 1, 1, 1), mode="replicate")
    gx = 2.0 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
    gy = 2.0 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2])
    return torch.cat([u, gx, gy], dim=1)


def _relative_l2(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        p = torch.sigmoid(net(x))
    net.train()
    return float((p - y).norm() / y.norm())


@pytest.mark.parametrize("name", MODELS)
def test_learns_ellipse_inclusions_from_smoothed_maps(name):
    # Measured (seeds 0-2, 200-300 steps): relative L2 0.05-0.25 for both models, from about 1.4
    # untrained; the smoothed input channel itself, taken as the prediction, is at 0.37.
    y_train, y_test = _ellipse_maps(64, 32, seed=1), _ellipse_maps(32, 32, seed=2)
    x_train, x_test = _features(y_train), _features(y_test)
    assert float((x_test[:, :1] - y_test).norm() / y_test.norm()) > 0.3
    net = tiny(name, levels=2, input_size=32)
    before = _relative_l2(net, x_test, y_test)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(3)
    for _ in range(250):
        idx = torch.randint(0, len(y_train), (8,), generator=g)
        loss = F.binary_cross_entropy_with_logits(net(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _relative_l2(net, x_test, y_test)
    print(f"{name}: relative L2 {before:.3f} -> {after:.3f}")
    assert before > 1.0
    assert after < 0.3, (before, after)
