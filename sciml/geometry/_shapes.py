"""Primitive shapes and CSG trees behind :class:`sciml.geometry.Domain`.

Each shape knows, without deepxde:

* its bounding box and dimension;
* how to build the matching deepxde geometry (``build``), used for ``inside``, ``on_boundary`` and
  ``boundary_normal`` and for the CSG logic;
* a measure-preserving parametrisation of its boundary by pieces (segments, faces, arcs), used to
  sample boundary points from any uniform or quasi-random sequence in ``[0, 1)^max(d-1, 1)``;
* an approximate distance function (ADF) ``phi``: zero on the boundary, positive inside, negative
  outside, smooth away from corners and normalised to first order (``|grad phi| = 1`` on smooth
  parts of the boundary). Primitives use exact formulas; polygons use the trimmed-segment functions
  of Sukumar & Srivastava, "Exact imposition of boundary conditions with distance functions in
  physics-informed deep neural networks", CMAME 389 (2022); CSG trees combine children with
  Rvachev's R0 functions. The ADF works on numpy arrays and on torch tensors (differentiably).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["Shape", "Interval", "Box", "Ball", "Polygon", "CSG", "Piece", "map_to_boundary"]

# Relative (to the shape's diameter) distance under which a point counts as on a polygon edge.
_POLYGON_TOL = 1e-9


@dataclass(frozen=True)
class Piece:
    """One smooth part of a boundary: its measure and a map from ``u in [0,1)^k`` onto it."""

    measure: float
    map: Callable[[np.ndarray], np.ndarray]


def map_to_boundary(pieces: list[Piece], u: np.ndarray) -> np.ndarray:
    """Map ``u`` of shape ``(n, k)`` in ``[0, 1)^k`` to boundary points, uniformly by measure.

    The first coordinate picks the piece (with probability proportional to its measure) and is then
    stretched back to ``[0, 1)`` inside that piece, so a low-discrepancy ``u`` stays well spread.
    """
    measures = np.array([p.measure for p in pieces], dtype=np.float64)
    edges = np.concatenate([[0.0], np.cumsum(measures)]) / measures.sum()
    which = np.clip(np.searchsorted(edges, u[:, 0], side="right") - 1, 0, len(pieces) - 1)
    local = u.copy()
    width = edges[which + 1] - edges[which]
    local[:, 0] = np.clip((u[:, 0] - edges[which]) / width, 0.0, np.nextafter(1.0, 0.0))
    out: np.ndarray | None = None
    for i, piece in enumerate(pieces):
        sel = which == i
        if sel.any():
            pts = piece.map(local[sel])
            if out is None:
                out = np.empty((len(u), pts.shape[1]))
            out[sel] = pts
    assert out is not None
    return out


# -- array-namespace helpers: the ADF runs on numpy arrays and on torch tensors -----------------------
def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _sqrt(a: Any) -> Any:
    if _is_torch(a):
        import torch

        return torch.sqrt(a)
    return np.sqrt(a)


def _like(x: Any, values: np.ndarray) -> Any:
    """``values`` (numpy) as the array type, dtype and device of ``x``."""
    if _is_torch(x):
        import torch

        return torch.as_tensor(values, dtype=x.dtype, device=x.device)
    return values


def r_and(a: Any, b: Any) -> Any:
    """Rvachev R0 conjunction: positive iff both are, zero set = boundary of the intersection."""
    return a + b - _sqrt(a * a + b * b)


def r_or(a: Any, b: Any) -> Any:
    """Rvachev R0 disjunction: positive iff either is, zero set = boundary of the union."""
    return a + b + _sqrt(a * a + b * b)


class Shape(abc.ABC):
    """A closed region of R^d (d = 1, 2, 3)."""

    ndim: int

    @abc.abstractmethod
    def bbox(self) -> np.ndarray:
        """``(2, d)`` array ``[lo, hi]``."""

    @abc.abstractmethod
    def build(self, geometry: Any) -> Any:
        """The deepxde geometry for this shape (``geometry`` is the ``deepxde.geometry`` module)."""

    @abc.abstractmethod
    def phi(self, x: Any) -> Any:
        """Approximate signed distance, shape ``(n,)``; positive inside."""

    def boundary_pieces(self) -> list[Piece]:
        """Pieces of this primitive's boundary (CSG trees use their leaves' pieces instead)."""
        raise NotImplementedError(type(self).__name__)

    def leaves(self) -> Iterator[Shape]:
        yield self

    def boundary_points(self, u: np.ndarray) -> np.ndarray:
        return map_to_boundary(self.boundary_pieces(), u)


def _segment_piece(a: np.ndarray, b: np.ndarray) -> Piece:
    def f(u: np.ndarray) -> np.ndarray:
        return a + u[:, :1] * (b - a)

    return Piece(float(np.linalg.norm(b - a)), f)


class Interval(Shape):
    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi, self.ndim = float(lo), float(hi), 1

    def bbox(self) -> np.ndarray:
        return np.array([[self.lo], [self.hi]])

    def build(self, geometry: Any) -> Any:
        return geometry.Interval(self.lo, self.hi)

    def boundary_pieces(self) -> list[Piece]:
        # Counting measure: each end point is picked half of the time.
        return [Piece(1.0, lambda u, v=v: np.full((len(u), 1), v)) for v in (self.lo, self.hi)]

    def phi(self, x: Any) -> Any:
        return r_and(x[:, 0] - self.lo, self.hi - x[:, 0])

    def __repr__(self) -> str:
        return f"interval({self.lo:g}, {self.hi:g})"


class Box(Shape):
    """Axis-aligned rectangle (2-D) or box (3-D)."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.lo, self.hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        self.ndim = len(self.lo)

    def bbox(self) -> np.ndarray:
        return np.stack([self.lo, self.hi])

    def build(self, geometry: Any) -> Any:
        cls = geometry.Rectangle if self.ndim == 2 else geometry.Cuboid
        return cls(self.lo, self.hi)

    def boundary_pieces(self) -> list[Piece]:
        lo, hi, d = self.lo, self.hi, self.ndim
        if d == 2:
            c = [lo, np.array([hi[0], lo[1]]), hi, np.array([lo[0], hi[1]])]
            return [_segment_piece(c[i], c[(i + 1) % 4]) for i in range(4)]
        pieces = []
        for axis in range(3):
            a, b = [k for k in range(3) if k != axis]
            for side in (lo[axis], hi[axis]):

                def face(u: np.ndarray, axis: int = axis, a: int = a, b: int = b, side: float = side) -> np.ndarray:
                    p = np.empty((len(u), 3))
                    p[:, axis] = side
                    p[:, a] = lo[a] + u[:, 0] * (hi[a] - lo[a])
                    p[:, b] = lo[b] + u[:, 1] * (hi[b] - lo[b])
                    return p

                pieces.append(Piece(float((hi[a] - lo[a]) * (hi[b] - lo[b])), face))
        return pieces

    def phi(self, x: Any) -> Any:
        out = None
        for axis in range(self.ndim):
            for half in (x[:, axis] - self.lo[axis], self.hi[axis] - x[:, axis]):
                out = half if out is None else r_and(out, half)
        return out

    def __repr__(self) -> str:
        name = "rectangle" if self.ndim == 2 else "box"
        return f"{name}({self.lo.tolist()}, {self.hi.tolist()})"


