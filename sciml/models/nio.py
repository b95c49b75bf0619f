"""Neural Inverse Operator (NIO; Molinaro, Yang, Engquist, Mishra, ICML 2023).

An inverse problem such as Calderón's (EIT) maps a *set* of boundary measurements to a coefficient
inside the domain. NIO composes a DeepONet, which turns each measurement into a field, with an FNO,
which maps the average of those fields to the coefficient:

1. **Branch**, shared by all measurements (the batch and measurement axes are folded together): an
   MLP over the ``M = n_sensors`` values of one measurement (``branch="mlp"``), or a 1-D CNN that
   reads the measurement as a periodic signal around the boundary (``branch="cnn"``: stride-2
   convolutions with 3-point kernels and circular padding, each halving the length, then a linear
   map). Either gives ``p = n_basis`` coefficients per measurement.
2. **Trunk**: an MLP over the ``ndim`` node coordinates of the output grid giving ``p`` basis
   functions.
3. **DeepONet per measurement**: the inner product of branch and trunk, plus an optional scalar
   bias, is one field per measurement, ``(B, L, *out_shape)`` (see :meth:`NIO.measurement_fields`).
4. **Average and lift**: the ``L`` fields are averaged, the node coordinates appended, and an affine
   point-wise **lift** ``Linear(1 + ndim -> width)`` applied. Averaging first makes the model
   invariant to the order of the measurements and valid for any number ``L`` of them.
   ``n_fields = C > 1`` (ours, not the paper's) makes the DeepONet give ``C`` fields per measurement
   (the branch ``C p`` coefficients on one shared trunk basis) and the lift ``Linear(C + ndim ->
   width)``: everything the FNO learns of the measurements passes through the average, and one
   averaged field of ``p`` coefficients is a narrow channel for it (a DeepSets pooling of width ``p``).
5. **FNO**: ``n_layers`` Fourier layers ``h -> act(K h + W h)`` on the lifted field (no activation
   after the last, as in :class:`~sciml.models.fno.FNO`) with right-side zero padding, then a
   two-layer point-wise projection to ``out_channels``.

The average of the DeepONet fields equals the DeepONet field of the averaged branch coefficients
(the inner product is linear), so :meth:`NIO.forward` averages the ``p`` coefficients first and
evaluates one inner product per sample instead of ``L``; the result is the same up to rounding.

The lift
--------
The reference code builds its averaged lift from ``fc0.weight.data`` and ``fc0.bias.data``; ``.data``
detaches them from autograd, so the reference's lift is never trained and stays at its random
initialisation. Here ``train_lift=True`` (the default) trains it; ``train_lift=False`` reproduces the
reference: the lift's weight and bias are then buffers (saved in the state dict, moved by ``.to()``,
invisible to optimisers and to ``requires_grad_``). The names in the state dict are the same either
way, so weights load across the two settings.

Randomised batching
-------------------
The paper's training trick: in training mode with ``random_subsets=True`` every forward call draws a
number ``L'`` uniformly in ``[min_measurements, L]`` and then ``L'`` distinct measurements (without
replacement), the same subset for the whole batch, from torch's global random generator (so seeding
torch, as the Trainer does, makes runs reproducible). If ``L < min_measurements`` all ``L`` are
used. The reference draws ``L'`` in ``[2, L - 1]`` and the indices *with* replacement, so a subset
there can repeat a measurement and never holds all of them. In eval mode every given measurement is
used. The size of the last subset is kept in ``last_n_measurements``.

Reference configuration and defaults
------------------------------------
The reference (``RunNio.py`` defaults for the 70 x 70 problems) uses width 64, 16 modes, one
Fourier layer, ``p = 50`` basis functions, a trunk of 8 hidden layers of 256 (leaky ReLU), a CNN
branch (InversionNet-like, 2-D kernels over the 4 x 68 boundary layout), padding of a quarter of the
grid and a 128-wide projection. The defaults here are smaller: width 32, 12 modes, two Fourier
layers, a trunk of 4 x 128 and an MLP branch of 2 x 128; one activation (GELU by default) is used
everywhere. Modes are capped at construction to what the padded default grid holds, so no
spectral weight is left untrained; on a finer ``out_shape`` the same modes are used.
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
from .fno import PointwiseLinear, SpectralConv, _fft_friendly_padding
from .mlp import ACTIVATIONS, MLP
from .mlp import activation as make_activation
from .registry import register

__all__ = ["NIO", "AveragedLift", "CNNBranch", "BRANCHES"]

BRANCHES = ("mlp", "cnn")


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: expected a bool, got {value!r}")
    return value


def _int_list(name: str, value: Any, allow_empty: bool = True) -> list[int]:
    """A list of positive ints (layer widths or channel counts)."""
    if isinstance(value, (int, str)) or not isinstance(value, Sequence) or (not allow_empty and not value):
        what = "a non-empty list" if not allow_empty else "a list"
        raise ConfigError(f"{name}: expected {what} of positive ints, got {value!r}")
    return [check_positive_int(f"{name}[{i}]", v) for i, v in enumerate(value)]


def _per_axis(name: str, value: Any, ndim: int, low: int) -> tuple[int, ...]:
    """One int per axis (an int stands for every axis), each at least ``low``."""
    values = [value] * ndim if isinstance(value, int) and not isinstance(value, bool) else value
    ok = isinstance(values, Sequence) and not isinstance(values, str) and len(values) == ndim
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values)
    if not ok:
        raise ConfigError(f"{name}: expected an int >= {low} or {ndim} of them (one per axis), got {value!r}")
    return tuple(int(v) for v in values)


def _node_coords(
    shape: Sequence[int], bounds: Sequence[tuple[float, float]], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Node coordinates ``(ndim, *shape)`` of a uniform grid including both ends, ``'ij'`` order."""
    lines = [torch.linspace(lo, hi, n, dtype=dtype, device=device) for (lo, hi), n in zip(bounds, shape)]
    return torch.stack(torch.meshgrid(*lines, indexing="ij"))


