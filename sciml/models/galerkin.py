"""Galerkin Transformer (Cao, NeurIPS 2021) on 1-D and 2-D grids: softmax-free attention operators.

The grid values become a sequence of tokens, one per grid point, and each attention layer is a
learned integral operator. With queries, keys and values ``Q, K, V`` (``n`` tokens of width ``d_k`` per
head) the two softmax-free attentions are

* **Galerkin**: ``Q (LN(K)^T LN(V)) / n``: a Petrov-Galerkin projection onto the span of the value
  columns, linear in ``n``;
* **Fourier**: ``(LN(Q) LN(K)^T / sqrt(d)) V / n``: a quadrature of a kernel integral.

``LN`` is a layer norm of each head's ``d_k`` features, one per head with its own affine weights (eps
``norm_eps``; the reference found the fp32 results sensitive to it and used 1e-7 in 2-D). After the
norms the point coordinates are appended to ``Q``, ``K`` and ``V`` in every head, so each head has width
``d_k + ndim``, and the heads are merged by ``Linear(d + h * ndim -> d)``. Without a softmax both are
linear in each factor, so the Fourier product is evaluated as ``LN(Q) (LN(K)^T V)`` too: the same
function in ``O(n)`` memory and time instead of an ``n x n`` matrix (``d`` in the scale is the head
width including the coordinates, as in the reference code). ``W_Q, W_K, W_V`` start as Xavier-uniform
with a small gain plus ``delta * I`` (the reference's "diagonal weight"), biases at zero. An encoder
layer is ``x = x + Dropout(attn(x)); x = x + Dropout(FFN(x))`` with no other norm; every dropout is an
``nn.Dropout`` module, so all of them are off in ``eval()`` mode.

Models (channels-first like every grid operator here: ``(B, C_in, *s) -> (B, C_out, *s)``; the node
coordinates are generated inside on the unit box, or on ``bounds``, ``'ij'`` order):

* **1-D**: ``Linear(C_in + 1 -> d)`` of the input values and the coordinate, ``n_layers`` encoder layers
  on all points, then the spectral regressor.
* **2-D**: a CNN + interpolation **downsampler** from the fine grid ``n_f`` to a coarse grid ``n_c``
  (3x3 conv on the fine grid, bilinear interpolation to the intermediate size ``n_m``, three chained
  3x3 conv blocks whose outputs are concatenated to ``d`` channels, bilinear interpolation to ``n_c``),
  the encoder layers on the ``n_c`` tokens, an **upsampler** (interpolate to the intermediate size
  between ``n_c`` and the output size, a 3x3 conv block, interpolate to the output size) and the 2-D
  spectral regressor. The sizes are computed from the input in every call, so one set of weights runs on
  any grid: ``n_c = min(coarse, n_f)`` per axis, or ``ceil((n_f - 1) / stride) + 1`` (default stride 3,
  which maps 85 -> 29, 141 -> 48, 211 -> 71), and ``n_m = round(sqrt(n_f n_c))`` (the reference's
  intermediate sizes are this geometric mean too). Interpolation uses ``align_corners=True``, the node
  convention of :class:`~sciml.grid.Grid`.
* **Spectral regressor** (``decoder="spectral"``): ``Linear(d + ndim -> freq_dim)`` of the features and
  the coordinates, ``decoder_layers`` layers ``h -> act(W h + K(Dropout(h)))`` with ``K`` the FNO's
  :class:`~sciml.models.fno.SpectralConv` on ``modes`` modes, then ``Linear -> act -> Linear`` to the
  output channels (hidden ``freq_dim`` in 1-D, ``4 freq_dim`` in 2-D, as in the reference).
* **Pointwise decoder** (``decoder="pointwise"``, the inverse-coefficient variant): ``Linear(d + ndim ->
  hidden)``, ``decoder_layers`` x ``(Linear, act, Dropout)``, ``Linear`` to the outputs; in 2-D the
  output may live on a coarser grid of ``out_size`` points per axis (the reference inverts Darcy from
  141^2 data to a 36^2 coefficient).

``d_model, n_layers, n_heads, freq_dim, modes`` left at None take the paper's configuration for
``ndim`` (1-D Burgers: 96, 4, 1, 48, 16; 2-D Darcy: 128, 6, 4, 32, 12); the paper's 2-D runs used
dropout 0.05 in the encoder, the FFN and the downsampler, ``norm_eps=1e-7``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_name, check_positive_int
from ..errors import ConfigError, DTypeError, ShapeError
from .fno import PointwiseLinear, SpectralConv
from .mlp import ACTIVATIONS, MLP
from .mlp import activation as make_activation
from .registry import register

__all__ = ["GalerkinTransformer", "GalerkinAttention", "GalerkinEncoderLayer", "HeadLayerNorm", "ATTENTIONS"]

ATTENTIONS = ("galerkin", "fourier")
DECODERS = ("spectral", "pointwise")
PAPER_CONFIGS: dict[int, dict[str, int]] = {
    1: {"d_model": 96, "n_layers": 4, "n_heads": 1, "freq_dim": 48, "modes": 16},
    2: {"d_model": 128, "n_layers": 6, "n_heads": 4, "freq_dim": 32, "modes": 12},
}


def _check_real(name: str, value: Any, low: float, high: float = math.inf, low_open: bool = False) -> float:
    """``value`` as a float in ``[low, high)`` (``(low, high)`` if ``low_open``), else a ConfigError."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (low_open and value == low) or value >= high:
        left = "(" if low_open else "["
        raise ConfigError(f"{name}: expected a number in {left}{low}, {high}), got {value!r}")
    return float(value)


