"""Monitor functions of a solution field, for Monge-Ampere mesh movement.

A monitor ``m(x) >= 1`` says how much finer the mesh should be at ``x``: a Monge-Ampere mover seeks a
map whose Jacobian determinant times ``m`` is constant, so cells shrink where ``m`` is large. Both
monitors here have the form

.. math::

    m(x) = 1 + \\frac{s(x)}{\\beta \\, \\overline{s}}, \\qquad
    \\overline{s} = \\text{mean of } s \\text{ over the grid nodes},

with a feature size ``s`` of the field ``u`` evaluated in physical coordinates:

- :class:`GradientMonitor`: ``s = |grad u|`` (Euclidean norm). This is the monitor of the DMM / MM-PDE
  reference code (Hu, Wang, Ma, ICLR 2024; ``dmm_utils.py::monitor``), ``M = 1 + |grad u| / (0.01 alpha)``
  with ``alpha`` the mean of ``|grad u|`` over the grid, i.e. ``beta = 0.01`` (the default). The reference
  takes forward differences; here they are second-order central differences (or spectral).
- :class:`HessianMonitor`: ``s = |H u|_F = sqrt(sum_ij (d_i d_j u)^2)``, the Frobenius norm of the
  Hessian with both off-diagonal entries counted (the classical choice for piecewise-linear
  interpolation, whose error is governed by the second derivatives).

``beta`` is the strength: the smaller it is, the more the monitor rises over the features (the ratio
``max m / min m`` is about ``1 + max s / (beta mean s)``).

**The mean.** ``mean s`` is the arithmetic mean over the grid's nodes. For a periodic field the
repeated last node of each axis is left out, so every point of the torus counts once and the mean is
exactly the rectangle-rule value of ``(1/|box|) int s``; for a non-periodic field it is the plain mean
over all nodes, as in the reference.

**Flat fields.** When ``mean s`` is at round-off level (a constant field, whose differences vanish or
are a few ulps of its values), ``m = 1`` everywhere: there is nothing to resolve and dividing by that
mean would only amplify round-off (or give NaN for an exactly constant field).

**Derivatives.** ``method="central"``: second-order central differences; at the faces of a
non-periodic grid one-sided second-order formulas (``numpy.gradient(..., edge_order=2)`` for first
derivatives, ``(2 u_0 - 5 u_1 + 4 u_2 - u_3) / h^2`` for second ones), so the Hessian of a quadratic is
exact. ``periodic=True`` wraps the stencils around (the field's last node along every axis must repeat
its first, sciml's periodic node convention). ``method="spectral"`` differentiates the Fourier series
on the distinct periodic nodes (needs ``periodic=True``); it is exact for trigonometric polynomials but
rings near fronts that the grid does not resolve, so central differences are the default.

**Off-grid values.** :meth:`Monitor.at` interpolates the grid monitor multilinearly (bilinear in 2-D)
at arbitrary points; a periodic monitor wraps the points into the box first. The DMM reference uses a
softmax kernel over all nodes instead (smooth but ``O(n^2)`` per point and smoothing); multilinear
interpolation is what ``torch.nn.functional.grid_sample`` does, so a torch mover can use the same
values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._checks import as_float_array, check_name
from ..errors import ConfigError, ShapeError
from ..fields import Field
from ..grid import Grid

__all__ = ["Monitor", "GradientMonitor", "HessianMonitor", "interpolate"]

_METHODS = ("central", "spectral")
_FLAT = 64.0
"""A mean feature size under ``_FLAT * eps * max|u| / h^order`` is round-off: the field is flat."""
_PERIODIC_GAP = 1e-8
"""Largest relative mismatch of a periodic field's repeated last node against its first one."""
_OUTSIDE = 1e-9
"""Points this far outside a non-periodic box (relative to its size) are round-off and clipped back."""


