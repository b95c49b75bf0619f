"""Batched ODE integration for forced systems ``ds/dt = rhs(t, s, u(t))``, in float64.

DeepONet's ODE benchmarks (antiderivative, gravity pendulum) drive a small system with a random
forcing ``u`` known only at nodes. As in the DeepONet reference code, the forcing between the
nodes is the cubic spline through the node values (not-a-knot end conditions), so the exact
solution of the discrete data is well defined; the integrators here solve that ODE.

* :func:`spline_antiderivative` integrates the spline *exactly* (the spline is piecewise cubic,
  its antiderivative piecewise quartic), which is the exact solution of ``ds/dx = u, s(x0) = 0``.
* :func:`rk4` is the classical fourth-order Runge-Kutta method on the node times (optionally with
  ``substeps`` steps per node interval), vectorised over a batch of forcings and states: one step
  for all samples at once, with the forcing at every stage time read from the spline beforehand.
  The global error is ``O(h^4)``; at the data grids used here (``h ~ 1e-3``) it is ~1e-12.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._checks import as_float_array, check_positive_int
from ..errors import ConfigError, ShapeError

__all__ = ["spline_antiderivative", "spline_forcing", "rk4"]

Rhs = Callable[[float, np.ndarray, np.ndarray | None], np.ndarray]


def _check_nodes(t: Any) -> np.ndarray:
    t = as_float_array("t (node times)", t)
    if t.ndim != 1 or t.size < 4:
        raise ShapeError("t (node times)", "(n,) with n >= 4 (a cubic spline needs four nodes)", t.shape)
    if np.any(np.diff(t) <= 0):
        raise ConfigError("t (node times): expected strictly increasing values")
    return t


def _check_forcing(values: Any, t: np.ndarray, name: str = "forcing") -> np.ndarray:
    values = as_float_array(name, values)
    if values.ndim == 1:
        values = values[None]
    if values.ndim != 2 or values.shape[1] != t.size:
        raise ShapeError(name, f"(B, {t.size}) node values", values.shape)
    return values


def spline_antiderivative(values: Any, x: Any) -> np.ndarray:
    """Exact integral from ``x[0]`` of the cubic spline through ``(x, values)``, at the nodes ``x``.

    Parameters
    ----------
    values : array_like, shape (B, n) or (n,)
        Node values of the integrand (one row per sample).
    x : array_like, shape (n,)
        Strictly increasing nodes (n >= 4).

    Returns
    -------
    numpy.ndarray, shape (B, n)
        ``s(x_j) = int_{x_0}^{x_j} spline(u)(x) dx``; ``s(x_0) = 0``.
    """
    from scipy.interpolate import CubicSpline

    x = _check_nodes(x)
    values = _check_forcing(values, x, "values")
    anti = CubicSpline(x, values, axis=1, bc_type="not-a-knot").antiderivative()
    out = anti(x)
    return out - out[:, :1]


def spline_forcing(values: Any, t: Any, times: Any) -> np.ndarray:
    """The cubic spline through node values ``(B, n)`` at ``t``, at ``times``: ``(B, len(times))``."""
    from scipy.interpolate import CubicSpline

    t = _check_nodes(t)
    values = _check_forcing(values, t)
    times = as_float_array("times", times).reshape(-1)
    slack = 1e-12 * (t[-1] - t[0])
    if times.size and (times.min() < t[0] - slack or times.max() > t[-1] + slack):
        raise ConfigError(f"spline_forcing: times must lie in [{t[0]}, {t[-1]}]")
    return CubicSpline(t, values, axis=1, bc_type="not-a-knot")(times)


def rk4(rhs: Rhs, y0: Any, t: Any, forcing: Any = None, substeps: int = 1) -> np.ndarray:
    """Integrate ``dy/dt = rhs(t, y, u(t))`` for a batch with classical RK4; states at the nodes.

    Parameters
    ----------
    rhs : callable
        ``rhs(t, y, u) -> dy/dt`` with ``y`` of shape ``(B, dim)`` and ``u`` of shape ``(B,)`` (the
        forcing at time ``t``, or None without forcing); vectorised over the batch.
    y0 : array_like, shape (B, dim) or (dim,)
        Initial states (one for all samples when 1-D).
    t : array_like, shape (n,)
        Strictly increasing output times; ``t[0]`` is the initial time.
    forcing : array_like, shape (B, n), optional
        Node values of the forcing at ``t``; the cubic spline through them is used between nodes.
    substeps : int
        RK4 steps per node interval.

    Returns
    -------
    numpy.ndarray, shape (B, n, dim)
        The states at every node time (``[:, 0]`` is ``y0``).
    """
    t = _check_nodes(t)
    substeps = check_positive_int("substeps", substeps)
    y0 = as_float_array("y0", y0)
    u = None if forcing is None else _check_forcing(forcing, t)
    batch = u.shape[0] if u is not None else (y0.shape[0] if y0.ndim == 2 else 1)
    if y0.ndim == 1:
        y0 = np.broadcast_to(y0, (batch, y0.size))
    if y0.ndim != 2 or y0.shape[0] != batch:
        raise ShapeError("y0", f"({batch}, dim) or (dim,)", y0.shape)

    # Every stage time of every step: t_j + {0, h/2, h} for the substeps of each interval. The
    # spline is evaluated at all of them once, so the time loop does no interpolation.
    frac = np.arange(substeps) / substeps
    starts = (t[:-1, None] + np.diff(t)[:, None] * frac[None]).reshape(-1)
    steps = np.diff(np.append(starts, t[-1]))
    if u is not None:
        stage_times = np.stack([starts, starts + steps / 2, starts + steps], axis=1)
        f = spline_forcing(u, t, stage_times.reshape(-1)).reshape(batch, -1, 3)
    out = np.empty((batch, t.size, y0.shape[1]))
    out[:, 0] = y = np.array(y0, dtype=np.float64)
    for i, (t0, h) in enumerate(zip(starts, steps)):
        f0, fm, f1 = (None, None, None) if u is None else (f[:, i, 0], f[:, i, 1], f[:, i, 2])
        k1 = rhs(t0, y, f0)
        if i == 0 and np.shape(k1) != y.shape:
            raise ShapeError("rhs(t, y, u)", y.shape, np.shape(k1))
        k2 = rhs(t0 + h / 2, y + h / 2 * k1, fm)
        k3 = rhs(t0 + h / 2, y + h / 2 * k2, fm)
        k4 = rhs(t0 + h, y + h * k3, f1)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if (i + 1) % substeps == 0:
            out[:, (i + 1) // substeps] = y
    if not np.all(np.isfinite(out)):
        from ..errors import NonFiniteError

        raise NonFiniteError("rk4: the solution blew up (non-finite values); reduce the step or check rhs")
    return out
