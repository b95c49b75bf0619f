"""Fourier Neural Operator (Li et al., ICLR 2021) in one, two and three dimensions.

The network lifts the input function to ``width`` channels point by point, applies ``n_layers`` Fourier
layers ``v -> act(K v + W v)``, where ``K`` multiplies the lowest Fourier modes of ``v`` by learned
complex matrices and ``W`` is a point-wise linear map, and projects back point by point. Because ``K``
acts on Fourier coefficients of the underlying function, the same weights apply on any grid: the model
is trained at one resolution and evaluated at another. Not with a zero padding counted in grid points
(an int ``padding``, for non-periodic problems): the padded period then changes with the grid, and the
model is bound to the grid it was trained on (``FNO.resolution_invariant``); a fractional padding is not.

Conventions
-----------
* Tensors are channels-first, ``(B, C, *spatial)``; the spatial axes follow the ``'ij'`` grid layout.
* ``n_modes = (m_1, ..., m_d)`` counts modes as in the original paper: along every axis but the last
  the ``m`` lowest non-negative *and* the ``m`` lowest negative frequencies are kept (``2 m`` in
  all), along the last axis the ``m`` lowest non-negative ones of the real FFT. A layer therefore has
  ``2**(d-1) * prod(n_modes) * in * out`` complex weights. (``neuraloperator`` counts the total per
  axis instead: its ``n_modes=(24, 22)`` keeps the same modes as ``(12, 12)`` here.)
* FFTs use torch's default ``norm="backward"`` (unscaled forward, ``1/n`` inverse), as the reference
  implementation does. This makes the layer independent of the resolution: a band-limited function
  sampled on two grids gives the same output samples. ``norm="forward"`` would be equivalent,
  ``"ortho"`` would not.
* When a grid is too coarse to hold all kept modes, the missing ones are dropped for that call (the
  layer then acts on the modes the grid can represent) instead of failing.

The forward transform is done axis by axis, truncating after each one: a real FFT along the last axis
keeps ``m_d`` of its ``n_d / 2 + 1`` outputs, so the complex FFTs along the other axes run on a
fraction of the data; the inverse mirrors this, and the ``irfft`` zero-fills the dropped high modes
itself. The mode-wise complex products are one batched real matrix product over all modes, which on
CPUs is markedly faster than a complex ``einsum``.
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
from .mlp import ACTIVATIONS, MLP
from .mlp import activation as make_activation
from .registry import register

__all__ = ["FNO", "SpectralConv", "PointwiseLinear", "NORMS"]

NORMS = ("instance", "layer")


def _modes_tuple(n_modes: Any) -> tuple[int, ...]:
    """Validate ``n_modes`` (an int for 1-D, or one positive int per axis, 1 to 3 axes)."""
    if isinstance(n_modes, (int,)) and not isinstance(n_modes, bool):
        n_modes = [n_modes]
    if not isinstance(n_modes, Sequence) or isinstance(n_modes, str) or not 1 <= len(n_modes) <= 3:
        raise ConfigError(f"n_modes: expected 1 to 3 positive ints (one per spatial axis), got {n_modes!r}")
    return tuple(check_positive_int(f"n_modes[{i}]", m) for i, m in enumerate(n_modes))


class PointwiseLinear(nn.Module):
    """Affine map of the channels at every grid point: ``(B, I, *s) -> (B, O, *s)``.

    Equivalent to a ``Conv{d}d`` with kernel size 1 (and initialised like one) but computed as one
    matrix product on the flattened spatial axes, which avoids the convolution machinery on CPU.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__()
        self.in_channels = check_positive_int("PointwiseLinear in_channels", in_channels)
        self.out_channels = check_positive_int("PointwiseLinear out_channels", out_channels)
        bound = 1.0 / math.sqrt(self.in_channels)  # nn.Linear / nn.Conv default range
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(self.out_channels).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, *spatial = x.shape
        flat = x.reshape(b, self.in_channels, -1)
        if self.bias is None:
            out = torch.matmul(self.weight, flat)
        else:  # fused bias-add-and-multiply: out = bias + W @ x
            bias = self.bias[:, None].expand(b, -1, flat.shape[-1])
            out = torch.baddbmm(bias, self.weight.expand(b, -1, -1), flat)
        return out.reshape(b, self.out_channels, *spatial)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, bias={self.bias is not None}"


