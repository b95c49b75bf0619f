"""Random Dirichlet data on the boundary of a box, continuous around its corners."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._checks import check_positive_int
from ..errors import ConfigError
from ..grid import Grid
from .base import Space, _as_rng, _number, _psd_factor, register_space

__all__ = ["BoundaryGRF", "boundary_indices"]


def boundary_indices(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Boundary nodes of a 1-D or 2-D grid in perimeter order, with their arc-length parameter.

    2-D: counter-clockwise from the corner ``(lo_x, lo_y)``: bottom edge left to right, right edge
    upwards, top edge right to left, left edge downwards; every node appears once and the last one is
    the left-edge node just above the start. 1-D: the two end nodes, ``s = [0, L]``.

    Returns
    -------
    index : numpy.ndarray of int, shape ``(m, ndim)``
        Multi-indices of the nodes; ``u[:, index[:, 0], index[:, 1]]`` reads the boundary values.
    s : numpy.ndarray of float64, shape ``(m,)``
        Arc length from the start node, increasing, in ``[0, perimeter)``.
    """
    if not isinstance(grid, Grid):
        raise ConfigError(f"boundary_indices: expected a Grid, got {type(grid).__name__}")
    if grid.ndim == 1:
        (lo, hi), m = grid.bounds[0], grid.shape[0]
        return np.array([[0], [m - 1]]), np.array([0.0, hi - lo])
    if grid.ndim != 2:
        raise ConfigError(f"boundary_indices: expected a 1-D or 2-D grid, got {grid.ndim}-D")
    (nx, ny), (xs, ys) = grid.shape, grid.axes
    lx, ly = xs[-1] - xs[0], ys[-1] - ys[0]
    i_bot, j_right = np.arange(nx), np.arange(1, ny)
    i_top, j_left = np.arange(nx - 2, -1, -1), np.arange(ny - 2, 0, -1)
    i = np.concatenate([i_bot, np.full(ny - 1, nx - 1), i_top, np.zeros(ny - 2, dtype=int)])
    j = np.concatenate([np.zeros(nx, dtype=int), j_right, np.full(nx - 1, ny - 1), j_left])
    s = np.concatenate([xs[i_bot] - xs[0], lx + ys[j_right] - ys[0],
                        lx + ly + xs[-1] - xs[i_top], 2 * lx + ly + ys[-1] - ys[j_left]])
    return np.stack([i, j], axis=1), s


@register_space
class BoundaryGRF(Space):
    """Smooth random Dirichlet data on the boundary of a 1-D or 2-D box.

    In 2-D the boundary is a closed curve of perimeter ``P``; we give its nodes the arc-length
    parameter ``s`` of :func:`boundary_indices` and place them on a circle of circumference ``P``
    (angle ``2 pi s / P``). A squared-exponential kernel of the Euclidean (chordal) distance on that
    circle is positive definite, periodic in ``s`` and ~ ``exp(-ds^2 / (2 length_scale^2))`` for nearby
    nodes, so samples are smooth along each edge *and* continuous around the corners and the seam.
    In 1-D the two end values use the same kernel of their distance (nearly independent for short
    length scales). The covariance is factored once per grid (jittered Cholesky).

    :meth:`sample` returns the boundary values on the boundary nodes and zeros inside; lifting the data
    into the interior (harmonic extension or any other) is left to the Problem, which canonicalises
    boundary inputs itself. :meth:`boundary_values` returns the ``(n, m)`` values in perimeter order
    (DeepONet branch sensors read them this way); both use the same draws for the same seed.
    """

    kind = "boundary_grf"
    ndims = (1, 2)

    def __init__(self, length_scale: float = 0.3, variance: float = 1.0, mean: float = 0.0) -> None:
        self.length_scale = _number("BoundaryGRF length_scale", length_scale, 0.0)
        self.variance = _number("BoundaryGRF variance", variance, 0.0)
        self.mean = _number("BoundaryGRF mean", mean)

    def params(self) -> dict[str, Any]:
        return {"length_scale": self.length_scale, "variance": self.variance, "mean": self.mean}

    def _factor(self, grid: Grid) -> np.ndarray:
        index, s = boundary_indices(grid)
        if grid.ndim == 1:
            points = grid.axes[0][index[:, 0]][:, None]
        else:
            perimeter = 2 * sum(hi - lo for lo, hi in grid.bounds)
            angle = 2 * np.pi * s / perimeter
            points = perimeter / (2 * np.pi) * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        dist2 = np.sum((points[:, None, :] - points[None, :, :]) ** 2, axis=-1)
        kernel = np.exp(-dist2 / (2 * self.length_scale**2))
        return _psd_factor(kernel, "BoundaryGRF kernel")

    def boundary_values(self, n: int, grid: Grid, seed: int | np.random.Generator) -> np.ndarray:
        """``(n, m)`` boundary values in the order of :func:`boundary_indices`."""
        n = check_positive_int("n", n)
        self._check_grid(grid)
        return self._values(n, grid, _as_rng(seed))

    def _values(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        factor = self._cached(grid, lambda: self._factor(grid))
        values = math.sqrt(self.variance) * rng.standard_normal((n, factor.shape[0])) @ factor.T
        return values + self.mean

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        index, _ = boundary_indices(grid)
        out = np.zeros((n, *grid.shape))
        out[(slice(None), *index.T)] = self._values(n, grid, rng)
        return out
