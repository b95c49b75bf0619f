"""U-Net for image-to-image maps (the plain baseline of the EIT transformer), and its shared backbone.

The network maps ``(B, in_channels, H, W)`` to ``(B, out_channels, H, W)``: for EIT, the PDE-based
feature channels to the logits of an inclusion indicator map. :class:`UNet` is the attention-free
baseline; :class:`~sciml.models.uit.UIT` (the EIT / U-Transformer) is the same network with attention
added, built on the backbone defined here, so the two differ by the attention terms only.

Architecture, with ``C_l = dim * 2**l`` channels on level ``l = 0..levels`` of ``N / 2**l`` nodes per
axis (``N`` the working size, below):

* **encoder**: ``DoubleConv(in_channels -> C_0)`` at the working size, then ``levels`` down blocks, each
  a bilinear interpolation to half the nodes per axis followed by ``DoubleConv(C_l -> C_{l+1})``. A
  ``DoubleConv`` is ``(3x3 conv without bias, norm, ReLU)`` twice; the norm is ``BatchNorm2d`` (the
  reference's) or, with ``norm="group"``, ``GroupNorm`` with ``gcd(8, C)`` groups (batch-independent,
  for tiny batches).
* **decoder**: ``levels`` up blocks, coarsest first. From the coarse feature ``y`` (``C_{l+1}``
  channels) and the encoder skip ``s`` (``C_l`` channels, twice the nodes): ``m = Conv1x1(y)`` halves the
  channels, ``m`` is interpolated bilinearly to the skip's size, concatenated with ``s``, and
  ``DoubleConv(2 C_l -> C_l)`` follows. The 1x1 convolution before the upsampling is Ronneberger's
  "up-convolution that halves the channels" (a 1x1 convolution commutes with bilinear interpolation,
  so doing it on the coarse grid is the same map at a quarter of the cost). The UIT adds its
  cross-attention to ``m`` before the upsampling and a self-attention at the coarsest level.
* **head**: ``Conv1x1(C_0 -> out_channels)``; the output is logits (no sigmoid).

Any input size
--------------
Every input ``H x W`` with ``H, W >= 8`` is accepted. It is first interpolated bilinearly
(``align_corners=True``, the node convention of :class:`~sciml.grid.Grid`) to the **working size**, the
network runs there, and the logits are interpolated back to ``H x W`` (no interpolation where the sizes
already agree). With ``input_size=N`` (default 64; the EIT reference uses 128) the working size is
``N x N`` for every input, so the convolutions always see the same grid spacing and one set of weights
answers any resolution (``resolution_invariant`` is True); ``N`` must be a multiple of ``2**levels`` with
at least 2 nodes per axis on the coarsest level. With ``input_size=None`` each axis is rounded to the
nearest multiple of ``2**levels`` (at least ``2 * 2**levels``): 50 x 37 runs at 48 x 40 with
``levels=3``. The spacing then follows the input, so the model is grid-bound (``resolution_invariant``
False) and :class:`~sciml.operators.OperatorTask` answers other grids through the training grid.

The EIT reference's U-Net baseline has 5 levels and ``dim=64`` (33M parameters); the default here is a
CPU-sized ``dim=32, levels=3``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int_at_least, check_name, check_positive_int
from ..errors import ConfigError, DTypeError, ShapeError
from .registry import register

__all__ = ["UNet", "DoubleConv", "NORMS", "working_size", "MIN_SIZE"]

NORMS = ("batch", "group")
#: Smallest accepted input size per axis.
MIN_SIZE = 8
#: Largest number of levels (the working size must be a multiple of ``2**levels``).
MAX_LEVELS = 8


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(math.gcd(8, channels), channels)


class DoubleConv(nn.Sequential):
    """``(Conv3x3 without bias, norm, ReLU)`` twice, size preserving: ``(B, in, H, W) -> (B, out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch") -> None:
        check_name("DoubleConv norm", norm, NORMS)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            _norm(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            _norm(norm, out_channels),
            nn.ReLU(inplace=True),
        )


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear interpolation of ``(B, C, H, W)`` to ``size`` (``align_corners=True``); identity if equal."""
    size = tuple(int(n) for n in size)
    if tuple(x.shape[2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def working_size(spatial: Sequence[int], input_size: int | None, levels: int) -> tuple[int, int]:
    """The size the network runs at for an input of size ``spatial`` (module notes).

    >>> working_size((50, 37), None, 3)
    (48, 40)
    >>> working_size((50, 37), 64, 3)
    (64, 64)
    """
    if input_size is not None:
        return (input_size, input_size)
    m = 2**levels
    return tuple(m * max(2, round(n / m)) for n in spatial)  # type: ignore[return-value]


def _check_input_size(owner: str, input_size: Any, levels: int) -> int | None:
    if input_size is None:
        return None
    m = 2**levels
    if (
        isinstance(input_size, bool)
        or not isinstance(input_size, int)
        or input_size < 2 * m
        or input_size % m
    ):
        raise ConfigError(
            f"{owner} input_size: expected None or a multiple of 2**levels = {m} that is at least {2 * m} "
            f"(two nodes per axis on the coarsest level), got {input_size!r}"
        )
    return input_size


class _UNetBackbone(nn.Module):
    """Encoder, decoder convolutions, head and the input handling shared by UNet and UIT.

    Subclasses may override :meth:`_bottleneck` (coarsest feature) and :meth:`_merge` (what is upsampled
    in each up block); the defaults give the plain U-Net.
    """

    _label = "UNet"

    def __init__(
        self, in_channels: int, out_channels: int, dim: int, levels: int, input_size: int | None, norm: str
    ) -> None:
        super().__init__()
        label = self._label
        self.in_channels = check_positive_int(f"{label} in_channels", in_channels)
        self.out_channels = check_positive_int(f"{label} out_channels", out_channels)
        self.dim = check_positive_int(f"{label} dim", dim)
        self.levels = check_int_at_least(f"{label} levels", levels, 1)
        if self.levels > MAX_LEVELS:
            raise ConfigError(f"{label} levels: expected an int in [1, {MAX_LEVELS}], got {levels!r}")
        self.input_size = _check_input_size(label, input_size, self.levels)
        if not isinstance(norm, str) or norm not in NORMS:
            raise ConfigError(f"{label} norm: expected one of {list(NORMS)}, got {norm!r}")
        self.norm = norm
        ch = self.channels = [self.dim * 2**level for level in range(self.levels + 1)]
        self.inc = DoubleConv(self.in_channels, ch[0], norm)
        self.down = nn.ModuleList(DoubleConv(ch[i], ch[i + 1], norm) for i in range(self.levels))
        # Up block i joins level i + 1 into level i (i = 0 is the finest).
        self.up_proj = nn.ModuleList(nn.Conv2d(ch[i + 1], ch[i], 1) for i in range(self.levels))
        self.up_conv = nn.ModuleList(DoubleConv(2 * ch[i], ch[i], norm) for i in range(self.levels))
        self.head = nn.Conv2d(ch[0], self.out_channels, 1)

    @property
    def resolution_invariant(self) -> bool:
        """True with a fixed ``input_size`` (every input runs on the same working grid), else False."""
        return self.input_size is not None

    def working_size(self, spatial: Sequence[int]) -> tuple[int, int]:
        """The working size for an input of size ``spatial`` (module notes of :mod:`sciml.models.unet`)."""
        return working_size(spatial, self.input_size, self.levels)

    def _check_input(self, x: torch.Tensor) -> None:
        label = self._label
        if not isinstance(x, torch.Tensor):
            raise DTypeError(f"{label} input: expected a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != self.in_channels or min(x.shape[2:]) < MIN_SIZE:
            raise ShapeError(
                f"{label} input", f"(B, {self.in_channels}, H, W) with H, W >= {MIN_SIZE}", tuple(x.shape)
            )
        if x.shape[0] < 1:
            raise ShapeError(f"{label} input", f"(B >= 1, {self.in_channels}, H, W)", tuple(x.shape))
        if not x.is_floating_point():
            raise DTypeError(f"{label} input: expected a floating-point tensor, got {x.dtype}")
        param_dtype = self.head.weight.dtype
        if x.dtype != param_dtype and not torch.is_autocast_enabled(x.device.type):
            raise DTypeError(f"{label} input: expected dtype {param_dtype} (the model's), got {x.dtype}")

    def _bottleneck(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def _merge(self, i: int, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """The coarse-grid tensor of up block ``i`` that is upsampled and concatenated with ``skip``."""
        return self.up_proj[i](coarse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` of shape ``(B, in_channels, H, W)`` to logits ``(B, out_channels, H, W)``."""
        self._check_input(x)
        spatial = tuple(x.shape[2:])
        n0, n1 = self.working_size(spatial)
        h = self.inc(resize(x, (n0, n1)))
        skips = [h]
        for level, block in enumerate(self.down, start=1):
            h = block(resize(h, (n0 >> level, n1 >> level)))
            skips.append(h)
        h = self._bottleneck(skips.pop())
        for i in reversed(range(self.levels)):
            skip = skips[i]
            up = resize(self._merge(i, h, skip), skip.shape[2:])
            h = self.up_conv[i](torch.cat([up, skip], dim=1))
        return resize(self.head(h), spatial)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, levels={self.levels}, input_size={self.input_size}, norm={self.norm!r}"


@register("unet")
class UNet(_UNetBackbone):
    """Plain U-Net: ``(B, in_channels, H, W) -> (B, out_channels, H, W)`` logits, any ``H, W >= 8``.

    Parameters
    ----------
    in_channels, out_channels : int
        Input channels (EIT: 3 per current pattern, the feature map and its two derivatives) and
        output channels (1 logit map for an inclusion indicator).
    dim : int
        Channels of the finest level; level ``l`` has ``dim * 2**l``.
    levels : int
        Down (and up) blocks, 1 to 8.
    input_size : int or None
        Working size ``N`` (every input runs at ``N x N``), a multiple of ``2**levels`` of at least
        ``2 * 2**levels``; None: each axis rounded to the nearest multiple of ``2**levels`` (module notes).
    norm : {"batch", "group"}
        Normalisation in every ``DoubleConv``.

    Examples
    --------
    >>> net = UNet(3, 1, dim=8, levels=3)
    >>> net(torch.randn(2, 3, 50, 37)).shape
    torch.Size([2, 1, 50, 37])
    """

    _label = "UNet"

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 1,
        dim: int = 32,
        levels: int = 3,
        input_size: int | None = 64,
        norm: str = "batch",
    ) -> None:
        super().__init__(in_channels, out_channels, dim, levels, input_size, norm)
