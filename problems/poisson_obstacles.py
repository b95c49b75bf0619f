"""Pressure-Poisson systems of a smoke simulation past random solid obstacles (the DCDM set-up).

The deep conjugate-direction method (DCDM) learns to solve the pressure projection of an
incompressible-flow step on a cell-centred grid. This problem builds such systems on ``n^d`` cells
(``d = 2`` or ``3``) of side ``h = 1 / n``: every node of a :class:`~sciml.fields.Grid` is read as the
centre of one cell, and ``solid[i] = 1`` marks an obstacle cell.

**Matrix.** Over the *fluid* cells only (numbered in C order over the fluid mask), the finite-volume
Laplacian with the positive sign and **without** the ``1 / h^2`` factor:

    (A p)_i = sum over the faces f of cell i of (p_i - p_f),

with three kinds of face:

* fluid-fluid: ``p_f`` is the neighbour's pressure (an off-diagonal ``-1``, ``+1`` on the diagonal);
* fluid-solid: Neumann, no flux through a static wall, so the face simply drops out;
* box boundary: Dirichlet ``p = 0`` in a ghost cell outside the box (open "air" walls), so the face
  adds ``1`` to the diagonal and nothing else.

So ``A_ii`` is the number of fluid neighbours plus the number of box-wall faces of cell ``i``, and
``A = h^2 (-Laplacian)``: unscaled integers, which keeps ``A`` exact in float32 too; a learned or
Krylov solver works with relative residuals and does not care. A connected fluid region that touches
no box wall would be a pure Neumann block (singular, constants in its null space): such **pockets
are filled** (made solid) first. Every remaining block then has a Dirichlet face, is irreducibly
diagonally dominant, and ``A`` is symmetric positive definite.

**Right-hand sides** (:func:`rhs`): ``"white"`` (standard normal), ``"range"`` (``A g`` with ``g``
standard normal) and ``"smoke"``, the realistic projection right-hand side (:func:`smoke_rhs`):

1. a face (MAC) velocity: a rising plume (upward speed ``0.2 + exp(-|x_h - c|^2 / 2 w^2)`` about a
   random column centre ``c`` in ``[0.3, 0.7]`` of the horizontal axes, width ``w`` in
   ``[0.06, 0.15]``) plus a smooth random perturbation (four Fourier modes of wavenumber up to 2
   per component, amplitude about 0.15); "up" is the last axis (``y`` in 2-D, ``z`` in 3-D);
2. normal velocity set to zero on every face that touches a solid cell (static obstacles);
3. one semi-Lagrangian step of every component: back-trace each face centre with ``dt = h / max|u|``
   (CFL 1, forward Euler) and interpolate multilinearly (clamped to the box), then zero the solid
   faces again;
4. ``b_i = -sum_f u*_f . n_f``, minus the net outward flux of cell ``i``. With
   ``u = u* - (dt / rho) grad p`` and ``sum_f u . n_f = 0`` per cell, ``A p~ = b`` holds for
   ``p~ = dt p / (rho h)``: the output ``p`` of this problem is that scaled pressure.

Simplifications against a real smoke solver (documented, deliberate): the velocity before
advection is synthetic and not itself divergence-free; no density or temperature field, no buoyancy
or other forces; open (Dirichlet) walls on all sides of the box, including the bottom, through which
the plume enters; first-order back-tracing.

**Layouts** (:class:`ObstacleLayout`): 1 to 6 axis-aligned boxes and discs (balls in 3-D) with
centres in ``[0.15, 0.85]^d`` and half-widths or radii in ``[0.05, 0.2]`` (box side 1), a ring of
``wall_gap`` cells along the box walls kept fluid (so that a fluid region with a Dirichlet face always
exists and an obstacle never covers the domain), pockets filled. The input ``solid`` is that
indicator; :func:`obstacle_system` fills pockets again in case a user passes their own layout.

The data output ``p`` solves ``A p = b`` on the fluid cells (scipy's sparse direct solver in 2-D;
in 3-D, AMG-preconditioned CG to a relative residual of 1e-12, as SuperLU's fill-in is slow there)
and is 0 on solid cells.

    python -c "import sciml; p = sciml.load_problem('poisson_obstacles')"
    sciml generate poisson_obstacles --n 100 --out obstacles.h5
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy import ndimage
from scipy.sparse.linalg import spsolve

from sciml.errors import ConfigError, NonFiniteError, ShapeError, UnknownNameError
from sciml.fields import Grid
from sciml.linalg import from_grid as linalg_from_grid
from sciml.linalg import to_grid as linalg_to_grid
from sciml.problem import Input, Problem
from sciml.spaces import Space, register_space

RHS_KINDS = ("white", "range", "smoke")
DIM = 2
RHS = "smoke"
SEED = 0  # combined with the layout's bytes into the seed of each sample's right-hand side


# -- layouts --------------------------------------------------------------------------------------
def _pair(name: str, value: Any, low: float, high: float) -> tuple[float, float]:
    """``value`` as a range ``(lo, hi)`` with ``low <= lo <= hi <= high``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a pair (lo, hi) of numbers, got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and low <= lo <= hi <= high):
        raise ConfigError(f"{name}: expected {low:g} <= lo <= hi <= {high:g}, got {value!r}")
    return lo, hi


