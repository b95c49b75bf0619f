"""Classical PDE-constrained inversion of Dirichlet-to-Neumann (Calderon) data, in float64.

Recovers a nodal conductivity ``a`` on a 2-D box grid from the boundary fluxes
``d_l = dtn(a_true) g_l`` of Dirichlet patterns ``g_l`` (see :mod:`sciml.numerics.conductivity`) by
minimising

.. math::  J(a) = \\frac{1}{2} \\frac{\\sum_l \\| W^{1/2} (F_l(a) - d_l) \\|^2}{\\sum_l \\| W^{1/2} d_l \\|^2}
                  + \\alpha R(a),

with ``F_l(a)`` the discrete consistent flux, ``W`` the boundary quadrature weights and ``R`` a
regulariser. The relative residual is ``sqrt(2 J_data)``, comparable with a relative noise level.

Choices
-------
* Unknown: the nodal conductivity itself, kept in ``[lo, hi]`` by L-BFGS-B's bounds (no ``exp``
  parametrisation), so Tikhonov smoothing acts on ``a`` and the bounds are exact.
* Regularisers, on cells of the grid with the squared cell gradient
  ``q_c = mean of the two (D_x a)^2 on the cell's x-edges + mean of the two (D_y a)^2`` (averaging
  squares, not differences, leaves no checkerboard in the kernel):
  Tikhonov ``R = 1/2 sum_c q_c hx hy`` (about ``1/2 int |grad a|^2``) and smoothed total variation
  ``R = sum_c sqrt(q_c + eps^2) hx hy``.
* Gradient: discretise-then-optimise adjoint. With ``K`` the full-grid operator and ``u_l`` the
  forward solutions, the flux residual ``r_l`` enters as the Dirichlet data of the adjoint field
  ``lambda_l`` (interior part ``-K_ii^{-1} K_ib r_l``), and ``dJ_data = sum_l lambda_l^T dK u_l / D``;
  ``K`` is symmetric, so one LU of ``K_ii`` serves the ``L`` forward and ``L`` adjoint solves. The
  gradient is that of the discrete ``J`` to round-off.
* Regularisation weight: given, or chosen by Morozov's discrepancy principle: a geometric sweep of
  ``alpha`` from large to small, warm-started, stopping at the first (largest) ``alpha`` whose
  relative residual is ``<= tau * noise_level``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from .._checks import as_float_array, check_name, check_positive_int
from ..errors import ArgumentValueError, ConfigError, ShapeError
from ..grid import Grid
from .conductivity import (
    _assemble_blocks,
    _box_layout,
    _check_grid_2d,
    _check_patterns,
    _dirichlet_flux,
    _face_mean_derivatives,
)
from .fd import FACE_MEANS, _batched, _check_coefficient, _factorise

__all__ = [
    "REGULARIZATIONS",
    "InversionResult",
    "conductivity_objective",
    "invert_conductivity",
    "invert_conductivity_batch",
]

REGULARIZATIONS = ("tikhonov", "tv")


@dataclass
class InversionResult:
    """The outcome of :func:`invert_conductivity`.

    Attributes
    ----------
    a : numpy.ndarray ``(nx, ny)``
        Reconstructed nodal conductivity.
    alpha : float
        Regularisation weight of the returned reconstruction.
    residual : float
        Its relative data misfit ``||W^(1/2)(F(a) - d)|| / ||W^(1/2) d||``.
    iterations : int
        L-BFGS-B iterations, summed over the alpha sweep.
    evaluations : int
        Objective-and-gradient evaluations (one LU each), summed over the sweep.
    seconds : float
        Wall-clock time of the whole call.
    reason : str
        ``"converged"``, ``"max_iter"`` or ``"stopped: <optimizer message>"`` for the last
        minimisation; prefixed by ``"discrepancy not reached: "`` when no alpha of the sweep met the
        discrepancy principle (the smallest alpha's result is returned then), and followed by a note
        when already ``alpha_max`` met it (a larger alpha might too).
    history : list of (alpha, residual)
        One entry per minimisation, in sweep order.
    regularization : str
    """

    a: np.ndarray
    alpha: float
    residual: float
    iterations: int
    evaluations: int
    seconds: float
    reason: str
    history: list[tuple[float, float]] = field(default_factory=list)
    regularization: str = "tikhonov"


# --------------------------------------------------------------------------------------------
# Objective
# --------------------------------------------------------------------------------------------
class _DataMisfit:
    """``J_data`` and its adjoint gradient for fixed patterns and measurements."""

    def __init__(self, measurements: np.ndarray, patterns: np.ndarray, grid: Grid, face: str) -> None:
        self.layout = _box_layout(grid)
        self.face = face
        self.g = np.ascontiguousarray(patterns.T)  # (n_bnd, L)
        self.d = np.ascontiguousarray(measurements.T)
        self.norm2 = float(np.sum(self.layout.weights[:, None] * self.d**2))
        if not self.norm2 > 0.0:
            raise ArgumentValueError("measurements", "expected nonzero data, got all zeros",
                                     values=measurements)

    def __call__(self, a_flat: np.ndarray) -> tuple[float, np.ndarray]:
        lay = self.layout
        K_ii, K_ib, K_bb = _assemble_blocks(lay, a_flat, self.face)
        lu = _factorise(K_ii)
        u_int, flux = _dirichlet_flux(lu, K_ib, K_bb, self.g, lay.weights)
        r = flux - self.d
        value = 0.5 * float(np.sum(lay.weights[:, None] * r**2)) / self.norm2
        # Adjoint: the residual is the Dirichlet data of lambda; K_ii is symmetric, same LU.
        lam_int = lu.solve(np.asfortranarray(-(K_ib @ r)))
        u = np.vstack([u_int, self.g])
        lam = np.vstack([lam_int, r])
        per_edge = np.sum((u[lay.edge_P] - u[lay.edge_Q]) * (lam[lay.edge_P] - lam[lay.edge_Q]), axis=1)
        per_edge *= lay.geom / self.norm2  # dJ/d(face mean) per edge
        dp, dq = _face_mean_derivatives(a_flat, lay, self.face)
        n = a_flat.size
        grad = np.bincount(lay.edge_p, per_edge * dp, n) + np.bincount(lay.edge_q, per_edge * dq, n)
        return value, grad


def _regularizer(
    a: np.ndarray, spacing: tuple[float, float], kind: str, eps: float
) -> tuple[float, np.ndarray]:
    """``R(a)`` and ``dR/da`` for a ``(nx, ny)`` nodal field (see the module notes)."""
    hx, hy = spacing
    dx = np.diff(a, axis=0) / hx  # (nx-1, ny), x-edges
    dy = np.diff(a, axis=1) / hy  # (nx, ny-1), y-edges
    q = 0.5 * (dx[:, :-1] ** 2 + dx[:, 1:] ** 2) + 0.5 * (dy[:-1, :] ** 2 + dy[1:, :] ** 2)
    cell = hx * hy
    if kind == "tikhonov":
        value = 0.5 * cell * float(q.sum())
        beta = np.full(q.shape, 0.5 * cell)  # dR/dq per cell
    else:
        root = np.sqrt(q + eps**2)
        value = cell * float(root.sum())
        beta = 0.5 * cell / root
    # dq/d(dx[i, j]) = dx[i, j] for each of the (up to two) cells sharing the edge.
    g_dx = np.zeros_like(dx)
    g_dx[:, :-1] += beta
    g_dx[:, 1:] += beta
    g_dx *= dx / hx
    g_dy = np.zeros_like(dy)
    g_dy[:-1, :] += beta
    g_dy[1:, :] += beta
    g_dy *= dy / hy
    grad = np.zeros_like(a)
    grad[1:, :] += g_dx
    grad[:-1, :] -= g_dx
    grad[:, 1:] += g_dy
    grad[:, :-1] -= g_dy
    return value, grad


class _Objective:
    """``J = J_data + alpha R`` on flat nodal values, scaled by ``1/scale`` for the optimiser."""

    def __init__(self, misfit: _DataMisfit, shape: tuple[int, int], spacing: tuple[float, float],
                 regularization: str, alpha: float, tv_eps: float) -> None:
        self.misfit, self.shape, self.spacing = misfit, shape, spacing
        self.regularization, self.alpha, self.tv_eps = regularization, alpha, tv_eps
        self.scale = 1.0
        self.evaluations = 0

    def parts(self, a_flat: np.ndarray) -> tuple[float, float, np.ndarray]:
        """``(J_data, J, dJ/da)`` unscaled."""
        self.evaluations += 1
        data, grad = self.misfit(a_flat)
        total = data
        if self.alpha > 0.0:
            reg, reg_grad = _regularizer(a_flat.reshape(self.shape), self.spacing, self.regularization,
                                         self.tv_eps)
            total += self.alpha * reg
            grad = grad + self.alpha * reg_grad.ravel()
        return data, total, grad

    def __call__(self, a_flat: np.ndarray) -> tuple[float, np.ndarray]:
        _, total, grad = self.parts(a_flat)
        return total / self.scale, grad / self.scale


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------
def _number(name: str, x: Any, low: float, *, strict: bool) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ArgumentValueError(name, f"expected a real number, got {type(x).__name__}")
    x = float(x)
    if not (math.isfinite(x) and (x > low if strict else x >= low)):
        raise ArgumentValueError(name, f"expected a finite number {'>' if strict else '>='} {low}, got {x}")
    return x


def _data(measurements: Any, patterns: Any, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    n_bnd = _box_layout(grid).n_bnd
    g = _check_patterns("patterns", patterns, n_bnd)
    d = as_float_array("measurements", measurements)
    if d.shape != g.shape:
        raise ShapeError("measurements (one flux per pattern)", g.shape, d.shape)
    return d, g


def _settings(grid: Any, regularization: str, face: str, tv_eps: float) -> tuple[Grid, float]:
    grid = _check_grid_2d(grid, "invert_conductivity")
    check_name("regularization", regularization, REGULARIZATIONS)
    check_name("face mean", face, FACE_MEANS)
    return grid, _number("tv_eps", tv_eps, 0.0, strict=True)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def conductivity_objective(
    a: Any,
    measurements: Any,
    patterns: Any,
    grid: Grid,
    *,
    alpha: float,
    regularization: str = "tikhonov",
    face: str = "arithmetic",
    tv_eps: float = 1e-2,
) -> tuple[float, np.ndarray, float]:
    """The objective of :func:`invert_conductivity`, its adjoint gradient and the relative residual.

    Parameters
    ----------
    a : array-like ``(nx, ny)``
        Nodal conductivity, finite and strictly positive.
    measurements, patterns : array-like ``(L, n_bnd)``
        Measured fluxes and their Dirichlet patterns, in boundary order.
    grid : Grid
    alpha : float
        Regularisation weight, ``>= 0``.
    regularization : {"tikhonov", "tv"}
    face : {"arithmetic", "harmonic"}
    tv_eps : float
        Smoothing of the total variation, ``> 0``.

    Returns
    -------
    value : float
        ``J(a)``.
    gradient : numpy.ndarray ``(nx, ny)``
        ``dJ/da`` of the discrete ``J`` (adjoint method).
    residual : float
        Relative data misfit ``sqrt(2 J_data)``.
    """
    grid, tv_eps = _settings(grid, regularization, face, tv_eps)
    alpha = _number("alpha", alpha, 0.0, strict=False)
    ab, _ = _batched("a", a, grid)
    if ab.shape[0] != 1:
        raise ShapeError("a (one conductivity)", grid.shape, ab.shape)
    _check_coefficient(ab)
    d, g = _data(measurements, patterns, grid)
    obj = _Objective(_DataMisfit(d, g, grid, face), grid.shape, grid.spacing, regularization, alpha, tv_eps)
    data, total, grad = obj.parts(np.ascontiguousarray(ab[0]).ravel())
    return total, grad.reshape(grid.shape), math.sqrt(2.0 * data)


def _reason(res: Any) -> str:
    if res.status == 0:
        return "converged"
    if res.status == 1:
        return "max_iter"
    return f"stopped: {res.message}"


def invert_conductivity(
    measurements: Any,
    patterns: Any,
    grid: Grid,
    *,
    noise_level: float | None = None,
    regularization: str = "tikhonov",
    alpha: float | None = None,
    a0: Any = 1.0,
    bounds: tuple[float, float] = (1e-2, 1e2),
    max_iter: int = 200,
    tol: float = 1e-9,
    tau: float = 1.1,
    alpha_max: float = 1e-2,
    alpha_min: float = 1e-10,
    alpha_factor: float = 10.0**-0.5,
    face: str = "arithmetic",
    tv_eps: float = 1e-2,
) -> InversionResult:
    """Recover a nodal conductivity from Dirichlet-to-Neumann data by regularised least squares.

    Parameters
    ----------
    measurements : array-like ``(L, n_bnd)``
        Boundary fluxes, e.g. ``dtn(a_true, grid, patterns)`` with noise.
    patterns : array-like ``(L, n_bnd)``
        The Dirichlet patterns that produced them, in boundary order.
    grid : Grid
        2-D grid of the unknown ``a``.
    noise_level : float, optional
        Relative noise level of the measurements (``> 0``); with ``alpha=None`` it sets ``alpha``
        by the discrepancy principle.
    regularization : {"tikhonov", "tv"}
    alpha : float, optional
        Regularisation weight ``>= 0``; given, it is used as is and no sweep runs.
    a0 : number or array-like ``(nx, ny)``
        Initial guess, inside ``bounds``.
    bounds : (lo, hi)
        Box constraint ``0 < lo <= a <= hi`` handled by L-BFGS-B.
    max_iter : int
        L-BFGS-B iterations per minimisation (per alpha of a sweep).
    tol : float
        L-BFGS-B ``ftol`` on the objective scaled by its data misfit at the start.
    tau : float
        Discrepancy safety factor, ``>= 1``: accept the first alpha with ``residual <= tau * noise_level``.
    alpha_max, alpha_min, alpha_factor : float
        The sweep ``alpha_max * alpha_factor**k`` down to ``alpha_min`` (``0 < alpha_factor < 1``).
        The data term is normalised (``1/2 residual^2``, about ``1e-4`` for a constant guess against
        an O(1) bump) while ``R`` of an O(1) bump is O(1), so the default ``1e-2`` already gives a
        nearly constant reconstruction; starting higher only costs iterations. If ``alpha_max``
        itself meets the discrepancy, ``reason`` says so.
    face : {"arithmetic", "harmonic"}
    tv_eps : float
        Smoothing of the total variation.

    Returns
    -------
    InversionResult

    Raises
    ------
    ConfigError
        When neither ``alpha`` nor ``noise_level`` is given, or a setting is out of range.
    """
    start = time.perf_counter()
    grid, tv_eps = _settings(grid, regularization, face, tv_eps)
    d, g = _data(measurements, patterns, grid)
    if alpha is None and noise_level is None:
        raise ConfigError("invert_conductivity: expected alpha (a regularisation weight) or noise_level "
                          "(the relative noise of the data, to choose alpha by the discrepancy principle), "
                          "got neither")
    if noise_level is not None:
        noise_level = _number("noise_level", noise_level, 0.0, strict=True)
    if alpha is not None:
        alpha = _number("alpha", alpha, 0.0, strict=False)
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
        raise ConfigError(f"bounds: expected a pair (lo, hi), got {bounds!r}")
    lo = _number("bounds[0]", bounds[0], 0.0, strict=True)
    hi = _number("bounds[1]", bounds[1], lo, strict=True)
    max_iter = check_positive_int("max_iter", max_iter)
    tol = _number("tol", tol, 0.0, strict=True)
    tau = _number("tau", tau, 1.0, strict=False)
    alpha_max = _number("alpha_max", alpha_max, 0.0, strict=True)
    alpha_min = _number("alpha_min", alpha_min, 0.0, strict=True)
    alpha_factor = _number("alpha_factor", alpha_factor, 0.0, strict=True)
    if alpha_min > alpha_max or alpha_factor >= 1.0:
        raise ConfigError(f"alpha sweep: expected alpha_min <= alpha_max and alpha_factor < 1, got "
                          f"alpha_min={alpha_min}, alpha_max={alpha_max}, alpha_factor={alpha_factor}")
    ab, _ = _batched("a0", a0, grid)
    if ab.shape[0] != 1:
        raise ShapeError("a0 (one initial conductivity)", grid.shape, ab.shape)
    if ab.min() < lo or ab.max() > hi:
        raise ArgumentValueError("a0", f"expected values inside bounds [{lo}, {hi}], got "
                                       f"[{float(ab.min()):.6g}, {float(ab.max()):.6g}]")
    x = np.array(ab[0], dtype=np.float64).ravel()

    obj = _Objective(_DataMisfit(d, g, grid, face), grid.shape, grid.spacing, regularization, 0.0, tv_eps)
    # L-BFGS-B's ftol is relative only above |f| = 1; scaling by the initial misfit makes it relative.
    initial = obj.parts(x)[0]
    obj.scale = initial if initial > 0.0 else 1.0
    if alpha is not None:
        alphas = [alpha]
    else:
        n_sweep = int(math.floor(math.log(alpha_min / alpha_max) / math.log(alpha_factor) + 1e-9)) + 1
        alphas = [alpha_max * alpha_factor**k for k in range(n_sweep)]

    history: list[tuple[float, float]] = []
    iterations, reason, residual = 0, "", math.inf
    options = {"maxiter": max_iter, "maxfun": 4 * max_iter, "ftol": tol, "gtol": 1e-14}
    for current in alphas:
        obj.alpha = current
        res = minimize(obj, x, jac=True, method="L-BFGS-B", bounds=[(lo, hi)] * x.size, options=options)
        x = res.x  # warm start of the next alpha
        iterations += int(res.nit)
        reason = _reason(res)
        residual = math.sqrt(2.0 * obj.parts(x)[0])
        history.append((current, residual))
        if alpha is None and residual <= tau * noise_level:
            if len(history) == 1:
                # Nothing larger was tried, so this is the largest alpha only within the sweep.
                reason = (f"{reason}; discrepancy met already at alpha_max, "
                          "raise alpha_max to find a larger alpha")
            break
    else:
        if alpha is None:
            reason = f"discrepancy not reached: {reason}"
    return InversionResult(
        a=x.reshape(grid.shape), alpha=history[-1][0], residual=residual, iterations=iterations,
        evaluations=obj.evaluations, seconds=time.perf_counter() - start, reason=reason,
        history=history, regularization=regularization,
    )


def invert_conductivity_batch(
    measurements: Any, patterns: Any, grid: Grid, **kwargs: Any
) -> list[InversionResult]:
    """:func:`invert_conductivity` for each sample of ``measurements (B, L, n_bnd)``, in order.

    Keyword arguments are passed on unchanged (the same settings for every sample).
    """
    d = as_float_array("measurements", measurements)
    if d.ndim != 3:
        raise ShapeError("measurements", "(B, L, n_bnd)", d.shape)
    return [invert_conductivity(sample, patterns, grid, **kwargs) for sample in d]
