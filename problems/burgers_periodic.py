"""Viscous Burgers equation on a periodic interval, with a uniform drift ``C``.

    u_t + u u_x = nu u_xx,    x in [0, 2 pi) periodic,  t in [0, t_end],
    u(x, 0) = sin x + C,      nu = 0.01,  t_end = 0.5  (defaults).

The drift ``C`` carries the wave across the domain at speed ``C``: by Galilean invariance
``u(x, t) = v(x - C t, t) + C`` where ``v`` solves the same equation from ``v(x, 0) = sin x``. With
``C = 10`` the plain PINN meets the transport failure mode of the convection problem
(``problems/convection.py``) on top of the nonlinearity; the Lagrangian PINN does not
(Mojgani et al. 2023).

Build variants with :func:`make_problem` (``C``, ``nu``, ``t_end``): the initial condition depends on
``C``, so replacing only the params of ``problem`` would leave it at the old drift.

**Time range.** The inviscid characteristics of ``sin x`` cross at ``t = 1`` (``1 / max |u0'|``); up to
``t_end = 0.5`` the solution stays smooth (max ``|u_x|`` about 2, and the Lagrangian map ``x0 -> X``
keeps ``dX/dx0 >= 0.5``), which is the range where a network of moderate size represents both the
Eulerian field and the characteristics well. ``make_problem(t_end=1.0)`` gives the steeper problem
(max ``|u_x|`` about 10 at ``t = 1`` with ``nu = 0.01``).

**Reference.** ``v`` comes from the Cole-Hopf transform on the real line (:func:`sciml.numerics.burgers.
cole_hopf`, Gauss-Hermite quadrature with log-sum-exp, float64): the potential ``int_0^y sin s ds =
1 - cos y`` is periodic, so the real-line solution is the periodic one. A Fourier series of the heat
equation's solution would be exact too on paper but loses every digit near ``x = pi``, where
``exp(-(1 - cos x) / (2 nu))`` is ``e^-100`` relative to its peak; the quadrature agrees with a
trapezoidal rule on a fine grid to 1e-15 on the default grid (``tests/test_lpinn.py`` checks the
residual of the equation by spectral differentiation).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sciml import diff
from sciml.errors import ConfigError
from sciml.fields import Grid
from sciml.geometry import Domain
from sciml.numerics.burgers import cole_hopf
from sciml.problem import Initial, Periodic, Problem

LENGTH = 2.0 * math.pi
NU = 0.01
T_END = 0.5


def _sin_potential(y: np.ndarray) -> np.ndarray:
    """``int_0^y sin s ds = 1 - cos y``, the Cole-Hopf potential of ``sin``."""
    return 1.0 - np.cos(y)


def exact(x, t, nu: float = NU, drift: float = 0.0, n_quad: int = 200):
    """``u(x, t) = v(x - C t, t) + C`` with ``v`` the Cole-Hopf solution from ``sin x`` (numpy, float64)."""
    x, t = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64))
    v = cole_hopf(x - drift * t, t, nu, u0=np.sin, potential=_sin_potential, n_quad=n_quad)
    return v + drift


def equation(u, x, inputs):
    """Eulerian residual ``u_t + u u_x - nu u_xx`` at points ``x = (x, t)``."""
    d = diff.Derivatives(u, x)
    return d.partial(1) + u[..., 0] * d.partial(0) - inputs["nu"] * d.partial(0, 0)


def reference(inputs, grid, params):
    """Exact solution on ``grid`` (axis 0 = x, axis 1 = t), shape ``(B, nx, nt)``."""
    batch = next((np.shape(v)[0] for v in inputs.values()), 1)
    x, t = np.meshgrid(*grid.axes, indexing="ij")
    u = exact(x, t, params["nu"], params["C"])
    return {"u": np.broadcast_to(u, (batch, *grid.shape)).copy()}


def make_problem(C: float = 0.0, nu: float = NU, t_end: float = T_END) -> Problem:  # noqa: N803 (paper's name)
    """The periodic Burgers problem with drift ``C``, viscosity ``nu > 0`` and final time ``t_end``."""
    for name, value in (("C", C), ("nu", nu), ("t_end", t_end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"burgers_periodic {name}: expected a finite number, got {value!r}")
    if nu <= 0 or t_end <= 0:
        raise ConfigError(f"burgers_periodic: expected nu > 0 and t_end > 0, got nu={nu}, t_end={t_end}")
    drift = float(C)

    def initial(x, t):
        """``u(x, 0) = sin x + C`` for numpy arrays or torch tensors."""
        return (torch.sin(x) if isinstance(x, torch.Tensor) else np.sin(x)) + drift

    return Problem(
        name="burgers_periodic",
        description=f"Burgers u_t + u u_x = nu u_xx on [0, 2 pi) periodic x [0, {t_end:g}], u0 = sin x + C",
        inputs=[],
        outputs=["u"],
        grid=Grid((256, 101), bounds=((0.0, LENGTH), (0.0, float(t_end)))),
        domain=Domain.rectangle([0.0, 0.0], [LENGTH, float(t_end)]),
        equation=equation,
        conditions=[Periodic(axis=0, period=LENGTH), Initial(initial, time_axis=1)],
        reference=reference,
        params={"nu": float(nu), "C": drift},
    )


problem = make_problem()
