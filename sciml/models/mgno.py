"""Multigrid Neural Operator (MgNO; He, Liu and Xu, ICLR 2024) in one, two and three dimensions.

Every layer is ``u -> act(V u + W u + b)``: ``W`` is a point-wise linear map with bias ``b`` (a 1x1
convolution) and ``V`` a bias-free multichannel V-cycle, a learned multigrid solver for ``A u = f``
whose right-hand side ``f`` is the layer's input. There is no lifting: the first V-cycle maps the
``in_channels`` input functions straight to the ``channels`` hidden ones, and a bias-free point-wise
map projects the last layer's output to ``out_channels``.

The V-cycle (:class:`MgConv`) keeps a pair ``(u, f)`` per level, ``u`` with ``channels`` channels and
``f`` with the layer's input channels. All convolutions have three points per axis and no bias:

* finest level: ``u = S f``, then ``pre_smooth[0] - 1`` smoothing steps ``u <- u + S (f - A u)``;
* going down to level ``l + 1``: ``f <- R f`` (or ``R (f - A u)`` with ``restrict_residual=True``)
  and ``u <- Pi u``, both stride-2 convolutions, then ``pre_smooth[l + 1]`` smoothing steps;
* going up from the coarsest level: ``u_l <- u_l + P u_{l+1}`` with ``P`` a stride-2 transposed
  convolution, then ``post_smooth[l]`` smoothing steps with level ``l``'s ``f``.

Every smoothing step, restriction and prolongation has its own weights.

Grids of any size
-----------------
The reference code fixes the transposed-convolution kernels (4, or a 3/4 mix) for one grid size
(256 or 211). Here the grid may have any number of nodes per axis, odd or even, and may change between
calls. A level of ``n`` nodes restricts to ``m = ceil(n / 2)`` nodes (coarse node ``i`` sits on fine
node ``2 i``), and the prolongation is a 3-point transposed convolution placing coarse node ``i`` on
fine nodes ``2 i - 1, 2 i, 2 i + 1`` (the transpose of the restriction's stencil, so linear
interpolation is one of the kernels it can learn). Its natural output has ``2 m - 1`` nodes; the size
of the finer level is read at run time and ``output_padding = n - (2 m - 1)``, which is 0 for odd and
1 for even ``n``, adds the one missing node. No padding to a power of two, no cropping, no
interpolation.

Boundaries
----------
``padding_mode`` gives every 3-point convolution its ghost nodes: ``"zeros"`` (homogeneous Dirichlet,
the reference's choice for Darcy), ``"circular"`` (periodic) or ``"reflect"`` (mirror about the
boundary node, Neumann-like). The prolongation pads the coarse grid by one ghost node per side in
the same mode before its transposed convolution, so with ``"circular"`` the last even-indexed fine
node also receives its wrapped-around neighbour and the whole network commutes with periodic shifts
by multiples of ``2 ** (levels - 1)`` nodes on grids divisible by that number. With ``"reflect"`` an
axis that has shrunk to one node is padded by repeating that node (its own mirror image).

Other resolutions
-----------------
The stencils are learned operators *of the training grid spacing* (like a finite-difference matrix),
so a network trained on one grid computes a different operator on another: trained at 43 x 43 and
called at 85 x 85 it is off by about 50%. The class says so (``resolution_invariant = False``) and
:class:`~sciml.operators.OperatorTask` answers other resolutions by interpolating to the training
grid and back.

The network is built in float32 (torch's default dtype).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_name, check_positive_int
from ..errors import ConfigError, DTypeError, ShapeError
from .mlp import ACTIVATIONS
from .mlp import activation as make_activation
from .registry import register

__all__ = ["MgNO", "MgConv", "PADDING_MODES", "default_pre_smooth", "level_shapes"]

PADDING_MODES = ("zeros", "circular", "reflect")

_CONV: dict[int, Callable[..., torch.Tensor]] = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T: dict[int, Callable[..., torch.Tensor]] = {
    1: F.conv_transpose1d,
    2: F.conv_transpose2d,
    3: F.conv_transpose3d,
}
_POINTWISE: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def default_pre_smooth(levels: int) -> list[int]:
    """The reference's smoothing counts: one step per level, two on the coarsest (when ``levels > 1``).

    >>> default_pre_smooth(6)
    [1, 1, 1, 1, 1, 2]
    """
    levels = check_positive_int("default_pre_smooth levels", levels)
    return [1] * levels if levels == 1 else [1] * (levels - 1) + [2]


def level_shapes(spatial: Sequence[int], levels: int) -> list[tuple[int, ...]]:
    """Grid shape of every V-cycle level, finest first: each axis goes from ``n`` to ``ceil(n / 2)``.

    >>> level_shapes((43, 64), 4)
    [(43, 64), (22, 32), (11, 16), (6, 8)]
    """
    shapes = [tuple(int(n) for n in spatial)]
    for _ in range(levels - 1):
        shapes.append(tuple((n + 1) // 2 for n in shapes[-1]))
    return shapes


def _pad_ghosts(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Pad every spatial axis of ``x`` (channels-first) by one ghost node per side.

    ``mode`` is ``"zeros"``, ``"circular"`` or ``"reflect"``; a one-node axis under ``"reflect"`` is
    padded by repetition (the node's own mirror image), which ``F.pad`` refuses to do itself.
    """
    d = x.ndim - 2
    if mode == "zeros":
        return F.pad(x, [1] * (2 * d))
    if mode == "circular" or min(x.shape[2:]) >= 2:
        return F.pad(x, [1] * (2 * d), mode=mode)
    for axis, n in enumerate(x.shape[2:]):  # reflect with a one-node axis: one axis at a time
        pads = [0] * (2 * d)
        pads[2 * (d - 1 - axis)] = pads[2 * (d - 1 - axis) + 1] = 1  # F.pad lists the last axis first
        x = F.pad(x, pads, mode="reflect" if n >= 2 else "replicate")
    return x


