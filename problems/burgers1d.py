"""Viscous Burgers on the unit circle: the FNO benchmark's map from initial data to the state at t = 1.

    u_t + (u^2 / 2)_x = nu u_xx,    x in [0, 1) periodic,  t in (0, 1],  nu = 0.1,
    u(x, 0) = u0(x),                u0 ~ N(0, 625 (-Laplace + 25 I)^(-2))  (periodic, zero mean),

and the operator to learn is ``u0 -> u(., 1)`` (Li et al., ICLR 2021, section 5.1; the Galerkin
Transformer's first example uses the same data).

**Inputs.** ``u0`` is :class:`~sciml.spaces.GRF` with ``boundary="periodic"``, ``alpha=2``, ``tau=5`` and
``sigma=25`` (its covariance is ``sigma^2 (-Laplace + tau^2)^(-alpha)``, so ``sigma^2 = 625``; the default
``sigma = tau^(alpha - 1/2)`` would give 125 instead). The constant mode is dropped, as in FNO's
``GRF1.m``, so every sample has zero mean, which Burgers conserves. The pointwise standard deviation
is about 0.59.

**Grid convention.** sciml grids are node based and include both end points; on a periodic axis the
last node ``x = 1`` is the first one again. A Grid of ``n + 1`` nodes therefore holds ``n`` periodic
points plus a copy of the first (as the periodic GRF samples it and as ``problems/burgers_periodic.py``
evaluates its solution): the default ``Grid(513)`` is the 512-point periodic grid. The reference drops
the last node, solves on the ``n`` distinct points and appends the first value again.

**Reference.** :func:`sciml.numerics.spectral.burgers_etdrk4`: Fourier pseudo-spectral in space
(3/2-rule dealiased), ETDRK4 in time with ``h = 1e-3``, float64, batched. Data are made on a grid twice
as fine (``solve_stride = 2``: the inputs are drawn on 1024 periodic points, solved there and both
subsampled), as the FNO data were drawn and solved at 8192 points and subsampled. A GRF drawn on 1024
points is a trigonometric polynomial that the solver represents exactly, so each pair is the exact
solution of its (band-limited) initial data up to the time error, about 4e-9 relative for these rough
data; ``u(., 1)`` is smooth (diffusion damps mode ``k`` by ``exp(-0.1 (2 pi k)^2)``), so subsampling it
loses nothing. ``tests/test_burgers1d.py`` checks the convergence in space and time and the agreement
with the Cole-Hopf solution.
"""

from __future__ import annotations

import numpy as np

from sciml.errors import ConfigError
from sciml.fields import Grid
from sciml.numerics.spectral import burgers_etdrk4
from sciml.problem import Input, Periodic, Problem
from sciml.spaces import GRF

NU = 0.1
T_END = 1.0


def reference(inputs, grid, params):
    """``u(., t_end)`` from ``u0`` on a node grid whose last node repeats the first; ``(B, n + 1)``."""
    u0 = np.asarray(inputs["u0"], dtype=np.float64)
    ((lo, hi),) = grid.bounds
    scale = max(1.0, float(np.abs(u0).max()))
    gap = float(np.abs(u0[:, -1] - u0[:, 0]).max())
    if gap > 1e-8 * scale:
        raise ConfigError(
            f"burgers1d: expected periodic initial data with u0(x=1) == u0(x=0) (the last grid node is the "
            f"first one again), got a largest mismatch of {gap:.3g}"
        )
    u = burgers_etdrk4(u0[:, :-1], params["nu"], params["t_end"], length=hi - lo)
    return {"u": np.concatenate([u, u[:, :1]], axis=1)}


problem = Problem(
    name="burgers1d",
    description="FNO Burgers: u0 -> u(., 1) for u_t + (u^2/2)_x = 0.1 u_xx on [0, 1) periodic, "
    "u0 ~ N(0, 625 (-Laplace + 25)^-2)",
    inputs=[
        Input(
            "u0",
            GRF(alpha=2.0, tau=5.0, sigma=25.0, boundary="periodic"),
            description="initial data, periodic GRF",
        )
    ],
    outputs=["u"],
    grid=Grid(513),
    conditions=[Periodic(axis=0, period=1.0)],
    reference=reference,
    params={"nu": NU, "t_end": T_END},
    solve_stride=2,
)