@register_space
class ObstacleLayout(Space):
    """Random solid-obstacle indicators: 1.0 in solid cells, 0.0 in fluid cells.

    Per sample: the count ``K`` is uniform in ``min_obstacles..max_obstacles``; each obstacle is a
    ball (a disc in 2-D) with probability ``ball_fraction``, else an axis-aligned box. Its centre is
    uniform in ``centres^d`` and its radius (ball) or per-axis half-widths (box) uniform in
    ``sizes``, all in units of the box side. A cell is solid when its centre
    ``lo + (i + 1/2) (hi - lo) / n`` lies in the closed shape of some obstacle. The ``wall_gap``
    outermost cell layers are then made fluid and enclosed fluid pockets solid (:func:`fill_pockets`),
    so that every sample has fluid cells and a non-singular :func:`obstacle_system`.

    Prefix stable: sample ``i`` uses row ``i`` of one ``rng.random((n, 1 + K (2 + 2 d)))`` draw.
    """

    kind = "obstacle_layout"
    ndims = (2, 3)

    def __init__(self, max_obstacles: int = 6, min_obstacles: int = 1,
                 sizes: tuple[float, float] = (0.05, 0.2), centres: tuple[float, float] = (0.15, 0.85), ball_fraction: float = 0.5,
                 wall_gap: int = 1) -> None:
        for name, k, least in (("max_obstacles", max_obstacles, 1), ("min_obstacles", min_obstacles, 1),
                               ("wall_gap", wall_gap, 1)):
            # wall_gap >= 1: a fluid ring along the walls is what guarantees a non-empty system
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < least:
                raise ConfigError(f"ObstacleLayout {name}: expected an int >= {least}, got {k!r}")
        if min_obstacles > max_obstacles:
            raise ConfigError(f"ObstacleLayout: expected min_obstacles <= max_obstacles, got "
                              f"{min_obstacles} > {max_obstacles}")
        self.max_obstacles, self.min_obstacles = int(max_obstacles), int(min_obstacles)
        self.wall_gap = int(wall_gap)
        self.sizes = _pair("ObstacleLayout sizes", sizes, 0.0, 1.0)
        self.centres = _pair("ObstacleLayout centres", centres, 0.0, 1.0)
        fraction = (ball_fraction, ball_fraction)
        self.ball_fraction = _pair("ObstacleLayout ball_fraction", fraction, 0.0, 1.0)[0]

    def params(self) -> dict[str, Any]:
        return {"max_obstacles": self.max_obstacles, "min_obstacles": self.min_obstacles,
                "sizes": list(self.sizes), "centres": list(self.centres),
                "ball_fraction": self.ball_fraction, "wall_gap": self.wall_gap}

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        d, K = grid.ndim, self.max_obstacles
        u = rng.random((n, 1 + K * (2 + 2 * d)))
        span = K - self.min_obstacles + 1
        count = self.min_obstacles + np.minimum((u[:, 0] * span).astype(np.int64), span - 1)
        shapes = u[:, 1:].reshape(n, K, 2 + 2 * d)
        is_ball = shapes[..., 0] < self.ball_fraction
        centre = self.centres[0] + (self.centres[1] - self.centres[0]) * shapes[..., 1:1 + d]
        size = self.sizes[0] + (self.sizes[1] - self.sizes[0]) * shapes[..., 1 + d:]
        # cell centres in units of the box side, as an open mesh (broadcasts to the grid)
        t = np.ix_(*[(np.arange(m) + 0.5) / m for m in grid.shape])
        out = np.zeros((n, *grid.shape))
        for i in range(n):
            solid = np.zeros(grid.shape, dtype=bool)
            for k in range(count[i]):
                if is_ball[i, k]:
                    solid |= sum((t[a] - centre[i, k, a]) ** 2 for a in range(d)) <= size[i, k, 0] ** 2
                else:
                    inside = np.ones(grid.shape, dtype=bool)
                    for a in range(d):
                        inside = inside & (np.abs(t[a] - centre[i, k, a]) <= size[i, k, a])
                    solid |= inside
            for a in range(d):
                index = [slice(None)] * d
                for ring in (slice(0, self.wall_gap), slice(-self.wall_gap, None)):
                    index[a] = ring
                    solid[tuple(index)] = False
            out[i] = fill_pockets(solid)
        return out


