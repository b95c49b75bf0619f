"""The antiderivative operator of DeepONet's first benchmark (Lu et al. 2021).

    ds/dx = u(x) on [0, 1],   s(0) = 0,   so  G(u)(x) = int_0^x u.

``u`` is a Gaussian process with the squared-exponential kernel of length scale 0.2 (the paper's
input space); a DeepONet reads it at 100 equispaced sensors, the nodes of the default grid.

Exact labels. As in the reference code, ``u`` is defined between samples by the cubic spline
(not-a-knot) through its values on a fine grid, here the data grid refined ``solve_stride = 10``
times (991 nodes for the default 100); ``s`` is the *exact* integral of that spline (piecewise
quartic, :func:`sciml.numerics.ode.spline_antiderivative`), and the data keep every 10th node.
Relative to the integral of the underlying smooth process the spline adds an error of order
``h^4 |u''''| ~ 1e-9`` on the fine grid, far below what the networks resolve.
"""

from __future__ import annotations

from sciml.fields import Grid
from sciml.numerics.ode import spline_antiderivative
from sciml.problem import Initial, Input, Problem
from sciml.spaces import RBFGRF


def reference(inputs, grid, params):
    """Exact integral of the cubic spline through u on the grid (all samples at once)."""
    return {"s": spline_antiderivative(inputs["u"], grid.axes[0])}


def equation(s, x, inputs):
    """Residual ds/dx - u at points x (for physics-informed training)."""
    from sciml import diff

    return diff.grad(s, x)[..., 0] - inputs["u"].reshape(-1)


problem = Problem(
    name="antiderivative",
    description="ds/dx = u on [0, 1], s(0) = 0; u a Gaussian process (RBF kernel, length 0.2)",
    inputs=[Input("u", RBFGRF(length_scale=0.2, variance=1.0), description="integrand u(x)")],
    outputs=["s"],
    grid=Grid(100),
    equation=equation,
    conditions=[Initial(0.0, time_axis=0)],
    reference=reference,
    params={"length_scale": 0.2, "s0": 0.0},
    solve_stride=10,
)