def _kernel(out_ch: int, in_ch: int, ndim: int) -> nn.Parameter:
    """A ``(out_ch, in_ch, 3, ..., 3)`` weight, initialised as torch initialises its convolutions."""
    weight = nn.Parameter(torch.empty(out_ch, in_ch, *([3] * ndim)))
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    return weight


class _Conv(nn.Module):
    """Bias-free 3-point (per axis) convolution with stride 1 or 2 and boundary ghost nodes."""

    def __init__(self, in_ch: int, out_ch: int, ndim: int, padding_mode: str, stride: int = 1) -> None:
        super().__init__()
        self.weight = _kernel(out_ch, in_ch, ndim)
        self.ndim, self.padding_mode, self.stride = ndim, padding_mode, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = _CONV[self.ndim]
        if self.padding_mode == "zeros":  # implicit zero padding inside the convolution: no copy
            return conv(x, self.weight, None, self.stride, 1)
        return conv(_pad_ghosts(x, self.padding_mode), self.weight, None, self.stride, 0)

    def extra_repr(self) -> str:
        out_ch, in_ch = self.weight.shape[:2]
        return f"{in_ch}, {out_ch}, stride={self.stride}, padding_mode={self.padding_mode!r}"


class _Prolong(nn.Module):
    """Stride-2, 3-point transposed convolution from a level of ``m`` nodes to one of ``n`` nodes.

    ``n`` must be ``2 m - 1`` or ``2 m`` per axis (what the stride-2 restriction makes of it); the
    output has exactly the finer level's shape.
    """

    def __init__(self, channels: int, ndim: int, padding_mode: str) -> None:
        super().__init__()
        # Transposed-convolution weights are laid out (in, out, *kernel); both are `channels` here.
        self.weight = _kernel(channels, channels, ndim)
        self.ndim, self.padding_mode = ndim, padding_mode

    def forward(self, coarse: torch.Tensor, fine_shape: Sequence[int]) -> torch.Tensor:
        extra = [n - (2 * m - 1) for n, m in zip(fine_shape, coarse.shape[2:], strict=True)]
        if not all(e in (0, 1) for e in extra):
            raise ShapeError(
                "MgNO prolongation",
                f"a finer level of 2m - 1 or 2m nodes, m = {tuple(coarse.shape[2:])}",
                tuple(fine_shape),
            )
        conv_t = _CONV_T[self.ndim]
        if self.padding_mode == "zeros":
            # Output node j = fine node j: padding=1 drops fine node -1, output_padding adds node 2m - 1.
            return conv_t(coarse, self.weight, None, 2, 1, extra)
        # One ghost coarse node per side in the boundary mode; padding=3 then drops the fine nodes
        # -3..-1 that the left ghost and node 0 reach, output_padding keeps node 2m - 1 where n = 2m.
        return conv_t(_pad_ghosts(coarse, self.padding_mode), self.weight, None, 2, 3, extra)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}, padding_mode={self.padding_mode!r}"