def _sizes(name: str, value: Any, ndim: int, low: int = 2) -> tuple[int, ...] | None:
    """None, or one int per axis (an int is used for every axis), each at least ``low``."""
    if value is None:
        return None
    values = [value] * ndim if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != ndim:
        raise ConfigError(f"{name}: expected an int or {ndim} ints (one per axis), got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"{name}: expected ints >= {low}, got {value!r}")
    return tuple(values)


def node_coords(
    spatial: Sequence[int], bounds: Sequence[Sequence[float]], like: torch.Tensor
) -> torch.Tensor:
    """Node coordinates ``(ndim, *spatial)`` of a uniform grid with both end points, ``'ij'`` order."""
    lines = [
        torch.linspace(lo, hi, n, device=like.device, dtype=like.dtype)
        for (lo, hi), n in zip(bounds, spatial)
    ]
    return torch.stack(torch.meshgrid(*lines, indexing="ij"))


class HeadLayerNorm(nn.Module):
    """One ``LayerNorm(d_k)`` per head, applied to ``(B, h, n, d_k)`` (per-head affine weights)."""

    def __init__(self, n_heads: int, d_k: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.d_k, self.eps = d_k, eps
        self.weight = nn.Parameter(torch.ones(n_heads, d_k))
        self.bias = nn.Parameter(torch.zeros(n_heads, d_k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, (self.d_k,), eps=self.eps)
        return y * self.weight[:, None, :] + self.bias[:, None, :]

    def extra_repr(self) -> str:
        return f"heads={self.weight.shape[0]}, d_k={self.d_k}, eps={self.eps}"


class GalerkinAttention(nn.Module):
    """Softmax-free multi-head attention with coordinates in every head: ``(B, n, d) -> (B, n, d)``.

    Parameters
    ----------
    d_model, n_heads : int
        Token width and number of heads (``d_model`` divisible by ``n_heads``).
    pos_dim : int
        Number of coordinates appended to each head's ``Q, K, V``.
    attention : {"galerkin", "fourier"}
        Which product and which norms (see the module docstring).
    norm_eps : float
        Layer norm epsilon.
    xavier_gain, diagonal_weight : float
        ``W = xavier_uniform(gain) + diagonal_weight * I`` for ``W_Q, W_K, W_V``.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        pos_dim: int,
        attention: str = "galerkin",
        norm_eps: float = 1e-5,
        xavier_gain: float = 1e-2,
        diagonal_weight: float = 1e-2,
    ) -> None:
        super().__init__()
        check_name("attention", attention, ATTENTIONS)
        self.d_model = check_positive_int("GalerkinAttention d_model", d_model)
        self.n_heads = check_positive_int("GalerkinAttention n_heads", n_heads)
        if d_model % n_heads:
            raise ConfigError(
                f"Galerkin attention: expected d_model divisible by n_heads, got d_model={d_model}, "
                f"n_heads={n_heads}"
            )
        self.pos_dim = check_positive_int("GalerkinAttention pos_dim", pos_dim)
        self.attention = attention
        self.d_k = d_model // n_heads
        self.query, self.key, self.value = (nn.Linear(d_model, d_model) for _ in range(3))
        for layer in (self.query, self.key, self.value):
            nn.init.xavier_uniform_(layer.weight, gain=xavier_gain)
            with torch.no_grad():
                layer.weight += diagonal_weight * torch.eye(d_model)
            nn.init.zeros_(layer.bias)
        # Galerkin normalises K and V, Fourier Q and K; "first"/"second" name the pair in that order.
        self.norm_first = HeadLayerNorm(n_heads, self.d_k, norm_eps)
        self.norm_second = HeadLayerNorm(n_heads, self.d_k, norm_eps)
        self.merge = nn.Linear(d_model + n_heads * pos_dim, d_model)

    def _heads(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return layer(x).view(b, n, self.n_heads, self.d_k).transpose(1, 2)  # (B, h, n, d_k)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """``x``: tokens ``(B, n, d_model)``; ``pos``: coordinates ``(n, pos_dim)`` or ``(B, n, pos_dim)``."""
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ShapeError("Galerkin attention input", f"(B, n, {self.d_model})", tuple(x.shape))
        b, n, _ = x.shape
        batched = pos.ndim == 3
        if pos.shape[-2:] != (n, self.pos_dim) or pos.ndim not in (2, 3) or (batched and pos.shape[0] != b):
            expected = f"({n}, {self.pos_dim}) or ({b}, {n}, {self.pos_dim})"
            raise ShapeError("Galerkin attention coordinates", expected, tuple(pos.shape))
        q, k, v = self._heads(self.query, x), self._heads(self.key, x), self._heads(self.value, x)
        if self.attention == "galerkin":
            k, v = self.norm_first(k), self.norm_second(v)
        else:
            q, k = self.norm_first(q), self.norm_second(k)
        p = (pos if pos.ndim == 3 else pos.unsqueeze(0)).unsqueeze(1).to(x.dtype)
        p = p.expand(b, self.n_heads, n, self.pos_dim)
        q, k, v = (torch.cat([t, p], dim=-1) for t in (q, k, v))
        scale = 1.0 / n if self.attention == "galerkin" else 1.0 / (n * math.sqrt(self.d_k + self.pos_dim))
        kv = torch.matmul(k.transpose(-2, -1), v) * scale  # (B, h, d_k + p, d_k + p)
        out = torch.matmul(q, kv).transpose(1, 2).reshape(b, n, self.n_heads * (self.d_k + self.pos_dim))
        return self.merge(out)

    def extra_repr(self) -> str:
        return f"{self.attention}, d_model={self.d_model}, heads={self.n_heads}, pos_dim={self.pos_dim}"


class GalerkinEncoderLayer(nn.Module):
    """``x = x + Dropout(attn(x, pos)); x = x + Dropout(FFN(x))``, ``FFN = Linear, act, Dropout, Linear``."""

    def __init__(self, d_model: int, n_heads: int, pos_dim: int, dim_feedforward: int,
                 attention: str = "galerkin", norm_eps: float = 1e-5, xavier_gain: float = 1e-2,
                 diagonal_weight: float = 1e-2, activation: str = "relu", dropout: float = 0.0,
                 ffn_dropout: float = 0.0) -> None:
        super().__init__()
        self.attn = GalerkinAttention(d_model, n_heads, pos_dim, attention, norm_eps, xavier_gain,
                                      diagonal_weight)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, dim_feedforward),
            make_activation(activation),
            nn.Dropout(ffn_dropout),
            nn.Linear(dim_feedforward, d_model),
        )
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout1(self.attn(x, pos))
        return x + self.dropout2(self.ffn(x))


class _SpectralRegressor(nn.Module):
    """``(B, d, *s)`` features and ``(B, ndim, *s)`` coordinates to ``(B, out, *s)`` (module docstring)."""

    def __init__(self, in_dim: int, ndim: int, out_channels: int, freq_dim: int, modes: int, n_layers: int,
                 hidden: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.lift = PointwiseLinear(in_dim + ndim, freq_dim)
        kept = [modes] * ndim
        self.spectral = nn.ModuleList(SpectralConv(freq_dim, freq_dim, kept) for _ in range(n_layers))
        self.pointwise = nn.ModuleList(PointwiseLinear(freq_dim, freq_dim) for _ in range(n_layers))
        self.dropout = nn.Dropout(dropout)
        self.act = make_activation(activation)
        self.head = MLP(freq_dim, out_channels, hidden=[hidden], activation=activation)

    def forward(self, h: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        h = self.lift(torch.cat([h, coords], dim=1))
        for spectral, pointwise in zip(self.spectral, self.pointwise, strict=True):
            h = self.act(pointwise(h) + spectral(self.dropout(h)))
        return self.head(h.movedim(1, -1)).movedim(-1, 1)


class _PointwiseRegressor(nn.Module):
    """Point by point: ``Linear(d + ndim -> hidden)``, ``n_layers`` x (Linear, act, Dropout), ``Linear``."""

    def __init__(self, in_dim: int, ndim: int, out_channels: int, n_layers: int, hidden: int, activation: str,
                 dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_dim + ndim, hidden)]
        for _ in range(n_layers):
            layers += [nn.Linear(hidden, hidden), make_activation(activation), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden, out_channels))
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([h, coords], dim=1).movedim(1, -1)).movedim(-1, 1)


def _conv_block(in_ch: int, out_ch: int, activation: str, dropout: float) -> nn.Sequential:
    """3x3 convolution (no bias, size preserving), Dropout, activation."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.Dropout(dropout), make_activation(activation)
    )


def _resize(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Bilinear interpolation on nodes (``align_corners=True``); identity if the size already matches."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class _Downsampler2d(nn.Module):
    """Fine to coarse grid: conv, interpolate to the middle size, 3 chained convs concatenated, resize."""

    def __init__(self, in_ch: int, d_model: int, activation: str, dropout: float) -> None:
        super().__init__()
        third = d_model // 3
        self.conv0 = _conv_block(in_ch, d_model, activation, dropout)
        self.conv1 = _conv_block(d_model, third, activation, dropout)
        self.conv2 = _conv_block(third, third, activation, dropout)
        self.conv3 = _conv_block(third, d_model - 2 * third, activation, dropout)
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor, middle: tuple[int, ...], coarse: tuple[int, ...]) -> torch.Tensor:
        x = self.act(_resize(self.conv0(x), middle))
        x1 = self.conv1(x)
        x2 = self.conv2(x1)
        x3 = self.conv3(x2)
        return self.act(_resize(torch.cat([x1, x2, x3], dim=1), coarse))


class _Upsampler2d(nn.Module):
    """Coarse grid to output grid: interpolate to the middle size, conv block, Dropout, act, interpolate."""

    def __init__(self, d_model: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.conv = _conv_block(d_model, d_model, activation, dropout)
        self.dropout = nn.Dropout(dropout)
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor, middle: tuple[int, ...], out: tuple[int, ...]) -> torch.Tensor:
        x = self.act(self.dropout(self.conv(_resize(x, middle))))
        return _resize(x, out)


@register("galerkin")
class GalerkinTransformer(nn.Module):
    """Galerkin / Fourier Transformer operator on 1-D or 2-D grids (see the module docstring).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output functions.
    ndim : {1, 2}
        Spatial dimension.
    d_model, n_layers, n_heads : int, optional
        Token width, encoder layers, heads; None takes the paper's value for ``ndim``.
    dim_feedforward : int, optional
        Hidden width of the encoder FFN; default ``2 d_model``.
    attention : {"galerkin", "fourier"}
    norm_eps : float
        Epsilon of the per-head layer norms (> 0; the paper's 2-D runs used 1e-7).
    xavier_gain, diagonal_weight : float
        Initialisation of ``W_Q, W_K, W_V``: Xavier-uniform with this gain plus ``diagonal_weight * I``.
    activation : str
        Encoder FFN non-linearity (the reference's default ReLU).
    dropout, ffn_dropout : float
        Encoder residual dropout and FFN hidden dropout (None: ``dropout``).
    decoder : {"spectral", "pointwise"}
    freq_dim, modes : int, optional
        Width and Fourier modes per axis of the spectral regressor; None: paper value.
    decoder_layers : int
        Spectral layers, or hidden layers of the pointwise decoder.
    decoder_hidden : int, optional
        Hidden width of the regressor's output FFN (default ``freq_dim`` in 1-D, ``4 freq_dim`` in
        2-D) or of the pointwise decoder (default ``d_model``).
    decoder_activation : str
        Non-linearity of the decoder (and of the 2-D upsampler); SiLU in the paper.
    decoder_dropout : float
    coarse, stride : int or [int, int], optional (2-D only)
        Attention grid: ``min(coarse, n)`` points per axis, or every ``stride``-th point
        (``ceil((n - 1) / stride) + 1``). Give at most one; default ``stride=3``.
    out_size : int or [int, int], optional (2-D only)
        Output grid size; default the input's.
    downsampler_activation : str
        ReLU in the paper.
    downsampler_dropout, upsampler_dropout : float
    bounds : list of [lo, hi], optional
        Box whose node coordinates the model sees; the unit box by default.

    Examples
    --------
    >>> net = GalerkinTransformer(1, 1, ndim=2, coarse=29)
    >>> net(torch.randn(2, 1, 85, 85)).shape
    torch.Size([2, 1, 85, 85])
    >>> net(torch.randn(2, 1, 141, 141)).shape  # same weights, finer grid
    torch.Size([2, 1, 141, 141])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ndim: int = 2,
        d_model: int | None = None,
        n_layers: int | None = None,
        n_heads: int | None = None,
        dim_feedforward: int | None = None,
        attention: str = "galerkin",
        norm_eps: float = 1e-5,
        xavier_gain: float = 1e-2,
        diagonal_weight: float = 1e-2,
        activation: str = "relu",
        dropout: float = 0.0,
        ffn_dropout: float | None = None,
        decoder: str = "spectral",
        freq_dim: int | None = None,
        modes: int | None = None,
        decoder_layers: int = 2,
        decoder_hidden: int | None = None,
        decoder_activation: str = "silu",
        decoder_dropout: float = 0.0,
        coarse: int | Sequence[int] | None = None,
        stride: int | None = None,
        out_size: int | Sequence[int] | None = None,
        downsampler_activation: str = "relu",
        downsampler_dropout: float = 0.0,
        upsampler_dropout: float = 0.0,
        bounds: Sequence[Sequence[float]] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("Galerkin in_channels", in_channels)
        self.out_channels = check_positive_int("Galerkin out_channels", out_channels)
        if isinstance(ndim, bool) or not isinstance(ndim, int) or ndim not in PAPER_CONFIGS:
            raise ConfigError(f"Galerkin ndim: expected 1 or 2, got {ndim!r}")
        self.ndim = ndim
        paper = PAPER_CONFIGS[ndim]

        def pick(name: str, value: int | None) -> int:
            return check_positive_int(f"Galerkin {name}", paper[name] if value is None else value)

        self.d_model, self.n_layers, self.n_heads = (
            pick("d_model", d_model),
            pick("n_layers", n_layers),
            pick("n_heads", n_heads),
        )
        ffn = check_positive_int(
            "Galerkin dim_feedforward", 2 * self.d_model if dim_feedforward is None else dim_feedforward
        )
        check_name("attention", attention, ATTENTIONS)
        check_name("decoder", decoder, DECODERS)
        for name, act in (
            ("activation", activation),
            ("decoder_activation", decoder_activation),
            ("downsampler_activation", downsampler_activation),
        ):
            check_name(f"Galerkin {name}", act, ACTIVATIONS)
        eps = _check_real("Galerkin norm_eps", norm_eps, 0.0, low_open=True)
        gain = _check_real("Galerkin xavier_gain", xavier_gain, 0.0)
        delta = _check_real("Galerkin diagonal_weight", diagonal_weight, -math.inf)
        drop = _check_real("Galerkin dropout", dropout, 0.0, 1.0)
        ffn_drop = drop if ffn_dropout is None else _check_real("Galerkin ffn_dropout", ffn_dropout, 0.0, 1.0)
        dec_drop = _check_real("Galerkin decoder_dropout", decoder_dropout, 0.0, 1.0)
        down_drop = _check_real("Galerkin downsampler_dropout", downsampler_dropout, 0.0, 1.0)
        up_drop = _check_real("Galerkin upsampler_dropout", upsampler_dropout, 0.0, 1.0)
        self.decoder_layers = check_positive_int("Galerkin decoder_layers", decoder_layers)
        self.attention, self.decoder = attention, decoder
        self.bounds = self._check_bounds(bounds, ndim)
        if ndim == 1:
            given = [
                n
                for n, v in (("coarse", coarse), ("stride", stride), ("out_size", out_size))
                if v is not None
            ]
            if given:
                raise ConfigError(
                    f"Galerkin: {given} apply to ndim=2 only (the 1-D model attends on every "
                    "point of its input grid)"
                )
        if coarse is not None and stride is not None:
            raise ConfigError(
                f"Galerkin: give coarse or stride, not both; got coarse={coarse!r}, stride={stride!r}"
            )
        self.coarse = _sizes("Galerkin coarse", coarse, ndim)
        self.stride = None if stride is None else check_positive_int("Galerkin stride", stride)
        if ndim == 2 and self.coarse is None and self.stride is None:
            self.stride = 3
        self.out_size = _sizes("Galerkin out_size", out_size, ndim)

        if ndim == 1:
            self.embed = nn.Linear(self.in_channels + 1, self.d_model)
        else:
            if self.d_model < 3:
                raise ConfigError(
                    f"Galerkin d_model: expected >= 3 in 2-D (the downsampler splits it in three), "
                    f"got {self.d_model}"
                )
            self.downsampler = _Downsampler2d(
                self.in_channels, self.d_model, downsampler_activation, down_drop
            )
            self.upsampler = _Upsampler2d(self.d_model, decoder_activation, up_drop)
        self.layers = nn.ModuleList(
            GalerkinEncoderLayer(
                self.d_model, self.n_heads, ndim, ffn, attention, eps, gain, delta, activation, drop, ffn_drop
            )
            for _ in range(self.n_layers)
        )
        if decoder == "spectral":
            self.freq_dim, self.modes = pick("freq_dim", freq_dim), pick("modes", modes)
            default_hidden = self.freq_dim if ndim == 1 else 2 * ndim * self.freq_dim
            hidden = check_positive_int(
                "Galerkin decoder_hidden", default_hidden if decoder_hidden is None else decoder_hidden
            )
            self.regressor: nn.Module = _SpectralRegressor(
                self.d_model,
                ndim,
                self.out_channels,
                self.freq_dim,
                self.modes,
                self.decoder_layers,
                hidden,
                decoder_activation,
                dec_drop,
            )
        else:
            if freq_dim is not None or modes is not None:
                raise ConfigError(
                    "Galerkin: freq_dim and modes belong to decoder='spectral', got them with "
                    "decoder='pointwise'"
                )
            hidden = check_positive_int(
                "Galerkin decoder_hidden", self.d_model if decoder_hidden is None else decoder_hidden
            )
            self.regressor = _PointwiseRegressor(
                self.d_model,
                ndim,
                self.out_channels,
                self.decoder_layers,
                hidden,
                decoder_activation,
                dec_drop,
            )

    @staticmethod
    def _check_bounds(bounds: Any, ndim: int) -> tuple[tuple[float, float], ...]:
        if bounds is None:
            return ((0.0, 1.0),) * ndim
        ok = isinstance(bounds, Sequence) and not isinstance(bounds, str) and len(bounds) == ndim
        pairs = []
        for pair in bounds if ok else []:
            if not (isinstance(pair, Sequence) and len(pair) == 2):
                ok = False
                break
            lo, hi = (_check_real("Galerkin bounds", v, -math.inf) for v in pair)
            ok = ok and hi > lo
            pairs.append((lo, hi))
        if not ok:
            raise ConfigError(f"Galerkin bounds: expected {ndim} pairs [lo, hi] with lo < hi, got {bounds!r}")
        return tuple(pairs)

    @property
    def resolution_invariant(self) -> bool:
        """1-D: attention on every point and a Fourier regressor, callable on any grid as it is. 2-D:
        convolutions of the training spacing and an attention grid that follows the input size, so
        :class:`~sciml.operators.OperatorTask` answers other grids through the training grid."""
        return self.ndim == 1

    def grid_sizes(self, spatial: Sequence[int]) -> dict[str, tuple[int, ...]]:
        """The sizes a call on input size ``spatial`` uses: ``coarse``, ``down_mid``, ``up_mid``, ``out``."""
        fine = tuple(spatial)
        if self.ndim == 1:
            return {"coarse": fine, "down_mid": fine, "up_mid": fine, "out": fine}
        if self.coarse is not None:
            coarse = tuple(min(c, n) for c, n in zip(self.coarse, fine))
        else:
            coarse = tuple(min(n, -(-(n - 1) // self.stride) + 1) for n in fine)
        out = self.out_size or fine
        return {
            "coarse": coarse,
            "down_mid": tuple(round(math.sqrt(n * c)) for n, c in zip(fine, coarse)),
            "up_mid": tuple(round(math.sqrt(c * o)) for c, o in zip(coarse, out)),
            "out": out,
        }

    def _check_input(self, x: torch.Tensor) -> None:
        d = self.ndim
        if x.ndim != d + 2 or x.shape[1] != self.in_channels or min(x.shape[2:], default=0) < 2:
            raise ShapeError(
                "Galerkin input", f"(B, {self.in_channels}, {d} spatial axes of >= 2 points)", tuple(x.shape)
            )
        if not x.is_floating_point():
            raise DTypeError(f"Galerkin input: expected a floating-point tensor, got {x.dtype}")
        param_dtype = next(self.regressor.parameters()).dtype
        if x.dtype != param_dtype and not torch.is_autocast_enabled(x.device.type):
            raise DTypeError(f"Galerkin input: expected dtype {param_dtype} (the model's), got {x.dtype}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` of shape ``(B, in_channels, *spatial)`` to ``(B, out_channels, *out_spatial)``."""
        self._check_input(x)
        b, spatial = x.shape[0], tuple(x.shape[2:])
        sizes = self.grid_sizes(spatial)
        if self.ndim == 1:
            coords = node_coords(spatial, self.bounds, x)  # (1, n)
            tokens = self.embed(torch.cat([x, coords.expand(b, 1, -1)], dim=1).transpose(1, 2))
        else:
            h = self.downsampler(x, sizes["down_mid"], sizes["coarse"])  # (B, d, *coarse)
            tokens = h.flatten(2).transpose(1, 2)
        pos = node_coords(sizes["coarse"], self.bounds, x).flatten(1).transpose(0, 1)  # (n_tokens, ndim)
        for layer in self.layers:
            tokens = layer(tokens, pos)
        h = tokens.transpose(1, 2).reshape(b, self.d_model, *sizes["coarse"])
        if self.ndim == 2:
            h = self.upsampler(h, sizes["up_mid"], sizes["out"])
        out_coords = (
            node_coords(sizes["out"], self.bounds, x).unsqueeze(0).expand(b, *([-1] * (self.ndim + 1)))
        )
        return self.regressor(h, out_coords).contiguous()