# -- the linear system ----------------------------------------------------------------------------
def _as_solid(solid: Any) -> np.ndarray:
    """A 2-D or 3-D boolean solid indicator from a bool array or a 0/1 numeric one."""
    arr = np.asarray(solid)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ShapeError("solid", "a non-empty 2-D or 3-D grid of cells", arr.shape)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "biuf":
        raise ConfigError(f"solid: expected a boolean (or 0/1) cell indicator, got dtype {arr.dtype}")
    if not np.isin(arr, (0, 1)).all():
        bad = arr[~np.isin(arr, (0, 1))].ravel()[0]
        raise ConfigError(f"solid: expected 0/1 (or boolean) values, got {bad!r} among them")
    return arr != 0


def fill_pockets(solid: Any) -> np.ndarray:
    """``solid`` with every fluid region that touches no box wall made solid.

    Regions are face-connected (the connectivity of the 5/7-point stencil). A region without a wall
    face has only Neumann faces, so its block of ``A`` is singular; filling it is what a smoke solver
    does with fluid trapped inside an obstacle.

    Returns
    -------
    numpy.ndarray
        bool, the shape of ``solid``.
    """
    solid = _as_solid(solid)
    labels, count = ndimage.label(~solid)  # default structure: face neighbours only
    touches_wall = np.zeros(count + 1, dtype=bool)
    for axis in range(solid.ndim):
        touches_wall[np.take(labels, 0, axis=axis)] = True
        touches_wall[np.take(labels, -1, axis=axis)] = True
    touches_wall[0] = False  # label 0 is the solid itself
    return ~touches_wall[labels]


