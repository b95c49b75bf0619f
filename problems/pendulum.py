"""Gravity pendulum with an external force, DeepONet's nonlinear ODE benchmark (Lu et al. 2021).

    ds1/dt = s2,   ds2/dt = -k sin(s1) + u(t),   t in [0, 1],   s(0) = (0, 0),   k = 1.

``u`` is a Gaussian process (squared-exponential kernel, length scale 0.2) read at 100 equispaced
sensors; the outputs are the angle ``s1`` (the paper's target) and the angular velocity ``s2``.
The time axis is the grid's first axis, so formulas use ``x`` for the time (``u="sin(pi*x)"``).

Labels. ``u`` between samples is the cubic spline (not-a-knot) through its values on the data grid
refined ``solve_stride = 10`` times, as in the reference code; the system is integrated on that fine
grid with classical RK4 (:func:`sciml.numerics.ode.rk4`, step 1/990 for the default grid; global error
~1e-12, checked against scipy's DOP853 at tolerance 1e-12 in the tests) and every 10th node kept.
"""

from __future__ import annotations

import numpy as np

from sciml.fields import Grid
from sciml.numerics.ode import rk4
from sciml.problem import Initial, Input, Problem
from sciml.spaces import RBFGRF


def reference(inputs, grid, params):
    """RK4 on the grid's times for all forcings at once."""
    k = float(params["k"])

    def rhs(t, s, u):
        return np.stack([s[:, 1], -k * np.sin(s[:, 0]) + u], axis=1)

    states = rk4(rhs, np.zeros(2), grid.axes[0], forcing=inputs["u"])
    return {"s1": states[..., 0], "s2": states[..., 1]}


problem = Problem(
    name="pendulum",
    description="s1' = s2, s2' = -k sin(s1) + u(t) on [0, 1], s(0) = 0, k = 1; u a Gaussian process",
    inputs=[Input("u", RBFGRF(length_scale=0.2, variance=1.0), description="external force u(t)")],
    outputs=["s1", "s2"],
    grid=Grid(100),
    conditions=[Initial(0.0, time_axis=0, output="s1"), Initial(0.0, time_axis=0, output="s2")],
    reference=reference,
    params={"k": 1.0, "length_scale": 0.2},
    solve_stride=10,
)