class CNNBranch(nn.Module):
    """1-D CNN over one measurement read as a periodic boundary signal: ``(N, M) -> (N, p)``.

    Each block is a 3-point, stride-2 ``Conv1d`` with circular padding followed by the activation;
    a length ``m`` becomes ``ceil(m / 2)``. The flattened features go through one linear map to ``p``.
    """

    def __init__(self, n_sensors: int, n_basis: int, channels: Sequence[int], activation: str) -> None:
        super().__init__()
        self.n_sensors = check_positive_int("CNNBranch n_sensors", n_sensors)
        channels = _int_list("CNNBranch channels", channels, allow_empty=False)
        check_name("activation", activation, ACTIVATIONS)
        layers: list[nn.Module] = []
        length, c_in = self.n_sensors, 1
        for c_out in channels:
            layers.append(nn.Conv1d(c_in, c_out, 3, stride=2, padding=1, padding_mode="circular"))
            layers.append(make_activation(activation))
            length, c_in = (length - 1) // 2 + 1, c_out
        self.convs = nn.Sequential(*layers)
        self.out_length = length
        self.linear = nn.Linear(c_in * length, check_positive_int("CNNBranch n_basis", n_basis))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.n_sensors:
            raise ShapeError("CNNBranch input", f"(N, {self.n_sensors})", tuple(x.shape))
        return self.linear(self.convs(x.unsqueeze(1)).flatten(1))


