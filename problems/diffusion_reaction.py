"""Diffusion-reaction with a source term, DeepONet's PDE benchmark (Lu et al. 2021).

    s_t = D s_xx + k s^2 + u(x),   (x, t) in [0, 1]^2,   s = 0 at t = 0 and at x = 0, 1,

with ``D = k = 0.01``. The source ``u(x)`` is a Gaussian process (squared-exponential kernel, length
scale 0.2) read at 100 equispaced sensors in ``x``; the output ``s(x, t)`` lives on the 100 x 100
space-time node grid (axis 0 is ``x``, axis 1 is ``t``, so formulas use ``x`` and ``y`` = time).
The input is stored on the same grid, constant along ``t`` (the sensors read the ``t = 0`` row).

Labels come from the linearised Crank-Nicolson scheme of the reference code, directly on the
100 x 100 grid as in the paper (:func:`sciml.numerics.diffusion_reaction.solve_diffusion_reaction`,
second order in ``x`` and ``t``; error ~4e-6 against a manufactured solution at this resolution).
"""

from __future__ import annotations

import numpy as np

from sciml.fields import Grid
from sciml.numerics.diffusion_reaction import solve_diffusion_reaction
from sciml.problem import Dirichlet, Initial, Input, Problem
from sciml.spaces import RBFGRF, Space, register_space


@register_space
class ExtrudedRBFGRF(Space):
    """A 1-D Gaussian process along the first axis, constant along the others (a source ``u(x)``)."""

    kind = "extruded_rbf_grf"
    ndims = (2,)

    def __init__(self, length_scale: float = 0.2, variance: float = 1.0) -> None:
        self.line = RBFGRF(length_scale=length_scale, variance=variance)

    def _params(self):
        return self.line._params()

    def _sample(self, n, grid, rng):
        line = self.line.sample(n, Grid(grid.shape[0], [grid.bounds[0]]), rng)
        return np.broadcast_to(line[:, :, None], (n, *grid.shape)).copy()


def _ends(points):
    """The ends x = 0 and x = 1 of the interval, where s = 0."""
    return (points[..., 0] == 0) | (points[..., 0] == 1)


def reference(inputs, grid, params):
    """Linearised Crank-Nicolson for all sources at once."""
    x, t = grid.axes
    s = solve_diffusion_reaction(inputs["u"][:, :, 0], x, t, params["D"], params["k"])
    return {"s": s}


problem = Problem(
    name="diffusion_reaction",
    description="s_t = D s_xx + k s^2 + u(x) on [0, 1]^2 (x, t), zero initial/boundary values, D = k = 0.01",
    inputs=[Input("u", ExtrudedRBFGRF(length_scale=0.2), description="source u(x), constant in time")],
    outputs=["s"],
    grid=Grid((100, 100)),
    conditions=[Initial(0.0, time_axis=1), Dirichlet(0.0, where=_ends)],
    reference=reference,
    params={"D": 0.01, "k": 0.01, "length_scale": 0.2},
)
