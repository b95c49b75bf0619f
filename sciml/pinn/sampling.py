"""Collocation points for PINNs: static distributions and residual-based adaptive samplers.

Static distributions are those of :meth:`sciml.geometry.Domain.sample_interior`: i.i.d. uniform,
or scrambled Sobol / Halton sequences and Latin hypercubes from :mod:`scipy.stats.qmc` (DeepXDE draws
its quasi-random points from scikit-optimize, which is orders of magnitude slower). Adaptive
samplers move the interior points to where the PDE residual is large, every ``every`` steps:

* :class:`RAR`, residual-based adaptive refinement (Lu et al. 2021, DeepXDE): evaluate the residual
  on a dense candidate set and *add* the ``n_add`` points where it is largest;
* :class:`RAD`, residual-based adaptive distribution (Wu et al. 2023): *redraw* the whole set from the
  candidates with probability ``p(x) ~ |r(x)|^k / mean(|r|^k) + c``.

A sampler never evaluates the network itself: the PINN passes it ``residual(points) -> |r|`` (a numpy
function of numpy points). Boundary and initial points of space-time problems are drawn by
:func:`sample_boundary` (the lateral boundary only) and :func:`sample_initial`; :func:`check_points`
rejects point sets that are mis-shaped, non-finite, or outside the part of the domain they belong to.
Intervals, rectangles and boxes are sampled directly (a PINN that redraws its points every step
would otherwise spend more time in the generic rejection sampler than in its network).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._checks import as_float_array, check_name, check_positive_int, check_shape
from ..errors import ConfigError
from ..geometry._hammersley import hammersley, whole_set_in

__all__ = [
    "METHODS",
    "Sampler",
    "RAR",
    "RAD",
    "sample_interior",
    "sample_boundary",
    "sample_initial",
    "check_points",
    "time_faces",
]

METHODS = ("uniform", "sobol", "halton", "lhs", "hammersley")

ResidualFn = Callable[[np.ndarray], np.ndarray]

# Rejection sampling of a part of the boundary gives up when this many candidates gave no point.
_MAX_EMPTY_DRAWS = 200_000


def _rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise ConfigError(f"seed: expected a non-negative int or a numpy Generator, got {seed!r}")


def _child(rng: np.random.Generator) -> int:
    """An integer seed drawn from ``rng`` for one call of the Domain's samplers.

    scipy's qmc engines given a Generator ``spawn`` from it, which advances its SeedSequence but not
    ``bit_generator.state``; a checkpoint of that state would then not reproduce the next draw.
    Drawing a plain integer advances the state itself, so saving and restoring it is enough.
    """
    return int(rng.integers(2**63))


def _check_domain(domain: Any) -> None:
    from ..geometry import Domain

    if not isinstance(domain, Domain):
        raise ConfigError(f"expected a sciml.geometry.Domain, got {type(domain).__name__}")


def time_faces(domain: Any, time_axis: int | None, x: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Boolean ``(N,)``: points lying on the first or last time of a space-time domain."""
    if time_axis is None:
        return np.zeros(len(x), dtype=bool)
    lo, hi = domain.bbox[:, time_axis]
    tol = rtol * (hi - lo)
    return (np.abs(x[:, time_axis] - lo) <= tol) | (np.abs(x[:, time_axis] - hi) <= tol)


def _box(domain: Any) -> np.ndarray | None:
    """``[lo, hi]`` if ``domain`` is a plain interval, rectangle or box (not a CSG combination), else None.

    PINNs redraw their points every step, and for boxes the generic rejection sampler of
    :class:`~sciml.geometry.Domain` (inside / on-boundary queries on every candidate) costs more than
    drawing the points directly.
    """
    if repr(domain).startswith(("Domain(interval(", "Domain(rectangle(", "Domain(box(")):
        return domain.bbox
    return None


