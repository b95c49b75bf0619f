"""Baselines of the NIO paper for boundary-measurement inverse problems: a flat DeepONet and an FNO
on harmonically extended measurements.

An inverse problem such as Calderón's gives, per sample, ``L`` boundary measurements of ``M`` values
each, one value per boundary node of a 2-D grid, counter-clockwise from the corner ``(0, 0)`` (the
order of :func:`sciml.numerics.conductivity.boundary_order` and
:func:`sciml.spaces.boundary.boundary_indices`), as a tensor ``(B, L, M)``. The networks here map it
to the unknown coefficient ``(B, out_channels, *out_shape)`` on the unit box.

Unlike :class:`~sciml.models.nio.NIO`, which averages over its measurements and so takes any number
of them, both baselines read a **fixed** number: it is a constructor argument, exposed as the
attribute ``n_measurements``, and a forward call with another ``L`` raises
:class:`~sciml.errors.ShapeError` naming both counts.

:class:`FlatDeepONet` (``"flat_deeponet"``)
    A DeepONet whose branch is an MLP over all ``L * M`` values flattened into one vector, and whose
    trunk is an MLP over the output node coordinates (the paper's DeepONet baseline). Any output
    grid can be asked for.
:class:`ExtendedFNO` (``"extended_fno"``)
    Every measurement vector is extended into the box as its discrete harmonic extension (Laplace's
    equation with that boundary data, :func:`sciml.numerics.fd.harmonic_extension`), which gives
    ``L`` channels on the grid whose boundary the sensors are, and an :class:`~sciml.models.fno.FNO`
    with ``L`` input channels maps them to the coefficient (the paper's "FNO on stacked
    measurements"). The extension is linear, so it is precomputed once as a dense matrix.
:class:`ExtendedImageNet` (``"extended_net"``)
    The same extensions and their gradients as the input channels of an image network (the EIT
    transformer ``uit`` or a plain ``unet``): the EIT transformer's PDE-based feature map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_name, check_positive_int
from ..errors import ConfigError, DTypeError, ShapeError
from .fno import FNO, _fft_friendly_padding
from .mlp import ACTIVATIONS, MLP
from .registry import register

__all__ = ["FlatDeepONet", "ExtendedFNO", "ExtendedImageNet", "harmonic_extension_matrix"]


# -- argument checks ----------------------------------------------------------------------------------
def _int_list(name: str, value: Any) -> list[int]:
    """A (possibly empty) list of positive ints: hidden layer widths."""
    if isinstance(value, (int, str)) or not isinstance(value, Sequence):
        raise ConfigError(f"{name}: expected a list of positive ints, got {value!r}")
    return [check_positive_int(f"{name}[{i}]", v) for i, v in enumerate(value)]


def _pair(name: str, value: Any, low: int) -> tuple[int, int]:
    """Two ints, each at least ``low``; an int stands for both axes."""
    values = [value] * 2 if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    ok = isinstance(values, Sequence) and not isinstance(values, str) and len(values) == 2
    ok = ok and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low for v in values)
    if not ok:
        raise ConfigError(f"{name}: expected an int >= {low} or 2 of them (one per axis), got {value!r}")
    return int(values[0]), int(values[1])


def _n_boundary(shape: tuple[int, int]) -> int:
    """Boundary nodes of an ``nx x ny`` node grid: ``2 (nx - 1) + 2 (ny - 1)``, ``4 (n - 1)`` if square."""
    return 2 * (shape[0] - 1) + 2 * (shape[1] - 1)


def _grid_from_sensors(cls: str, n_sensors: int, grid_size: Any) -> tuple[int, int]:
    """``grid_size`` checked, or for ``None`` the square grid with ``n_sensors`` boundary nodes."""
    if grid_size is not None:
        return _pair(f"{cls} grid_size", grid_size, 2)
    if n_sensors % 4 != 0 or n_sensors < 4:
        raise ConfigError(
            f"{cls} grid_size: None means the square grid with n_sensors = 4 (n - 1) boundary nodes, "
            f"but n_sensors = {n_sensors} is not a positive multiple of 4; give grid_size"
        )
    n = n_sensors // 4 + 1
    return n, n


def _out_shape(cls: str, out_shape: Any, default: tuple[int, int]) -> tuple[int, int]:
    if out_shape is None:
        return default
    values = [out_shape] * 2 if isinstance(out_shape, int) and not isinstance(out_shape, bool) else out_shape
    ok = isinstance(values, Sequence) and not isinstance(values, str) and len(values) == 2
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 2 for v in values)
    if not ok:
        seq = isinstance(out_shape, Sequence) and not isinstance(out_shape, str)
        got = tuple(out_shape) if seq else out_shape
        raise ShapeError(f"{cls} out_shape", "an int or 2 ints, each >= 2", got)
    return int(values[0]), int(values[1])


def _check_measurements(cls: str, x: Any, n_measurements: int, n_sensors: int, dtype: torch.dtype) -> None:
    """Rank 3, floating point of the model's dtype, ``M == n_sensors`` and ``L == n_measurements``."""
    if not isinstance(x, torch.Tensor):
        raise DTypeError(f"{cls} input: expected a torch.Tensor, got {type(x).__name__}")
    expected = f"(B, {n_measurements}, {n_sensors}) (batch, measurements, sensors)"
    if x.ndim != 3 or x.shape[2] != n_sensors:
        raise ShapeError(f"{cls} input", expected, tuple(x.shape))
    if x.shape[1] != n_measurements:
        raise ShapeError(
            f"{cls} input",
            f"{expected}: this network reads exactly {n_measurements} measurements (NIO takes any number)",
            f"{tuple(x.shape)}, i.e. {x.shape[1]} measurements",
        )
    if not x.is_floating_point():
        raise DTypeError(f"{cls} input: expected a floating-point tensor, got {x.dtype}")
    if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise DTypeError(f"{cls} input: expected dtype {dtype} (the model's), got {x.dtype}")


