"""Poisson's equation with random Dirichlet data and random source on the unit square.

    -Laplace u = f   on (0, 1)^2,     u = g on the boundary.

Both g (a smooth random function along the boundary, continuous around the corners) and f (a
Gaussian random field) vary between instances. This is the quickstart's problem: an operator
trained on it answers new boundary conditions written as formulas, e.g. ``g="sin(pi*x)*y"``.
On a grid, g is stored as its discrete harmonic extension (the canonical field with that
boundary trace), so the network sees a smooth input channel.
"""

from __future__ import annotations

from sciml import diff
from sciml.fields import Grid
from sciml.numerics.fd import solve_elliptic, system
from sciml.problem import Dirichlet, Input, Problem
from sciml.spaces import GRF, BoundaryGRF


def reference(inputs, grid, params):
    """Second-order FD; the Laplacian is factorised once and all samples solved together."""
    return {"u": solve_elliptic(1.0, inputs["f"], inputs["g"], grid)}


def linear_system(inputs, grid, params):
    """The SPD system A u = b of one sample (interior unknowns), for learned linear solvers."""
    return system(1.0, inputs["f"], inputs["g"], grid)


def equation(u, x, inputs):
    """PDE residual -Laplace u - f at points x."""
    return -diff.laplacian(u, x) - inputs["f"].reshape(-1)


problem = Problem(
    name="poisson",
    description="-Laplace u = f on the unit square, u = g on the boundary; g and f random",
    inputs=[
        Input("g", BoundaryGRF(length_scale=0.4, variance=1.0), on="boundary", description="Dirichlet data"),
        Input("f", GRF(alpha=2.0, tau=3.0, sigma=30.0, boundary="neumann"), description="source"),
    ],
    outputs=["u"],
    grid=Grid(64, ndim=2),
    equation=equation,
    conditions=[Dirichlet("g")],
    reference=reference,
    system=linear_system,
    params={"boundary_length_scale": 0.4, "source_sigma": 30.0},
)