class Monitor:
    """Base class: ``m = 1 + s(u) / (beta * mean s(u))`` for a feature size ``s`` of the subclass.

    Parameters
    ----------
    beta : float
        Strength, finite and ``> 0``; the DMM reference uses ``0.01`` (the default).
    periodic : bool
        Treat the field as periodic along every axis: stencils wrap around, the mean leaves out the
        repeated last node of each axis and :meth:`at` wraps points into the box.
    method : {"central", "spectral"}
        Second-order central differences, or Fourier differentiation (``periodic=True`` only).

    Raises
    ------
    ConfigError
        ``beta`` not finite and positive, ``periodic`` not a bool, or ``method="spectral"`` without
        ``periodic=True``.
    UnknownNameError
        Unknown ``method``.
    """

    order = 1
    """Order of the derivatives in the feature size (the round-off scale of a flat field uses it)."""

    def __init__(self, beta: float = 0.01, *, periodic: bool = False, method: str = "central") -> None:
        if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
            raise ConfigError(f"{type(self).__name__}: expected a number beta > 0, got {beta!r}")
        beta = float(beta)
        if not (math.isfinite(beta) and beta > 0):
            raise ConfigError(f"{type(self).__name__}: expected a finite strength beta > 0, got {beta}")
        if not isinstance(periodic, bool):
            raise ConfigError(f"{type(self).__name__}: expected a bool for periodic, got {periodic!r}")
        check_name(f"{type(self).__name__} method", method, _METHODS)
        if method == "spectral" and not periodic:
            raise ConfigError(
                f"{type(self).__name__}: method='spectral' differentiates a Fourier series and needs "
                "periodic=True; use method='central' for a non-periodic field"
            )
        self.beta, self.periodic, self.method = beta, periodic, method

    # -- the feature size: subclasses ------------------------------------------------------------
    def _size(self, u: np.ndarray, grid: Grid) -> np.ndarray:
        """Feature size ``s`` of ``u`` ``(B, *shape)``; on the distinct nodes when periodic."""
        raise NotImplementedError

    # -- public -----------------------------------------------------------------------------------
    def evaluate(self, values: Any, grid: Grid) -> np.ndarray:
        """The monitor of field values on ``grid``, as an array.

        Parameters
        ----------
        values : array_like, shape ``grid.shape`` or ``(..., *grid.shape)``
            One field, or a stack of fields (e.g. the frames of a trajectory); each gets its own mean.
        grid : Grid

        Returns
        -------
        ndarray
            ``m``, float64, the shape of ``values`` (``>= 1``).

        Raises
        ------
        ShapeError
            ``values`` does not end with ``grid.shape``.
        NonFiniteError
            NaN or Inf in ``values``.
        ConfigError
            ``grid`` is not a Grid; a periodic monitor on a field whose last node differs from the
            first along some axis; a grid too small for the stencils.
        """
        if not isinstance(grid, Grid):
            raise ConfigError(f"{type(self).__name__}: expected a Grid, got {type(grid).__name__}")
        u = as_float_array(f"{type(self).__name__} field", values)
        d = grid.ndim
        if u.shape[u.ndim - d :] != grid.shape or u.ndim < d:
            raise ShapeError(f"{type(self).__name__} field", f"(..., *{grid.shape})", u.shape)
        lead = u.shape[: u.ndim - d]
        batch = u.reshape(-1, *grid.shape)
        need = 3 if self.periodic else 2 + self.order  # distinct periodic points / one-sided stencil width
        if min(grid.shape) < need:
            raise ConfigError(
                f"{type(self).__name__}: expected at least {need} nodes per axis, got {grid.shape}"
            )
        if self.periodic:
            _check_periodic(batch, d, type(self).__name__)
            batch = batch[(slice(None),) + (slice(None, -1),) * d]  # distinct nodes only
        size = self._size(batch, grid)
        axes = tuple(range(1, d + 1))
        mean = size.mean(axis=axes, keepdims=True)
        # Round-off level of the feature size: differences of values of magnitude max|u| carry errors
        # of a few ulps, divided by h^order.
        scale = np.abs(batch).max(axis=axes, keepdims=True)
        floor = _FLAT * np.finfo(np.float64).eps * scale / min(grid.spacing) ** self.order
        flat = mean <= floor
        m = 1.0 + size / (self.beta * np.where(flat, 1.0, mean))
        m = np.where(flat, 1.0, m)
        if self.periodic:
            m = np.pad(m, [(0, 0)] + [(0, 1)] * d, mode="wrap")  # the repeated nodes again
        return m.reshape(*lead, *grid.shape)

    def __call__(self, field: Field) -> Field:
        """The monitor of a field on a Grid, as a Field on the same grid named ``"monitor"``.

        A field with ``C`` components is taken as ``C`` scalar fields (e.g. trajectory frames), each
        with its own mean. Raises like :meth:`evaluate`; a field on a Mesh is a ConfigError.
        """
        grid = _field_grid(field, type(self).__name__)
        return Field(self.evaluate(field.numpy(), grid), grid, "monitor")

    def at(self, field: Field, points: Any) -> np.ndarray:
        """The monitor of ``field`` at arbitrary points, by multilinear interpolation of its grid values.

        Parameters
        ----------
        field : Field
            On a Grid; ``C`` components give ``C`` monitors.
        points : array_like, shape ``(..., d)``
            Physical coordinates, ``d = grid.ndim``. A periodic monitor wraps them into the box; a
            non-periodic one accepts points up to round-off outside the box (clipped back).

        Returns
        -------
        ndarray
            ``points.shape[:-1]`` for a scalar field, ``(C, *points.shape[:-1])`` for ``C`` components.

        Raises
        ------
        ShapeError, NonFiniteError, ConfigError
            As :meth:`evaluate` and :func:`interpolate`.
        """
        grid = _field_grid(field, type(self).__name__)
        return interpolate(self.evaluate(field.numpy(), grid), grid, points, periodic=self.periodic)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(beta={self.beta}, periodic={self.periodic}, method={self.method!r})"