class _Smoother(nn.Module):
    """One smoothing step ``u <- u + S (f - A u)``, with ``A: u -> f`` and ``S: f -> u`` channels."""

    def __init__(self, u_ch: int, f_ch: int, ndim: int, padding_mode: str) -> None:
        super().__init__()
        self.A = _Conv(u_ch, f_ch, ndim, padding_mode)
        self.S = _Conv(f_ch, u_ch, ndim, padding_mode)

    def forward(self, u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return u + self.S(f - self.A(u))


def _counts(owner: str, name: str, value: Any, length: int, low: int, what: str) -> list[int]:
    """``value`` as a list of ``length`` ints >= ``low`` (an int stands for that count everywhere)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value] * length
    ok = (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == length
        and all(isinstance(c, int) and not isinstance(c, bool) and c >= low for c in value)
    )
    if not ok:
        raise ConfigError(
            f"{owner} {name}: expected an int >= {low} or a list of {length} ints >= {low} "
            f"({what}), got {value!r}"
        )
    return [int(c) for c in value]


class MgConv(nn.Module):
    """One bias-free multichannel V-cycle mapping ``f`` (``in_channels``) to ``u`` (``channels``).

    Parameters
    ----------
    in_channels, channels : int
        Channels of the right-hand side ``f`` (the layer input) and of the solution ``u``.
    ndim : int
        Spatial dimension (1, 2 or 3).
    pre_smooth : sequence of int
        Smoothing steps per level before going down, finest first, one entry per level; the first
        counts the initial ``u = S f`` and must be at least 1.
    post_smooth : sequence of int
        Smoothing steps after the prolongation into each level but the coarsest, finest first.
    padding_mode : str
        ``"zeros"``, ``"circular"`` or ``"reflect"``, see the module notes.
    restrict_residual : bool
        Restrict ``f - A u`` (with its own ``A`` per restriction) instead of ``f``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        ndim: int,
        pre_smooth: Sequence[int],
        post_smooth: Sequence[int],
        padding_mode: str = "zeros",
        restrict_residual: bool = False,
    ) -> None:
        super().__init__()
        in_channels = check_positive_int("MgConv in_channels", in_channels)
        channels = check_positive_int("MgConv channels", channels)
        if isinstance(ndim, bool) or ndim not in (1, 2, 3):
            raise ConfigError(f"MgConv ndim: expected 1, 2 or 3 spatial dimensions, got {ndim!r}")
        if isinstance(pre_smooth, Sequence) and not isinstance(pre_smooth, str) and len(pre_smooth) >= 1:
            levels = len(pre_smooth)
        else:
            raise ConfigError(
                f"MgConv pre_smooth: expected a list of counts, one per level, got {pre_smooth!r}"
            )
        pre_smooth = _counts("MgConv", "pre_smooth", pre_smooth, levels, 0, "one per level, finest first")
        if pre_smooth[0] < 1:
            raise ConfigError(
                f"MgConv pre_smooth: expected at least 1 step on the finest level (it includes the "
                f"initial u = S f), got {pre_smooth!r}"
            )
        post_smooth = _counts(
            "MgConv",
            "post_smooth",
            post_smooth,
            levels - 1,
            0,
            "one per level but the coarsest, finest first",
        )
        check_name("padding_mode", padding_mode, PADDING_MODES)
        if not isinstance(restrict_residual, bool):
            raise ConfigError(f"MgConv restrict_residual: expected a bool, got {restrict_residual!r}")
        self.levels, self.restrict_residual = levels, restrict_residual

        def smoothers(count: int) -> nn.ModuleList:
            return nn.ModuleList(_Smoother(channels, in_channels, ndim, padding_mode) for _ in range(count))

        self.init = _Conv(in_channels, channels, ndim, padding_mode)  # u = S f on the finest level
        self.pre = nn.ModuleList([smoothers(pre_smooth[0] - 1), *(smoothers(c) for c in pre_smooth[1:])])
        self.restrict_u = nn.ModuleList(
            _Conv(channels, channels, ndim, padding_mode, stride=2) for _ in range(levels - 1)
        )
        self.restrict_f = nn.ModuleList(
            _Conv(in_channels, in_channels, ndim, padding_mode, stride=2) for _ in range(levels - 1)
        )
        self.residual_A = (
            nn.ModuleList(_Conv(channels, in_channels, ndim, padding_mode) for _ in range(levels - 1))
            if self.restrict_residual
            else None
        )
        self.prolong = nn.ModuleList(_Prolong(channels, ndim, padding_mode) for _ in range(levels - 1))
        self.post = nn.ModuleList(smoothers(c) for c in post_smooth)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """Map ``f`` of shape ``(B, in_channels, *spatial)`` to ``u`` of shape ``(B, channels, *spatial)``."""
        u = self.init(f)
        for step in self.pre[0]:
            u = step(u, f)
        us, fs = [u], [f]
        for level in range(1, self.levels):  # down
            r = f if self.residual_A is None else f - self.residual_A[level - 1](u)
            f = self.restrict_f[level - 1](r)
            u = self.restrict_u[level - 1](u)
            for step in self.pre[level]:
                u = step(u, f)
            us.append(u)
            fs.append(f)
        for level in range(self.levels - 2, -1, -1):  # up
            fine = us[level]
            u = fine + self.prolong[level](u, fine.shape[2:])
            for step in self.post[level]:
                u = step(u, fs[level])
        return u


