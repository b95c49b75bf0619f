"""Quality of a moved 2-D mesh: tangling, equidistribution and P1 interpolation error.

:func:`mesh_quality` answers the two questions a mesh mover is judged by: is the mesh valid
(no tangled cells, bounded cell-size ratio) and does it pay off (a smaller piecewise-linear
interpolation error of a given function than the uniform mesh with as many nodes).

Conventions
-----------
* Cells: a :class:`~sciml.geometry.Mesh` keeps its own triangles and quads; a node array
  ``(n, m, 2)`` on a logically rectangular grid becomes the triangles of
  :func:`sciml.numerics.monge_ampere.to_mesh` (each quad cut along its ``(i, j)-(i+1, j+1)``
  diagonal, as :meth:`~sciml.geometry.Mesh.from_grid` does).
* Tangled cell: a triangle with a non-positive signed area, a quad with a non-positive signed
  area or corner Jacobian (a quad with all corners positive is convex, so its bilinear map and
  both of its triangle splits are valid).
* Interpolation error: quads are split into two triangles along their ``0-2`` diagonal, the nodal
  values of ``f`` are interpolated linearly over each triangle, and the error against ``f`` is
  integrated with the 7-point degree-5 Dunavant rule on each of the ``refine**2`` congruent
  sub-triangles of every triangle (``refine=4``: 112 points per triangle). The sub-division keeps
  the quadrature honest where ``f`` has a front thinner than a cell. ``interp_l2`` is the absolute
  ``L2`` norm ``sqrt(int (f - I_h f)^2 dx)``, ``interp_linf`` the largest error at those points.
* The uniform reference is the uniform grid of the same logical shape (``(n, m)`` for a node array,
  the nearest square ``k x k`` with ``k = round(sqrt(N))`` for a Mesh) on ``bounds``, by default
  the nodes' bounding box (pass ``bounds`` for a periodic mesh, whose nodes may cross the seam),
  triangulated the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._checks import as_float_array, check_positive_int
from ..errors import ConfigError, NonFiniteError, ShapeError
from ..geometry.mesh import Mesh
from ..numerics.monge_ampere import to_mesh

__all__ = ["mesh_quality", "interpolation_error"]

# Dunavant's 7-point rule, exact for polynomials of degree 5: barycentric points and weights
# (weights sum to 1, to be multiplied by the triangle's area).
_A1, _B1, _W1 = 0.059715871789770, 0.470142064105115, 0.132394152788506
_A2, _B2, _W2 = 0.797426985353087, 0.101286507323456, 0.125939180544827
_DUNAVANT_L = np.array([
    [1 / 3, 1 / 3, 1 / 3],
    [_A1, _B1, _B1], [_B1, _A1, _B1], [_B1, _B1, _A1],
    [_A2, _B2, _B2], [_B2, _A2, _B2], [_B2, _B2, _A2],
])
_DUNAVANT_W = np.array([0.225, _W1, _W1, _W1, _W2, _W2, _W2])

_CHUNK = 20000  # triangles per block of quadrature points, to bound memory on fine meshes

Func = Callable[[np.ndarray], Any]


def _sub_rule(refine: int) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric points ``(Q, 3)`` and weights ``(Q,)`` (summing to 1) of the Dunavant rule on the
    ``refine**2`` congruent sub-triangles of the reference triangle."""
    s = refine
    subs = []  # sub-triangle corners as barycentric (l1, l2) pairs scaled by s; l0 = 1 - l1 - l2
    for i in range(s):
        for j in range(s - i):
            subs.append(((i, j), (i + 1, j), (i, j + 1)))
            if i + j <= s - 2:
                subs.append(((i + 1, j), (i + 1, j + 1), (i, j + 1)))
    corners = np.array(subs, dtype=np.float64) / s  # (S, 3, 2): (l1, l2) of each corner
    corners = np.concatenate([1.0 - corners.sum(-1, keepdims=True), corners], axis=-1)  # (S, 3, 3)
    pts = np.einsum("qk,skb->sqb", _DUNAVANT_L, corners).reshape(-1, 3)
    wts = np.tile(_DUNAVANT_W, len(subs)) / len(subs)
    return pts, wts