def _node_coords(shape: tuple[int, int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Node coordinates ``(prod(shape), 2)`` of the unit box, both ends included, ``'ij'`` order
    (the nodes of ``sciml.grid.Grid(shape)`` in C order)."""
    lines = [torch.linspace(0.0, 1.0, n, dtype=dtype, device=device) for n in shape]
    return torch.stack(torch.meshgrid(*lines, indexing="ij"), dim=-1).reshape(-1, 2)


# -- the flat DeepONet ----------------------------------------------------------------------------------
@register("flat_deeponet")
class FlatDeepONet(nn.Module):
    """DeepONet over all measurements flattened: ``(B, L, M) -> (B, out_channels, *out_shape)``.

    The branch MLP reads the ``L * M`` values of a sample as one vector (measurement by measurement)
    and gives ``out_channels * p`` coefficients; the trunk MLP gives ``p`` basis functions of the
    node coordinates of the output grid (unit box, both ends included), shared by the channels;
    channel ``c`` is ``sum_k b_{c,k} t_k(x) + b_c`` with a learned bias ``b_c`` (zero at start).
    This is the NIO paper's DeepONet baseline; because the branch sees a fixed-length vector, the
    number and order of the measurements are fixed.

    Parameters
    ----------
    n_measurements : int
        Number ``L`` of measurements per sample, fixed (see ``n_measurements``).
    n_sensors : int
        Length ``M`` of one measurement vector.
    out_channels : int
        Channels of the output field.
    grid_size : int, sequence of 2 ints, or None
        Default output grid, nodes per axis (at least 2); ``None`` is the square grid whose boundary
        holds the sensors, ``n_sensors / 4 + 1`` nodes per side (``n_sensors`` must then be a
        multiple of 4). ``forward`` may ask for any other grid.
    branch_hidden : sequence of int
        Hidden widths of the branch MLP.
    trunk_hidden : sequence of int
        Hidden widths of the trunk MLP.
    p : int
        Number of basis functions.
    activation : str
        Non-linearity of both MLPs, see :data:`sciml.models.mlp.ACTIVATIONS`.

    Attributes
    ----------
    n_measurements : int
        The fixed number of measurements a forward call takes (NIO, which takes any, has none).

    Raises
    ------
    ConfigError
        For a bad argument.
    UnknownNameError
        For an unknown activation.

    Examples
    --------
    >>> net = FlatDeepONet(n_measurements=4, n_sensors=32, branch_hidden=[16], trunk_hidden=[16], p=8)
    >>> net.grid_size
    (9, 9)
    >>> net(torch.randn(2, 4, 32)).shape
    torch.Size([2, 1, 9, 9])
    >>> net(torch.randn(2, 4, 32), out_shape=(20, 12)).shape
    torch.Size([2, 1, 20, 12])
    """

    def __init__(
        self,
        n_measurements: int,
        n_sensors: int,
        out_channels: int = 1,
        grid_size: int | Sequence[int] | None = None,
        branch_hidden: Sequence[int] = (256, 256),
        trunk_hidden: Sequence[int] = (128, 128, 128, 128),
        p: int = 50,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        self.n_measurements = check_positive_int("FlatDeepONet n_measurements", n_measurements)
        self.n_sensors = check_positive_int("FlatDeepONet n_sensors", n_sensors)
        self.out_channels = check_positive_int("FlatDeepONet out_channels", out_channels)
        self.grid_size = _grid_from_sensors("FlatDeepONet", self.n_sensors, grid_size)
        branch_hidden = _int_list("FlatDeepONet branch_hidden", branch_hidden)
        trunk_hidden = _int_list("FlatDeepONet trunk_hidden", trunk_hidden)
        self.p = check_positive_int("FlatDeepONet p", p)
        check_name("FlatDeepONet activation", activation, ACTIVATIONS)
        self.branch = MLP(
            self.n_measurements * self.n_sensors,
            self.out_channels * self.p,
            hidden=branch_hidden,
            activation=activation,
        )
        self.trunk = MLP(2, self.p, hidden=trunk_hidden, activation=activation)
        self.bias = nn.Parameter(torch.zeros(self.out_channels))

    def basis(self, out_shape: int | Sequence[int] | None = None) -> torch.Tensor:
        """The trunk's basis functions at the nodes of the output grid, ``(prod(out_shape), p)``."""
        shape = _out_shape("FlatDeepONet", out_shape, self.grid_size)
        return self.trunk(_node_coords(shape, self.bias.dtype, self.bias.device))

    def forward(self, x: torch.Tensor, out_shape: int | Sequence[int] | None = None) -> torch.Tensor:
        """Map measurements ``(B, n_measurements, n_sensors)`` to ``(B, out_channels, *out_shape)``.

        ``out_shape`` (nodes per axis, an int for both) defaults to ``grid_size``.
        """
        _check_measurements("FlatDeepONet", x, self.n_measurements, self.n_sensors, self.bias.dtype)
        shape = _out_shape("FlatDeepONet", out_shape, self.grid_size)
        b = x.shape[0]
        coef = self.branch(x.reshape(b, -1)).reshape(b, self.out_channels, self.p)
        basis = self.trunk(_node_coords(shape, x.dtype, x.device))  # (S, p)
        out = torch.matmul(coef, basis.transpose(0, 1)) + self.bias[:, None]
        return out.reshape(b, self.out_channels, *shape)

    def extra_repr(self) -> str:
        return (
            f"n_measurements={self.n_measurements}, n_sensors={self.n_sensors}, "
            f"grid_size={self.grid_size}, p={self.p}"
        )


# -- the FNO on harmonic extensions ---------------------------------------------------------------------
def harmonic_extension_matrix(grid_size: int | Sequence[int]) -> np.ndarray:
    """Dense matrix ``E`` of shape ``(nx * ny, M)`` of the discrete harmonic extension on a node grid.

    Column ``k`` is the harmonic extension (:func:`sciml.numerics.fd.harmonic_extension`, C-order
    flattened) of the boundary data that is one at the ``k``-th boundary node in
    :func:`~sciml.numerics.conductivity.boundary_order` and zero elsewhere, so ``E @ g`` extends a
    boundary vector ``g`` of length ``M = 2 (nx - 1) + 2 (ny - 1)`` into the unit box, and its rows
    at the boundary nodes are the identity.

    Parameters
    ----------
    grid_size : int or sequence of 2 ints
        Nodes per axis (at least 3, so that the grid has an interior).

    Returns
    -------
    numpy.ndarray of float64
    """
    from ..grid import Grid
    from ..numerics.conductivity import boundary_order
    from ..numerics.fd import harmonic_extension

    shape = _pair("harmonic_extension_matrix grid_size", grid_size, 3)
    grid = Grid(shape)
    order = boundary_order(grid)
    m = len(order)
    units = np.zeros((m, grid.size))
    units[np.arange(m), order] = 1.0
    ext = harmonic_extension(units.reshape(m, *shape), grid)
    return np.ascontiguousarray(ext.reshape(m, grid.size).T)


def _check_padding(padding: Any) -> tuple[int | float, int | float]:
    values = padding if isinstance(padding, Sequence) and not isinstance(padding, str) else [padding] * 2
    ok = len(values) == 2
    for v in values if ok else []:
        ok_int = isinstance(v, int) and not isinstance(v, bool) and v >= 0
        ok_frac = isinstance(v, float) and 0.0 <= v <= 1.0
        ok = ok and (ok_int or ok_frac)
    if not ok:
        raise ConfigError(
            "ExtendedFNO padding: expected one value or 2 (one per axis), each an int >= 0 (grid points) "
            f"or a float in [0, 1] (fraction), got {padding!r}"
        )
    return values[0], values[1]


@register("extended_fno")
class ExtendedFNO(nn.Module):
    """FNO on the harmonic extensions of the measurements: ``(B, L, M) -> (B, out_channels, *out_shape)``.

    Each of the ``L`` measurement vectors is read as Dirichlet data on the boundary nodes of the
    ``grid_size`` node grid of the unit box (in :func:`~sciml.numerics.conductivity.boundary_order`)
    and extended inside as the discrete harmonic function with that data. The ``L`` extensions are
    the input channels of an :class:`~sciml.models.fno.FNO` (which appends the node coordinates),
    whose output is the coefficient on the same grid. This is the NIO paper's "FNO on stacked
    measurements" baseline, with the harmonic extension as the way of placing boundary data on the
    grid. The channels are the measurements in their order, so their number is fixed.

    The extension is linear: the matrix ``E`` (``(nx * ny, M)``, see
    :func:`harmonic_extension_matrix`) is computed once at construction from ``M`` Laplace solves
    and kept as the non-persistent float buffer ``extension`` (moved and cast with the model,
    rebuilt rather than stored in checkpoints), so a forward pass extends all measurements with
    one matrix product.

    Other output grids: the FNO runs on the extension grid, and its output is interpolated to the
    requested ``out_shape`` bilinearly with ``align_corners=True`` (the grids are node grids with
    both ends included, so the corners stay put and the default grid is reproduced exactly).

    Parameters
    ----------
    n_measurements : int
        Number ``L`` of measurements per sample: the FNO's input channels (see ``n_measurements``).
    n_sensors : int
        Length ``M`` of one measurement vector: the number of boundary nodes of the grid,
        ``4 (n - 1)`` for ``n x n`` (``2 (nx - 1) + 2 (ny - 1)`` in general).
    out_channels : int
        Channels of the output field.
    grid_size : int, sequence of 2 ints, or None
        Nodes per axis of the extension grid (at least 3); ``None`` is the square grid with
        ``n_sensors / 4 + 1`` nodes per side.
    n_modes : int or sequence of 2 ints
        Fourier modes per axis (paper convention, see :mod:`sciml.models.fno`), capped to what the
        padded grid holds so that no spectral weight stays untrained.
    width : int
        Channels of the FNO.
    n_layers : int
        Fourier layers.
    padding : int, float or sequence of 2 of them
        The FNO's zero padding on the right of each axis (an int is grid points, a float a fraction
        of the axis); the extensions are not periodic.

    Attributes
    ----------
    n_measurements : int
        The fixed number of measurements a forward call takes (NIO, which takes any, has none).

    Raises
    ------
    ConfigError
        For a bad argument, in particular ``n_sensors`` other than the boundary size of the grid.

    Examples
    --------
    >>> net = ExtendedFNO(n_measurements=4, n_sensors=32, n_modes=4, width=8, n_layers=2)
    >>> net.grid_size, tuple(net.extension.shape)
    ((9, 9), (81, 32))
    >>> net(torch.randn(2, 4, 32)).shape
    torch.Size([2, 1, 9, 9])
    """

    def __init__(
        self,
        n_measurements: int,
        n_sensors: int,
        out_channels: int = 1,
        grid_size: int | Sequence[int] | None = None,
        n_modes: int | Sequence[int] = 12,
        width: int = 32,
        n_layers: int = 4,
        padding: int | float | Sequence[int | float] = 0.25,
    ) -> None:
        super().__init__()
        self.n_measurements = check_positive_int("ExtendedFNO n_measurements", n_measurements)
        self.n_sensors = check_positive_int("ExtendedFNO n_sensors", n_sensors)
        self.out_channels = check_positive_int("ExtendedFNO out_channels", out_channels)
        shape = _grid_from_sensors("ExtendedFNO", self.n_sensors, grid_size)
        if min(shape) < 3:
            raise ConfigError(f"ExtendedFNO grid_size: expected at least 3 nodes per axis, got {grid_size!r}")
        if _n_boundary(shape) != self.n_sensors:
            raise ConfigError(
                f"ExtendedFNO n_sensors: expected the {_n_boundary(shape)} boundary nodes of the "
                f"{shape[0]} x {shape[1]} grid (4 (n - 1) for n x n), got {self.n_sensors}"
            )
        self.grid_size = shape
        modes = _pair("ExtendedFNO n_modes", n_modes, 1)
        width = check_positive_int("ExtendedFNO width", width)
        n_layers = check_positive_int("ExtendedFNO n_layers", n_layers)
        padded = [
            n + (p if isinstance(p, int) else _fft_friendly_padding(n, p))
            for p, n in zip(_check_padding(padding), shape)
        ]
        # Modes a padded default grid holds (SpectralConv's own run-time rule), as in NIO.
        self.n_modes = (min(modes[0], padded[0] // 2), min(modes[1], padded[1] // 2 + 1))
        self.fno = FNO(
            self.n_measurements,
            self.out_channels,
            n_modes=self.n_modes,
            width=width,
            n_layers=n_layers,
            padding=padding,
        )
        matrix = torch.from_numpy(harmonic_extension_matrix(shape)).to(torch.float32)
        self.register_buffer("extension", matrix, persistent=False)

    def extend(self, x: torch.Tensor) -> torch.Tensor:
        """Harmonic extensions of the measurements: ``(B, L, M) -> (B, L, nx, ny)``."""
        _check_measurements("ExtendedFNO", x, self.n_measurements, self.n_sensors, self.extension.dtype)
        ext = self.extension if self.extension.dtype == x.dtype else self.extension.to(x.dtype)
        return torch.matmul(x, ext.transpose(0, 1)).reshape(*x.shape[:2], *self.grid_size)

    def forward(self, x: torch.Tensor, out_shape: int | Sequence[int] | None = None) -> torch.Tensor:
        """Map measurements ``(B, n_measurements, n_sensors)`` to ``(B, out_channels, *out_shape)``.

        ``out_shape`` defaults to ``grid_size``; another grid is interpolated bilinearly from it
        (``align_corners=True``).
        """
        shape = _out_shape("ExtendedFNO", out_shape, self.grid_size)
        out = self.fno(self.extend(x))
        if shape != self.grid_size:
            out = F.interpolate(out, size=shape, mode="bilinear", align_corners=True)
        return out

    def extra_repr(self) -> str:
        return (
            f"n_measurements={self.n_measurements}, n_sensors={self.n_sensors}, "
            f"grid_size={self.grid_size}, n_modes={self.n_modes}"
        )


@register("extended_net")
class ExtendedImageNet(nn.Module):
    """An image network on the harmonic-extension features of the measurements (the EIT transformer's input).

    The EIT transformer (Guo, Cao and Chen 2023) does not read boundary data directly: every current
    pattern's boundary data are extended into the box as a harmonic function ``phi_l`` (a
    direct-sampling-like index map) and ``phi_l`` and its gradient are the input channels of an image
    network (a U-Net with attention, :class:`~sciml.models.uit.UIT`, or the plain
    :class:`~sciml.models.unet.UNet`) that outputs the inclusion map's logits. Here ``phi_l`` is the
    discrete harmonic extension of measurement ``l`` as the task hands it over (normalised: centred by
    the training mean, which stands in for the paper's ``f_l - Lambda_sigma0 g_l``, the data minus the
    background's), and the gradient channels are ``h * grad phi`` (central differences, one-sided on
    the boundary: derivatives scaled by the spacing so that all channels are of one size). So the input
    has ``3 L`` channels (``L`` without ``gradients``). Reads exactly ``n_measurements``.

    Parameters
    ----------
    n_measurements, n_sensors, out_channels, grid_size
        As in :class:`ExtendedFNO`.
    backbone : str
        Registry name of the image network (``"uit"``, ``"unet"``): ``(B, C, H, W) -> (B, out, H, W)``.
    gradients : bool
        Add ``h d/dx phi`` and ``h d/dy phi`` channels.
    backbone_kwargs : dict, optional
        Constructor kwargs of the backbone (``dim``, ``levels``, ``input_size``...).
    """

    def __init__(
        self,
        n_measurements: int,
        n_sensors: int,
        out_channels: int = 1,
        grid_size: int | Sequence[int] | None = None,
        backbone: str = "uit",
        gradients: bool = True,
        backbone_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        from .registry import build_model

        self.n_measurements = check_positive_int("ExtendedImageNet n_measurements", n_measurements)
        self.n_sensors = check_positive_int("ExtendedImageNet n_sensors", n_sensors)
        self.out_channels = check_positive_int("ExtendedImageNet out_channels", out_channels)
        shape = _grid_from_sensors("ExtendedImageNet", self.n_sensors, grid_size)
        if min(shape) < 3 or _n_boundary(shape) != self.n_sensors:
            raise ConfigError(f"ExtendedImageNet n_sensors: expected the {_n_boundary(shape)} boundary nodes of the "
                              f"{shape[0]} x {shape[1]} grid (at least 3 x 3), got {self.n_sensors}")
        if not isinstance(gradients, bool):
            raise ConfigError(f"ExtendedImageNet gradients: expected a bool, got {gradients!r}")
        if backbone_kwargs is not None and not isinstance(backbone_kwargs, dict):
            raise ConfigError(f"ExtendedImageNet backbone_kwargs: expected a dict, got {backbone_kwargs!r}")
        self.grid_size, self.gradients, self.backbone_name = shape, gradients, backbone
        channels = self.n_measurements * (3 if gradients else 1)
        self.backbone = build_model(backbone, in_channels=channels, out_channels=self.out_channels,
                                    **(backbone_kwargs or {}))
        matrix = torch.from_numpy(harmonic_extension_matrix(shape)).to(torch.float32)
        self.register_buffer("extension", matrix, persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, M)`` measurements to the ``(B, 3 L, nx, ny)`` (or ``L``) input channels."""
        _check_measurements("ExtendedImageNet", x, self.n_measurements, self.n_sensors, self.extension.dtype)
        ext = self.extension if self.extension.dtype == x.dtype else self.extension.to(x.dtype)
        phi = torch.matmul(x, ext.transpose(0, 1)).reshape(*x.shape[:2], *self.grid_size)
        if not self.gradients:
            return phi
        # torch.gradient with unit spacing: central differences / 2 inside, one-sided at the ends = h grad phi
        dx, dy = torch.gradient(phi, dim=(2, 3))
        return torch.cat([phi, dx, dy], dim=1)

    def forward(self, x: torch.Tensor, out_shape: int | Sequence[int] | None = None) -> torch.Tensor:
        """Measurements ``(B, n_measurements, n_sensors)`` to ``(B, out_channels, *out_shape)`` (logits for
        an inclusion map); another ``out_shape`` than ``grid_size`` is interpolated bilinearly."""
        shape = _out_shape("ExtendedImageNet", out_shape, self.grid_size)
        out = self.backbone(self.features(x))
        if shape != self.grid_size:
            out = F.interpolate(out, size=shape, mode="bilinear", align_corners=True)
        return out

    def extra_repr(self) -> str:
        return (f"n_measurements={self.n_measurements}, n_sensors={self.n_sensors}, grid_size={self.grid_size}, "
                f"backbone={self.backbone_name!r}, gradients={self.gradients}")