class GradientMonitor(Monitor):
    """``m = 1 + |grad u| / (beta * mean |grad u|)``, the DMM / MM-PDE monitor (``beta = 0.01`` there).

    See :class:`Monitor` for the parameters and the module docstring for the mean and the derivatives.

    Examples
    --------
    >>> import numpy as np
    >>> from sciml.fields import Field, Grid
    >>> grid = Grid(65, ndim=2)
    >>> x = grid.coord_arrays()["x"]
    >>> m = GradientMonitor(beta=1.0, periodic=True)(Field(np.sin(2 * np.pi * x), grid))
    >>> round(float(m.values.max()), 2)  # 1 + 2 pi / (2 pi * 2 / pi) = 1 + pi / 2
    2.57
    """

    order = 1

    def _size(self, u: np.ndarray, grid: Grid) -> np.ndarray:
        grads = [_first(u, axis, grid, self.periodic, self.method) for axis in range(grid.ndim)]
        return np.sqrt(sum(g * g for g in grads))


class HessianMonitor(Monitor):
    """``m = 1 + |H u|_F / (beta * mean |H u|_F)`` with ``|H u|_F^2 = sum_ij (d_i d_j u)^2``.

    Both off-diagonal entries count (``|H|_F^2 = u_xx^2 + 2 u_xy^2 + u_yy^2`` in 2-D). See
    :class:`Monitor` for the parameters and the module docstring for the mean and the derivatives.
    """

    order = 2

    def _size(self, u: np.ndarray, grid: Grid) -> np.ndarray:
        d = grid.ndim
        total = np.zeros_like(u)
        for i in range(d):
            total += _second(u, i, grid, self.periodic, self.method) ** 2
            for j in range(i + 1, d):
                mixed = _first(
                    _first(u, i, grid, self.periodic, self.method), j, grid, self.periodic, self.method
                )
                total += 2.0 * mixed**2
        return np.sqrt(total)


# -- interpolation -----------------------------------------------------------------------------------
def interpolate(values: Any, grid: Grid, points: Any, *, periodic: bool = False) -> np.ndarray:
    """Multilinear (bilinear in 2-D) interpolation of node values at arbitrary points.

    Parameters
    ----------
    values : array_like, shape ``grid.shape`` or ``(C, *grid.shape)``
    grid : Grid
    points : array_like, shape ``(..., grid.ndim)``
        Physical coordinates.
    periodic : bool
        Wrap the points into the box (period ``hi - lo`` per axis); the values' last node along each
        axis is then the first one again, as in sciml's periodic grids. Otherwise points may leave the
        box by round-off only (``1e-9`` of its size), and are clipped back.

    Returns
    -------
    ndarray
        ``points.shape[:-1]``, or ``(C, *points.shape[:-1])`` for ``C`` components. At a node the value
        is the node value exactly (up to round-off in the weights); along every grid line it is linear.

    Raises
    ------
    ShapeError
        ``values`` not ``grid.shape`` or ``(C, *grid.shape)``; ``points`` not ending in ``grid.ndim``.
    NonFiniteError
        NaN or Inf in ``values`` or ``points``.
    ConfigError
        ``grid`` not a Grid; non-periodic points outside the box.
    """
    if not isinstance(grid, Grid):
        raise ConfigError(f"interpolate: expected a Grid, got {type(grid).__name__}")
    v = as_float_array("interpolate values", values)
    d = grid.ndim
    if v.shape == grid.shape:
        stack, single = v[None], True
    elif v.ndim == d + 1 and v.shape[1:] == grid.shape:
        stack, single = v, False
    else:
        raise ShapeError("interpolate values", f"{grid.shape} or (C, *{grid.shape})", v.shape)
    p = as_float_array("interpolate points", points)
    if p.ndim < 1 or p.shape[-1] != d:
        raise ShapeError("interpolate points", f"(..., {d})", p.shape)
    flat = p.reshape(-1, d)
    lower, frac = [], []
    for axis, ((lo, hi), n) in enumerate(zip(grid.bounds, grid.shape)):
        length = hi - lo
        t = (flat[:, axis] - lo) / length
        if periodic:
            t = np.mod(t, 1.0)
        else:
            bad = (t < -_OUTSIDE) | (t > 1.0 + _OUTSIDE)
            if bad.any():
                worst = flat[bad][0]
                raise ConfigError(
                    f"interpolate: expected points inside the box {grid.bounds} (or periodic=True), got "
                    f"{int(bad.sum())} outside, e.g. {worst.tolist()}"
                )
            t = np.clip(t, 0.0, 1.0)
        s = t * (n - 1)
        # The cell's lower node; the top face (s = n - 1) belongs to the last cell so i + 1 stays valid.
        i = np.minimum(np.floor(s).astype(np.int64), n - 2)
        lower.append(i)
        frac.append(s - i)
    out = np.zeros((stack.shape[0], flat.shape[0]))
    for corner in range(2**d):
        index: list[Any] = [slice(None)]
        weight = np.ones(flat.shape[0])
        for axis in range(d):
            up = (corner >> axis) & 1
            index.append(lower[axis] + up)
            weight = weight * (frac[axis] if up else 1.0 - frac[axis])
        out += stack[tuple(index)] * weight
    out = out.reshape(stack.shape[0], *p.shape[:-1])
    return out[0] if single else out