def obstacle_system(solid: Any) -> tuple[sp.csr_matrix, np.ndarray]:
    """The unscaled finite-volume ``-Laplacian`` over the fluid cells of a layout.

    Parameters
    ----------
    solid : numpy.ndarray, 2-D or 3-D, bool (or 0/1)
        True (1) on solid cells.

    Returns
    -------
    A : scipy.sparse.csr_matrix, float64, (n_fluid, n_fluid)
        ``A_ii`` = fluid neighbours + box-wall faces of cell ``i``, ``A_ij = -1`` for face neighbours
        (see the module docstring: Neumann at obstacles, Dirichlet ghost cells at the box walls).
        Symmetric positive definite.
    mask : numpy.ndarray, bool, the shape of ``solid``
        The fluid cells after pockets were filled; unknown ``k`` is the ``k``-th True cell in C order
        (:func:`to_grid`, :func:`from_grid`).

    Raises
    ------
    ConfigError
        No fluid cell connected to a box wall (the system would be empty).
    """
    mask = ~fill_pockets(solid)
    n_fluid = int(mask.sum())
    if n_fluid == 0:
        raise ConfigError(f"obstacle_system: expected fluid cells connected to the box walls, got none "
                          f"in a layout of shape {mask.shape}")
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[mask] = np.arange(n_fluid)
    diagonal = np.zeros(mask.shape)
    rows, cols = [], []
    d = mask.ndim
    for axis in range(d):
        low = tuple(slice(None, -1) if a == axis else slice(None) for a in range(d))
        high = tuple(slice(1, None) if a == axis else slice(None) for a in range(d))
        both = mask[low] & mask[high]  # fluid-fluid faces; fluid-solid faces drop out (Neumann)
        i, j = index[low][both], index[high][both]
        rows += [i, j]
        cols += [j, i]
        diagonal[low] += both
        diagonal[high] += both
        # Dirichlet ghost cell beyond each box wall: p = 0 there, so the face adds 1 to the diagonal
        for end in (0, -1):
            wall = tuple(end if a == axis else slice(None) for a in range(d))
            diagonal[wall] += 1.0
    off = np.concatenate(rows)
    r = np.concatenate(rows + [np.arange(n_fluid)])
    c = np.concatenate(cols + [np.arange(n_fluid)])
    data = np.concatenate([-np.ones(off.size), diagonal[mask]])
    A = sp.csr_matrix((data, (r, c)), shape=(n_fluid, n_fluid))
    A.sort_indices()
    return A, mask


# Unknowns <-> grid: one definition, sciml.linalg's (C order over the mask's True cells).
to_grid, from_grid = linalg_to_grid, linalg_from_grid


# -- right-hand sides -----------------------------------------------------------------------------
def _check_fluid_mask(mask: Any) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.ndim not in (2, 3):
        raise ConfigError(f"mask: expected a 2-D or 3-D boolean fluid mask, got dtype {mask.dtype} "
                          f"and shape {mask.shape}")
    if not mask.any():
        raise ConfigError(f"mask: expected at least one fluid cell, got none in shape {mask.shape}")
    return mask


def _open_faces(mask: np.ndarray, axis: int) -> np.ndarray:
    """Faces normal to ``axis`` through which fluid may flow: both sides fluid, outside the box counts
    as fluid (open walls). Shape: ``mask.shape`` with one more along ``axis``."""
    pad = [(0, 0)] * mask.ndim
    pad[axis] = (1, 1)
    padded = np.pad(mask, pad, constant_values=True)
    low = tuple(slice(None, -1) if a == axis else slice(None) for a in range(mask.ndim))
    high = tuple(slice(1, None) if a == axis else slice(None) for a in range(mask.ndim))
    return padded[low] & padded[high]


def _face_index_coords(points: np.ndarray, axis: int, h: float) -> np.ndarray:
    """Index coordinates in the face grid of ``axis`` of physical ``points (d, ...)``: faces of
    ``axis`` sit at ``j h`` along it and at cell centres ``(k + 1/2) h`` along the others."""
    coords = points / h
    offsets = np.full(points.shape[0], 0.5)
    offsets[axis] = 0.0
    return coords - offsets.reshape(-1, *([1] * (points.ndim - 1)))