@register("mgno")
class MgNO(nn.Module):
    """Multigrid Neural Operator on a uniform grid of any size in 1, 2 or 3 dimensions.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output functions.
    channels : int
        Hidden channels (the V-cycles' ``u``).
    n_layers : int
        Number of layers ``u -> act(V u + W u + b)``.
    levels : int
        Multigrid levels of every V-cycle (1 = smoothing on the input grid only). Each level halves
        the nodes per axis (rounding up), so ``levels`` up to about ``log2(n)`` keeps a coarsest grid
        of two nodes or more; more levels still run (one-node levels) but add nothing.
    pre_smooth : int or sequence of int, optional
        Smoothing steps per level on the way down, finest first (``levels`` entries; an int means
        that count on every level). The first entry includes the initial ``u = S f`` and must be at
        least 1. ``None`` (default) takes the reference's ``1, ..., 1, 2``.
    post_smooth : int or sequence of int, optional
        Smoothing steps after the prolongation into each level but the coarsest, finest first
        (``levels - 1`` entries, or an int). ``None`` (default): none, as in the reference.
    ndim : int
        Spatial dimension: 1, 2 or 3 (:func:`sciml.workflows.operator.default_model_kwargs` sets it
        from the problem's grid).
    padding_mode : str
        Ghost nodes of every convolution: ``"zeros"`` (Dirichlet), ``"circular"`` (periodic) or
        ``"reflect"`` (Neumann-like).
    restrict_residual : bool
        Restrict the residual ``f - A u`` instead of ``f`` (the reference restricts ``f``); adds
        one ``A`` per restriction. Measured on Darcy at 43 x 43 (``benchmarks/mgno_restriction.py``:
        250 training samples, 30 epochs, 2 seeds): 3.81% mean relative L2 against 4.13% restricting
        ``f``, for 16% more parameters and time per epoch; a small gain, about the seed spread.
    activation : str
        Non-linearity after every layer, see :data:`sciml.models.mlp.ACTIVATIONS`.

    Examples
    --------
    >>> model = MgNO(1, 1, channels=8, n_layers=2, levels=4)
    >>> model(torch.randn(2, 1, 43, 43)).shape
    torch.Size([2, 1, 43, 43])
    >>> model(torch.randn(2, 1, 64, 50)).shape  # any grid, odd or even
    torch.Size([2, 1, 64, 50])
    """

    #: The stencils belong to the training spacing (module notes): other grids are answered through it.
    resolution_invariant = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: int = 24,
        n_layers: int = 4,
        levels: int = 6,
        pre_smooth: int | Sequence[int] | None = None,
        post_smooth: int | Sequence[int] | None = None,
        ndim: int = 2,
        padding_mode: str = "zeros",
        restrict_residual: bool = False,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("MgNO in_channels", in_channels)
        self.out_channels = check_positive_int("MgNO out_channels", out_channels)
        self.channels = check_positive_int("MgNO channels", channels)
        self.n_layers = check_positive_int("MgNO n_layers", n_layers)
        self.levels = check_positive_int("MgNO levels", levels)
        if isinstance(ndim, bool) or ndim not in (1, 2, 3):
            raise ConfigError(f"MgNO ndim: expected 1, 2 or 3 spatial dimensions, got {ndim!r}")
        self.ndim = int(ndim)
        pre = default_pre_smooth(self.levels) if pre_smooth is None else pre_smooth
        self.pre_smooth = _counts("MgNO", "pre_smooth", pre, self.levels, 0, "one per level, finest first")
        if self.pre_smooth[0] < 1:
            raise ConfigError(
                f"MgNO pre_smooth: expected at least 1 step on the finest level (it "
                f"includes the initial u = S f), got {pre_smooth!r}"
            )
        self.post_smooth = _counts(
            "MgNO",
            "post_smooth",
            0 if post_smooth is None else post_smooth,
            self.levels - 1,
            0,
            "one per level but the coarsest, finest first",
        )
        check_name("padding_mode", padding_mode, PADDING_MODES)
        self.padding_mode = padding_mode
        if not isinstance(restrict_residual, bool):
            raise ConfigError(f"MgNO restrict_residual: expected a bool, got {restrict_residual!r}")
        self.restrict_residual = restrict_residual
        check_name("activation", activation, ACTIVATIONS)

        pointwise = _POINTWISE[self.ndim]
        widths = [self.in_channels] + [self.channels] * (self.n_layers - 1)
        self.cycles = nn.ModuleList(
            MgConv(
                w,
                self.channels,
                self.ndim,
                self.pre_smooth,
                self.post_smooth,
                padding_mode,
                restrict_residual,
            )
            for w in widths
        )
        self.linears = nn.ModuleList(pointwise(w, self.channels, kernel_size=1, bias=True) for w in widths)
        self.act = make_activation(activation)
        self.projection = pointwise(self.channels, self.out_channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` of shape ``(B, in_channels, *spatial)`` to ``(B, out_channels, *spatial)``."""
        d = self.ndim
        if x.ndim != d + 2 or x.shape[1] != self.in_channels or min(x.shape[2:], default=0) < 1:
            raise ShapeError(
                "MgNO input", f"(B, {self.in_channels}, {d} spatial axes of >= 1 node)", tuple(x.shape)
            )
        if not x.is_floating_point():
            raise DTypeError(f"MgNO input: expected a floating-point tensor, got {x.dtype}")
        param_dtype = self.projection.weight.dtype
        if x.dtype != param_dtype and not torch.is_autocast_enabled(x.device.type):
            raise DTypeError(f"MgNO input: expected dtype {param_dtype} (the model's), got {x.dtype}")
        h = x
        for cycle, linear in zip(self.cycles, self.linears, strict=True):
            h = self.act(cycle(h) + linear(h))
        return self.projection(h)

    def extra_repr(self) -> str:
        return (
            f"ndim={self.ndim}, levels={self.levels}, pre_smooth={self.pre_smooth}, "
            f"post_smooth={self.post_smooth}, padding_mode={self.padding_mode!r}, "
            f"restrict_residual={self.restrict_residual}"
        )
