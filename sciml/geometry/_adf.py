"""Smooth distance functions for hard boundary constraints: :meth:`sciml.geometry.Domain.smooth_distance`.

A hard Dirichlet constraint writes the network's output as ``u = g + phi * N``; the network must then
represent ``(u - g) / phi``. Two properties of ``phi`` decide whether that quotient is easy to learn:

* **its order at corners.** A smooth solution vanishing on both edges of a corner of interior angle
  ``a`` goes like ``r^(pi / a)``: like ``x y`` (order 2) at a right-angled corner, like ``r^(2/3)``
  at a re-entrant one. Any first-order normalised distance (``|grad phi| = 1`` on the edges, what
  :meth:`Domain.distance` gives: Rvachev R-functions, R-equivalence of segments) has order 1 at
  every corner, so at convex corners the quotient has a kink and the Laplacian of ``phi N`` grows
  like ``1/r``; on a 2-D Helmholtz problem the R0 conjunction of four half-planes ended several
  times less accurate than the product ``16 x (1 - x) y (1 - y)``. Here the factors of the
  boundary pieces meeting at a convex corner are *multiplied* (order 2) and those meeting at a
  re-entrant or straight vertex are joined by R-equivalence ``1 / (1/phi_1 + 1/phi_2)`` (order 1,
  since a product, of order 2, would make the quotient blow up there);
* **its scale**, which multiplies the network's output. The product is first made maximum 1 and
  then scaled to ``(w / 4)^k``, ``w`` the smallest width of the bounding box and ``k = min(d, 2)``:
  the maximum of the product of unit-derivative factors ``(x - a)(b - x) / (b - a)`` in one and two
  dimensions, i.e. DeepXDE's hand-written ``x (1 - x)`` and ``x (1 - x) y (1 - y)`` on the unit
  interval and square, held at the two-dimensional value above two dimensions, where that raw
  product's maximum ``4^-d`` would shrink the output with the dimension. Measured on DeepXDE's
  Helmholtz example (``benchmarks/pinn_deepxde_examples.py``, unit square, 5000 Adam steps): the
  maximum-1 product (16 times DeepXDE's) left Adam at the trivial ``u = 0`` on one seed of three
  (loss equal to the mean of ``f^2`` throughout) and was 11 times less accurate on another; with
  DeepXDE's product the median of three seeds is 2.9e-3 (``benchmarks/results/pinn_deepxde_examples.md``).

Construction, per shape (``inner`` is positive inside, zero on the boundary; ``outer`` positive
outside, zero on the boundary; neither needs a sign on the other side):

* interval and box: ``prod_i (x_i - a_i)(b_i - x_i) / h_i^2`` with ``h_i`` the half-widths (max 1
  at the centre); ``outer``: the negated product in 1-D, the edges as a polygon in 2-D, the
  negated R-function distance otherwise;
* ball: ``1 - |x - c|^2 / r^2``, ``outer`` its negative;
* polygon: the trimmed segment functions of Sukumar & Srivastava (CMAME 389, 2022), one per edge
  (zero on its edge only, positive elsewhere), grouped into chains of edges that meet at
  re-entrant or straight vertices (seen from the side where the function is used); each chain is
  the R-equivalence of its edges, divided by its geometric mean over the domain, and the chains
  are multiplied;
* CSG: ``inner(A & B) = inner(A) inner(B)``, ``inner(A - B) = inner(A) outer(B)``,
  ``outer(A | B) = outer(A) outer(B)``: products whose factors are positive where they are
  evaluated. The edges of a subtracted polygon that do not enter the minuend's interior bound
  nothing and are left out. The remaining cases (the inside of a union, the outside of an
  intersection or difference) fall back to the signed R-function distance of the subtree.

The whole is divided by its maximum over interior sample points (exactly 1 for boxes, balls and
intervals, whose maximum is known) and multiplied by ``(w / 4)^min(d, 2)``. Works on numpy arrays
and on torch tensors (differentiably).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._shapes import CSG, Ball, Box, Interval, Polygon, Shape, _is_torch, _like, _sqrt

__all__ = ["SmoothDistance"]

# Interior points used to normalise polygons' factors and to find the maximum of the product.
_N_SAMPLES = 4096


def _tiny(x: Any) -> float:
    if _is_torch(x):
        import torch

        return float(torch.finfo(x.dtype).tiny)
    return float(np.finfo(np.float64).tiny)


def _segment_function(a: np.ndarray, b: np.ndarray, x: Any) -> Any:
    """Trimmed segment function of the segment ``ab``: zero on the segment only, positive elsewhere,
    ``|grad| = 1`` on the open segment (Sukumar & Srivastava 2022, eq. 9)."""
    length = float(np.linalg.norm(b - a))
    a_, b_ = _like(x, a), _like(x, b)
    d = b_ - a_
    rel = x - a_
    f = (rel[:, 0] * d[1] - rel[:, 1] * d[0]) / length  # signed distance to the segment's line
    mid = x - (a_ + b_) / 2.0
    t = ((length / 2.0) ** 2 - (mid * mid).sum(-1)) / length  # > 0 in the disk on the segment
    g = (_sqrt(t * t + f**4) - t) / 2.0
    # f and g vanish together only on the segment: a floor far below any distance that matters keeps
    # the square root's derivative finite (zero) exactly on the boundary, in float32 too
    return _sqrt(f * f + g * g + _tiny(x))


def _edges(shape: Polygon | Box) -> list[tuple[np.ndarray, np.ndarray]]:
    """Edges in counter-clockwise order, ``(start, end)``."""
    if isinstance(shape, Polygon):
        return list(zip(shape.starts, shape.ends))
    lo, hi = shape.lo, shape.hi
    c = [lo, np.array([hi[0], lo[1]]), hi, np.array([lo[0], hi[1]])]
    return [(c[i], c[(i + 1) % 4]) for i in range(4)]


def _enters(region: Shape, a: np.ndarray, b: np.ndarray, n: int = 65) -> bool:
    """Whether the open segment ``ab`` passes through the interior of ``region``."""
    # The shape's own signed function (positive inside, zero on the boundary), not a Domain: domain.py
    # imports this module, and the import graph stays acyclic.
    u = (np.arange(n) + 0.5)[:, None] / n
    pts = a + u * (b - a)
    bbox = np.asarray(region.bbox())
    tol = 1e-9 * float(np.max(bbox[1] - bbox[0]))
    return bool((np.asarray(region.phi(pts), dtype=np.float64) > tol).any())


def _chains(edges: list[tuple[np.ndarray, np.ndarray]], kept: list[int], side: str) -> list[list[int]]:
    """Group the kept edges (indices into the closed counter-clockwise ``edges``) into chains joined at
    the vertices that are re-entrant or straight as seen from ``side`` ("inner" or "outer")."""
    m = len(edges)
    joined = []
    for i in range(m):  # vertex i is the end of edge i and the start of edge i + 1
        a, b = edges[i][1] - edges[i][0], edges[(i + 1) % m][1] - edges[(i + 1) % m][0]
        turn = (a[0] * b[1] - a[1] * b[0]) / (np.linalg.norm(a) * np.linalg.norm(b))
        convex = turn > 1e-9 if side == "inner" else turn < -1e-9  # a left turn is convex from inside
        joined.append(not convex)
    keep = set(kept)
    chains: list[list[int]] = []
    for i in sorted(keep):
        if chains and chains[-1][-1] == i - 1 and joined[i - 1]:
            chains[-1].append(i)
        else:
            chains.append([i])
    # the last chain may continue into the first across the closing vertex
    if len(chains) > 1 and chains[-1][-1] == m - 1 and chains[0][0] == 0 and joined[m - 1]:
        chains[0] = chains.pop() + chains[0]
    return chains


class SmoothDistance:
    """The smooth, scaled distance of one shape (see the module docstring).

    Parameters
    ----------
    shape : Shape
        The domain's shape tree.
    samples : callable, optional
        ``samples(n) -> (n, d)`` interior points of the shape, asked for only when the shape has
        polygon factors or no known maximum (CSG trees).
    """

    def __init__(self, shape: Shape, samples: Any = None) -> None:
        self.shape = shape
        # per (id of a polygon or 2-D box, side): its chains of edge indices with their geometric means
        self._chains: dict[tuple[int, str], list[tuple[list[int], float]]] = {}
        lo, hi = (np.asarray(b, dtype=np.float64).reshape(-1) for b in shape.bbox())
        target = (float(np.min(hi - lo)) / 4.0) ** min(len(lo), 2)
        self.scale = 1.0 / target  # values are divided by it
        if isinstance(shape, (Interval, Box, Ball)):
            return  # maximum 1 at the centre, by construction
        if samples is None:
            raise ValueError("SmoothDistance: this shape needs interior sample points to be normalised")
        pts = np.asarray(samples(_N_SAMPLES), dtype=np.float64)
        self._fit(shape, pts, "inner", None)
        values = np.asarray(self._inner(shape, pts), dtype=np.float64)
        top = float(values.max())
        if not np.isfinite(top) or top <= 0:
            raise ValueError(f"SmoothDistance: expected a positive maximum inside {shape!r}, got {top}")
        self.scale = top / target

    def _fit(self, shape: Shape, pts: np.ndarray, side: str, region: Shape | None) -> None:
        """Choose, group and normalise the segment functions of the polygons (and 2-D boxes) that the
        products use, following :meth:`_inner` and :meth:`_outer` through the tree.

        ``region`` is the minuend of the nearest enclosing difference: a subtracted polygon's edge
        that does not enter its interior (an edge on the minuend's boundary or outside it) bounds
        nothing of the result; its factor would only raise the order at the corners it shares with
        the minuend (``x y r`` instead of ``x y``). Each chain is divided by its geometric mean over
        the interior points, so that a product of many stays within floating-point range.
        """
        if isinstance(shape, CSG):
            if side == "inner" and shape.op == "intersection":
                self._fit(shape.a, pts, "inner", region)
                self._fit(shape.b, pts, "inner", region)
            elif side == "inner" and shape.op == "difference":
                self._fit(shape.a, pts, "inner", region)
                self._fit(shape.b, pts, "outer", shape.a)
            elif side == "outer" and shape.op == "union":
                self._fit(shape.a, pts, "outer", region)
                self._fit(shape.b, pts, "outer", region)
            return  # the other cases use the R-function fallback
        uses_segments = isinstance(shape, Polygon) or (isinstance(shape, Box) and shape.ndim == 2 and side == "outer")
        if not uses_segments:
            return
        edges = _edges(shape)
        kept = [i for i, (a, b) in enumerate(edges) if region is None or _enters(region, a, b)]
        fitted = []
        for chain in _chains(edges, kept, side):
            values = np.asarray(self._chain(edges, chain, pts), dtype=np.float64)
            fitted.append((chain, float(np.exp(np.mean(np.log(np.maximum(values, 1e-300)))))))
        self._chains[(id(shape), side)] = fitted

    @staticmethod
    def _chain(edges: list[tuple[np.ndarray, np.ndarray]], chain: list[int], x: Any) -> Any:
        """R-equivalence ``1 / sum(1 / phi_i)`` of the chain's segment functions (order 1 where they meet)."""
        if len(chain) == 1:
            return _segment_function(*edges[chain[0]], x)
        inverse = None
        for i in chain:
            term = 1.0 / _segment_function(*edges[i], x)
            inverse = term if inverse is None else inverse + term
        return 1.0 / inverse

    def _segments(self, shape: Polygon | Box, x: Any, side: str) -> Any:
        edges = _edges(shape)
        fitted = self._chains.get((id(shape), side))
        if fitted is None:  # not reached by the fit (cannot happen through Domain): all edges, unscaled
            fitted = [(chain, 1.0) for chain in _chains(edges, list(range(len(edges))), side)]
        out = None
        for chain, mean in fitted:
            factor = self._chain(edges, chain, x) / mean
            out = factor if out is None else out * factor
        if out is None:  # no edge enters the region: nothing to vanish on
            out = x[:, 0] * 0.0 + 1.0
        return out

    def _inner(self, shape: Shape, x: Any) -> Any:
        """Positive inside ``shape``, zero on its boundary (any sign outside)."""
        if isinstance(shape, Interval):
            h = (shape.hi - shape.lo) / 2.0
            return (x[:, 0] - shape.lo) * (shape.hi - x[:, 0]) / (h * h)
        if isinstance(shape, Box):
            out = None
            for i in range(shape.ndim):
                h = (shape.hi[i] - shape.lo[i]) / 2.0
                factor = (x[:, i] - shape.lo[i]) * (shape.hi[i] - x[:, i]) / (h * h)
                out = factor if out is None else out * factor
            return out
        if isinstance(shape, Ball):
            offset = x - _like(x, shape.center)
            return 1.0 - (offset * offset).sum(-1) / shape.radius**2
        if isinstance(shape, Polygon):
            return self._segments(shape, x, "inner")
        if isinstance(shape, CSG):
            if shape.op == "intersection":
                return self._inner(shape.a, x) * self._inner(shape.b, x)
            if shape.op == "difference":
                return self._inner(shape.a, x) * self._outer(shape.b, x)
        return self._signed(shape, x)

    def _outer(self, shape: Shape, x: Any) -> Any:
        """Positive outside ``shape``, zero on its boundary (any sign inside)."""
        if isinstance(shape, (Interval, Ball)):
            return -self._inner(shape, x)
        if isinstance(shape, Polygon) or (isinstance(shape, Box) and shape.ndim == 2):
            return self._segments(shape, x, "outer")
        if isinstance(shape, CSG) and shape.op == "union":
            return self._outer(shape.a, x) * self._outer(shape.b, x)
        return -self._signed(shape, x)

    @staticmethod
    def _signed(shape: Shape, x: Any) -> Any:
        """The R-function distance of the subtree (first order; the fallback), in units of its size."""
        lo, hi = shape.bbox()
        return shape.phi(x) / float(np.max(hi - lo))

    def __call__(self, x: Any) -> Any:
        """Values ``(N,)`` at points ``(N, d)`` (numpy: float64; torch: same dtype and device)."""
        out = self._inner(self.shape, x)
        if self.scale != 1.0:
            out = out / self.scale
        if not _is_torch(x):
            out = np.asarray(out, dtype=np.float64)
        return out
