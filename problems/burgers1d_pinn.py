"""Viscous Burgers equation of Raissi et al. (2019) and DeepXDE's ``examples/pinn_forward/Burgers.py``.

    u_t + u u_x = nu u_xx,    x in [-1, 1], t in [0, 0.99],    nu = 0.01 / pi,
    u(x, 0) = -sin(pi x),     u(-1, t) = u(1, t) = 0.

A space-time problem for PINNs: the domain is the rectangle of the points ``(x, t)`` (time is axis 1),
the Dirichlet condition holds on its lateral sides and the initial condition on ``t = 0``. The end time
0.99 is DeepXDE's (``TimeDomain(0, 0.99)``), so the reference grid of its ``Burgers.npz`` (256 points
in x, the times 0, 0.01, ..., 0.99) covers the domain exactly.

The problem has no random inputs; ``reference`` ignores its inputs and returns the exact solution,
computed by the Cole-Hopf transform with Gauss-Hermite quadrature in float64
(:func:`sciml.numerics.burgers.cole_hopf`), with a leading batch axis of size 1. The viscosity is the
parameter ``nu``; the equation reads it from ``inputs["nu"]``, which a PINN fills with
``params["nu"]``, or with a trainable unknown when it identifies the viscosity (inverse problem).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sciml import diff
from sciml.fields import Grid
from sciml.geometry import Domain
from sciml.numerics.burgers import cole_hopf
from sciml.problem import Dirichlet, Initial, Problem

NU = 0.01 / math.pi
T_END = 0.99


def initial(x, t):
    """``u(x, 0) = -sin(pi x)``; accepts numpy arrays or torch tensors (so it can be a hard constraint)."""
    if isinstance(x, torch.Tensor):
        return -torch.sin(math.pi * x)
    return -np.sin(np.pi * x)


def equation(u, x, inputs):
    """Residual ``u_t + u u_x - nu u_xx`` at points ``x = (x, t)``; one gradient, one Hessian row."""
    d = diff.Derivatives(u, x)
    return d.partial(1) + u[..., 0] * d.partial(0) - inputs["nu"] * d.partial(0, 0)


def reference(inputs, grid, params):
    """Exact solution on ``grid`` (axis 0 = x, axis 1 = t), shape ``(B, nx, nt)``."""
    batch = next((np.shape(v)[0] for v in inputs.values()), 1)
    x, t = np.meshgrid(*grid.axes, indexing="ij")
    u = cole_hopf(x, t, params["nu"], n_quad=200)
    return {"u": np.broadcast_to(u, (batch, *grid.shape)).copy()}


problem = Problem(
    name="burgers1d_pinn",
    description="Burgers u_t + u u_x = (0.01/pi) u_xx on [-1, 1] x [0, 0.99], u0 = -sin(pi x) (DeepXDE)",
    inputs=[],
    outputs=["u"],
    grid=Grid((256, 100), bounds=((-1.0, 1.0), (0.0, T_END))),
    domain=Domain.rectangle([-1.0, 0.0], [1.0, T_END]),
    equation=equation,
    conditions=[Dirichlet(0.0), Initial(initial, time_axis=1)],
    reference=reference,
    params={"nu": NU},
)