class Ball(Shape):
    """Disk (2-D) or ball (3-D)."""

    def __init__(self, center: np.ndarray, radius: float) -> None:
        self.center, self.radius = np.asarray(center, np.float64), float(radius)
        self.ndim = len(self.center)

    def bbox(self) -> np.ndarray:
        return np.stack([self.center - self.radius, self.center + self.radius])

    def build(self, geometry: Any) -> Any:
        from ._deepxde import geometry_classes

        cls = geometry_classes()["disk" if self.ndim == 2 else "sphere"]
        return cls(self.center, self.radius)

    def boundary_pieces(self) -> list[Piece]:
        c, r = self.center, self.radius
        if self.ndim == 2:

            def arc(u: np.ndarray) -> np.ndarray:
                t = 2.0 * np.pi * u[:, 0]
                return c + r * np.stack([np.cos(t), np.sin(t)], axis=1)

            return [Piece(2.0 * np.pi * r, arc)]

        def sphere(u: np.ndarray) -> np.ndarray:
            # z uniform in [-1, 1] and azimuth uniform give the uniform area measure (Archimedes).
            z = 1.0 - 2.0 * u[:, 0]
            t = 2.0 * np.pi * u[:, 1]
            s = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
            return c + r * np.stack([s * np.cos(t), s * np.sin(t), z], axis=1)

        return [Piece(4.0 * np.pi * r * r, sphere)]

    def phi(self, x: Any) -> Any:
        offset = x - _like(x, self.center)
        return (self.radius**2 - (offset * offset).sum(-1)) / (2.0 * self.radius)

    def __repr__(self) -> str:
        name = "disk" if self.ndim == 2 else "ball"
        return f"{name}({self.center.tolist()}, {self.radius:g})"