def smoke_velocity(mask: Any, rng: np.random.Generator, cfl: float = 1.0) -> list[np.ndarray]:
    """The advected face velocity ``u*`` of the module docstring, one array per axis.

    Component ``a`` has the shape of ``mask`` with one more entry along ``a`` (faces at ``j h``);
    it is zero on every face that touches a solid cell.
    """
    mask = _check_fluid_mask(mask)
    d = mask.ndim
    h = 1.0 / max(mask.shape)
    up = d - 1
    centre = rng.uniform(0.3, 0.7, size=d - 1) * np.array([m * h for m in mask.shape[:-1]])
    width = rng.uniform(0.06, 0.15)
    modes = rng.integers(-2, 3, size=(d, 4, d))  # (component, mode, wave vector)
    phases = rng.uniform(0.0, 2 * np.pi, size=(d, 4))
    amplitudes = 0.075 * rng.standard_normal((d, 4))  # four modes: about 0.15 rms per component

    def velocity(points: np.ndarray, component: int) -> np.ndarray:
        """The analytic field's ``component`` at physical points ``(d, ...)``."""
        value = np.zeros(points.shape[1:])
        if component == up:
            r2 = sum((points[a] - centre[a]) ** 2 for a in range(d - 1))
            value += 0.2 + np.exp(-r2 / (2 * width**2))
        for k in range(4):
            phase = 2 * np.pi * np.tensordot(modes[component, k], points, axes=1) + phases[component, k]
            value += amplitudes[component, k] * np.sin(phase)
        return value

    face_points, faces, open_faces = [], [], []
    for a in range(d):
        shape = tuple(m + 1 if b == a else m for b, m in enumerate(mask.shape))
        idx = np.indices(shape, dtype=np.float64)
        offsets = np.full(d, 0.5)
        offsets[a] = 0.0
        points = (idx + offsets.reshape(-1, *([1] * d))) * h
        is_open = _open_faces(mask, a)
        face_points.append(points)
        open_faces.append(is_open)
        faces.append(velocity(points, a) * is_open)  # no flow through static obstacles

    top = max(float(np.max(np.abs(f))) for f in faces) or 1.0
    dt = float(cfl) * h / top
    advected = []
    for a in range(d):
        points = face_points[a]
        # the full velocity vector at the faces of axis a: its own component is stored there,
        # the others are interpolated from their face grids
        vel = np.empty_like(points)
        for b in range(d):
            if b == a:
                vel[b] = faces[a]
            else:
                vel[b] = ndimage.map_coordinates(faces[b], _face_index_coords(points, b, h), order=1,
                                                 mode="nearest")
        departure = points - dt * vel  # forward-Euler back-trace
        value = ndimage.map_coordinates(faces[a], _face_index_coords(departure, a, h), order=1,
                                        mode="nearest")
        advected.append(value * open_faces[a])
    return advected


def smoke_rhs(mask: Any, rng: np.random.Generator, cfl: float = 1.0) -> np.ndarray:
    """Minus the net outward flux of :func:`smoke_velocity` over every fluid cell, ``(n_fluid,)``."""
    mask = _check_fluid_mask(mask)
    faces = smoke_velocity(mask, rng, cfl)
    outflux = sum(np.diff(f, axis=a) for a, f in enumerate(faces))
    return -outflux[mask]


def rhs(kind: str, mask: Any, rng: np.random.Generator, A: sp.spmatrix | None = None) -> np.ndarray:
    """A right-hand side ``(n_fluid,)`` float64 of family ``kind`` for the fluid cells of ``mask``.

    Parameters
    ----------
    kind : {"white", "range", "smoke"}
        Standard normal; ``A g`` with ``g`` standard normal; the smoke-projection divergence.
    mask : numpy.ndarray, bool
        Fluid mask as returned by :func:`obstacle_system`.
    rng : numpy.random.Generator
    A : scipy sparse matrix, optional
        The matrix of ``mask`` for ``"range"`` (rebuilt from ``mask`` when not given).
    """
    if kind not in RHS_KINDS:
        raise UnknownNameError("right-hand-side kind", kind, RHS_KINDS)
    mask = _check_fluid_mask(mask)
    n = int(mask.sum())
    if kind == "white":
        b = rng.standard_normal(n)
    elif kind == "smoke":
        b = smoke_rhs(mask, rng)
    else:
        if A is None:
            A, filled = obstacle_system(~mask)
            if int(filled.sum()) != n:
                raise ConfigError(f"rhs: the mask has {n - int(filled.sum())} cells in fluid pockets without "
                                  "a wall face; expected the mask returned by obstacle_system")
        if A.shape != (n, n):
            raise ShapeError("rhs A", (n, n), A.shape)
        b = np.asarray(A @ rng.standard_normal(n), dtype=np.float64)
    if not np.isfinite(b).all():
        raise NonFiniteError(f"rhs {kind!r}: expected finite values, got NaN or Inf")
    return b


