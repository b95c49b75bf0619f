"""The Galerkin Transformer (sciml.models.galerkin): attention, shapes, registry, checks, learning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sciml.data.normalize import UnitGaussianNormalizer
from sciml.errors import ConfigError, DTypeError, SciMLError, ShapeError
from sciml.fields import Grid
from sciml.models import (
    GalerkinAttention,
    GalerkinEncoderLayer,
    GalerkinTransformer,
    build_model,
    model_from_spec,
)
from sciml.operators.task import OperatorTask
from sciml.problem import load_problem

# Small configurations keep the tests fast; the paper's are checked by their parameter counts.
SMALL_1D = {"ndim": 1, "d_model": 16, "n_layers": 2, "n_heads": 2, "freq_dim": 8, "modes": 6}
SMALL_2D = {"ndim": 2, "d_model": 12, "n_layers": 2, "n_heads": 2, "freq_dim": 8, "modes": 5}


@pytest.mark.parametrize("attention", ["galerkin", "fourier"])
def test_attention_is_equivariant_to_the_order_of_the_points(attention):
    torch.manual_seed(0)
    attn = GalerkinAttention(d_model=24, n_heads=3, pos_dim=2, attention=attention, xavier_gain=0.5)
    layer = GalerkinEncoderLayer(24, 3, 2, 48, attention=attention)
    x, pos = torch.randn(3, 50, 24, dtype=torch.float64), torch.rand(3, 50, 2, dtype=torch.float64)
    attn.double(), layer.double()
    perm = torch.randperm(50)
    for module in (attn, layer):
        out = module(x, pos)
        assert out.shape == (3, 50, 24)
        torch.testing.assert_close(module(x[:, perm], pos[:, perm]), out[:, perm], rtol=1e-12, atol=1e-12)
    # coordinates shared by the batch may come without the batch axis
    torch.testing.assert_close(attn(x, pos[0]), attn(x, pos[0].expand(3, 50, 2)))


def test_attention_formulas_and_initialisation():
    torch.manual_seed(1)
    attn = GalerkinAttention(d_model=8, n_heads=2, pos_dim=1, attention="galerkin", norm_eps=1e-5).double()
    w = attn.query.weight.detach()
    bound = 1e-2 * np.sqrt(6 / 16)  # xavier_uniform bound with gain 1e-2, plus 1e-2 on the diagonal
    off = w - 1e-2 * torch.eye(8, dtype=w.dtype)
    assert off.abs().max() <= bound and attn.query.bias.abs().max() == 0
    x, pos = torch.randn(2, 30, 8, dtype=torch.float64), torch.rand(30, 1, dtype=torch.float64)

    def naive(attention):
        heads = [t.view(2, 30, 2, 4).transpose(1, 2) for t in (attn.query(x), attn.key(x), attn.value(x))]
        q, k, v = heads
        ln = torch.nn.functional.layer_norm
        n1, n2 = attn.norm_first, attn.norm_second
        if attention == "galerkin":
            k = torch.stack([ln(k[:, h], (4,), n1.weight[h], n1.bias[h], 1e-5) for h in range(2)], 1)
            v = torch.stack([ln(v[:, h], (4,), n2.weight[h], n2.bias[h], 1e-5) for h in range(2)], 1)
        else:
            q = torch.stack([ln(q[:, h], (4,), n1.weight[h], n1.bias[h], 1e-5) for h in range(2)], 1)
            k = torch.stack([ln(k[:, h], (4,), n2.weight[h], n2.bias[h], 1e-5) for h in range(2)], 1)
        p = pos.expand(2, 2, 30, 1)
        q, k, v = (torch.cat([t, p], -1) for t in (q, k, v))
        if attention == "galerkin":
            out = q @ (k.transpose(-1, -2) @ v) / 30
        else:  # the n x n matrix of the reference, evaluated the expensive way
            out = (q @ k.transpose(-1, -2) / np.sqrt(5) / 30) @ v
        return attn.merge(out.transpose(1, 2).reshape(2, 30, 10))

    torch.testing.assert_close(attn(x, pos), naive("galerkin"))
    attn.attention = "fourier"
    torch.testing.assert_close(attn(x, pos), naive("fourier"))


def test_dropout_is_off_in_eval_mode_and_on_in_training():
    torch.manual_seed(2)
    drops = {"dropout": 0.3, "ffn_dropout": 0.3, "decoder_dropout": 0.3}
    for kwargs, x in ((SMALL_1D, torch.randn(2, 1, 40)), (SMALL_2D, torch.randn(2, 1, 19, 19))):
        extra = {"downsampler_dropout": 0.3, "upsampler_dropout": 0.3} if kwargs["ndim"] == 2 else {}
        model = GalerkinTransformer(1, 1, **kwargs, **drops, **extra)
        model.eval()
        with torch.no_grad():
            torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
        model.train()
        with torch.no_grad():
            assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize("n", [64, 100, 512])
def test_1d_paper_model_shapes(n):
    torch.manual_seed(3)
    model = GalerkinTransformer(2, 3, ndim=1)
    assert model(torch.randn(2, 2, n)).shape == (2, 3, n)


def test_2d_shapes_on_any_grid_and_the_inverse_variant():
    torch.manual_seed(4)
    paper = GalerkinTransformer(1, 1, ndim=2, coarse=43)
    for n in (17, 43, 85):
        assert paper(torch.randn(1, 1, n, n)).shape == (1, 1, n, n)
    assert paper.grid_sizes((85, 85)) == {
        "coarse": (43, 43),
        "down_mid": (60, 60),
        "up_mid": (60, 60),
        "out": (85, 85),
    }
    assert paper.grid_sizes((17, 17))["coarse"] == (17, 17)  # capped at the input size
    strided = GalerkinTransformer(2, 1, **SMALL_2D)  # default stride 3: 85 -> 29 as in the paper
    assert strided.grid_sizes((85, 85))["coarse"] == (29, 29)
    assert strided.grid_sizes((141, 141))["coarse"] == (48, 48)
    for shape in ((17, 17), (30, 23), (86, 85)):
        assert strided(torch.randn(2, 2, *shape)).shape == (2, 1, *shape)
    encoder = {k: v for k, v in SMALL_2D.items() if k not in ("freq_dim", "modes")}
    inverse = GalerkinTransformer(
        1, 1, **encoder, decoder="pointwise", decoder_layers=1, out_size=36, coarse=36
    )
    for n in (85, 141):
        assert inverse(torch.randn(1, 1, n, n)).shape == (1, 1, 36, 36)
    # a grid operator: trains through OperatorTask unchanged
    task = OperatorTask(strided, Grid(17, ndim=2), ["a", "b"], ["u"])
    terms = task.loss_terms({"x": torch.randn(2, 2, 17, 17), "y": torch.randn(2, 1, 17, 17)})
    terms["rel_l2"].backward()
    assert all(p.grad is not None for p in strided.parameters())


def test_paper_configurations_parameter_counts():
    one = GalerkinTransformer(1, 1, ndim=1)
    # embedding 2*96+96; per layer W_Q,K,V 3*(96*96+96), norms 2*2*96, merge 97*96+96,
    # FFN 96*192+192+192*96+96;
    # regressor lift 97*48+48, spectral 2*(48*48*16*2), pointwise 2*(48*48+48), FFN 48*48+48+48+1
    expected = 288 + 4 * (27936 + 384 + 9408 + 37152) + 4704 + 147456 + 4704 + 2401
    assert sum(p.numel() for p in one.parameters()) == expected == 459_073
    two = GalerkinTransformer(1, 1, ndim=2)
    assert (two.d_model, two.n_layers, two.n_heads, two.freq_dim, two.modes) == (128, 6, 4, 32, 12)
    assert sum(p.numel() for p in two.parameters()) == 2_220_829


def test_registry_round_trip():
    torch.manual_seed(5)
    kwargs = {
        **SMALL_2D,
        "coarse": (9, 7),
        "attention": "fourier",
        "bounds": ((0.0, 2.0), (-1.0, 1.0)),
        "norm_eps": 1e-7,
        "dropout": 0.05,
    }
    model = build_model("galerkin", in_channels=1, out_channels=2, **kwargs)
    assert json.loads(json.dumps(model.model_spec)) == model.model_spec
    assert model.model_spec["kwargs"]["coarse"] == [9, 7]
    again = model_from_spec(json.dumps(model.model_spec))
    again.load_state_dict(model.state_dict())
    model.eval(), again.eval()
    x = torch.randn(2, 1, 21, 21)
    torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
    assert isinstance(again, GalerkinTransformer) and again.bounds == ((0.0, 2.0), (-1.0, 1.0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ndim": 3}, "ndim"),
        ({"ndim": 1, "d_model": 10, "n_heads": 3}, "divisible"),
        ({"attention": "softmax"}, "attention"),
        ({"decoder": "fft"}, "decoder"),
        ({"ndim": 1, "coarse": 8}, "ndim=2"),
        ({"coarse": 8, "stride": 2}, "not both"),
        ({"coarse": 1}, "coarse"),
        ({"coarse": [8, 8, 8]}, "coarse"),
        ({"stride": 0}, "stride"),
        ({"norm_eps": 0.0}, "norm_eps"),
        ({"dropout": 1.0}, "dropout"),
        ({"bounds": [[0, 1]]}, "bounds"),
        ({"bounds": [[1, 0], [0, 1]]}, "bounds"),
        ({"decoder": "pointwise", "modes": 4}, "spectral"),
        ({"d_model": 0}, "d_model"),
        ({"activation": "swish"}, "activation"),
        ({"n_layer": 3}, "bad arguments"),
    ],
)
def test_bad_arguments_raise_config_errors(kwargs, match):
    with pytest.raises(SciMLError, match=match):
        build_model("galerkin", in_channels=1, out_channels=1, **kwargs)


def test_bad_inputs_raise_shape_and_dtype_errors():
    model = GalerkinTransformer(2, 1, **SMALL_1D)
    with pytest.raises(ShapeError, match=r"\(B, 2, 1 spatial axes"):
        model(torch.randn(2, 1, 32))
    with pytest.raises(ShapeError):
        model(torch.randn(2, 2, 8, 8))
    with pytest.raises(ShapeError):
        model(torch.randn(2, 2, 1))
    with pytest.raises(DTypeError, match="float32"):
        model(torch.randn(2, 2, 32, dtype=torch.float64))
    with pytest.raises(DTypeError):
        model(torch.ones(2, 2, 32, dtype=torch.int64))
    attn = GalerkinAttention(8, 2, pos_dim=1)
    with pytest.raises(ShapeError, match="coordinates"):
        attn(torch.randn(2, 10, 8), torch.rand(11, 1))
    with pytest.raises(ConfigError):
        GalerkinAttention(8, 2, pos_dim=0)


def test_1d_model_learns_burgers():
    # 64 training and 32 test pairs of the FNO Burgers problem at 64 periodic points (65 nodes); a small
    # Galerkin Transformer trained through OperatorTask for 400 Adam steps reaches a test relative L2 of
    # about 0.07 (measured, seeds below) from about 1.0 untrained.
    torch.manual_seed(0)
    inputs, outputs = load_problem("burgers1d").make_samples(96, Grid(65), seed=0)
    x = torch.tensor(inputs["u0"], dtype=torch.float32)[:, None]
    y = torch.tensor(outputs["u"], dtype=torch.float32)[:, None]
    train, test = {"x": x[:64], "y": y[:64]}, {"x": x[64:], "y": y[64:]}
    model = build_model(
        "galerkin",
        in_channels=1,
        out_channels=1,
        ndim=1,
        d_model=32,
        n_layers=2,
        n_heads=1,
        freq_dim=16,
        modes=8,
    )
    task = OperatorTask(
        model,
        Grid(65),
        ["u0"],
        ["u"],
        x_normalizer=UnitGaussianNormalizer().fit(train["x"]),
        y_normalizer=UnitGaussianNormalizer().fit(train["y"]),
    )
    task.eval()
    before = task.metrics(test)["rel_l2"]
    task.train()
    steps = 400
    optimizer = torch.optim.Adam(task.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=steps, pct_start=0.2)
    order = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randperm(64, generator=order)[:16]
        loss = task.loss_terms({"x": train["x"][idx], "y": train["y"][idx]})["rel_l2"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    task.eval()
    after = task.metrics(test)["rel_l2"]
    assert before > 0.9
    assert after < 0.2, (before, after)
