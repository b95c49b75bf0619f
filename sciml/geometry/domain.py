"""Continuous geometry for point sampling: :class:`Domain`.

A Domain is a closed region of R^1, R^2 or R^3 built from primitives (interval, rectangle, box,
disk, ball, polygon) and CSG operators (``|`` union, ``-`` difference, ``&`` intersection). It
answers point queries (inside, on the boundary, outward normal, approximate distances) and draws
reproducible interior and boundary samples, uniform or quasi-random.

Point queries run on ``deepxde.geometry`` (imported lazily, on first use, with its side effects
contained: see :mod:`sciml.geometry._deepxde`); building a Domain does not import it. Sampling does
not use deepxde's samplers, which draw from numpy's global random state and, for quasi-random
sequences, from the slow scikit-optimize: interior points are drawn in the bounding box from
``numpy.random.Generator`` or ``scipy.stats.qmc`` and kept when inside (rejection, topped up until
``n``); boundary points come from a measure-preserving parametrisation of the primitives' boundaries,
filtered by ``on_boundary`` for CSG trees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._checks import as_float_array, check_name, check_positive_int, check_shape
from ..errors import ConfigError, ShapeError
from . import _deepxde
from ._hammersley import hammersley_in
from ._shapes import CSG, Ball, Box, Interval, Polygon, Shape, check_radius, map_to_boundary

__all__ = ["Domain", "SAMPLING_METHODS"]

SAMPLING_METHODS = ("uniform", "sobol", "halton", "lhs", "hammersley")

# Rejection sampling gives up when this many candidates in a row produced no point at all.
_MAX_EMPTY_DRAWS = 1_000_000
_MAX_BATCH = 4_000_000


class _Sequence:
    """Reproducible stream of points in ``[0, 1)^d``: i.i.d. uniform or a scrambled qmc sequence.

    ``take(k)`` returns the next ``k`` points, so rejection sampling that tops up keeps consuming one
    sequence (the accepted points are a prefix of a low-discrepancy sequence, not a union of several
    independent ones). Sobol points are fetched in power-of-two blocks, which keeps the sequence's
    balance properties and avoids scipy's warning; the surplus is buffered.
    """

    def __init__(self, method: str, d: int, rng: np.random.Generator) -> None:
        self.method, self.d, self.rng = method, d, rng
        self.buffer = np.empty((0, d))
        self.engine: Any = None
        if method in ("sobol", "halton"):
            from scipy.stats import qmc

            cls = qmc.Sobol if method == "sobol" else qmc.Halton
            self.engine = cls(d, scramble=True, rng=rng)
        self.drawn = 0

    def take(self, k: int) -> np.ndarray:
        if self.method == "uniform":
            return self.rng.random((k, self.d))
        if self.method == "lhs":
            # Each batch is its own Latin hypercube (top-ups cannot extend an existing one).
            from scipy.stats import qmc

            return qmc.LatinHypercube(self.d, rng=self.rng).random(k)
        while len(self.buffer) < k:
            if self.method == "sobol":
                # Double the sequence each time: both the block and the total stay powers of two.
                block = self.drawn or 1 << (k - len(self.buffer) - 1).bit_length()
            else:
                block = k - len(self.buffer)
            self.buffer = np.concatenate([self.buffer, self.engine.random(block)])
            self.drawn += block
        out, self.buffer = self.buffer[:k], self.buffer[k:]
        return out


def _generator(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise ConfigError(f"seed: expected a non-negative int, a numpy Generator or None, got {seed!r}")


def _vector(name: str, value: Any, d: int) -> np.ndarray:
    """``value`` as a float64 vector of length ``d`` (a scalar counts as length 1)."""
    arr = as_float_array(name, value)
    arr = arr.reshape(1) if arr.ndim == 0 else arr
    if arr.ndim != 1 or len(arr) != d:
        raise ShapeError(name, (d,), arr.shape)
    return arr


class Domain:
    """A closed region of R^d (d = 1, 2, 3) for sampling collocation points.

    Build one with the class methods and combine them with ``|`` (union), ``-`` (difference) and
    ``&`` (intersection). All point arrays are ``(N, d)`` float64; torch tensors are accepted and
    converted (except by :meth:`distance`, which keeps them differentiable).

    Examples
    --------
    >>> plate = Domain.rectangle([0, 0], [1, 1]) - Domain.disk([0.5, 0.5], 0.2)
    >>> x = plate.sample_interior(1000, method="sobol", seed=0)
    >>> x.shape, bool(plate.inside(x).all())
    ((1000, 2), True)
    """

    __slots__ = ("_shape", "_dde", "_smooth")

    def __init__(self, shape: Shape) -> None:
        if not isinstance(shape, Shape):
            raise ConfigError(
                "Domain: build domains with Domain.interval/rectangle/box/disk/ball/polygon, "
                f"got {type(shape).__name__}"
            )
        self._shape = shape
        self._dde: Any = None
        self._smooth: Any = None

    # The deepxde object is a cache (and its classes are made at run time): never pickle it, so a
    # Domain travels to DataLoader workers and into checkpoints. The smooth distance is a cache too.
    def __getstate__(self) -> dict[str, Any]:
        return {"shape": self._shape}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._shape = state["shape"]
        self._dde = None
        self._smooth = None

    # -- constructors ------------------------------------------------------------------------------
    @classmethod
    def interval(cls, lo: float, hi: float) -> Domain:
        """The 1-D interval ``[lo, hi]``."""
        lo_, hi_ = (float(_vector(n, v, 1)[0]) for n, v in (("Domain.interval lo", lo), ("Domain.interval hi", hi)))
        if not hi_ > lo_:
            raise ConfigError(f"Domain.interval: expected lo < hi, got lo={lo_}, hi={hi_}")
        return cls(Interval(lo_, hi_))

    @classmethod
    def _box(cls, name: str, lo: Any, hi: Any, d: int) -> Domain:
        lo_, hi_ = _vector(f"Domain.{name} lo", lo, d), _vector(f"Domain.{name} hi", hi, d)
        if np.any(hi_ <= lo_):
            raise ConfigError(f"Domain.{name}: expected lo < hi on every axis, got lo={lo_}, hi={hi_}")
        return cls(Box(lo_, hi_))

    @classmethod
    def rectangle(cls, lo: Sequence[float], hi: Sequence[float]) -> Domain:
        """The axis-aligned rectangle ``[lo[0], hi[0]] x [lo[1], hi[1]]``."""
        return cls._box("rectangle", lo, hi, 2)

    @classmethod
    def box(cls, lo: Sequence[float], hi: Sequence[float]) -> Domain:
        """The axis-aligned 3-D box with corners ``lo`` and ``hi``."""
        return cls._box("box", lo, hi, 3)

    @classmethod
    def hypercube(cls, lo: Sequence[float], hi: Sequence[float]) -> Domain:
        """The axis-aligned box ``[lo, hi]`` in any dimension (the length of ``lo``), e.g. for PINNs in 5-D.

        Sampling, inside tests and the distance function work in every dimension; deepxde-backed
        operations (CSG with other shapes) only up to 3-D.
        """
        d = len(lo) if hasattr(lo, "__len__") else 0
        if d < 1:
            raise ConfigError(f"Domain.hypercube: expected a sequence of lower corners, got {lo!r}")
        return cls._box("hypercube", lo, hi, d)

    @classmethod
    def disk(cls, center: Sequence[float], radius: float) -> Domain:
        """The closed disk of ``radius`` around a 2-D ``center``."""
        return cls(Ball(_vector("Domain.disk center", center, 2), check_radius("Domain.disk", radius)))

    @classmethod
    def ball(cls, center: Sequence[float], radius: float) -> Domain:
        """The closed ball of ``radius`` around a 3-D ``center``."""
        return cls(Ball(_vector("Domain.ball center", center, 3), check_radius("Domain.ball", radius)))

    @classmethod
    def polygon(cls, vertices: Any) -> Domain:
        """A simple polygon; ``vertices`` ``(m, 2)`` in boundary order (either orientation)."""
        v = as_float_array("Domain.polygon vertices", vertices)
        check_shape("Domain.polygon vertices", v, (None, 2))
        Polygon.check(v)
        return cls(Polygon(v))

    # -- CSG ---------------------------------------------------------------------------------------
    def _combine(self, op: str, other: Any) -> Domain:
        if not isinstance(other, Domain):
            return NotImplemented
        return Domain(CSG(op, self._shape, other._shape))

    def __or__(self, other: Domain) -> Domain:
        return self._combine("union", other)

    def __sub__(self, other: Domain) -> Domain:
        return self._combine("difference", other)

    def __and__(self, other: Domain) -> Domain:
        return self._combine("intersection", other)

    # -- properties --------------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        """Spatial dimension d."""
        return self._shape.ndim

    @property
    def bbox(self) -> np.ndarray:
        """Bounding box as a ``(2, d)`` array ``[lo, hi]`` (a copy)."""
        return self._shape.bbox().copy()

    def to_deepxde(self) -> Any:
        """The underlying ``deepxde.geometry`` object (float64), e.g. to hand to ``deepxde.data.PDE``."""
        if self._dde is None:
            with _deepxde.float64() as geometry:
                self._dde = self._shape.build(geometry)
        return self._dde

    # -- point queries -----------------------------------------------------------------------------
    def _points(self, x: Any, name: str = "x") -> np.ndarray:
        arr = as_float_array(name, x)
        check_shape(name, arr, (None, self.ndim))
        return np.ascontiguousarray(arr)

    def inside(self, x: Any) -> np.ndarray:
        """Boolean ``(N,)``: True for points in the closed domain (boundary included)."""
        x = self._points(x)
        geom = self.to_deepxde()
        with _deepxde.float64():
            inside = np.asarray(geom.inside(x), dtype=bool).reshape(len(x))
            # deepxde's difference A - B leaves out B's boundary; add the boundary back so that every
            # Domain is closed, as primitives are.
            return inside | np.asarray(geom.on_boundary(x), dtype=bool).reshape(len(x))

    def on_boundary(self, x: Any) -> np.ndarray:
        """Boolean ``(N,)``: True for points on the boundary.

        The tolerance is deepxde's for intervals, boxes, disks and balls (``np.isclose`` of the
        coordinate or radius: ``1e-8 + 1e-5 * |value|``) and ``1e-9`` of the diameter for polygons.
        """
        x = self._points(x)
        geom = self.to_deepxde()
        with _deepxde.float64():
            return np.asarray(geom.on_boundary(x), dtype=bool).reshape(len(x))

    def boundary_normal(self, x: Any) -> np.ndarray:
        """Outward unit normals ``(N, d)`` at boundary points; zero rows for points off the boundary.

        At corners the normals of the meeting sides are averaged and renormalised.
        """
        x = self._points(x)
        geom = self.to_deepxde()
        on = self.on_boundary(x)
        out = np.zeros_like(x)
        if on.any():
            with _deepxde.float64(), _deepxde.quiet():
                normal = np.asarray(geom.boundary_normal(x[on]), dtype=np.float64).reshape(-1, self.ndim)
            norm = np.linalg.norm(normal, axis=1, keepdims=True)
            # CSG sums the normals of sides that meet at a corner: bring them back to unit length.
            out[on] = np.divide(normal, norm, out=np.zeros_like(normal), where=norm > 0)
        return out

    def distance(self, x: Any) -> Any:
        """Smooth approximate signed distance to the boundary, ``(N,)``: 0 on it, > 0 inside.

        Exact for a half-line, disk and ball, smooth away from corners for boxes, polygons (trimmed
        segment functions) and CSG trees (Rvachev R0 functions), and normalised to first order:
        ``|grad phi| = 1`` on the smooth parts of the boundary. For hard Dirichlet constraints,
        ``u = g + phi * NN``, prefer :meth:`smooth_distance` (this one's Hessian grows like ``1/r``
        at corners, which costs accuracy in second-order equations). Accepts numpy arrays (returns float64) and torch tensors
        (returns a tensor on the same device, differentiable; the gradient is undefined exactly on
        corners and, for polygons, exactly on the boundary).
        """
        if type(x).__module__.startswith("torch"):
            if x.ndim != 2 or x.shape[1] != self.ndim:
                raise ShapeError("x", ("*", self.ndim), tuple(x.shape))
            from .._checks import check_finite

            check_finite("x", x.detach())
            return self._shape.phi(x)
        return np.asarray(self._shape.phi(self._points(x)), dtype=np.float64)

    def smooth_distance(self, x: Any) -> Any:
        """Smooth approximate distance for hard constraints, ``(N,)``: 0 on the boundary, > 0 inside.

        Products of one factor per boundary piece (see :mod:`sciml.geometry._adf`), scaled to the
        maximum ``(w / 4)^min(d, 2)`` with ``w`` the smallest width of the bounding box: on the unit
        square DeepXDE's ``x (1 - x) y (1 - y)``; on a box ``prod_i (x_i - a_i)(b_i - x_i) / h_i^2``
        (``h_i`` the half-widths) times that maximum; on a disk or ball ``1 - |x - c|^2 / r^2`` times it;
        on a polygon the product of its edges' trimmed segment functions;
        CSG trees multiply their children's (intersection, difference) or fall back to R-functions
        (the inside of a union). Unlike :meth:`distance` it is not normalised to first order: it
        vanishes to second order at right-angled corners, like a smooth solution that is zero on
        both edges, so ``(u - g) / phi`` stays smooth and ``u = g + phi * NN`` trains as well as a
        hand-written transform (a first-order distance has a Hessian growing like ``1/r`` at
        corners). Values outside the domain carry no meaning (not even their sign). Accepts numpy
        arrays (float64) and torch tensors (differentiable, same dtype and device); polygons and
        CSG trees are scaled once, from 4096 quasi-random interior points.
        """
        if self._smooth is None:
            from ._adf import SmoothDistance

            self._smooth = SmoothDistance(self._shape, lambda n: self.sample_interior(n, "sobol", seed=0))
        if type(x).__module__.startswith("torch"):
            if x.ndim != 2 or x.shape[1] != self.ndim:
                raise ShapeError("x", ("*", self.ndim), tuple(x.shape))
            return self._smooth(x)
        return self._smooth(self._points(x))

    # -- sampling ----------------------------------------------------------------------------------
    def sample_interior(self, n: int, method: str = "uniform", seed: Any = 0) -> np.ndarray:
        """``n`` points in the domain, ``(n, d)`` float64.

        Parameters
        ----------
        n : int
            Number of points.
        method : {"uniform", "sobol", "halton", "lhs", "hammersley"}
            i.i.d. uniform, or a scrambled quasi-random sequence from ``scipy.stats.qmc``. Points are
            drawn in the bounding box and kept when inside; the kept points are a prefix of one
            sequence, so they stay low-discrepancy (for "lhs" each top-up batch is a fresh Latin
            hypercube). "hammersley" (DeepXDE's default, deterministic) is a set, not a sequence:
            the smallest set with enough points inside is drawn whole and thinned evenly
            (:mod:`sciml.geometry._hammersley`).
        seed : int, numpy Generator or None
            Same seed, same points. ``None`` draws fresh entropy.
        """
        n = check_positive_int("n", n)
        check_name("sampling method", method, SAMPLING_METHODS)
        lo, hi = self._shape.bbox()
        if method == "hammersley":  # a set, not a sequence: drawn whole and thinned (seed unused)
            return hammersley_in(n, self.ndim, lambda u: lo + u * (hi - lo), self.inside, "interior")
        seq = _Sequence(method, self.ndim, _generator(seed))
        return self._reject(n, seq, lambda u: lo + u * (hi - lo), self.inside, "interior")

    def sample_boundary(self, n: int, method: str = "uniform", seed: Any = 0) -> np.ndarray:
        """``n`` points on the boundary, ``(n, d)`` float64, uniform with respect to its length/area.

        A sequence in ``[0, 1)^max(d-1, 1)`` is mapped onto the primitives' boundaries (pieces
        chosen in proportion to their measure); for CSG domains the points not on the final
        boundary are rejected and the sequence topped up. In 1-D the two end points are drawn with
        equal probability. ``method`` and ``seed`` are as in :meth:`sample_interior`.
        """
        n = check_positive_int("n", n)
        check_name("sampling method", method, SAMPLING_METHODS)
        pieces = [p for leaf in self._shape.leaves() for p in leaf.boundary_pieces()]
        if isinstance(self._shape, CSG):
            accept = self.on_boundary
        else:
            def accept(x: np.ndarray) -> np.ndarray:
                return np.ones(len(x), dtype=bool)
        if method == "hammersley":
            return hammersley_in(n, max(self.ndim - 1, 1), lambda u: map_to_boundary(pieces, u), accept, "boundary")
        seq = _Sequence(method, max(self.ndim - 1, 1), _generator(seed))
        return self._reject(n, seq, lambda u: map_to_boundary(pieces, u), accept, "boundary")

    def _reject(self, n: int, seq: _Sequence, to_space: Any, accept: Any, where: str) -> np.ndarray:
        kept: list[np.ndarray] = []
        count, drawn, batch = 0, 0, n
        while count < n:
            x = to_space(seq.take(batch))
            x = x[accept(x)]
            kept.append(x)
            count += len(x)
            drawn += batch
            if count == 0 and drawn >= _MAX_EMPTY_DRAWS:
                raise ConfigError(
                    f"Domain.sample_{where}: no point accepted out of {drawn} candidates; "
                    f"the {where} of {self!r} looks empty or has zero measure"
                )
            rate = max(count, 1) / drawn
            # Ask for a little more than the expected need, so one top-up usually suffices.
            batch = min(int(math.ceil((n - count) / rate * 1.1)) + 16, _MAX_BATCH)
        return np.ascontiguousarray(np.concatenate(kept)[:n], dtype=np.float64)

    def __repr__(self) -> str:
        return f"Domain({self._shape!r})"
