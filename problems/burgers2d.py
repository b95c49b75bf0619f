"""Scalar viscous Burgers on the periodic unit square: trajectories whose fronts sharpen, for mesh movers.

    u_t + u (u_x + u_y) = nu Laplace u,   (x, y) in [0, 1)^2 periodic,   t in (0, t_end],   nu = 5e-3,
    u(x, y, 0) = u0(x, y),                u0 ~ N(0, sigma^2 (-Laplace + 25 I)^(-4))  (periodic, zero mean),

and the data are the whole trajectory: the output ``u`` holds ``u(., t_k)`` at the ``n_times = 21``
equally spaced times ``t_k = k t_end / (n_times - 1)``, ``t_end = 0.5``, so ``u[0]`` is ``u0`` itself and
``u`` has shape ``(n_times, 49, 49)`` per sample (declared with ``array_shapes``). This is the 2-D
Burgers setting of the DMM / MM-PDE experiments (Hu, Wang, Ma, ICLR 2024: scalar Burgers, trajectories
stored on 48 x 48 and subsampled by 4 from 192 x 192); their viscosity and initial law are not in the
code we read, so ``nu``, the law and the horizon here are our own, chosen so that fronts form early,
are far too thin for the 48-point grid and persist to ``t_end``.

**What happens.** ``u (u_x + u_y) = (u^2/2)_x + (u^2/2)_y``: the equation is in conservation form, so the
mean of ``u`` (zero here) is conserved exactly, and a maximum principle holds (``max|u|`` does not grow).
Along the diagonal ``s = (x + y) / sqrt(2)`` it is 1-D Burgers with speed ``sqrt(2) u``; the gradient
``g = u_x + u_y`` obeys ``dg/dt = -g^2`` along characteristics until viscosity takes over, so fronts
(across the direction ``(1, 1)``) form from about ``t = 1 / max(-g) ~ 0.1`` on. Measured on 8 samples of
the default law (pointwise standard deviation 0.5, ``max|u0|`` 0.9 to 1.7; spectral gradients at
192^2): ``max|grad u|`` is 5 to 9 at ``t = 0``, peaks at 46 to 238 (7 to 28 times the initial value)
between ``t = 0.2`` and ``0.4``, and is still 26 to 90 at ``t_end = 0.5`` (3.4 to 14 times, median about
9). A front of viscous width ``~ sqrt(2) nu / (jump / 2)``, 0.005 to 0.01, is thinner than the data
spacing ``1/48 ~ 0.02``. The horizon stops at 0.5 because afterwards the fronts only decay (by ``t = 1``
``max|grad u|`` is down to 2 to 4 times its initial value).

**Input law.** :class:`~sciml.spaces.GRF` with ``boundary="periodic"``, ``alpha = 4``, ``tau = 5`` and
``sigma = 956``: ``sigma^2 sum_{k != 0} ((2 pi |k|)^2 + 25)^(-4) = 0.25``, a pointwise standard deviation
of 0.5; the constant mode is dropped. ``alpha = 4`` makes the initial data very smooth (mode ``k``
decays like ``|k|^-4``), so every front comes from the dynamics, not from the data.

**Grid convention.** sciml grids are node based and include both ends; on a periodic axis the last
node ``x = 1`` is the first one again. The default ``Grid((49, 49))`` is the 48 x 48 periodic grid; the
reference drops the last row and column, solves on the distinct points and appends them again.

**Reference and data.** :func:`sciml.numerics.burgers2d.burgers2d_etdrk4`: Fourier pseudo-spectral in
space (3/2-rule dealiased), ETDRK4 in time with the diffusion integrated exactly, float64, batched. Data
are made on a grid 4 times as fine (``solve_stride = 4``: ``u0`` is drawn on 192 x 192 periodic points,
the trajectory is solved there and both are subsampled by 4), as the DMM data were. The generic
``Problem.make_samples`` refuses to subsample arrays that are not one field on the grid, because it
cannot know where their grid axes are; this problem's ``u`` is a stack of fields, so
:class:`TrajectoryProblem` overrides ``make_samples`` to subsample the last two axes (and to solve in
chunks of a few samples, so that the 192^2 trajectories of a whole shard never sit in memory at once).
``problem.solve(grid, u0=...)`` and ``solve_batch`` solve on the grid they are given, as for every problem.

Accuracy (convergence, conservation and the 1-D reductions are in ``tests/test_burgers2d_monitor.py``;
the numbers here were measured once, they are too slow for the tests): for a typical sample the 192^2
trajectory differs from a 384^2 solve by about 1e-4 at most (``max|u|`` about 1); for the steepest of
8 samples (``max|u0| = 1.7``, ``max|grad u| = 238``) by 3e-3 at ``t ~ 0.2``, falling to 5e-5 at ``t_end``.
The default time step (600 steps for that sample) is within 4e-5 of a run with 2000 steps. With
``nu = 3e-3`` the same comparison gave 5e-3 already for a typical sample, hence ``nu = 5e-3``. Cost:
about 12 s per sample on one CPU thread (a loaded 2-core machine): 500 to 600 ETDRK4 steps of about
20 ms, each four products on the 288^2 padded grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sciml.errors import ConfigError
from sciml.fields import Grid
from sciml.numerics.burgers2d import burgers2d_etdrk4
from sciml.problem import Input, Periodic, Problem
from sciml.spaces import GRF

NU = 5e-3
T_END = 0.5
N_TIMES = 21
SIGMA = 956.0
"""GRF amplitude for a pointwise standard deviation of 0.5 (see the module docstring)."""

_CHUNK = 8
"""Samples solved together by ``make_samples``: about 50 MB of 192^2 trajectories in float64."""


def _check_grid(u0: np.ndarray, grid: Grid) -> float:
    """The period of a square 2-D periodic node grid holding ``u0`` ``(B, n + 1, n + 1)``."""
    if grid.ndim != 2 or grid.shape[0] != grid.shape[1]:
        raise ConfigError(f"burgers2d: expected a square 2-D grid, got {grid!r}")
    (x0, x1), (y0, y1) = grid.bounds
    if not np.isclose(x1 - x0, y1 - y0, rtol=1e-12, atol=0.0):
        raise ConfigError(f"burgers2d: expected the same period along x and y, got bounds {grid.bounds}")
    scale = max(1.0, float(np.abs(u0).max()))
    gap = max(float(np.abs(u0[:, -1] - u0[:, 0]).max()), float(np.abs(u0[:, :, -1] - u0[:, :, 0]).max()))
    if gap > 1e-8 * scale:
        raise ConfigError(
            "burgers2d: expected periodic initial data whose last row and column repeat the first (the "
            f"last grid node is the first one again), got a largest mismatch of {gap:.3g}"
        )
    return x1 - x0


def reference(
    inputs: Mapping[str, np.ndarray], grid: Grid, params: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """The trajectory ``u`` ``(B, n_times, n + 1, n + 1)`` from ``u0`` ``(B, n + 1, n + 1)`` (node grid)."""
    u0 = np.asarray(inputs["u0"], dtype=np.float64)
    length = _check_grid(u0, grid)
    traj = burgers2d_etdrk4(
        u0[:, :-1, :-1], params["nu"], params["t_end"], int(params["n_times"]), length=length
    )
    # The repeated last row and column of the node grid; the first frame is u0 itself, exactly.
    return {"u": np.pad(traj, [(0, 0), (0, 0), (0, 1), (0, 1)], mode="wrap")}


class _Frames:
    """``array_shapes`` of a trajectory problem: ``u`` holds ``params["n_times"]`` fields on the grid.

    A small class rather than a closure so that the problem pickles (for ``generate(workers=...)``).
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params

    def __call__(self, grid: Grid) -> dict[str, tuple[int, ...]]:
        return {"u": (int(self.params["n_times"]), *grid.shape)}