def _call(name: str, fn: Func, points: np.ndarray) -> np.ndarray:
    """Evaluate a user callable on points ``(..., 2)`` and check that it returned finite ``(...)``."""
    values = as_float_array(f"{name}(points)", fn(points), finite=False)
    if values.shape != points.shape[:-1]:
        raise ShapeError(f"{name}(points) for points of shape {points.shape}", points.shape[:-1],
                         values.shape)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise NonFiniteError(f"{name}(points): expected finite values, got {bad} NaN/Inf of {values.size}")
    return values


def _as_mesh(mesh_or_points: Any) -> tuple[Mesh, tuple[int, int]]:
    """The Mesh to judge and the logical shape of its uniform twin."""
    if isinstance(mesh_or_points, Mesh):
        mesh = mesh_or_points
        if mesh.ndim != 2 or mesh.tdim != 2:
            raise ConfigError(f"mesh_quality: expected a 2-D triangle/quad mesh, got {mesh!r}")
        k = max(2, int(round(math.sqrt(mesh.n_points))))
        return mesh, (k, k)
    pts = as_float_array("mesh_quality points", mesh_or_points)
    if pts.ndim != 3 or pts.shape[-1] != 2 or min(pts.shape[:2]) < 2:
        raise ShapeError("mesh_quality points", "(n, m, 2) with n, m >= 2, or a Mesh", pts.shape)
    return to_mesh(pts, check=False), (int(pts.shape[0]), int(pts.shape[1]))


def _triangles(mesh: Mesh) -> np.ndarray:
    """All cells as triangles ``(K, 3)``, quads cut along their ``0-2`` diagonal."""
    blocks = []
    cells = mesh.cells
    if "triangle" in cells:
        blocks.append(cells["triangle"])
    if "quad" in cells:
        q = cells["quad"]
        blocks += [q[:, [0, 1, 2]], q[:, [0, 2, 3]]]
    return np.concatenate(blocks)


