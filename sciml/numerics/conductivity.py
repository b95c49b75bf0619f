"""Forward models of boundary-value inverse problems on a 2-D box grid, in float64.

The measurement operators of three classical inverse problems, all built on one finite-volume
discretisation of the box:

* :func:`dtn`: the Dirichlet-to-Neumann (Calderon) map of ``-div(a grad u) = 0``: boundary voltages
  ``g`` to outward boundary fluxes ``a du/dn``;
* :func:`ntd`: the Neumann-to-Dirichlet map of the same equation (electrical impedance tomography):
  mean-zero boundary currents to boundary voltages of zero mean;
* :func:`helmholtz_dtn`: the Dirichlet-to-Neumann map of ``Delta u + omega^2 kappa u = 0``
  (inverse scattering).

Boundary data live on the boundary nodes in the counter-clockwise :func:`boundary_order`.

Discretisation
--------------
Every node owns the control volume of the dual grid around it: a full ``hx * hy`` cell inside, a
half cell on an edge and a quarter cell at a corner. Integrating ``-div(a grad u)`` over the
control volume of node ``p`` and approximating the flux through each dual face by a two-point
difference gives the full-grid operator

.. math::  (K u)_p = \\sum_{q \\sim p} c_{pq}\\, a_{pq}\\, (u_p - u_q),

a weighted graph Laplacian over the grid edges. ``a_{pq}`` is the face mean of the two node values
(arithmetic or harmonic, as in :mod:`sciml.numerics.fd`) and ``c_{pq}`` is the length of the dual
face divided by the edge length: ``hy / hx`` for an x-edge, ``hx / hy`` for a y-edge, halved for an
edge lying *along* the boundary, whose dual face is cut in half by the boundary. On interior rows
``K`` is ``hx * hy`` times the 5-point operator of :func:`~sciml.numerics.fd.assemble_elliptic`, so
the interior solutions agree with :mod:`~sciml.numerics.fd`.

On a boundary node ``b`` the integral over its control volume leaves the flux through the boundary
part of the control volume, so the *consistent* (variational, Schur-complement) flux is

.. math::  (a\\,\\partial_n u)_b = (K u)_b / w_b,

with ``w_b`` the boundary length of the control volume (:func:`boundary_weights`). Splitting ``K``
into interior (``i``) and boundary (``b``) blocks, the discrete DtN matrix is
``W^{-1} (K_bb - K_bi K_ii^{-1} K_ib)``, whose weighted form ``W M`` is symmetric positive
semi-definite with the constants as its kernel, as for the continuous map. For a source-free smooth
solution the flux is second-order accurate: the half-cell leaves an ``(h/2) div(a grad u)`` term,
which vanishes. At a corner the flux is the arc-length mean of the normal derivatives of its two
sides (the normal is undefined there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._checks import as_float_array, check_name, check_positive_int
from ..errors import ArgumentValueError, ConfigError, ShapeError
from ..grid import Grid
from .fd import FACE_MEANS, _batched, _check_coefficient, _check_grid, _factorise

__all__ = [
    "boundary_order",
    "boundary_angles",
    "boundary_weights",
    "trig_patterns",
    "dtn",
    "dtn_matrix",
    "ntd",
    "helmholtz_dtn",
    "add_multiplicative_noise",
]


# --------------------------------------------------------------------------------------------
# Layout of the full-grid operator, cached per grid
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Block:
    """CSR structure of one block of ``K`` and where the edge contributions land in it."""

    select: np.ndarray  # indices into the contribution vector that fall into this block
    slot: np.ndarray  # CSR data position of each selected contribution (duplicates are summed)
    nnz: int
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]

    def matrix(self, contributions: np.ndarray) -> sp.csr_matrix:
        data = np.bincount(self.slot, weights=contributions[self.select], minlength=self.nnz)
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)


@dataclass(frozen=True)
class _BoxLayout:
    """Index bookkeeping of a 2-D grid in the unknown order ``[interior (C order), boundary (ccw)]``."""

    shape: tuple[int, int]
    spacing: tuple[float, float]
    n_int: int
    n_bnd: int
    nodes: np.ndarray  # (N,) original flat index of each node in the unknown order
    edge_p: np.ndarray  # (E,) original flat index of the lower end of each edge
    edge_q: np.ndarray  # (E,) ... of the upper end
    edge_P: np.ndarray  # (E,) the same ends in the unknown order
    edge_Q: np.ndarray
    geom: np.ndarray  # (E,) dual-face length / edge length
    area: np.ndarray  # (N,) control-volume area, unknown order
    weights: np.ndarray  # (n_bnd,) boundary length of each boundary node's control volume
    ii: _Block
    ib: _Block
    bb: _Block
    pinned: _Block  # all nodes but the last boundary node, for the pure-Neumann problem


def _block(rows: np.ndarray, cols: np.ndarray, r: tuple[int, int], c: tuple[int, int]) -> _Block:
    keep = np.flatnonzero((rows >= r[0]) & (rows < r[1]) & (cols >= c[0]) & (cols < c[1]))
    n_rows, n_cols = r[1] - r[0], c[1] - c[0]
    key = (rows[keep] - r[0]) * n_cols + (cols[keep] - c[0])
    # np.unique sorts row-major, which is exactly CSR order with sorted column indices.
    unique, slot = np.unique(key, return_inverse=True)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(unique // n_cols, minlength=n_rows), out=indptr[1:])
    return _Block(keep, slot.ravel(), int(unique.size), (unique % n_cols).astype(np.int32),
                  indptr.astype(np.int32), (n_rows, n_cols))


def _check_grid_2d(grid: Any, where: str) -> Grid:
    grid = _check_grid(grid, where)
    if grid.ndim != 2:
        raise ConfigError(f"{where}: expected a 2-D grid, got {grid.ndim}-D shape {grid.shape}")
    return grid


def _ccw_boundary(nx: int, ny: int) -> np.ndarray:
    """Flat indices of the boundary nodes in the perimeter order of :func:`sciml.spaces.boundary_indices`
    (one definition of that order: boundary data drawn by ``BoundaryGRF`` and measurements agree)."""
    from ..spaces.boundary import boundary_indices

    index, _ = boundary_indices(Grid((nx, ny), ((0.0, 1.0), (0.0, 1.0))))
    return (index[:, 0] * ny + index[:, 1]).astype(np.int64)


@lru_cache(maxsize=16)
def _box_layout(grid: Grid) -> _BoxLayout:
    nx, ny = grid.shape
    hx, hy = grid.spacing
    full = np.arange(nx * ny).reshape(nx, ny)
    order = _ccw_boundary(nx, ny)
    interior = full[1:-1, 1:-1].ravel()
    nodes = np.concatenate([interior, order])
    position = np.empty(nx * ny, dtype=np.int64)
    position[nodes] = np.arange(nodes.size)

    # x-edges (i, j)-(i+1, j) and y-edges (i, j)-(i, j+1); an edge along a side of the box has only
    # half a dual face inside the box.
    ex_p, ex_q = full[:-1, :].ravel(), full[1:, :].ravel()
    cx = np.ones((nx - 1, ny))
    cx[:, [0, -1]] = 0.5
    ey_p, ey_q = full[:, :-1].ravel(), full[:, 1:].ravel()
    cy = np.ones((nx, ny - 1))
    cy[[0, -1], :] = 0.5
    edge_p, edge_q = np.concatenate([ex_p, ey_p]), np.concatenate([ex_q, ey_q])
    geom = np.concatenate([cx.ravel() * (hy / hx), cy.ravel() * (hx / hy)])

    fx, fy = np.ones(nx), np.ones(ny)
    fx[[0, -1]] = 0.5
    fy[[0, -1]] = 0.5
    area = (hx * hy * np.outer(fx, fy)).ravel()[nodes]

    # Trapezoid rule on the closed polygon: every boundary node gets half of each of its two
    # boundary segments, so h on a side and (hx + hy) / 2 at a corner (h at a square's corner).
    on_x_side = np.isin(order // ny, (0, nx - 1))  # node on x = lo or x = hi
    on_y_side = np.isin(order % ny, (0, ny - 1))
    weights = np.where(on_x_side & on_y_side, 0.5 * (hx + hy), np.where(on_y_side, hx, hy))

    P, Q = position[edge_p], position[edge_q]
    n_all = nodes.size
    diag = np.arange(n_all)
    # Contribution vector layout, see _contributions: [w, w, -w, -w, mass].
    rows = np.concatenate([P, Q, P, Q, diag])
    cols = np.concatenate([P, Q, Q, P, diag])
    n_int = interior.size
    return _BoxLayout(
        shape=(nx, ny), spacing=(hx, hy), n_int=n_int, n_bnd=order.size, nodes=nodes,
        edge_p=edge_p, edge_q=edge_q, edge_P=P, edge_Q=Q, geom=geom, area=area, weights=weights,
        ii=_block(rows, cols, (0, n_int), (0, n_int)),
        ib=_block(rows, cols, (0, n_int), (n_int, n_all)),
        bb=_block(rows, cols, (n_int, n_all), (n_int, n_all)),
        pinned=_block(rows, cols, (0, n_all - 1), (0, n_all - 1)),
    )


# --------------------------------------------------------------------------------------------
# Assembly (shared with sciml.numerics.inversion)
# --------------------------------------------------------------------------------------------
def _face_mean(a_flat: np.ndarray, layout: _BoxLayout, face: str) -> np.ndarray:
    ap, aq = a_flat[layout.edge_p], a_flat[layout.edge_q]
    if face == "arithmetic":
        return 0.5 * (ap + aq)
    return 2.0 * ap * aq / (ap + aq)


def _face_mean_derivatives(
    a_flat: np.ndarray, layout: _BoxLayout, face: str
) -> tuple[np.ndarray, np.ndarray]:
    """d(face mean)/d a_p and d(face mean)/d a_q per edge."""
    ap, aq = a_flat[layout.edge_p], a_flat[layout.edge_q]
    if face == "arithmetic":
        half = np.full(ap.shape, 0.5)
        return half, half
    s2 = (ap + aq) ** 2
    return 2.0 * aq**2 / s2, 2.0 * ap**2 / s2


def _contributions(layout: _BoxLayout, edge_weights: np.ndarray, mass: np.ndarray | None) -> np.ndarray:
    m = np.zeros(layout.nodes.size) if mass is None else mass
    return np.concatenate([edge_weights, edge_weights, -edge_weights, -edge_weights, m])


def _assemble_blocks(
    layout: _BoxLayout, a_flat: np.ndarray, face: str, mass: np.ndarray | None = None
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """``K_ii, K_ib, K_bb`` for one coefficient given as a flat C-order node array.

    ``mass`` (unknown order) is added to the diagonal: ``-omega^2 kappa * area`` for Helmholtz.
    """
    c = _contributions(layout, layout.geom * _face_mean(a_flat, layout, face), mass)
    return layout.ii.matrix(c), layout.ib.matrix(c), layout.bb.matrix(c)


def _dirichlet_flux(
    lu: Any, K_ib: sp.csr_matrix, K_bb: sp.csr_matrix, g: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Interior solutions ``(n_int, L)`` and consistent fluxes ``(n_bnd, L)`` for data ``g (n_bnd, L)``."""
    u_int = lu.solve(np.asfortranarray(-(K_ib @ g)))
    flux = (K_ib.T @ u_int + K_bb @ g) / weights[:, None]
    return u_int, flux