class Polygon(Shape):
    """Simple polygon, vertices stored counter-clockwise."""

    def __init__(self, vertices: np.ndarray) -> None:
        v = np.asarray(vertices, np.float64)
        if _signed_area(v) < 0:
            v = v[::-1].copy()
        self.vertices, self.ndim = v, 2
        self.starts, self.ends = v, np.roll(v, -1, axis=0)
        edge = self.ends - self.starts
        self.lengths = np.linalg.norm(edge, axis=1)
        # Counter-clockwise order: the outward normal is the edge direction turned clockwise.
        self.outward = np.stack([edge[:, 1], -edge[:, 0]], axis=1) / self.lengths[:, None]
        lo, hi = v.min(axis=0), v.max(axis=0)
        self.tol = _POLYGON_TOL * float(np.linalg.norm(hi - lo))

    @staticmethod
    def check(vertices: np.ndarray) -> None:
        """Raise ConfigError unless ``vertices`` (m, 2) describe a simple polygon of non-zero area."""
        m = len(vertices)
        if m < 3:
            raise ConfigError(f"Domain.polygon: expected at least 3 vertices, got {m}")
        edge = np.roll(vertices, -1, axis=0) - vertices
        lengths = np.linalg.norm(edge, axis=1)
        scale = float(np.ptp(vertices, axis=0).max())
        if np.any(lengths <= 1e-12 * scale):
            i = int(np.argmin(lengths))
            raise ConfigError(f"Domain.polygon: vertices {i} and {(i + 1) % m} coincide; expected distinct ones")
        pairs = _touching_edges(vertices)
        if len(pairs):
            i, j = pairs[0]
            raise ConfigError(
                f"Domain.polygon: edges {i} and {j} intersect or overlap; expected a simple polygon "
                "(vertices in boundary order, no self-intersection)"
            )
        if abs(_signed_area(vertices)) <= 1e-12 * scale**2:
            raise ConfigError("Domain.polygon: expected a polygon of non-zero area, got a degenerate one")

    def bbox(self) -> np.ndarray:
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    def build(self, geometry: Any) -> Any:
        from ._deepxde import geometry_classes

        return geometry_classes()["polygon"](self)

    def boundary_pieces(self) -> list[Piece]:
        return [_segment_piece(a, b) for a, b in zip(self.starts, self.ends)]

    # -- exact point queries (used by the deepxde adapter class) -------------------------------------
    def _segment_distances(self, x: np.ndarray) -> np.ndarray:
        """``(n, m)`` distances from the points to each edge."""
        edge = self.ends - self.starts
        rel = x[:, None, :] - self.starts[None]
        t = np.clip((rel * edge[None]).sum(-1) / (self.lengths**2)[None], 0.0, 1.0)
        return np.linalg.norm(rel - t[..., None] * edge[None], axis=-1)

    def near_boundary(self, x: np.ndarray) -> np.ndarray:
        return self._segment_distances(np.asarray(x, np.float64)).min(axis=1) <= self.tol

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Closed point-in-polygon test (winding number, boundary included)."""
        x = np.asarray(x, np.float64)
        a, b = self.starts[None], self.ends[None]
        px, py = x[:, None, 0], x[:, None, 1]
        cross = (b[..., 0] - a[..., 0]) * (py - a[..., 1]) - (px - a[..., 0]) * (b[..., 1] - a[..., 1])
        up = (a[..., 1] <= py) & (b[..., 1] > py) & (cross > 0)
        down = (a[..., 1] > py) & (b[..., 1] <= py) & (cross < 0)
        winding = up.sum(1) - down.sum(1)
        return (winding != 0) | self.near_boundary(x)

    def normals(self, x: np.ndarray) -> np.ndarray:
        """Outward unit normals on the boundary (averaged at vertices), zero elsewhere."""
        on = self._segment_distances(np.asarray(x, np.float64)) <= self.tol
        n = on.astype(np.float64) @ self.outward
        norm = np.linalg.norm(n, axis=1, keepdims=True)
        return np.divide(n, norm, out=np.zeros_like(n), where=norm > 0)

    def phi(self, x: Any) -> Any:
        # Trimmed segment functions (zero exactly on each edge) joined by R-equivalence
        # phi = 1 / sum(1 / phi_i), which keeps first-order normalisation; the sign comes from the
        # point-in-polygon test, so phi is continuous (it is zero where the sign flips).
        inv = None
        for a, b, length in zip(self.starts, self.ends, self.lengths):
            a_, b_ = _like(x, a), _like(x, b)
            d = b_ - a_
            rel = x - a_
            f = (rel[:, 0] * d[1] - rel[:, 1] * d[0]) / length
            mid = x - (a_ + b_) / 2.0
            t = ((length / 2.0) ** 2 - (mid * mid).sum(-1)) / length
            g = (_sqrt(t * t + f**4) - t) / 2.0
            seg = _sqrt(f * f + g * g) + 1e-300
            inv = 1.0 / seg if inv is None else inv + 1.0 / seg
        plain = x.detach().cpu().double().numpy() if _is_torch(x) else np.asarray(x)
        sign = np.where(self.contains(plain), 1.0, -1.0)
        return _like(x, sign) / inv

    def __repr__(self) -> str:
        return f"polygon({len(self.vertices)} vertices)"


class CSG(Shape):
    """Union, difference or intersection of two shapes of the same dimension."""

    OPS = {"union": "|", "difference": "-", "intersection": "&"}

    def __init__(self, op: str, a: Shape, b: Shape) -> None:
        if op not in self.OPS:
            raise ConfigError(f"CSG: expected one of {sorted(self.OPS)}, got {op!r}")
        if a.ndim != b.ndim:
            raise ConfigError(f"Domain {self.OPS[op]}: cannot combine a {a.ndim}-D and a {b.ndim}-D domain")
        self.op, self.a, self.b, self.ndim = op, a, b, a.ndim
        box = self.bbox()
        if np.any(box[0] > box[1]):
            raise ConfigError(f"Domain &: the intersection of {a!r} and {b!r} is empty (bounding boxes do not meet)")

    def bbox(self) -> np.ndarray:
        ba, bb = self.a.bbox(), self.b.bbox()
        if self.op == "union":
            return np.stack([np.minimum(ba[0], bb[0]), np.maximum(ba[1], bb[1])])
        if self.op == "intersection":
            return np.stack([np.maximum(ba[0], bb[0]), np.minimum(ba[1], bb[1])])
        return ba

    def build(self, geometry: Any) -> Any:
        cls = {"union": geometry.CSGUnion, "difference": geometry.CSGDifference,
               "intersection": geometry.CSGIntersection}[self.op]
        return cls(self.a.build(geometry), self.b.build(geometry))

    def leaves(self) -> Iterator[Shape]:
        yield from self.a.leaves()
        yield from self.b.leaves()

    def phi(self, x: Any) -> Any:
        pa, pb = self.a.phi(x), self.b.phi(x)
        if self.op == "union":
            return r_or(pa, pb)
        if self.op == "intersection":
            return r_and(pa, pb)
        return r_and(pa, -pb)

    def __repr__(self) -> str:
        return f"({self.a!r} {self.OPS[self.op]} {self.b!r})"


def _signed_area(v: np.ndarray) -> float:
    x, y = v[:, 0], v[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _touching_edges(v: np.ndarray) -> np.ndarray:
    """Pairs ``(i, j)``, i < j, of polygon edges that meet where they should not.

    Non-adjacent edges must not touch at all; adjacent edges share one vertex and must not fold
    back onto each other (collinear and pointing in opposite directions).
    """
    m = len(v)
    a, b = v, np.roll(v, -1, axis=0)
    d = b - a

    def orient(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])

    def within(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
        """r inside the bounding box of segment pq (used for collinear r)."""
        return np.all((np.minimum(p, q) <= r) & (r <= np.maximum(p, q)), axis=-1)

    P1, P2 = a[:, None], b[:, None]  # edge i along axis 0
    Q1, Q2 = a[None], b[None]  # edge j along axis 1
    d1, d2 = orient(Q1, Q2, P1), orient(Q1, Q2, P2)
    d3, d4 = orient(P1, P2, Q1), orient(P1, P2, Q2)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)
    touch = ((d1 == 0) & within(Q1, Q2, P1)) | ((d2 == 0) & within(Q1, Q2, P2)) \
        | ((d3 == 0) & within(P1, P2, Q1)) | ((d4 == 0) & within(P1, P2, Q2))
    i, j = np.triu_indices(m, k=1)
    adjacent = (j == i + 1) | ((i == 0) & (j == m - 1))
    bad = (proper | touch)[i, j] & ~adjacent
    # Adjacent edges: collinear and opposite means the boundary doubles back on itself.
    cross = d[i, 0] * d[j, 1] - d[i, 1] * d[j, 0]
    dot = (d[i] * d[j]).sum(-1)
    bad |= adjacent & (np.abs(cross) <= 1e-12 * np.abs(dot)) & (dot < 0)
    return np.stack([i[bad], j[bad]], axis=1)


def check_radius(name: str, radius: Any) -> float:
    r = float(radius)
    if not math.isfinite(r) or r <= 0:
        raise ConfigError(f"{name}: expected a finite positive radius, got {radius!r}")
    return r