def interpolation_error(
    points: np.ndarray, triangles: np.ndarray, f: Func, refine: int = 4
) -> tuple[float, float]:
    """``L2`` and max norms of ``f - I_h f``, ``I_h`` the P1 interpolant on the triangles.

    Parameters
    ----------
    points : ndarray, (N, 2)
        Node coordinates.
    triangles : ndarray, (K, 3)
        Node indices of the triangles.
    f : callable
        ``f(points (..., 2)) -> values (...)``.
    refine : int
        Each triangle is cut into ``refine**2`` sub-triangles, each integrated with a 7-point rule.

    Returns
    -------
    l2, linf : float
        ``sqrt(sum_T |T| sum_q w_q e_q^2)`` and ``max_q |e_q|`` over all quadrature points.
    """
    refine = check_positive_int("refine", refine)
    points = as_float_array("interpolation_error points", points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ShapeError("interpolation_error points", "(N, 2)", points.shape)
    triangles = np.asarray(triangles)
    if triangles.ndim != 2 or triangles.shape[1] != 3 or triangles.dtype.kind not in "iu":
        raise ShapeError("interpolation_error triangles", "(K, 3) integer", triangles.shape)
    if len(triangles) and (triangles.min() < 0 or triangles.max() >= len(points)):
        raise ConfigError(f"interpolation_error: triangle node indices outside [0, {len(points)})")
    lam, wts = _sub_rule(refine)
    nodal = _call("f", f, points)
    sq, worst = 0.0, 0.0
    for start in range(0, len(triangles), _CHUNK):
        tri = triangles[start: start + _CHUNK]
        corners = points[tri]  # (K, 3, 2)
        e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
        area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
        xq = np.einsum("qk,tkd->tqd", lam, corners)  # (K, Q, 2)
        err = _call("f", f, xq) - nodal[tri] @ lam.T  # exact minus linear interpolant
        sq += float((area[:, None] * wts[None, :] * err**2).sum())
        worst = max(worst, float(np.abs(err).max()))
    return math.sqrt(sq), worst


def _cell_stats(mesh: Mesh, monitor: Func | None) -> dict[str, float]:
    """``tangled``, ``volume_ratio`` and (with a monitor) ``cv`` of the mesh's own cells."""
    vols, sjs = mesh.cell_volumes(), mesh.scaled_jacobians()  # signed: the cells fill the plane
    tangled, areas, weighted = 0, [], []
    for ctype, cells in mesh.cells.items():
        vol = vols[ctype]
        # The scaled Jacobian is the smallest corner's: a quad can fold with a positive area.
        tangled += int(np.count_nonzero((sjs[ctype] <= 0) | (vol <= 0)))
        areas.append(np.abs(vol))
        if monitor is not None:
            # The monitor at the cell's vertex mean: the midpoint rule for int_cell M dx.
            m = _call("monitor", monitor, mesh.points[cells].mean(axis=1))
            if (m <= 0).any():
                raise ConfigError(f"mesh_quality: expected positive monitor values, got min {m.min():.3g}")
            weighted.append(m * np.abs(vol))
    area = np.concatenate(areas)
    ratio = float(area.max() / area.min()) if area.min() > 0 else math.inf
    out: dict[str, float] = {"tangled": tangled, "volume_ratio": ratio}
    if monitor is not None:
        mw = np.concatenate(weighted)
        out["cv"] = float(mw.std() / mw.mean())
    return out


def mesh_quality(
    mesh_or_points: Any, f: Func, monitor: Func | None = None, *, refine: int = 4, bounds: Any = None,
) -> dict[str, float]:
    """Tangling, size ratio, equidistribution and interpolation error of a 2-D mesh.

    Parameters
    ----------
    mesh_or_points : Mesh or array-like (n, m, 2)
        A triangle/quad :class:`~sciml.geometry.Mesh`, or the nodes of a logically rectangular mesh
        (e.g. :attr:`MongeAmpereResult.points <sciml.numerics.monge_ampere.MongeAmpereResult>`).
    f : callable
        ``f(points (..., 2)) -> values (...)``, the function whose interpolation is measured.
    monitor : callable, optional
        ``M(points (..., 2)) -> values (...)``, positive. Needed for ``cv``.
    refine : int
        Sub-division of each triangle for the error quadrature (see the module notes).
    bounds : array-like ((x0, x1), (y0, y1)), optional
        Box of the uniform reference mesh; the nodes' bounding box by default.

    Returns
    -------
    dict
        ``tangled``: the number (an int) of cells with a non-positive signed area or corner Jacobian;
        ``volume_ratio``: largest over smallest cell area (1 on a uniform mesh; ``inf`` with a
        zero-area cell; note :meth:`Mesh.quality` reports the inverse);
        ``cv``: only with a monitor, the coefficient of variation (std / mean over cells) of
        ``M(cell centre) * cell area``, 0 for a perfectly equidistributed mesh;
        ``interp_l2``, ``interp_linf``: the P1 interpolation error of ``f`` on this mesh;
        ``uniform_interp_l2``, ``uniform_interp_linf``: the same on the uniform mesh with the same
        node count; ``interp_ratio``: ``uniform_interp_l2 / interp_l2`` (> 1 when moving paid off).
    """
    if not callable(f):
        raise ConfigError(f"mesh_quality: expected a callable f(points) -> values, got {type(f).__name__}")
    if monitor is not None and not callable(monitor):
        raise ConfigError(f"mesh_quality: expected a callable monitor or None, got {type(monitor).__name__}")
    mesh, shape = _as_mesh(mesh_or_points)
    pts = mesh.points
    if not np.isfinite(pts).all():
        raise NonFiniteError("mesh_quality: expected finite node coordinates, got NaN/Inf")
    out = _cell_stats(mesh, monitor)
    out["interp_l2"], out["interp_linf"] = interpolation_error(pts, _triangles(mesh), f, refine)
    if bounds is None:
        lo, hi = pts.min(axis=0), pts.max(axis=0)
    else:
        box = as_float_array("mesh_quality bounds", bounds)
        if box.shape != (2, 2):
            raise ShapeError("mesh_quality bounds", "((x0, x1), (y0, y1))", box.shape)
        if not (box[:, 1] > box[:, 0]).all():
            raise ConfigError(f"mesh_quality: expected bounds with x1 > x0 and y1 > y0, got {box.tolist()}")
        lo, hi = box[:, 0], box[:, 1]
    axes = [np.linspace(lo[d], hi[d], shape[d]) for d in range(2)]
    uniform = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    umesh = to_mesh(uniform, check=False)
    out["uniform_interp_l2"], out["uniform_interp_linf"] = interpolation_error(
        umesh.points, _triangles(umesh), f, refine)
    out["interp_ratio"] = out["uniform_interp_l2"] / out["interp_l2"] if out["interp_l2"] > 0 else math.inf
    return out