# --------------------------------------------------------------------------------------------
# Boundary geometry and patterns
# --------------------------------------------------------------------------------------------
def boundary_order(grid: Grid) -> np.ndarray:
    """Flat (C-order) indices of the boundary nodes, counter-clockwise from the corner ``(lo, lo)``.

    Along ``y = lo`` with ``x`` increasing, then ``x = hi`` with ``y`` increasing, then ``y = hi``
    with ``x`` decreasing, then ``x = lo`` with ``y`` decreasing; each node once, so
    ``2 (nx - 1) + 2 (ny - 1)`` of them. ``u.ravel()[boundary_order(grid)]`` reads boundary data.
    """
    grid = _check_grid_2d(grid, "boundary_order")
    return _ccw_boundary(*grid.shape)


def boundary_angles(grid: Grid) -> np.ndarray:
    """Polar angle in ``(-pi, pi]`` of each boundary node about the centre of the box, in boundary order."""
    grid = _check_grid_2d(grid, "boundary_angles")
    pts = grid.points()[_ccw_boundary(*grid.shape)]
    centre = [0.5 * (lo + hi) for lo, hi in grid.bounds]
    return np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])


def boundary_weights(grid: Grid) -> np.ndarray:
    """Trapezoid-rule arc-length weight of each boundary node, in boundary order.

    A node gets half of each of its two adjacent boundary segments: ``hx`` on the sides ``y = lo``
    and ``y = hi``, ``hy`` on ``x = lo`` and ``x = hi`` and ``(hx + hy) / 2`` at a corner, i.e.
    ``h`` everywhere on a square grid. The weights sum to the perimeter, and they are the boundary
    lengths of the nodes' control volumes, so ``flux * weights`` is the row of the full operator.
    """
    grid = _check_grid_2d(grid, "boundary_weights")
    return _box_layout(grid).weights.copy()