class TrajectoryProblem(Problem):
    """A Problem whose output ``u`` is a stack of ``n_times`` fields, subsampled from a finer solve grid.

    ``array_shapes`` is set from ``params["n_times"]``; :meth:`make_samples` is the generic one except
    that it subsamples the last ``grid.ndim`` axes of every array (the leading time axis of ``u`` is
    kept) and solves ``_CHUNK`` samples at a time.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.array_shapes = _Frames(self.params)

    def make_samples(self, n: int, grid: Grid, seed: int | np.random.Generator) -> tuple[dict, dict]:
        """Draw ``n`` inputs on the solve grid, solve there and subsample the space axes to ``grid``."""
        fine = self.solve_grid(grid)
        inputs = self.sample_inputs(n, fine, seed)
        # Every node of `grid` is a node of `fine` (solve_grid makes it so); the time axis stays whole.
        space = (slice(None, None, self.solve_stride),) * grid.ndim
        coarse_in = {k: v[(Ellipsis, *space)] for k, v in inputs.items()}
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, n, _CHUNK):
            chunk = {k: v[start : start + _CHUNK] for k, v in inputs.items()}
            solved = self.solve_batch(chunk, fine)
            parts.append({k: v[(Ellipsis, *space)].copy() for k, v in solved.items()})
        outputs = {k: np.concatenate([p[k] for p in parts]) for k in self.outputs}
        return {k: np.ascontiguousarray(v) for k, v in coarse_in.items()}, outputs


problem = TrajectoryProblem(
    name="burgers2d",
    description="2-D Burgers trajectories u0 -> u(., k / 40), k = 0..20, for "
    "u_t + u (u_x + u_y) = 5e-3 Laplace u "
    "on the periodic unit square, u0 ~ N(0, 956^2 (-Laplace + 25)^-4)",
    inputs=[
        Input(
            "u0",
            GRF(alpha=4.0, tau=5.0, sigma=SIGMA, boundary="periodic"),
            description="initial data, smooth periodic GRF (pointwise std 0.5)",
        )
    ],
    outputs=["u"],
    grid=Grid((49, 49)),
    conditions=[Periodic(axis=0, period=1.0), Periodic(axis=1, period=1.0)],
    reference=reference,
    params={"nu": NU, "t_end": T_END, "n_times": N_TIMES},
    solve_stride=4,
)