# -- the Problem ----------------------------------------------------------------------------------
def _layout(value: Any, grid: Grid) -> np.ndarray:
    """One sample's solid indicator as bool: cells with ``solid >= 0.5`` are solid, so that layouts
    resampled from another grid (fractional values) still read as one."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape == (1, *grid.shape):
        arr = arr[0]
    if arr.shape != grid.shape:
        raise ShapeError("input 'solid' (one sample)", grid.shape, arr.shape)
    if not np.isfinite(arr).all():
        raise NonFiniteError("input 'solid': expected finite values, got NaN or Inf")
    return arr >= 0.5


def _sample_rng(mask: np.ndarray, params: dict[str, Any]) -> np.random.Generator:
    """A generator fixed by the layout and the ``seed`` param: one layout, one right-hand side."""
    key = zlib.crc32(np.packbits(mask).tobytes())
    return np.random.default_rng([int(params.get("seed", SEED)), key, *mask.shape])


def _rhs_kind(params: dict[str, Any]) -> str:
    return str(params.get("rhs", params.get("rhs_kind", RHS)))


def system(inputs: dict[str, Any], grid: Grid, params: dict[str, Any]) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(A, b)`` of one sample: :func:`obstacle_system` and the ``params["rhs"]`` right-hand side."""
    A, mask = obstacle_system(_layout(inputs["solid"], grid))
    return A, rhs(_rhs_kind(params), mask, _sample_rng(mask, params), A=A)


def reference(inputs: dict[str, Any], grid: Grid, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """The scaled pressure ``p`` of every sample, ``(B, *grid.shape)``: solved on the fluid cells
    (:func:`_solve`), 0 on solid cells (filled pockets included)."""
    layouts = np.asarray(inputs["solid"], dtype=np.float64)
    if layouts.shape[1:] != grid.shape:
        raise ShapeError("input 'solid'", ("B", *grid.shape), layouts.shape)
    out = np.zeros(layouts.shape)
    for i, layout in enumerate(layouts):
        A, mask = obstacle_system(_layout(layout, grid))
        b = rhs(_rhs_kind(params), mask, _sample_rng(mask, params), A=A)
        out[i][mask] = _solve(A, b, mask.ndim)
    return {"p": out}


def _solve(A: sp.csr_matrix, b: np.ndarray, dim: int) -> np.ndarray:
    """``A^{-1} b``: SuperLU in 2-D; in 3-D, where its fill-in makes one 32^3 solve take ~15 s, CG
    preconditioned by smoothed-aggregation AMG to a relative residual of 1e-12 (~0.6 s), with
    SuperLU as the fallback should AMG not get there."""
    if dim == 3 and np.any(b):
        import pyamg  # a dependency of sciml; imported here so that loading the problem stays light

        x = pyamg.smoothed_aggregation_solver(A).solve(b, tol=1e-12, accel="cg", maxiter=500)
        if np.linalg.norm(b - A @ x) <= 1e-11 * np.linalg.norm(b):
            return x
    return spsolve(A.tocsc(), b)


def make_problem(dim: int = DIM, rhs: str = RHS, n: int | None = None, seed: int = SEED) -> Problem:
    """The problem on ``n^dim`` cells (default 64^2 in 2-D, 32^3 in 3-D) with ``rhs`` right-hand sides.

    ``seed`` (with each layout) fixes the right-hand sides, so that ``system`` and ``reference``
    agree and a dataset can be regenerated.
    """
    if dim not in (2, 3):
        raise ConfigError(f"poisson_obstacles: expected dim 2 or 3, got {dim!r}")
    if rhs not in RHS_KINDS:
        raise UnknownNameError("right-hand-side kind", rhs, RHS_KINDS)
    n = (64 if dim == 2 else 32) if n is None else n
    return Problem(
        name="poisson_obstacles",
        inputs=[Input("solid", space=ObstacleLayout(),
                      description="solid-obstacle indicator (1 solid, 0 fluid)")],
        outputs=["p"],
        grid=Grid(n, ndim=dim),
        reference=reference,
        system=system,
        params={"dim": int(dim), "rhs": rhs, "seed": int(seed)},
        description=f"pressure Poisson on {dim}-D cells past random obstacles ({rhs} right-hand sides): "
                    "Neumann at obstacles, Dirichlet at the walls",
    )


problem = make_problem()
