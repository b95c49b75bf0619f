"""``move(field, mover) -> Mesh``: one entry point for every mesh mover, and interpolation onto meshes.

A *mover* is a small object that turns a field on a :class:`~sciml.grid.Grid` into the nodes of a
logically rectangular ``n x n`` mesh of the same box. Two exist:

* :class:`MongeAmpere`: the classical Newton-Krylov equidistribution solver
  (:func:`sciml.numerics.monge_ampere.solve_monge_ampere`) with its options, solved per field;
* :class:`~sciml.meshmove.dmm.DMM`: the trained data-free neural mover, one forward pass per batch.

Both follow one protocol, so :func:`move` never has to import either (the neural one pulls in torch):

``mover.periodic``
    ``True`` for a periodic mesh of the plane (``x - xi`` periodic; nodes may cross the seam), ``False``
    for sliding walls, ``None`` when the mover takes it from the monitor.
``mover.default_monitor(periodic) -> Monitor``
    The monitor to use when :func:`move` is given none.
``mover.mesh_points(field, monitor, n) -> ndarray (n, n, 2)``
    The moved nodes in the physical coordinates of the field's grid, ``'ij'`` indexing.

The box: the classical solver works on the unit square. A grid on another box ``[a, b] x [c, d]``
is mapped affinely onto it and back; equidistribution is invariant under that map (the Jacobian
determinant changes by a constant that ``theta`` absorbs), so nothing else changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import as_float_array, check_name, check_positive_int
from ..errors import ConfigError, ShapeError
from ..fields import Field
from ..geometry.mesh import Mesh
from ..grid import Grid
from ..numerics.monge_ampere import solve_monge_ampere, to_mesh
from .monitor import GradientMonitor, HessianMonitor, Monitor, interpolate

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

__all__ = ["MongeAmpere", "move", "interpolate_to_mesh", "bilinear", "make_monitor", "monitor_spec",
           "monitor_from_spec", "field_grid", "min_corner_jacobians", "box", "box_mean", "snap_unit_mesh",
           "MONITORS"]

#: Monitor names accepted wherever a monitor may be given by name (``monitor="gradient"``).
MONITORS: dict[str, type[Monitor]] = {"gradient": GradientMonitor, "hessian": HessianMonitor}


# -- monitors ----------------------------------------------------------------------------------------
def make_monitor(monitor: str | Monitor | None = None, *, periodic: bool = False,
                 beta: float | None = None) -> Monitor:
    """A :class:`~sciml.meshmove.monitor.Monitor` from a name, an instance or None.

    Parameters
    ----------
    monitor : {"gradient", "hessian"}, Monitor or None
        None means ``"gradient"`` (the DMM reference's monitor). An instance is returned as it is,
        after checking that its periodicity is ``periodic``.
    periodic : bool
        Periodicity of the monitor built from a name.
    beta : float, optional
        Strength of the monitor built from a name (the Monitor's own default, 0.01, when None).

    Raises
    ------
    UnknownNameError
        An unknown monitor name (the message lists the known ones).
    ConfigError
        An instance whose ``periodic`` differs from ``periodic``; anything else than a name, a
        Monitor or None; a ``beta`` together with an instance.
    """
    if isinstance(monitor, Monitor):
        if beta is not None:
            raise ConfigError(f"make_monitor: beta={beta} given with a Monitor instance {monitor!r}; "
                              "set beta on the instance instead")
        if monitor.periodic != periodic:
            raise ConfigError(f"monitor {monitor!r}: expected periodic={periodic} to match the mover, "
                              f"got periodic={monitor.periodic}")
        return monitor
    if monitor is None:
        monitor = "gradient"
    if not isinstance(monitor, str):
        raise ConfigError(f"monitor: expected a name {sorted(MONITORS)}, a Monitor or None, "
                          f"got {type(monitor).__name__}")
    check_name("monitor", monitor, MONITORS)
    kwargs: dict[str, Any] = {"periodic": bool(periodic)}
    if beta is not None:
        kwargs["beta"] = beta
    return MONITORS[monitor](**kwargs)


def monitor_spec(monitor: Monitor) -> dict[str, Any]:
    """``{"name", "beta", "periodic", "method"}``: a JSON form of a built-in monitor (for checkpoints)."""
    for name, cls in MONITORS.items():
        if type(monitor) is cls:
            return {"name": name, "beta": monitor.beta, "periodic": monitor.periodic, "method": monitor.method}
    raise ConfigError(f"monitor: expected one of the built-in monitors {sorted(MONITORS)} (it must be "
                      f"stored by name in checkpoints), got {type(monitor).__name__}")


def monitor_from_spec(spec: Any) -> Monitor:
    """Inverse of :func:`monitor_spec`."""
    if not isinstance(spec, dict) or not {"name", "beta", "periodic"} <= set(spec):
        raise ConfigError(f"monitor spec: expected {{'name', 'beta', 'periodic'[, 'method']}}, got {spec!r}")
    check_name("monitor", spec["name"], MONITORS)
    return MONITORS[spec["name"]](float(spec["beta"]), periodic=bool(spec["periodic"]),
                                  method=spec.get("method", "central"))


# -- grids and meshes ---------------------------------------------------------------------------------
def field_grid(field: Any, who: str) -> Grid:
    """The 2-D Grid of a scalar Field, checked."""
    if not isinstance(field, Field):
        raise ConfigError(f"{who}: expected a sciml Field, got {type(field).__name__}")
    grid = field.disc
    if not isinstance(grid, Grid) or grid.ndim != 2:
        raise ConfigError(f"{who}: expected a field on a 2-D Grid, got one on {grid!r}")
    return grid


def box(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Lower corner and side lengths ``(2,)`` of a 2-D grid's box (unit coordinates ``p`` are at
    ``lo + length * p``)."""
    lo = np.array([b[0] for b in grid.bounds])
    return lo, np.array([b[1] for b in grid.bounds]) - lo


def box_mean(m: np.ndarray, periodic: bool) -> np.ndarray:
    """``(1/|box|) int`` of the bilinear interpolant of node values ``m`` ``(N, H, W)``, i.e. the
    trapezoidal rule; the plain mean over the distinct nodes when periodic. ``(N,)``."""
    if periodic:
        return m[:, :-1, :-1].mean(axis=(1, 2))
    w0, w1 = np.ones(m.shape[1]), np.ones(m.shape[2])
    w0[[0, -1]] = w1[[0, -1]] = 0.5
    w = np.outer(w0, w1)
    return (m * w).sum(axis=(1, 2)) / w.sum()


def snap_unit_mesh(x: np.ndarray, periodic: bool, *, copy: bool = True) -> np.ndarray:
    """Nodes ``(B, n, n, 2)`` of maps of the unit square, made exact where the map is exact in theory.

    Walls: clipped into the square, the first/last row on ``x = 0, 1`` and the first/last column on
    ``y = 0, 1`` (sliding walls, fixed corners). Periodic: the last row and column are the first ones
    shifted by one period, as :func:`~sciml.numerics.monge_ampere.solve_monge_ampere` returns them
    (whatever they held before). ``copy=False`` snaps a float64 array in place and returns it.
    """
    if copy or not (isinstance(x, np.ndarray) and x.dtype == np.float64):
        x = np.array(x, dtype=np.float64)
    if periodic:
        x[:, -1] = x[:, 0] + np.array([1.0, 0.0])
        x[:, :, -1] = x[:, :, 0] + np.array([0.0, 1.0])
        return x
    np.clip(x, 0.0, 1.0, out=x)
    x[:, 0, :, 0], x[:, -1, :, 0] = 0.0, 1.0
    x[:, :, 0, 1], x[:, :, -1, 1] = 0.0, 1.0
    return x


def min_corner_jacobians(points: np.ndarray) -> np.ndarray:
    """Smallest corner cross product of every mesh in a batch ``(B, n, m, 2) -> (B,)``, over ``h^2``.

    Corner ``a`` of quad ``a, b, c, d`` (counter-clockwise, ``b`` one step along axis 0) is the cross
    product of its edges to ``b`` and ``d``; all four positive means a convex, positively oriented
    quad, so both of its triangle splits are valid too. Divided by the uniform cell's area, so 1 on
    the uniform mesh of the unit square and comparable across resolutions.
    """
    x = np.asarray(points, dtype=np.float64)
    if len(x) > 16:  # 16 meshes at a time: the temporaries stay in cache (5 times faster for 168 49^2 meshes)
        return np.concatenate([min_corner_jacobians(x[i:i + 16]) for i in range(0, len(x), 16)])
    x0, x1 = np.ascontiguousarray(x[..., 0]), np.ascontiguousarray(x[..., 1])
    # Edges along axis 0 (b - a, c - d) and along axis 1 (d - a, c - b). Each corner's cross product is one of
    # cross(e, f) for an edge of each kind, bit for bit (a - b is -(b - a) exactly): a: e_ij x f_ij,
    # b: e_ij x f_i+1,j, c: e_i,j+1 x f_i+1,j, d: e_i,j+1 x f_ij.
    e0, e1 = x0[:, 1:] - x0[:, :-1], x1[:, 1:] - x1[:, :-1]  # (B, n - 1, m)
    f0, f1 = x0[:, :, 1:] - x0[:, :, :-1], x1[:, :, 1:] - x1[:, :, :-1]  # (B, n, m - 1)

    def cross(j: slice, i: slice) -> np.ndarray:  # e[:, :, j] x f[:, i]
        return e0[:, :, j] * f1[:, i] - e1[:, :, j] * f0[:, i]

    low, high = slice(None, -1), slice(1, None)
    corner = np.minimum(np.minimum(cross(low, low), cross(low, high)), np.minimum(cross(high, high), cross(high, low)))
    span0 = x0.max(axis=(1, 2)) - x0.min(axis=(1, 2))  # bounding box sides
    span1 = x1.max(axis=(1, 2)) - x1.min(axis=(1, 2))
    cell = span0 * span1 / ((x.shape[1] - 1) * (x.shape[2] - 1))
    return corner.reshape(len(x), -1).min(axis=1) / cell


def bilinear(values: Tensor, x: Tensor, periodic: bool = False) -> Tensor:
    """Bilinear interpolation of node values on the unit square at points, in torch, differentiable in both
    (the DMM reads its monitor at the moved points with it; torch is imported only when it is called).

    Parameters
    ----------
    values : Tensor, (B, H, W)
        Node values, ``values[b, i, j]`` at ``(i / (H - 1), j / (W - 1))`` (``'ij'``: axis 0 is ``x``).
        Periodic values repeat the first row and column as the last.
    x : Tensor, (B, P, 2)
        Points in unit coordinates.
    periodic : bool
        Wrap the points into ``[0, 1)``; otherwise clamp them into ``[0, 1]``.

    Returns
    -------
    Tensor, (B, P)
        Exact at nodes and for bilinear functions; piecewise bilinear in ``x``.
    """
    import torch

    if values.ndim != 3 or x.ndim != 3 or x.shape[-1] != 2 or x.shape[0] != values.shape[0]:
        raise ShapeError("bilinear values, points", "(B, H, W) and (B, P, 2)", (tuple(values.shape), tuple(x.shape)))
    b, h, w = values.shape
    t = torch.remainder(x, 1.0) if periodic else x.clamp(0.0, 1.0)
    s = t * torch.tensor([h - 1, w - 1], dtype=t.dtype, device=t.device)
    # The lower node of the cell; the top face belongs to the last cell so that i + 1 stays valid.
    i = s[..., 0].detach().floor().clamp(0, h - 2).long()
    j = s[..., 1].detach().floor().clamp(0, w - 2).long()
    fx, fy = s[..., 0] - i, s[..., 1] - j
    flat = values.reshape(b, h * w)

    def at(di: int, dj: int) -> Tensor:
        return torch.gather(flat, 1, (i + di) * w + (j + dj))

    return ((1 - fx) * (1 - fy) * at(0, 0) + fx * (1 - fy) * at(1, 0)
            + (1 - fx) * fy * at(0, 1) + fx * fy * at(1, 1))


# -- the classical mover ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MongeAmpere:
    """The classical Monge-Ampere mover: :func:`~sciml.numerics.monge_ampere.solve_monge_ampere` per field.

    Parameters
    ----------
    tol, max_iter, smooth
        As in :func:`~sciml.numerics.monge_ampere.solve_monge_ampere` (RMS residual target, most
        Newton steps, monitor-filter passes).
    periodic : bool or None
        Periodic mesh (``True``), sliding walls (``False``) or, with None (default), whatever the
        monitor says (non-periodic when :func:`move` builds the default monitor).
    require_converged : bool
        Raise ConfigError when the solver stops without reaching ``tol`` (``"max_iter"`` or
        ``"stalled"``); by default the last (always untangled) iterate is used.

    Examples
    --------
    >>> mesh = move(u, MongeAmpere(smooth=4), GradientMonitor(beta=1.0))  # doctest: +SKIP
    """

    tol: float = 1e-6
    max_iter: int = 100
    smooth: int = 4
    periodic: bool | None = None
    require_converged: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float)) or \
                not (math.isfinite(self.tol) and self.tol > 0):
            raise ConfigError(f"MongeAmpere: expected a finite tol > 0, got {self.tol!r}")
        for name in ("max_iter", "smooth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ConfigError(f"MongeAmpere: expected an integer {name} >= 0, got {value!r}")
        if self.periodic not in (None, True, False):
            raise ConfigError(f"MongeAmpere: expected periodic True, False or None, got {self.periodic!r}")

    def default_monitor(self, periodic: bool) -> Monitor:
        """The gradient monitor of the DMM reference (``beta = 0.01``)."""
        return GradientMonitor(periodic=periodic)

    def solve(self, field: Field, monitor: Monitor, n: int) -> Any:
        """The solver's :class:`~sciml.numerics.monge_ampere.MongeAmpereResult` on the unit square
        (points in unit coordinates; :meth:`mesh_points` maps them to the field's box)."""
        grid = field_grid(field, "MongeAmpere")
        if field.n_components != 1:
            raise ShapeError("MongeAmpere field", grid.shape, tuple(field.values.shape))
        periodic = monitor.periodic if self.periodic is None else self.periodic
        if monitor.periodic != periodic:
            raise ConfigError(f"MongeAmpere(periodic={self.periodic}): the monitor {monitor!r} has "
                              f"periodic={monitor.periodic}")
        lo, length = box(grid)
        # The monitor on the grid once; the solver then calls the bilinear interpolant thousands of times.
        values = monitor.evaluate(field.numpy(), grid)

        def unit_monitor(p: np.ndarray) -> np.ndarray:
            return interpolate(values, grid, lo + length * p, periodic=periodic)

        result = solve_monge_ampere(unit_monitor, n, periodic=periodic, tol=self.tol,
                                    max_iter=int(self.max_iter), smooth=int(self.smooth))
        if self.require_converged and result.reason != "converged":
            raise ConfigError(f"MongeAmpere: the solver stopped with reason {result.reason!r} at residual "
                              f"{result.residual:.3g} > tol {self.tol}; raise max_iter or smooth")
        return result

    def mesh_points(self, field: Field, monitor: Monitor, n: int) -> np.ndarray:
        """Moved nodes ``(n, n, 2)`` in the field's coordinates."""
        lo, length = box(field_grid(field, "MongeAmpere"))
        return lo + length * self.solve(field, monitor, n).points


# -- the entry point ----------------------------------------------------------------------------------
def move(u: Field, mover: Any, monitor: str | Monitor | None = None, n: int | None = None,
         *, cell_type: str = "triangle") -> Mesh:
    """Move a mesh to equidistribute a monitor of ``u``: a validated :class:`~sciml.geometry.Mesh`.

    Parameters
    ----------
    u : Field
        A scalar field on a 2-D :class:`~sciml.grid.Grid` (for a periodic mover its last row and
        column repeat the first, sciml's periodic node convention).
    mover : MongeAmpere or DMM
        Any object with the protocol of the module notes.
    monitor : {"gradient", "hessian"}, Monitor or None
        None: the mover's default (a DMM uses the monitor it was trained with; a different one is a
        ConfigError, since the network has learnt one monitor only).
    n : int, optional
        Nodes per axis of the mesh; the grid's (``max`` of its two sizes) by default.
    cell_type : {"triangle", "quad"}
        Cells of the mesh (:func:`~sciml.numerics.monge_ampere.to_mesh`).

    Returns
    -------
    Mesh
        ``n * n`` nodes in C order of the ``(n, n)`` index grid, boundary tags ``xmin`` ...,
        checked by :meth:`Mesh.validate` (no inverted, degenerate or duplicate cells).

    Raises
    ------
    ConfigError, UnknownNameError, ShapeError, NonFiniteError, InvalidMeshError
        A bad field, mover, monitor or ``n``; a mesh that fails validation.
    """
    grid = field_grid(u, "move")
    if u.n_components != 1:
        raise ShapeError("move field values", grid.shape, tuple(u.values.shape))
    as_float_array("move field values", u.values)  # NaN/Inf -> NonFiniteError at the door
    if not (callable(getattr(mover, "mesh_points", None)) and hasattr(mover, "periodic")):
        raise ConfigError(f"move: expected a mover (MongeAmpere(...) or a trained DMM), got {type(mover).__name__}")
    n = max(grid.shape) if n is None else check_positive_int("move n", n)
    if n < 3:
        raise ConfigError(f"move: expected n >= 3 nodes per axis, got {n}")
    if isinstance(monitor, Monitor):
        periodic = monitor.periodic if mover.periodic is None else bool(mover.periodic)
    else:
        periodic = bool(mover.periodic)
    mon = mover.default_monitor(periodic) if monitor is None else make_monitor(monitor, periodic=periodic)
    points = np.asarray(mover.mesh_points(u, mon, n), dtype=np.float64)
    if points.shape != (n, n, 2):
        raise ShapeError(f"{type(mover).__name__}.mesh_points", (n, n, 2), points.shape)
    return to_mesh(points, cell_type, check=True)


def interpolate_to_mesh(u: Field, mesh_or_points: Mesh | Any, *, periodic: bool = False) -> np.ndarray:
    """Bilinear interpolation of a grid field at the nodes of a mesh (or at any points).

    Parameters
    ----------
    u : Field
        On a 2-D Grid, one or ``C`` components.
    mesh_or_points : Mesh or array_like (..., 2)
        Where to interpolate, in the grid's coordinates.
    periodic : bool
        Wrap the points into the box (a periodic mesh's nodes may cross the seam); otherwise points
        outside the box beyond round-off raise ConfigError.

    Returns
    -------
    ndarray
        ``(n_points,)`` for a Mesh (``(C, n_points)`` for ``C`` components), else ``points.shape[:-1]``
        (``(C, ...)``). Exact for bilinear functions; ``Field(values, mesh)`` makes it a Field.
    """
    grid = field_grid(u, "interpolate_to_mesh")
    points = mesh_or_points.points if isinstance(mesh_or_points, Mesh) else mesh_or_points
    return interpolate(u.numpy(), grid, points, periodic=bool(periodic))
