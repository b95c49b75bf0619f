"""Periodic convection(-diffusion): the failure mode of PINNs of Krishnapriyan et al. (2021).

    u_t + c u_x = nu u_xx,    x in [0, 2 pi) periodic,  t in [0, 1],
    u(x, 0) = sin x,          exact solution  u(x, t) = exp(-nu t) sin(x - c t).

With ``nu = 0`` and a large speed (``c = 30, 50``) a plain PINN in the Eulerian frame converges to a
smooth wrong solution (relative L2 error above 0.5), while the same network trained along the
characteristics (:class:`sciml.pinn.lpinn.LagrangianPINNTask`, Mojgani et al. 2023) reaches 1e-2
or better. The speed ``c`` (default 30) and the viscosity ``nu`` (default 0) are params: change
them with :func:`make_problem` (or ``dataclasses.replace(problem, params=...)``), the equation and
the reference read them from the params.

The space-time domain is the rectangle of the points ``(x, t)`` (time is axis 1); the periodic
condition holds along x with period ``2 pi``, the initial condition at ``t = 0``. The default grid
(256 x 101 nodes, both ends of x included, as PINN papers evaluate) carries the exact solution
as the reference, in float64.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sciml import diff
from sciml.errors import ConfigError
from sciml.fields import Grid
from sciml.geometry import Domain
from sciml.problem import Initial, Periodic, Problem

LENGTH = 2.0 * math.pi
T_END = 1.0


def initial(x, t):
    """``u(x, 0) = sin x`` for numpy arrays or torch tensors (so that it can be a hard constraint)."""
    return torch.sin(x) if isinstance(x, torch.Tensor) else np.sin(x)


def exact(x, t, c: float, nu: float):
    """``exp(-nu t) sin(x - c t)`` (numpy, float64)."""
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    return np.exp(-nu * t) * np.sin(x - c * t)


def equation(u, x, inputs):
    """Eulerian residual ``u_t + c u_x - nu u_xx`` at points ``x = (x, t)``."""
    d = diff.Derivatives(u, x)
    res = d.partial(1) + inputs["c"] * d.partial(0)
    if inputs["nu"] != 0:  # the second derivative costs a Hessian row: skip it for pure convection
        res = res - inputs["nu"] * d.partial(0, 0)
    return res


def reference(inputs, grid, params):
    """Exact solution on ``grid`` (axis 0 = x, axis 1 = t), shape ``(B, nx, nt)``."""
    batch = next((np.shape(v)[0] for v in inputs.values()), 1)
    x, t = np.meshgrid(*grid.axes, indexing="ij")
    u = exact(x, t, params["c"], params["nu"])
    return {"u": np.broadcast_to(u, (batch, *grid.shape)).copy()}


def make_problem(c: float = 30.0, nu: float = 0.0, t_end: float = T_END) -> Problem:
    """The convection problem with speed ``c``, viscosity ``nu >= 0`` and final time ``t_end``."""
    for name, value in (("c", c), ("nu", nu), ("t_end", t_end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"convection {name}: expected a finite number, got {value!r}")
    if nu < 0 or t_end <= 0:
        raise ConfigError(f"convection: expected nu >= 0 and t_end > 0, got nu={nu}, t_end={t_end}")
    return Problem(
        name="convection",
        description=f"u_t + c u_x = nu u_xx on [0, 2 pi) periodic x [0, {t_end:g}], u0 = sin x "
                    "(Krishnapriyan et al. 2021)",
        inputs=[],
        outputs=["u"],
        grid=Grid((256, 101), bounds=((0.0, LENGTH), (0.0, float(t_end)))),
        domain=Domain.rectangle([0.0, 0.0], [LENGTH, float(t_end)]),
        equation=equation,
        conditions=[Periodic(axis=0, period=LENGTH), Initial(initial, time_axis=1)],
        reference=reference,
        params={"c": float(c), "nu": float(nu)},
    )


problem = make_problem()