def _unit(method: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of the method's sequence in ``[0, 1)^d``."""
    if method == "uniform":
        return rng.random((n, d))
    if method == "hammersley":
        return hammersley(n, d)
    from scipy.stats import qmc

    seed = _child(rng)
    if method == "sobol":  # a prefix of a power-of-two block keeps scipy from warning about balance
        return qmc.Sobol(d, scramble=True, rng=seed).random_base2(max(0, (n - 1).bit_length()))[:n]
    if method == "halton":
        return qmc.Halton(d, scramble=True, rng=seed).random(n)
    return qmc.LatinHypercube(d, rng=seed).random(n)


def sample_interior(domain: Any, n: int, method: str = "uniform", seed: Any = 0) -> np.ndarray:
    """``n`` points ``(n, d)`` float64 in the domain, distributed like the method's sequence.

    Boxes are sampled directly, other domains through ``Domain.sample_interior`` (rejection).
    """
    _check_domain(domain)
    check_name("sampling method", method, METHODS)
    n, rng = check_positive_int("n", n), _rng(seed)
    box = _box(domain)
    if box is not None:
        return box[0] + _unit(method, n, domain.ndim, rng) * (box[1] - box[0])
    return domain.sample_interior(n, method=method, seed=_child(rng))


def _box_boundary(box: np.ndarray, n: int, method: str, rng: np.random.Generator,
                  time_axis: int | None) -> np.ndarray:
    """``n`` points uniform on the faces of a box (the lateral faces when ``time_axis`` is given)."""
    lo, hi = box
    d = len(lo)
    extent = hi - lo
    faces = [(axis, side) for axis in range(d) if axis != time_axis for side in (0, 1)]
    measure = np.array([np.prod(np.delete(extent, axis)) for axis, _ in faces], dtype=np.float64)
    u = _unit(method, n, d, rng)
    # the first coordinate picks the face (in proportion to its measure), the others place the point on it
    edges = np.cumsum(measure) / measure.sum()
    which = np.minimum(np.searchsorted(edges, u[:, 0], side="right"), len(faces) - 1)
    x = lo + u * extent
    for k, (axis, side) in enumerate(faces):
        rows = which == k
        if not rows.any():
            continue
        others = [a for a in range(d) if a != axis]
        # the face's own coordinates come from columns 1.. of u (column 0 chose the face)
        cols = u[rows][:, 1 : 1 + len(others)] if d > 1 else np.empty((int(rows.sum()), 0))
        pts = np.empty((int(rows.sum()), d))
        pts[:, axis] = hi[axis] if side else lo[axis]
        for j, a in enumerate(others):
            pts[:, a] = lo[a] + cols[:, j] * extent[a]
        x[rows] = pts
    return x


def sample_boundary(
    domain: Any,
    n: int,
    method: str = "uniform",
    seed: Any = 0,
    where: Callable[[np.ndarray], np.ndarray] | None = None,
    time_axis: int | None = None,
) -> np.ndarray:
    """``n`` boundary points, restricted to ``where(x)`` and, in space-time, to the lateral boundary.

    Parameters
    ----------
    domain : Domain
    n : int
    method : {"uniform", "sobol", "halton", "lhs", "hammersley"}
    seed : int or numpy Generator
    where : callable, optional
        ``where(x) -> bool (N,)`` selecting the part of the boundary a condition holds on.
    time_axis : int, optional
        For space-time domains: points on the first and last time are left out (boundary
        conditions hold on the spatial boundary at every time; the initial condition on ``t0``).

    Raises
    ------
    ConfigError
        If ``where`` (and the lateral restriction) select no boundary point at all.
    """
    _check_domain(domain)
    n = check_positive_int("n", n)
    check_name("sampling method", method, METHODS)
    rng = _rng(seed)
    box = _box(domain)
    if box is not None and time_axis is not None and domain.ndim == 1:
        raise ConfigError("sample_boundary: a 1-D space-time domain has no lateral boundary")

    def draw(k: int) -> np.ndarray:
        if box is not None:
            return _box_boundary(box, k, method, rng, time_axis)
        return domain.sample_boundary(k, method=method, seed=_child(rng))

    if where is None and (time_axis is None or box is not None):
        return draw(n)

    def accept(x: np.ndarray) -> np.ndarray:
        ok = ~time_faces(domain, time_axis, x)
        if where is not None:
            mask = np.asarray(where(x), dtype=bool).reshape(-1)
            if mask.shape != (len(x),):
                raise ConfigError(f"where(x): expected a boolean array of shape ({len(x)},), "
                                  f"got {mask.shape}")
            ok &= mask
        return ok

    if method == "hammersley":  # a fixed set: topping it up would repeat and bunch points
        return whole_set_in(n, draw, accept, "part of the boundary")
    kept: list[np.ndarray] = []
    count, drawn, batch = 0, 0, 2 * n
    while count < n:
        x = draw(batch)
        ok = accept(x)
        kept.append(x[ok])
        count += int(ok.sum())
        drawn += batch
        if count == 0 and drawn >= _MAX_EMPTY_DRAWS:
            raise ConfigError(
                f"sample_boundary: no point of the boundary of {domain!r} satisfies the condition's `where` "
                f"(and lies off the first/last time) in {drawn} candidates; check `where`"
            )
        rate = max(count, 1) / drawn
        batch = min(int(math.ceil((n - count) / rate * 1.2)) + 16, 4_000_000)
    return np.ascontiguousarray(np.concatenate(kept)[:n])


def sample_initial(domain: Any, n: int, time_axis: int, method: str = "uniform", seed: Any = 0) -> np.ndarray:
    """``n`` points on the first time ``t0`` of a space-time domain: interior points with ``t := t0``.

    For a cylinder (a spatial domain times an interval) the points are distributed like the
    method's points in the spatial cross-section.
    """
    _check_domain(domain)
    if not isinstance(time_axis, (int, np.integer)) or not -domain.ndim <= time_axis < domain.ndim:
        raise ConfigError(f"time_axis: expected an axis of the {domain.ndim}-D domain, got {time_axis!r}")
    x = sample_interior(domain, n, method, seed)
    x[:, time_axis] = domain.bbox[0, time_axis]
    return x


def check_points(
    name: str,
    x: Any,
    domain: Any,
    part: str = "interior",
    time_axis: int | None = None,
) -> np.ndarray:
    """Validate a user's point set and return it as ``(N, d)`` float64.

    Parameters
    ----------
    name : str
        Used in error messages.
    x : array_like ``(N, d)``
    domain : Domain
    part : {"interior", "boundary", "initial", "any"}
        Where the points must lie: in the closed domain, on its boundary, on the first time
        (``time_axis`` required), or anywhere in the closed domain ("any", e.g. observations).

    Raises
    ------
    ShapeError, NonFiniteError, ConfigError
    """
    _check_domain(domain)
    check_name("point set part", part, ("interior", "boundary", "initial", "any"))
    arr = as_float_array(name, x)
    check_shape(name, arr, (None, domain.ndim))
    if len(arr) == 0:
        raise ConfigError(f"{name}: expected at least one point, got an empty set")
    if part in ("interior", "any"):
        bad = ~domain.inside(arr)
        what = "inside the domain"
    elif part == "boundary":
        bad = ~domain.on_boundary(arr)
        what = "on the boundary"
    else:
        if time_axis is None:
            raise ConfigError(f"{name}: initial points need the time axis of a space-time problem")
        lo, hi = domain.bbox[:, time_axis]
        bad = (np.abs(arr[:, time_axis] - lo) > 1e-9 * (hi - lo)) | ~domain.inside(arr)
        what = f"in the domain at the first time t = {lo:g}"
    if bad.any():
        first = arr[np.flatnonzero(bad)[0]].tolist()
        raise ConfigError(f"{name}: expected points {what} of {domain!r}, got {int(bad.sum())} of {len(arr)} "
                          f"outside it (first: {first})")
    return np.ascontiguousarray(arr)


# -- samplers of the interior points ----------------------------------------------------------------
class Sampler:
    """Draws the interior collocation points; the base class is a static distribution.

    Parameters
    ----------
    method : {"uniform", "sobol", "halton", "lhs", "hammersley"}
        Distribution of the points (and of adaptive samplers' candidates).
    """

    #: whether :meth:`adapt` can change the points (the PINN then evaluates residuals for it)
    adaptive: bool = False
    #: steps between adaptations
    every: int = 0

    def __init__(self, method: str = "uniform") -> None:
        check_name("sampling method", method, METHODS)
        self.method = method

    def sample(self, domain: Any, n: int, rng: np.random.Generator) -> np.ndarray:
        """A fresh set of ``n`` interior points."""
        return sample_interior(domain, n, self.method, rng)

    def adapt(
        self, step: int, points: np.ndarray, residual: ResidualFn, domain: Any, rng: np.random.Generator
    ) -> np.ndarray | None:
        """New interior points after ``step`` completed steps, or None to keep the current ones."""
        return None

    def state_for_checkpoint(self) -> dict[str, Any]:
        """What the sampler learned beyond the points (plain data); empty for the stateless ones.

        The points themselves and the PINN's RNG are saved by the task; a sampler with a model of
        its own (the AAS flow) adds it here, so that a resumed run continues exactly.
        """
        return {}

    def load_state_for_checkpoint(self, state: dict[str, Any], domain: Any) -> None:
        """Restore :meth:`state_for_checkpoint` (``domain``: the PINN's, for samplers built on it)."""
        if state:
            raise ConfigError(f"{type(self).__name__} keeps no state, but the checkpoint holds sampler state "
                              f"{sorted(state)}: it was written with another sampler")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(method={self.method!r})"


def _candidates(sampler: Sampler, domain: Any, n: int, rng: np.random.Generator,
                residual: ResidualFn) -> tuple[np.ndarray, np.ndarray]:
    x = sample_interior(domain, n, sampler.method, rng)
    r = np.abs(np.asarray(residual(x), dtype=np.float64)).reshape(-1)
    if r.shape != (len(x),):
        raise ConfigError(f"{type(sampler).__name__}: residual(points) must return one value per point, got "
                          f"shape {r.shape} for {len(x)} points")
    if not np.all(np.isfinite(r)):
        raise ConfigError(f"{type(sampler).__name__}: the residual is not finite on the candidate points")
    return x, r


class RAR(Sampler):
    """Residual-based adaptive refinement (Lu et al. 2021): add points where the residual is largest.

    Every ``every`` steps, ``n_candidates`` points are drawn, the residual is evaluated on them and the
    ``n_add`` with the largest ``|r|`` join the training set (which therefore grows), up to
    ``max_points``.
    """

    adaptive = True

    def __init__(self, every: int = 1000, n_candidates: int = 10_000, n_add: int = 10,
                 method: str = "uniform", max_points: int | None = None) -> None:
        super().__init__(method)
        self.every = check_positive_int("RAR every", every)
        self.n_candidates = check_positive_int("RAR n_candidates", n_candidates)
        self.n_add = check_positive_int("RAR n_add", n_add)
        if self.n_add > self.n_candidates:
            raise ConfigError(f"RAR: n_add ({n_add}) cannot exceed n_candidates ({n_candidates})")
        self.max_points = None if max_points is None else check_positive_int("RAR max_points", max_points)

    def adapt(self, step: int, points: np.ndarray, residual: ResidualFn, domain: Any,
              rng: np.random.Generator) -> np.ndarray | None:
        if step % self.every or (self.max_points is not None and len(points) >= self.max_points):
            return None
        x, r = _candidates(self, domain, self.n_candidates, rng, residual)
        n_add = self.n_add if self.max_points is None else min(self.n_add, self.max_points - len(points))
        worst = np.argpartition(-r, n_add - 1)[:n_add]
        return np.concatenate([points, x[worst]])

    def __repr__(self) -> str:
        return (f"RAR(every={self.every}, n_candidates={self.n_candidates}, n_add={self.n_add}, "
                f"method={self.method!r}, max_points={self.max_points})")


class RAD(Sampler):
    """Residual-based adaptive distribution (Wu et al. 2023): redraw the set with density ~ residual.

    Every ``every`` steps the ``len(points)`` training points are replaced by a draw without
    replacement from ``n_candidates`` candidates with probabilities
    ``p ~ |r|^k / mean(|r|^k) + c``; ``k = 1, c = 1`` is the paper's robust default, ``c -> inf``
    is uniform sampling and ``k`` large concentrates on the largest residuals.
    """

    adaptive = True

    def __init__(self, every: int = 1000, n_candidates: int = 100_000, k: float = 1.0, c: float = 1.0,
                 method: str = "uniform") -> None:
        super().__init__(method)
        self.every = check_positive_int("RAD every", every)
        self.n_candidates = check_positive_int("RAD n_candidates", n_candidates)
        k, c = float(k), float(c)
        if not (math.isfinite(k) and k >= 0 and math.isfinite(c) and c >= 0) or (k == 0 and c == 0):
            raise ConfigError(f"RAD: expected finite k >= 0 and c >= 0, not both 0, got k={k}, c={c}")
        self.k, self.c = k, c

    def adapt(self, step: int, points: np.ndarray, residual: ResidualFn, domain: Any,
              rng: np.random.Generator) -> np.ndarray | None:
        if step % self.every:
            return None
        n = len(points)
        if n > self.n_candidates:
            raise ConfigError(f"RAD: {n} training points cannot be drawn without replacement from "
                              f"n_candidates={self.n_candidates}; raise n_candidates")
        x, r = _candidates(self, domain, self.n_candidates, rng, residual)
        weight = r**self.k
        mean = weight.mean()
        density = (weight / mean if mean > 0 else np.zeros_like(weight)) + self.c
        if not density.sum() > 0:  # k > 0, c = 0 and a residual that vanishes everywhere
            density = np.ones_like(density)
        chosen = rng.choice(len(x), size=n, replace=False, p=density / density.sum())
        return x[chosen]

    def __repr__(self) -> str:
        return (f"RAD(every={self.every}, n_candidates={self.n_candidates}, k={self.k}, c={self.c}, "
                f"method={self.method!r})")