# -- helpers -----------------------------------------------------------------------------------------
def _field_grid(field: Any, who: str) -> Grid:
    if not isinstance(field, Field):
        raise ConfigError(f"{who}: expected a sciml.fields.Field, got {type(field).__name__}")
    if not isinstance(field.disc, Grid):
        raise ConfigError(
            f"{who}: expected a field on a Grid (monitors use grid stencils), got one on "
            f"{type(field.disc).__name__}"
        )
    return field.disc


def _check_periodic(u: np.ndarray, d: int, who: str) -> None:
    """The last node along every spatial axis of ``u`` ``(B, *shape)`` must repeat the first one."""
    scale = max(1.0, float(np.abs(u).max()) if u.size else 0.0)
    for axis in range(1, d + 1):
        gap = float(np.abs(np.take(u, -1, axis=axis) - np.take(u, 0, axis=axis)).max())
        if gap > _PERIODIC_GAP * scale:
            raise ConfigError(
                f"{who}: periodic=True expects the last node along axis {axis - 1} to repeat the first "
                f"(sciml's periodic grids), got a largest mismatch of {gap:.3g}"
            )


def _wavenumbers(grid: Grid, axis: int, m: int) -> np.ndarray:
    """Angular wavenumbers of the full FFT of ``m`` distinct periodic points along ``axis``."""
    lo, hi = grid.bounds[axis]
    return 2.0 * math.pi * np.fft.fftfreq(m, 1.0 / m) / (hi - lo)


def _spectral(u: np.ndarray, axis: int, grid: Grid, order: int) -> np.ndarray:
    """``d^order u / dx_axis^order`` of distinct periodic samples by FFT along spatial ``axis``."""
    ax = axis + 1
    m = u.shape[ax]
    k = _wavenumbers(grid, axis, m)
    mult = (1j * k) ** order
    if order % 2 and m % 2 == 0:
        mult[m // 2] = 0.0  # odd derivatives of the Nyquist mode of real data are not defined
    shape = [1] * u.ndim
    shape[ax] = m
    return np.real(np.fft.ifft(np.fft.fft(u, axis=ax) * mult.reshape(shape), axis=ax))


def _first(u: np.ndarray, axis: int, grid: Grid, periodic: bool, method: str) -> np.ndarray:
    """First derivative along spatial ``axis`` of ``u`` ``(B, *shape)`` (distinct nodes when periodic)."""
    if method == "spectral":
        return _spectral(u, axis, grid, 1)
    h, ax = grid.spacing[axis], axis + 1
    if periodic:
        return (np.roll(u, -1, axis=ax) - np.roll(u, 1, axis=ax)) / (2.0 * h)
    return np.gradient(u, h, axis=ax, edge_order=2)


def _second(u: np.ndarray, axis: int, grid: Grid, periodic: bool, method: str) -> np.ndarray:
    """Second derivative along spatial ``axis``: compact 3-point stencil, one-sided 4-point at faces."""
    if method == "spectral":
        return _spectral(u, axis, grid, 2)
    h2, ax = grid.spacing[axis] ** 2, axis + 1
    if periodic:
        return (np.roll(u, -1, axis=ax) - 2.0 * u + np.roll(u, 1, axis=ax)) / h2
    v = np.moveaxis(u, ax, -1)
    out = np.empty_like(v)
    out[..., 1:-1] = v[..., 2:] - 2.0 * v[..., 1:-1] + v[..., :-2]
    # Second order and exact for cubics: (2 u0 - 5 u1 + 4 u2 - u3) / h^2 and its mirror image.
    out[..., 0] = 2.0 * v[..., 0] - 5.0 * v[..., 1] + 4.0 * v[..., 2] - v[..., 3]
    out[..., -1] = 2.0 * v[..., -1] - 5.0 * v[..., -2] + 4.0 * v[..., -3] - v[..., -4]
    return np.moveaxis(out / h2, -1, ax)