class _LowModesRFFT(torch.autograd.Function):
    """``rfft(x, dim=-1)[..., :m]`` with a backward pass that only transforms the kept modes.

    torch differentiates the truncation by zero-filling the gradient to the full length and running
    a complex FFT of the whole input size. The adjoint of "real FFT, keep ``m`` modes" is
    ``grad_x[j] = Re sum_{k<m} g[k] exp(+2 pi i k j / n)``, which is an inverse real FFT of ``g`` with
    the non-self-conjugate modes halved (``irfft`` counts each of them twice, the zero and Nyquist
    modes once); ``irfft`` zero-fills the missing modes itself. The backward is written with
    differentiable torch ops, so double backward still works.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, m: int) -> torch.Tensor:
        ctx.n = x.shape[-1]
        return torch.fft.rfft(x, dim=-1).narrow(-1, 0, m)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        n, m = ctx.n, grad.shape[-1]
        weight = torch.full((m,), 0.5, dtype=grad.real.dtype, device=grad.device)
        weight[0] = 1.0
        if n % 2 == 0 and m == n // 2 + 1:  # the Nyquist mode is its own conjugate too
            weight[-1] = 1.0
        return torch.fft.irfft(grad * weight, n=n, dim=-1, norm="forward"), None


class SpectralConv(nn.Module):
    """Fourier integral operator on the lowest modes: ``(B, I, *s) -> (B, O, *s)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    n_modes : sequence of int
        Modes kept per spatial axis (paper convention, see the module docstring); its length sets
        the spatial dimension ``d``.

    Notes
    -----
    The weights are stored as one real tensor ``weight`` of shape
    ``(I, O, 2 m_1, ..., 2 m_{d-1}, m_d, 2)`` (real and imaginary parts last). Along each of the first
    ``d - 1`` mode axes, index ``j < m`` is frequency ``j`` and index ``m + j`` is frequency
    ``j - m``, i.e. the ``2**(d-1)`` corner blocks of the spectrum are stored side by side. Weights
    are initialised as in the reference code, real and imaginary parts uniform in
    ``[0, 1 / (I * O))``.
    """

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int]) -> None:
        super().__init__()
        self.in_channels = check_positive_int("SpectralConv in_channels", in_channels)
        self.out_channels = check_positive_int("SpectralConv out_channels", out_channels)
        self.n_modes = _modes_tuple(n_modes)
        self.ndim = len(self.n_modes)
        mode_shape = (*(2 * m for m in self.n_modes[:-1]), self.n_modes[-1])
        scale = 1.0 / (self.in_channels * self.out_channels)
        self.weight = nn.Parameter(scale * torch.rand(self.in_channels, self.out_channels, *mode_shape, 2))

    def _weight_for(self, kept: tuple[int, ...]) -> torch.Tensor:
        """Complex weights ``(I, O, *kept_mode_shape)`` for the modes the current grid can hold."""
        w = self.weight
        for axis, (m, k) in enumerate(zip(self.n_modes[:-1], kept[:-1], strict=True)):
            if k < m:  # keep frequencies 0..k-1 and -k..-1, i.e. rows [0, k) and [2m - k, 2m)
                dim = 2 + axis
                w = torch.cat([w.narrow(dim, 0, k), w.narrow(dim, 2 * m - k, k)], dim=dim)
        if kept[-1] < self.n_modes[-1]:
            w = w.narrow(1 + self.ndim, 0, kept[-1])
        return w

    def _mix(self, xc: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Per-mode complex matrix products ``y[b, o, k] = sum_i x[b, i, k] w[i, o, k]``.

        ``xc`` is complex ``(B, I, *modes)``, ``w`` real ``(I, O, *modes, 2)``. Computed as one batched
        real product over the modes with the 2x2 block form of complex multiplication,
        ``[xr, xi] @ [[wr, wi], [-wi, wr]] = [yr, yi]``: a single large GEMM per mode, no complex
        kernels and no separate real/imaginary passes.
        """
        b, i_ch = xc.shape[:2]
        modes = xc.shape[2:]
        o_ch = w.shape[1]
        k = math.prod(modes)
        # (B, I, K, 2) -> (K, B, 2, I) -> (K, B, 2I): rows hold [real parts | imaginary parts]
        xr = torch.view_as_real(xc).reshape(b, i_ch, k, 2).permute(2, 0, 3, 1).reshape(k, b, 2 * i_ch)
        wr, wi = w[..., 0].reshape(i_ch, o_ch, k), w[..., 1].reshape(i_ch, o_ch, k)
        top = torch.cat([wr, wi], dim=1)  # rows fed by real parts: (I, 2O, K)
        bottom = torch.cat([-wi, wr], dim=1)  # rows fed by imaginary parts
        block = torch.cat([top, bottom], dim=0).permute(2, 0, 1)  # (K, 2I, 2O)
        y = torch.bmm(xr, block)  # (K, B, 2O) = [yr | yi]
        y = y.reshape(k, b, 2, o_ch).permute(1, 3, 0, 2).contiguous()  # (B, O, K, 2)
        return torch.view_as_complex(y).reshape(b, o_ch, *modes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``x`` of shape ``(B, in_channels, n_1, ..., n_d)``."""
        d = self.ndim
        if x.ndim != d + 2 or x.shape[1] != self.in_channels:
            expected = f"(B, {self.in_channels}, {d} spatial axes)"
            raise ShapeError("SpectralConv input", expected, tuple(x.shape))
        spatial = tuple(x.shape[2:])
        # Modes a grid can hold without the positive and negative blocks overlapping.
        kept = (
            *(min(m, n // 2) for m, n in zip(self.n_modes[:-1], spatial[:-1], strict=True)),
            min(self.n_modes[-1], spatial[-1] // 2 + 1),
        )
        if min(kept) < 1:
            raise ShapeError("SpectralConv input", f"at least 2 points per spatial axis, {d} axes", spatial)
        out_dtype = x.dtype
        if x.dtype in (torch.float16, torch.bfloat16):  # FFTs need single precision at least
            x = x.float()
        with torch.autocast(device_type=x.device.type, enabled=False):
            xc = _LowModesRFFT.apply(x, kept[-1])
            for axis in range(d - 1):  # transform and truncate one axis at a time
                dim, k, n = 2 + axis, kept[axis], spatial[axis]
                xc = torch.fft.fft(xc, dim=dim)
                if 2 * k < n:
                    xc = torch.cat([xc.narrow(dim, 0, k), xc.narrow(dim, n - k, k)], dim=dim)
            w = self._weight_for(kept)
            yc = self._mix(xc, w.to(x.dtype) if w.dtype != x.dtype else w)
            for axis in reversed(range(d - 1)):  # scatter each axis back between its zero modes
                dim, k, n = 2 + axis, kept[axis], spatial[axis]
                if 2 * k < n:
                    gap = list(yc.shape)
                    gap[dim] = n - 2 * k
                    zeros = yc.new_zeros(gap)
                    yc = torch.cat([yc.narrow(dim, 0, k), zeros, yc.narrow(dim, k, k)], dim=dim)
                yc = torch.fft.ifft(yc, dim=dim)
            y = torch.fft.irfft(yc, n=spatial[-1], dim=-1)  # zero-fills the dropped high modes
        return y.to(out_dtype)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, n_modes={self.n_modes}"


def _fft_friendly_padding(n: int, fraction: float) -> int:
    """Smallest padding >= ``fraction * n`` whose padded length ``n + pad`` is 7-smooth."""
    if fraction <= 0:
        return 0
    total = n + math.ceil(fraction * n)
    while True:
        m = total
        for prime in (2, 3, 5, 7):
            while m % prime == 0:
                m //= prime
        if m == 1:
            return total - n
        total += 1


@register("fno")
class FNO(nn.Module):
    """Fourier Neural Operator on a uniform grid in 1, 2 or 3 dimensions.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output functions.
    n_modes : int or sequence of int
        Fourier modes kept per axis (paper convention); its length sets the spatial dimension.
    width : int
        Channels of the hidden representation.
    n_layers : int
        Number of Fourier layers.
    padding : int, float or sequence of them
        Zero padding appended at the end of every spatial axis after lifting and removed before
        projection, for non-periodic problems: an int is exactly that many grid points; a float in
        ``[0, 1]`` is at least that fraction of the axis length, rounded up so that the padded
        length has no prime factor above 7 (a 41-point FFT costs about twice a 40- or 42-point
        one). One value for all axes or one per axis.
    append_coords : bool
        Append the normalised grid coordinates (``linspace(0, 1, n)`` per axis, ``'ij'``) as ``d``
        extra input channels, computed for whatever resolution comes in.
    lifting_channels : int, optional
        ``None`` lifts with one point-wise linear map (as in the paper); an int uses a two-layer
        point-wise MLP with this hidden width.
    projection_channels : int
        Hidden width of the two-layer point-wise projection MLP.
    activation : str
        Non-linearity, see :data:`sciml.models.mlp.ACTIVATIONS`. Applied after every Fourier layer
        except the last one, and inside the lifting/projection MLPs.
    norm : str, optional
        ``None``, ``"instance"`` or ``"layer"`` (GroupNorm with one group), applied to each Fourier
        layer's output before its activation.

    Examples
    --------
    >>> model = FNO(1, 1, n_modes=(12, 12), width=32)
    >>> model(torch.randn(4, 1, 64, 64)).shape
    torch.Size([4, 1, 64, 64])
    >>> model(torch.randn(4, 1, 128, 128)).shape  # same weights, finer grid
    torch.Size([4, 1, 128, 128])
    >>> FNO(1, 1, n_modes=(12, 12), padding=8).resolution_invariant  # bound to its training grid
    False
    >>> FNO(1, 1, n_modes=(12, 12), padding=0.2).resolution_invariant
    True
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int] = (12, 12),
        width: int = 32,
        n_layers: int = 4,
        padding: int | float | Sequence[int | float] = 0,
        append_coords: bool = True,
        lifting_channels: int | None = None,
        projection_channels: int = 128,
        activation: str = "gelu",
        norm: str | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("FNO in_channels", in_channels)
        self.out_channels = check_positive_int("FNO out_channels", out_channels)
        self.n_modes = _modes_tuple(n_modes)
        self.ndim = d = len(self.n_modes)
        self.width = check_positive_int("FNO width", width)
        self.n_layers = check_positive_int("FNO n_layers", n_layers)
        self.padding = self._check_padding(padding, d)
        if not isinstance(append_coords, bool):
            raise ConfigError(f"FNO append_coords: expected a bool, got {append_coords!r}")
        self.append_coords = append_coords
        check_name("activation", activation, ACTIVATIONS)
        if norm is not None:
            check_name("norm", norm, NORMS)
        projection_channels = check_positive_int("FNO projection_channels", projection_channels)

        # Lifting and projection act point-wise; they run channels-last as MLPs over the last axis,
        # where each layer is one large GEMM (much faster on CPU than a batched channels-first one).
        lift_in = self.in_channels + (d if append_coords else 0)
        if lifting_channels is None:
            lift_hidden = []
        else:
            lift_hidden = [check_positive_int("FNO lifting_channels", lifting_channels)]
        self.lifting = MLP(lift_in, self.width, hidden=lift_hidden, activation=activation)
        self.spectral = nn.ModuleList(
            SpectralConv(self.width, self.width, self.n_modes) for _ in range(n_layers)
        )
        self.pointwise = nn.ModuleList(PointwiseLinear(self.width, self.width) for _ in range(n_layers))
        if norm is None:
            self.norms = None
        elif norm == "instance":
            inorm = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)[d - 1]
            self.norms = nn.ModuleList(inorm(self.width) for _ in range(n_layers))
        else:
            self.norms = nn.ModuleList(nn.GroupNorm(1, self.width) for _ in range(n_layers))
        self.act = make_activation(activation)
        self.projection = MLP(
            self.width, self.out_channels, hidden=[projection_channels], activation=activation
        )

    @staticmethod
    def _check_padding(padding: Any, d: int) -> tuple[int | float, ...]:
        values = padding if isinstance(padding, Sequence) and not isinstance(padding, str) else [padding] * d
        if len(values) != d:
            raise ConfigError(f"FNO padding: expected one value or {d} (one per axis), got {padding!r}")
        out: list[int | float] = []
        for p in values:
            ok_int = isinstance(p, int) and not isinstance(p, bool) and p >= 0
            ok_frac = isinstance(p, float) and 0.0 <= p <= 1.0
            if not (ok_int or ok_frac):
                raise ConfigError(
                    "FNO padding: expected ints >= 0 (grid points) or floats in [0, 1] (fractions), "
                    f"got {padding!r}"
                )
            out.append(p)
        return tuple(out)

    @property
    def resolution_invariant(self) -> bool:
        """False with a padding given in grid points (an int > 0), True otherwise.

        The FFT period is the grid span plus the padding. Counted in points, the padding is another
        length on another grid (8 points: a period of 50/42 spans at 43 nodes, 92/84 at 85), so the
        kept modes become other physical frequencies: such a model is bound to its training grid, and
        :class:`~sciml.operators.OperatorTask` answers other grids through that grid. Measured: an FNO
        trained on Darcy at 43 x 43 with 8 points of padding, called at 85 x 85 as it is, 26.6%
        relative L2 against 1.6% at 43 (``benchmarks/results/operators_darcy.md``). A fraction keeps
        the period to within its FFT-friendly rounding (about 1% of it) and is treated as invariant.
        """
        return not any(isinstance(p, int) and p > 0 for p in self.padding)

    def _pad_sizes(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        pairs = zip(self.padding, spatial, strict=True)
        return tuple(p if isinstance(p, int) else _fft_friendly_padding(n, p) for p, n in pairs)

    @staticmethod
    def grid_coords(spatial: Sequence[int], batch: int, like: torch.Tensor) -> torch.Tensor:
        """Normalised node coordinates ``(batch, d, *spatial)`` in ``[0, 1]`` per axis, ``'ij'`` order."""
        d = len(spatial)
        chans = []
        for axis, n in enumerate(spatial):
            shape = [1] * d
            shape[axis] = n
            line = torch.linspace(0.0, 1.0, n, device=like.device, dtype=like.dtype).reshape(shape)
            chans.append(line.expand(*spatial))
        return torch.stack(chans).unsqueeze(0).expand(batch, d, *spatial)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` of shape ``(B, in_channels, n_1, ..., n_d)`` to ``(B, out_channels, n_1, ..., n_d)``."""
        d = self.ndim
        if x.ndim != d + 2 or x.shape[1] != self.in_channels:
            raise ShapeError("FNO input", f"(B, {self.in_channels}, {d} spatial axes)", tuple(x.shape))
        if not x.is_floating_point():
            raise DTypeError(f"FNO input: expected a floating-point tensor, got {x.dtype}")
        param_dtype = self.projection.net[0].weight.dtype
        if x.dtype != param_dtype and not torch.is_autocast_enabled(x.device.type):
            raise DTypeError(f"FNO input: expected dtype {param_dtype} (the model's), got {x.dtype}")
        b, spatial = x.shape[0], tuple(x.shape[2:])
        if self.append_coords:
            x = torch.cat([x, self.grid_coords(spatial, b, x)], dim=1)
        h = self.lifting(x.movedim(1, -1)).movedim(-1, 1).contiguous()
        pads = self._pad_sizes(spatial)
        if any(pads):
            # F.pad lists (left, right) pairs from the last axis backwards; pad on the right only.
            h = F.pad(h, [v for p in reversed(pads) for v in (0, p)])
        for i in range(self.n_layers):
            h = self.spectral[i](h) + self.pointwise[i](h)
            if self.norms is not None:
                h = self.norms[i](h)
            if i < self.n_layers - 1:
                h = self.act(h)
        if any(pads):
            h = h[(..., *(slice(0, n) for n in spatial))]
        return self.projection(h.movedim(1, -1)).movedim(-1, 1).contiguous()