def trig_patterns(grid: Grid, L: int) -> np.ndarray:
    """The first ``L`` of ``cos(theta), sin(theta), cos(2 theta), sin(2 theta), ...`` at the boundary nodes.

    Parameters
    ----------
    grid : Grid
        2-D grid.
    L : int
        Number of patterns, at least 1.

    Returns
    -------
    numpy.ndarray, float64, ``(L, n_bnd)``
        ``theta`` from :func:`boundary_angles`. These are not exactly mean-zero in the boundary
        quadrature on a box (``cos(4 theta)`` is not), which matters only to :func:`ntd`, which
        projects currents to mean zero.
    """
    grid = _check_grid_2d(grid, "trig_patterns")
    L = check_positive_int("L", L)
    theta = boundary_angles(grid)
    m = np.arange(L)
    k = (m // 2 + 1)[:, None]
    return np.where((m % 2 == 0)[:, None], np.cos(k * theta), np.sin(k * theta))


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------
def _check_patterns(name: str, x: Any, n_bnd: int) -> np.ndarray:
    arr = as_float_array(name, x)
    if arr.ndim != 2 or arr.shape[1] != n_bnd or arr.shape[0] < 1:
        raise ShapeError(name, f"(L, {n_bnd}) with L >= 1 (boundary nodes in boundary_order)", arr.shape)
    return arr


def _coefficients(a: Any, grid: Grid, face: str) -> tuple[np.ndarray, bool]:
    check_name("face mean", face, FACE_MEANS)
    ab, batched = _batched("a", a, grid)
    _check_coefficient(ab)
    return ab, batched


# --------------------------------------------------------------------------------------------
# Conductivity: Dirichlet-to-Neumann and Neumann-to-Dirichlet
# --------------------------------------------------------------------------------------------
def dtn(a: Any, grid: Grid, patterns: Any, face: str = "arithmetic") -> np.ndarray:
    """Dirichlet-to-Neumann (Calderon) map of ``-div(a grad u) = 0``: boundary fluxes ``a du/dn``.

    Parameters
    ----------
    a : array-like ``(B, nx, ny)`` or ``(nx, ny)``, or a number
        Conductivity at the nodes; finite and strictly positive.
    grid : Grid
        2-D grid, at least 3 nodes per axis.
    patterns : array-like ``(L, n_bnd)``
        Dirichlet data ``g_l`` on the boundary nodes in :func:`boundary_order`.
    face : {"arithmetic", "harmonic"}
        Face mean of the coefficient, as in :mod:`sciml.numerics.fd`.

    Returns
    -------
    numpy.ndarray, float64
        Outward consistent flux ``(B, L, n_bnd)``, or ``(L, n_bnd)`` for an unbatched ``a``.

    Notes
    -----
    One sparse LU factorisation of ``K_ii`` per sample serves its ``L`` right-hand sides. The flux
    is ``(K u)_b / w_b`` (module notes): second-order accurate, and exact for linear ``u`` when
    ``a`` is constant. Cost on one core (of a busy machine): about 5 ms per sample at 33^2 and
    20 ms at 65^2, ``L = 16``.
    """
    grid = _check_grid_2d(grid, "dtn")
    ab, batched = _coefficients(a, grid, face)
    layout = _box_layout(grid)
    g = _check_patterns("patterns", patterns, layout.n_bnd).T
    out = np.empty((ab.shape[0], g.shape[1], layout.n_bnd))
    for s in range(ab.shape[0]):
        K_ii, K_ib, K_bb = _assemble_blocks(layout, ab[s].ravel(), face)
        out[s] = _dirichlet_flux(_factorise(K_ii), K_ib, K_bb, g, layout.weights)[1].T
    return out if batched else out[0]


def dtn_matrix(a: Any, grid: Grid, face: str = "arithmetic") -> np.ndarray:
    """Dense discrete DtN matrix ``M`` of one coefficient: ``flux = M @ g`` in boundary order.

    Parameters
    ----------
    a : array-like ``(nx, ny)`` or a number
        One conductivity, finite and strictly positive.
    grid : Grid
    face : {"arithmetic", "harmonic"}

    Returns
    -------
    numpy.ndarray, float64, ``(n_bnd, n_bnd)``
        ``M = W^{-1} (K_bb - K_bi K_ii^{-1} K_ib)`` with ``W = diag(boundary_weights(grid))``.
        ``W M`` is symmetric positive semi-definite and ``M @ 1 = 0``.
    """
    grid = _check_grid_2d(grid, "dtn_matrix")
    ab, _ = _coefficients(a, grid, face)
    if ab.shape[0] != 1:
        raise ShapeError("a (dtn_matrix takes one coefficient)", grid.shape, ab.shape)
    layout = _box_layout(grid)
    K_ii, K_ib, K_bb = _assemble_blocks(layout, ab[0].ravel(), face)
    x = _factorise(K_ii).solve(np.asfortranarray(K_ib.toarray()))
    schur = K_bb.toarray() - K_ib.T @ x
    # Symmetrise away the round-off of the triangular solves: the exact Schur complement is symmetric.
    schur = 0.5 * (schur + schur.T)
    return schur / layout.weights[:, None]


def _project_currents(currents: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Currents minus their boundary-quadrature mean; a current with nothing left is refused."""
    means = currents @ weights / weights.sum()
    projected = currents - means[:, None]
    before = np.sqrt((currents**2) @ weights)
    after = np.sqrt((projected**2) @ weights)
    empty = np.flatnonzero(after <= 1e-12 * np.maximum(before, np.finfo(np.float64).tiny))
    if empty.size:
        raise ArgumentValueError(
            "currents",
            f"expected currents that are not constant along the boundary (the Neumann problem needs "
            f"mean-zero currents, so the boundary mean is removed), got {empty.size} pattern(s) that "
            f"vanish after removing the mean: indices {empty[:10].tolist()}",
            values=currents,
        )
    return projected


def ntd(a: Any, grid: Grid, currents: Any, face: str = "arithmetic") -> np.ndarray:
    """Neumann-to-Dirichlet map of ``-div(a grad u) = 0`` (electrical impedance tomography).

    Parameters
    ----------
    a : array-like ``(B, nx, ny)`` or ``(nx, ny)``, or a number
        Conductivity at the nodes; finite and strictly positive.
    grid : Grid
        2-D grid.
    currents : array-like ``(L, n_bnd)``
        Boundary fluxes ``a du/dn`` in :func:`boundary_order`. The Neumann problem is solvable only
        for currents of zero mean in the boundary quadrature (:func:`boundary_weights`), so each
        current is first projected to mean zero; one that is constant (nothing left) is refused.
    face : {"arithmetic", "harmonic"}

    Returns
    -------
    numpy.ndarray, float64
        Boundary voltages ``(B, L, n_bnd)`` (``(L, n_bnd)`` unbatched), normalised to zero
        boundary mean.

    Notes
    -----
    The pure-Neumann operator ``K`` is singular (constants); pinning the last boundary node to zero
    leaves a symmetric positive definite system (one LU per sample, all ``L`` currents at once),
    whose dropped equation holds automatically for mean-zero currents; the voltages are then shifted
    to zero mean. On mean-zero data ``ntd`` inverts :func:`dtn` exactly (up to round-off).
    """
    grid = _check_grid_2d(grid, "ntd")
    ab, batched = _coefficients(a, grid, face)
    layout = _box_layout(grid)
    w = layout.weights
    c = _project_currents(_check_patterns("currents", currents, layout.n_bnd), w)
    n_all, n_int = layout.nodes.size, layout.n_int
    rhs = np.zeros((n_all, c.shape[0]))
    rhs[n_int:] = w[:, None] * c.T
    rhs = np.asfortranarray(rhs[:-1])  # the pinned node's equation is dropped
    out = np.empty((ab.shape[0], c.shape[0], layout.n_bnd))
    for s in range(ab.shape[0]):
        contrib = _contributions(layout, layout.geom * _face_mean(ab[s].ravel(), layout, face), None)
        u = _factorise(layout.pinned.matrix(contrib)).solve(rhs)
        v = np.vstack([u[n_int:], np.zeros((1, c.shape[0]))])
        out[s] = (v - (w @ v) / w.sum()).T
    return out if batched else out[0]


# --------------------------------------------------------------------------------------------
# Helmholtz
# --------------------------------------------------------------------------------------------
def _inverse_norm1(lu: Any, n: int, max_iter: int = 5) -> float:
    """Hager/Higham estimate of ``||A^{-1}||_1`` from an LU of ``A``: a few solves, not ``n``."""
    x = np.full(n, 1.0 / n)
    estimate = 0.0
    for _ in range(max_iter):
        y = lu.solve(x)
        new = float(np.abs(y).sum())
        if not math.isfinite(new):
            return math.inf
        z = lu.solve(np.where(y >= 0.0, 1.0, -1.0), trans="T")
        j = int(np.argmax(np.abs(z)))
        if new <= estimate or abs(z[j]) <= z @ x:
            estimate = max(estimate, new)
            break
        estimate = new
        x = np.zeros(n)
        x[j] = 1.0
    # Higham's extra test vector catches matrices where the power-like iteration stalls early.
    k = np.arange(n)
    alt = np.where(k % 2 == 0, 1.0, -1.0) * (1.0 + k / max(n - 1, 1))
    extra = 2.0 * float(np.abs(lu.solve(alt)).sum()) / (3.0 * n)
    return max(estimate, extra) if math.isfinite(extra) else math.inf


def _factorise_indefinite(A: sp.csr_matrix, omega: float, rcond_min: float) -> Any:
    hint = ("expected omega away from the resonances of the box (omega^2 kappa near a Dirichlet "
            "eigenvalue of the discrete Laplacian makes the Helmholtz problem ill-posed)")
    try:
        # Indefinite: the default COLAMD ordering with partial pivoting, unlike fd's SPD settings.
        lu = spla.splu(A.tocsc())
    except RuntimeError as exc:  # SuperLU: "Factor is exactly singular"
        raise ArgumentValueError(
            "omega", f"{hint}, got omega={omega:.17g}: singular system ({exc})") from None
    norm_a = float(abs(A).sum(axis=0).max())
    rcond = 1.0 / (norm_a * _inverse_norm1(lu, A.shape[0]))
    if not rcond >= rcond_min:
        raise ArgumentValueError(
            "omega", f"{hint}, got omega={omega:.17g}: estimated reciprocal condition number "
                     f"{rcond:.3g} < {rcond_min:.3g} (near-resonant system)")
    return lu


def helmholtz_dtn(
    kappa: Any, grid: Grid, patterns: Any, omega: float, *, rcond_min: float = 1e-10
) -> np.ndarray:
    """Dirichlet-to-Neumann map of ``Delta u + omega^2 kappa u = 0`` (inverse scattering).

    Parameters
    ----------
    kappa : array-like ``(B, nx, ny)`` or ``(nx, ny)``, or a number
        Real, finite squared refractive index (or its contrast) at the nodes.
    grid : Grid
        2-D grid.
    patterns : array-like ``(L, n_bnd)``
        Dirichlet data in :func:`boundary_order`.
    omega : float
        Finite wave number, ``>= 0``.
    rcond_min : float
        Smallest accepted estimate of the reciprocal 1-norm condition number of the interior
        system; below it the system counts as (near-)resonant.

    Returns
    -------
    numpy.ndarray, float64
        Outward consistent flux ``du/dn``, ``(B, L, n_bnd)`` or ``(L, n_bnd)`` unbatched.

    Raises
    ------
    ArgumentValueError
        For ``omega`` at or near a resonance (singular factorisation or tiny ``rcond``).

    Notes
    -----
    The operator of :func:`dtn` with ``a = 1`` minus ``omega^2 kappa`` times the control-volume area
    on the diagonal (full, half and quarter cells), so the flux is ``(K u - omega^2 M u)_b / w_b``
    and ``kappa = 0`` reproduces :func:`dtn` with ``a = 1``. The interior system is symmetric but
    indefinite above the first resonance; it is factorised once per sample by SuperLU with partial
    pivoting, and its condition is estimated with a few extra solves (Hager/Higham).
    """
    grid = _check_grid_2d(grid, "helmholtz_dtn")
    kb, batched = _batched("kappa", kappa, grid)
    if isinstance(omega, bool) or not isinstance(omega, (int, float, np.integer, np.floating)):
        raise ArgumentValueError("omega", f"expected a real number, got {type(omega).__name__}")
    omega = float(omega)
    if not (math.isfinite(omega) and omega >= 0.0):
        raise ArgumentValueError("omega", f"expected a finite number >= 0, got {omega}")
    if not (isinstance(rcond_min, (int, float)) and 0.0 <= rcond_min < 1.0):
        raise ConfigError(f"rcond_min: expected a number in [0, 1), got {rcond_min!r}")
    layout = _box_layout(grid)
    g = _check_patterns("patterns", patterns, layout.n_bnd).T
    ones = np.ones(grid.size)
    out = np.empty((kb.shape[0], g.shape[1], layout.n_bnd))
    for s in range(kb.shape[0]):
        mass = -(omega**2) * kb[s].ravel()[layout.nodes] * layout.area
        K_ii, K_ib, K_bb = _assemble_blocks(layout, ones, "arithmetic", mass)
        lu = _factorise_indefinite(K_ii, omega, rcond_min)
        out[s] = _dirichlet_flux(lu, K_ib, K_bb, g, layout.weights)[1].T
    return out if batched else out[0]


# --------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------
def add_multiplicative_noise(measurements: Any, level: float, rng: np.random.Generator) -> np.ndarray:
    """``m * (1 + level * N(0, 1))`` with independent standard normal draws per entry.

    Parameters
    ----------
    measurements : array-like
        Finite data of any shape.
    level : float
        Relative noise level, finite and ``>= 0``; the relative L2 size of the added noise is
        about ``level``.
    rng : numpy.random.Generator
        Required, so that the draws are reproducible and never touch numpy's global state.

    Returns
    -------
    numpy.ndarray, float64, same shape as ``measurements`` (a new array).
    """
    m = as_float_array("measurements", measurements)
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng: expected a numpy.random.Generator (np.random.default_rng(seed)), "
                          f"got {type(rng).__name__}")
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)):
        raise ArgumentValueError("level", f"expected a real number >= 0, got {type(level).__name__}")
    if not (math.isfinite(level) and level >= 0.0):
        raise ArgumentValueError("level", f"expected a finite number >= 0, got {level}")
    return m * (1.0 + float(level) * rng.standard_normal(m.shape))