class AveragedLift(nn.Module):
    """The lift of NIO: ``Linear(fields + ndim -> width)`` of the averaged fields and the node coordinates.

    ``forward(field, coords)`` takes the averaged field ``(B, *s)`` (or ``(B, fields, *s)``) and the
    coordinates ``(ndim, *s)`` and returns ``(B, width, *s)``. Initialised as
    ``nn.Linear(fields + ndim, width)`` (uniform in ``+-1/sqrt(fields + ndim)``). With
    ``trainable=False`` the weight and bias are buffers, which is what the reference's lift amounts
    to (see the module notes).
    """

    def __init__(self, ndim: int, width: int, trainable: bool = True, fields: int = 1) -> None:
        super().__init__()
        self.ndim = check_positive_int("AveragedLift ndim", ndim)
        self.width = check_positive_int("AveragedLift width", width)
        self.fields = check_positive_int("AveragedLift fields", fields)
        self.trainable = _bool("AveragedLift trainable", trainable)
        bound = 1.0 / math.sqrt(self.fields + self.ndim)
        weight = torch.empty(self.width, self.fields + self.ndim).uniform_(-bound, bound)
        bias = torch.empty(self.width).uniform_(-bound, bound)
        if self.trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias)
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", bias)

    def forward(self, field: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        if field.ndim == coords.ndim:  # one field: (B, *s)
            field = field[:, None]
        spatial = tuple(field.shape[2:])
        c = self.fields
        # The coordinate part does not depend on the sample: one small product for the whole batch.
        fixed = torch.addmm(self.bias[:, None], self.weight[:, c:], coords.reshape(self.ndim, -1))
        varying = torch.matmul(self.weight[:, :c], field.reshape(field.shape[0], c, -1))
        return (fixed[None] + varying).reshape(field.shape[0], self.width, *spatial)

    def extra_repr(self) -> str:
        return f"{self.fields + self.ndim}, {self.width}, trainable={self.trainable}"


@register("nio")
class NIO(nn.Module):
    """Neural Inverse Operator: ``L`` boundary measurements ``(B, L, M)`` -> coefficient on a grid.

    Parameters
    ----------
    n_sensors : int
        Length ``M`` of one measurement vector (e.g. 4 sides x 68 points = 272).
    out_channels : int
        Channels of the output field.
    grid_size : int or sequence of int
        Default output grid, nodes per axis (at least 2; an int for every axis); ``forward`` may ask
        for another. The reference problems use 70.
    ndim : int
        Spatial dimension of the output (1, 2 or 3).
    branch : str
        ``"mlp"`` or ``"cnn"``, see the module notes.
    branch_hidden : sequence of int
        Hidden widths of the MLP branch (``branch="mlp"``).
    branch_channels : sequence of int
        Channels of the stride-2 convolutions of the CNN branch (``branch="cnn"``).
    trunk_hidden : sequence of int
        Hidden widths of the trunk MLP (reference: 8 x 256).
    n_basis : int
        Number ``p`` of DeepONet basis functions (reference: 50).
    deeponet_bias : bool
        Add a learned scalar to every DeepONet field (the reference has none).
    n_fields : int
        DeepONet fields per measurement, averaged channel by channel and lifted together (the
        reference: 1; see the module notes).
    width : int
        Channels of the FNO (reference: 64).
    n_modes : int or sequence of int
        Fourier modes per axis (paper convention, see :mod:`sciml.models.fno`; reference 16), capped
        to what the padded ``grid_size`` grid holds.
    n_layers : int
        Fourier layers (reference: 1).
    padding : int, float or sequence of them
        Zero padding on the right of every axis inside the FNO: an int is grid points, a float in
        ``[0, 1]`` a fraction of the axis rounded up to an FFT-friendly length (reference: 1/4).
    projection_channels : int
        Hidden width of the point-wise projection (reference: 128).
    activation : str
        Non-linearity of the branch, the trunk and the FNO, see :data:`sciml.models.mlp.ACTIVATIONS`.
    train_lift : bool
        Train the averaged lift (default) or keep it frozen at its initialisation like the
        reference code.
    random_subsets : bool
        Randomised batching in training mode (see the module notes).
    min_measurements : int
        Smallest subset drawn by the randomised batching.
    bounds : list of [lo, hi], optional
        Box on which the output grid's nodes lie; the unit box by default.

    Examples
    --------
    >>> net = NIO(n_sensors=32, grid_size=16, width=8, n_modes=4)
    >>> net.eval()(torch.randn(3, 5, 32)).shape
    torch.Size([3, 1, 16, 16])
    >>> net(torch.randn(3, 11, 32), out_shape=24).shape  # any L, another grid
    torch.Size([3, 1, 24, 24])
    """

    def __init__(
        self,
        n_sensors: int,
        out_channels: int = 1,
        grid_size: int | Sequence[int] = 70,
        ndim: int = 2,
        branch: str = "mlp",
        branch_hidden: Sequence[int] = (128, 128),
        branch_channels: Sequence[int] = (16, 32, 64),
        trunk_hidden: Sequence[int] = (128, 128, 128, 128),
        n_basis: int = 50,
        deeponet_bias: bool = False,
        n_fields: int = 1,
        width: int = 32,
        n_modes: int | Sequence[int] = 12,
        n_layers: int = 2,
        padding: int | float | Sequence[int | float] = 0.25,
        projection_channels: int = 128,
        activation: str = "gelu",
        train_lift: bool = True,
        random_subsets: bool = True,
        min_measurements: int = 2,
        bounds: Sequence[Sequence[float]] | None = None,
    ) -> None:
        super().__init__()
        self.n_sensors = check_positive_int("NIO n_sensors", n_sensors)
        self.out_channels = check_positive_int("NIO out_channels", out_channels)
        if isinstance(ndim, bool) or not isinstance(ndim, int) or ndim not in (1, 2, 3):
            raise ConfigError(f"NIO ndim: expected 1, 2 or 3, got {ndim!r}")
        self.ndim = d = ndim
        self.grid_size = _per_axis("NIO grid_size", grid_size, d, 2)
        check_name("NIO branch", branch, BRANCHES)
        self.branch_kind = branch
        branch_hidden = _int_list("NIO branch_hidden", branch_hidden)
        branch_channels = _int_list("NIO branch_channels", branch_channels, allow_empty=False)
        trunk_hidden = _int_list("NIO trunk_hidden", trunk_hidden)
        self.n_basis = check_positive_int("NIO n_basis", n_basis)
        _bool("NIO deeponet_bias", deeponet_bias)
        self.n_fields = check_positive_int("NIO n_fields", n_fields)
        self.width = check_positive_int("NIO width", width)
        modes = _per_axis("NIO n_modes", n_modes, d, 1)
        self.n_layers = check_positive_int("NIO n_layers", n_layers)
        self.padding = self._check_padding(padding, d)
        projection_channels = check_positive_int("NIO projection_channels", projection_channels)
        check_name("NIO activation", activation, ACTIVATIONS)
        self.train_lift = _bool("NIO train_lift", train_lift)
        self.random_subsets = _bool("NIO random_subsets", random_subsets)
        self.min_measurements = check_positive_int("NIO min_measurements", min_measurements)
        self.bounds = self._check_bounds(bounds, d)

        # Cap the modes to what the padded default grid can hold (SpectralConv's own run-time rule).
        padded = tuple(n + p for n, p in zip(self.grid_size, self._pad_sizes(self.grid_size)))
        self.n_modes = (
            *(min(m, n // 2) for m, n in zip(modes[:-1], padded[:-1])),
            min(modes[-1], padded[-1] // 2 + 1),
        )

        coefficients = self.n_basis * self.n_fields
        if branch == "mlp":
            self.branch: nn.Module = MLP(
                self.n_sensors, coefficients, hidden=branch_hidden, activation=activation
            )
        else:
            self.branch = CNNBranch(self.n_sensors, coefficients, branch_channels, activation)
        self.trunk = MLP(d, self.n_basis, hidden=trunk_hidden, activation=activation)
        bias_shape = () if self.n_fields == 1 else (self.n_fields, 1)
        self.deeponet_bias = nn.Parameter(torch.zeros(bias_shape)) if deeponet_bias else None
        self.lift = AveragedLift(d, self.width, trainable=self.train_lift, fields=self.n_fields)
        self.spectral = nn.ModuleList(
            SpectralConv(self.width, self.width, self.n_modes) for _ in range(n_layers)
        )
        self.pointwise = nn.ModuleList(PointwiseLinear(self.width, self.width) for _ in range(n_layers))
        self.act = make_activation(activation)
        self.projection = MLP(
            self.width, self.out_channels, hidden=[projection_channels], activation=activation
        )
        self.last_n_measurements: int | None = None

    # -- argument checks ------------------------------------------------------------------------
    @staticmethod
    def _check_padding(padding: Any, d: int) -> tuple[int | float, ...]:
        values = padding if isinstance(padding, Sequence) and not isinstance(padding, str) else [padding] * d
        ok = len(values) == d
        for p in values if ok else []:
            ok_int = isinstance(p, int) and not isinstance(p, bool) and p >= 0
            ok_frac = isinstance(p, float) and 0.0 <= p <= 1.0
            ok = ok and (ok_int or ok_frac)
        if not ok:
            raise ConfigError(
                f"NIO padding: expected one value or {d} (one per axis), each an int >= 0 (grid points) "
                f"or a float in [0, 1] (fraction), got {padding!r}"
            )
        return tuple(values)

    @staticmethod
    def _check_bounds(bounds: Any, d: int) -> tuple[tuple[float, float], ...]:
        if bounds is None:
            return ((0.0, 1.0),) * d
        ok = isinstance(bounds, Sequence) and not isinstance(bounds, str) and len(bounds) == d
        pairs = []
        for pair in bounds if ok else []:
            pair_ok = isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2
            pair_ok = pair_ok and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pair
            )
            if not (pair_ok and pair[1] > pair[0]):
                ok = False
                break
            pairs.append((float(pair[0]), float(pair[1])))
        if not ok:
            raise ConfigError(
                f"NIO bounds: expected {d} pairs [lo, hi] of finite numbers with lo < hi, got {bounds!r}"
            )
        return tuple(pairs)

    def _pad_sizes(self, spatial: Sequence[int]) -> tuple[int, ...]:
        pairs = zip(self.padding, spatial)
        return tuple(p if isinstance(p, int) else _fft_friendly_padding(n, p) for p, n in pairs)

    def _out_shape(self, out_shape: Any) -> tuple[int, ...]:
        if out_shape is None:
            return self.grid_size
        values = (
            [out_shape] * self.ndim
            if isinstance(out_shape, int) and not isinstance(out_shape, bool)
            else out_shape
        )
        ok = isinstance(values, Sequence) and not isinstance(values, str) and len(values) == self.ndim
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 2 for v in values)
        if not ok:
            got = (
                tuple(out_shape)
                if isinstance(out_shape, Sequence) and not isinstance(out_shape, str)
                else out_shape
            )
            raise ShapeError("NIO out_shape", f"an int or {self.ndim} ints, each >= 2", got)
        return tuple(int(v) for v in values)

    def _check_input(self, x: Any) -> None:
        if not isinstance(x, torch.Tensor):
            raise DTypeError(f"NIO input: expected a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 3 or x.shape[1] < 1 or x.shape[2] != self.n_sensors:
            raise ShapeError(
                "NIO input", f"(B, L >= 1, {self.n_sensors}) (batch, measurements, sensors)", tuple(x.shape)
            )
        if not x.is_floating_point():
            raise DTypeError(f"NIO input: expected a floating-point tensor, got {x.dtype}")
        param_dtype = self.projection.net[0].weight.dtype
        if x.dtype != param_dtype and not torch.is_autocast_enabled(x.device.type):
            raise DTypeError(f"NIO input: expected dtype {param_dtype} (the model's), got {x.dtype}")

    # -- pieces ---------------------------------------------------------------------------------
    def select_measurements(self, x: torch.Tensor) -> torch.Tensor:
        """The measurements a forward call uses: a random subset in training mode (see the module
        notes), all of them otherwise. Records the count in ``last_n_measurements``."""
        n = x.shape[1]
        if self.training and self.random_subsets:
            low = min(self.min_measurements, n)
            count = int(torch.randint(low, n + 1, ()).item())
            index = torch.randperm(n)[:count].to(x.device)
            x = x.index_select(1, index)
        self.last_n_measurements = x.shape[1]
        return x

    def branch_coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """Branch output for every measurement: ``(B, L, M) -> (B, L, n_basis)``, or
        ``(B, L, n_fields, n_basis)`` when ``n_fields > 1``."""
        b, n, m = x.shape
        coef = self.branch(x.reshape(b * n, m))
        if self.n_fields == 1:
            return coef.reshape(b, n, self.n_basis)
        return coef.reshape(b, n, self.n_fields, self.n_basis)

    def basis(
        self, out_shape: Any = None, like: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Node coordinates ``(ndim, *s)`` of the output grid and the trunk's basis ``(prod(s), n_basis)``."""
        shape = self._out_shape(out_shape)
        ref = self.projection.net[0].weight if like is None else like
        coords = _node_coords(shape, self.bounds, ref.dtype, ref.device)
        return coords, self.trunk(coords.reshape(self.ndim, -1).transpose(0, 1))

    def measurement_fields(self, x: torch.Tensor, out_shape: Any = None) -> torch.Tensor:
        """The DeepONet field of every given measurement, ``(B, L, *out_shape)`` (``(B, L, n_fields,
        *out_shape)`` when ``n_fields > 1``; no subset drawn)."""
        self._check_input(x)
        shape = self._out_shape(out_shape)
        _, basis = self.basis(shape, like=x)
        fields = torch.matmul(self.branch_coefficients(x), basis.transpose(0, 1))
        if self.deeponet_bias is not None:
            fields = fields + self.deeponet_bias
        return fields.reshape(*fields.shape[:-1], *shape)

    def averaged_field(self, x: torch.Tensor, out_shape: Any = None) -> torch.Tensor:
        """Mean of the DeepONet fields over all given measurements, ``(B, *out_shape)`` (``(B,
        n_fields, *out_shape)`` when ``n_fields > 1``)."""
        self._check_input(x)
        shape = self._out_shape(out_shape)
        _, basis = self.basis(shape, like=x)
        return self._average(x, basis, shape)

    def _average(self, x: torch.Tensor, basis: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        # mean_l <c_l, phi> = <mean_l c_l, phi>: one inner product per sample instead of L.
        coef = self.branch_coefficients(x).mean(dim=1)
        field = torch.matmul(coef, basis.transpose(0, 1))
        if self.deeponet_bias is not None:
            field = field + self.deeponet_bias
        return field.reshape(*field.shape[:-1], *shape)

    def forward(self, x: torch.Tensor, out_shape: int | Sequence[int] | None = None) -> torch.Tensor:
        """Map measurements ``(B, L, n_sensors)`` to the field ``(B, out_channels, *out_shape)``.

        ``out_shape`` (nodes per axis, an int for every axis) defaults to ``grid_size``; ``L`` may
        be any positive number.
        """
        self._check_input(x)
        shape = self._out_shape(out_shape)
        x = self.select_measurements(x)
        coords, basis = self.basis(shape, like=x)
        h = self.lift(self._average(x, basis, shape), coords)
        pads = self._pad_sizes(shape)
        if any(pads):  # F.pad lists (left, right) pairs from the last axis backwards
            h = F.pad(h, [v for p in reversed(pads) for v in (0, p)])
        for i in range(self.n_layers):
            h = self.spectral[i](h) + self.pointwise[i](h)
            if i < self.n_layers - 1:
                h = self.act(h)
        if any(pads):
            h = h[(..., *(slice(0, n) for n in shape))]
        return self.projection(h.movedim(1, -1)).movedim(-1, 1).contiguous()

    def extra_repr(self) -> str:
        return (
            f"n_sensors={self.n_sensors}, grid_size={self.grid_size}, branch={self.branch_kind!r}, "
            f"n_basis={self.n_basis}, n_fields={self.n_fields}, width={self.width}, n_modes={self.n_modes}, "
            f"train_lift={self.train_lift}, random_subsets={self.random_subsets}"
        )
