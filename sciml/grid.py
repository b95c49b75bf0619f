"""Uniform node grids, resampling between them, and the relative L2 error.

A :class:`Grid` is a node-based uniform tensor-product grid: ``n`` nodes per axis including both
end points, so ``spacing = (hi - lo) / (n - 1)``. Arrays on a grid use ``'ij'`` indexing: axis 0 is
``x``, axis 1 is ``y``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._checks import as_float_array, check_positive_int
from .errors import ConfigError, ShapeError, UnknownNameError

__all__ = ["Grid", "relative_l2", "resample"]

_AXES = "xyz"


class Grid:
    """Uniform node-based grid on a box in 1, 2 or 3 dimensions.

    Parameters
    ----------
    shape : int or sequence of int
        Nodes per axis (at least 2 each). An int gives that many nodes on every axis: as many axes
        as ``bounds`` has pairs, or ``ndim``, or one.
    bounds : sequence of (lo, hi), optional
        Box per axis; the unit box by default.
    ndim : int, optional
        Number of axes; needed only with an int ``shape`` and no ``bounds``. When given with
        ``bounds`` or a sequence ``shape`` it must agree with them.

    Examples
    --------
    >>> g = Grid(65, ndim=2)
    >>> g.shape, g.spacing
    ((65, 65), (0.015625, 0.015625))
    >>> Grid(101, bounds=[(-1, 1), (-1, 1)]).shape
    (101, 101)
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        bounds: Sequence[Sequence[float]] | None = None,
        ndim: int | None = None,
    ) -> None:
        if ndim is not None and (isinstance(ndim, bool) or not isinstance(ndim, (int, np.integer))
                                 or not 1 <= ndim <= 3):
            raise ConfigError(f"Grid: expected ndim of 1, 2 or 3, got {ndim!r}")
        n_bounds = None
        if bounds is not None:
            if isinstance(bounds, (str, bytes)) or not hasattr(bounds, "__len__"):
                raise ConfigError(f"Grid: expected bounds as a sequence of (lo, hi) pairs, got {bounds!r}")
            n_bounds = len(bounds)
            if ndim is not None and ndim != n_bounds:
                raise ConfigError(f"Grid: ndim={ndim} does not match the {n_bounds} (lo, hi) pairs of bounds "
                                  f"{list(bounds)}; expected ndim={n_bounds} or leave it out")
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),) * (ndim or n_bounds or 1)
        shape = tuple(shape)
        if not 1 <= len(shape) <= 3:
            raise ConfigError(f"Grid: expected 1 to 3 axes, got shape {shape}")
        for n in shape:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
                raise ConfigError(f"Grid: expected at least 2 nodes per axis, got shape {shape}")
        if ndim is not None and ndim != len(shape):
            raise ConfigError(f"Grid: ndim={ndim} does not match shape {shape}")
        if bounds is None:
            bounds = [(0.0, 1.0)] * len(shape)
        bounds = tuple((float(lo), float(hi)) for lo, hi in bounds)
        if len(bounds) != len(shape):
            raise ShapeError("Grid bounds", f"{len(shape)} (lo, hi) pairs", (len(bounds),))
        for lo, hi in bounds:
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ConfigError(f"Grid: expected finite bounds with hi > lo, got {bounds}")
        self.shape: tuple[int, ...] = tuple(int(n) for n in shape)
        self.bounds: tuple[tuple[float, float], ...] = bounds

    # -- geometry -----------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple((hi - lo) / (n - 1) for (lo, hi), n in zip(self.bounds, self.shape))

    @property
    def axes(self) -> list[np.ndarray]:
        """Node coordinates along each axis (float64)."""
        return [np.linspace(lo, hi, n) for (lo, hi), n in zip(self.bounds, self.shape)]

    def coords(self) -> np.ndarray:
        """Node coordinates, shape ``(*shape, ndim)``, ``'ij'`` indexing."""
        return np.stack(np.meshgrid(*self.axes, indexing="ij"), axis=-1)

    def points(self) -> np.ndarray:
        """Node coordinates flattened to ``(size, ndim)`` in C order."""
        return self.coords().reshape(-1, self.ndim)

    def coord_arrays(self) -> dict[str, np.ndarray]:
        """``{"x": X, "y": Y, ...}`` arrays of shape ``shape``, handy for evaluating formulas."""
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return {_AXES[i]: mesh[i] for i in range(self.ndim)}

    def boundary_mask(self) -> np.ndarray:
        """Boolean array of shape ``shape``, True on the nodes of the box boundary."""
        mask = np.zeros(self.shape, dtype=bool)
        for axis in range(self.ndim):
            index = [slice(None)] * self.ndim
            for end in (0, -1):
                index[axis] = end
                mask[tuple(index)] = True
        return mask

    def subsample(self, stride: int) -> Grid:
        """The grid of every ``stride``-th node; needs ``(n - 1) % stride == 0`` on every axis."""
        stride = check_positive_int("stride", stride)
        for n in self.shape:
            if (n - 1) % stride:
                raise ConfigError(
                    f"Grid.subsample: stride {stride} does not divide n - 1 for shape {self.shape}; "
                    f"expected a stride dividing {[n - 1 for n in self.shape]}"
                )
        return Grid(tuple((n - 1) // stride + 1 for n in self.shape), self.bounds)

    def stride_to(self, other: Grid) -> int | None:
        """The stride that makes ``self.subsample(stride) == other``, or None if there is none."""
        if other.ndim != self.ndim or other.bounds != self.bounds:
            return None
        strides = {(n - 1) / (m - 1) for n, m in zip(self.shape, other.shape)}
        if len(strides) != 1:
            return None
        stride = strides.pop()
        return int(stride) if stride == int(stride) and stride >= 1 else None

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": "grid", "shape": list(self.shape), "bounds": [list(b) for b in self.bounds]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grid:
        if data.get("kind") != "grid":
            raise ConfigError(f"Grid.from_dict: expected kind 'grid', got {data.get('kind')!r}")
        return cls(tuple(data["shape"]), [tuple(b) for b in data["bounds"]])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Grid) and self.shape == other.shape and self.bounds == other.bounds

    def __hash__(self) -> int:
        return hash((self.shape, self.bounds))

    def __repr__(self) -> str:
        if all(b == (0.0, 1.0) for b in self.bounds):
            return f"Grid(shape={self.shape})"
        return f"Grid(shape={self.shape}, bounds={self.bounds})"


def relative_l2(prediction: Any, target: Any, axes: Sequence[int] | None = None) -> Any:
    """Relative L2 error ``||p - t|| / ||t||`` (numpy or torch).

    With ``axes=None`` the norm is over everything; pass the spatial/channel axes to get one value
    per sample, e.g. ``axes=(1, 2, 3)`` for ``(B, C, H, W)``.
    """
    if type(prediction).__module__.startswith("torch"):
        import torch

        diff = torch.linalg.vector_norm(prediction - target, dim=axes)
        ref = torch.linalg.vector_norm(target, dim=axes)
        return diff / ref.clamp_min(torch.finfo(ref.dtype).tiny)
    p, t = np.asarray(prediction, dtype=np.float64), np.asarray(target, dtype=np.float64)
    axes_t = None if axes is None else tuple(axes)
    diff = np.sqrt(np.sum((p - t) ** 2, axis=axes_t))
    ref = np.sqrt(np.sum(t**2, axis=axes_t))
    return diff / np.maximum(ref, np.finfo(np.float64).tiny)


def resample(values: np.ndarray, src: Grid, dst: Grid, method: str = "linear") -> np.ndarray:
    """Interpolate ``(..., *src.shape)`` values onto ``dst``; leading axes are kept."""
    from scipy.interpolate import RegularGridInterpolator

    if method not in ("linear", "cubic"):
        raise UnknownNameError("interpolation method", method, ["linear", "cubic"])
    values = as_float_array("values", values)
    lead = values.shape[: values.ndim - src.ndim]
    if values.shape[values.ndim - src.ndim :] != src.shape:
        raise ShapeError("resample values", f"(..., *{src.shape})", values.shape)
    flat = values.reshape(-1, *src.shape)
    # Points slightly outside because of round-off are clipped back into the source box.
    pts = dst.points()
    for axis, (lo, hi) in enumerate(src.bounds):
        pts[:, axis] = np.clip(pts[:, axis], lo, hi)
    out = np.empty((flat.shape[0], dst.size))
    for i, v in enumerate(flat):
        out[i] = RegularGridInterpolator(src.axes, v, method=method)(pts)
    return out.reshape(*lead, *dst.shape)
