"""1-D diffusion-reaction ``s_t = D s_xx + k s^2 + f`` by linearised Crank-Nicolson, in float64.

This is the reference solver of DeepONet's diffusion-reaction benchmark (Lu et al. 2021): zero
initial value (or a given one), zero Dirichlet values at both ends, node grids in ``x`` and ``t``.

Scheme
------
Second-order central differences in space and the trapezoidal rule in time. The reaction term is
linearised about the current step, ``g(s^{n+1/2}) ~ g(s^n) + g'(s^n) (s^{n+1} - s^n) / 2`` with
``g(s) = k s^2``, exactly as in the DeepONet reference code (``ADR_solver.py``), so each step is one
*linear* tridiagonal solve and the scheme stays second order in ``dt``:

.. math::

    \\Big(\\tfrac{1}{\\Delta t} - \\tfrac{D}{2}\\,\\delta_{xx} - \\tfrac{g'(s^n)}{2}\\Big) s^{n+1}
    = \\Big(\\tfrac{1}{\\Delta t} + \\tfrac{D}{2}\\,\\delta_{xx} - \\tfrac{g'(s^n)}{2}\\Big) s^n
      + g(s^n) + \\tfrac{f^n + f^{n+1}}{2}.

The matrix changes with ``s^n`` (its diagonal), so every sample has its own system at every step;
all samples are solved together with a vectorised Thomas algorithm (the systems are diagonally
dominant for the step sizes used, so no pivoting is needed; a non-dominant system raises).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import as_float_array
from ..errors import ConfigError, NonFiniteError, ShapeError

__all__ = ["solve_diffusion_reaction", "thomas"]


def thomas(lower: np.ndarray, diag: np.ndarray, upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve a batch of tridiagonal systems ``(B, n)`` without pivoting.

    ``lower[:, i]`` multiplies ``x[:, i - 1]`` in row ``i`` (``lower[:, 0]`` is unused) and
    ``upper[:, i]`` multiplies ``x[:, i + 1]`` (``upper[:, -1]`` is unused). All arguments broadcast to
    ``rhs.shape``.
    """
    rhs = np.asarray(rhs, dtype=np.float64)
    if rhs.ndim != 2:
        raise ShapeError("thomas rhs", "(B, n)", rhs.shape)
    lower, diag, upper = (np.broadcast_to(np.asarray(a, dtype=np.float64), rhs.shape)
                          for a in (lower, diag, upper))
    n = rhs.shape[1]
    c = np.empty_like(rhs)
    d = np.empty_like(rhs)
    denom = diag[:, 0]
    c[:, 0] = upper[:, 0] / denom
    d[:, 0] = rhs[:, 0] / denom
    for i in range(1, n):  # forward sweep over the rows, all systems at once
        denom = diag[:, i] - lower[:, i] * c[:, i - 1]
        c[:, i] = upper[:, i] / denom
        d[:, i] = (rhs[:, i] - lower[:, i] * d[:, i - 1]) / denom
    x = np.empty_like(rhs)
    x[:, -1] = d[:, -1]
    for i in range(n - 2, -1, -1):
        x[:, i] = d[:, i] - c[:, i] * x[:, i + 1]
    return x


def solve_diffusion_reaction(
    source: Any,
    x: Any,
    t: Any,
    diffusion: float = 0.01,
    reaction: float = 0.01,
    initial: Any = None,
) -> np.ndarray:
    """Solve ``s_t = D s_xx + k s^2 + f(x, t)`` with ``s = 0`` at both ends, for a batch of sources.

    Parameters
    ----------
    source : array_like
        ``f`` at the nodes: ``(B, nx)`` for a time-independent source (DeepONet's case) or
        ``(B, nx, nt)`` for one that varies in time.
    x, t : array_like
        Uniform node coordinates in space ``(nx,)`` and time ``(nt,)``, ``nx, nt >= 3``.
    diffusion, reaction : float
        ``D > 0`` and ``k``.
    initial : array_like, optional
        ``s(x, t0)``, ``(B, nx)`` or ``(nx,)``; zero by default. Its end values are replaced by 0.

    Returns
    -------
    numpy.ndarray, shape (B, nx, nt)
        ``s`` on the space-time node grid (``'ij'``: axis 1 is ``x``, axis 2 is ``t``).
    """
    x, t = as_float_array("x", x), as_float_array("t", t)
    for name, v in (("x", x), ("t", t)):
        if v.ndim != 1 or v.size < 3:
            raise ShapeError(name, "(n,) with n >= 3", v.shape)
        step = np.diff(v)
        if np.any(step <= 0) or np.ptp(step) > 1e-9 * abs(step[0]):
            raise ConfigError(f"solve_diffusion_reaction: {name} must be uniform and increasing")
    if not (np.isfinite(diffusion) and diffusion > 0) or not np.isfinite(reaction):
        raise ConfigError(f"solve_diffusion_reaction: expected D > 0 and finite k, got D={diffusion}, "
                          f"k={reaction}")
    nx, nt = x.size, t.size
    f = as_float_array("source", source)
    if f.ndim == 1:
        f = f[None]
    if f.ndim == 2 and f.shape[1] == nx:
        f = np.broadcast_to(f[:, :, None], (f.shape[0], nx, nt))
    if f.ndim != 3 or f.shape[1:] != (nx, nt):
        raise ShapeError("source", f"(B, {nx}) or (B, {nx}, {nt})", f.shape)
    batch = f.shape[0]
    s = np.zeros((batch, nx, nt))
    if initial is not None:
        s0 = as_float_array("initial", initial)
        if s0.shape not in ((nx,), (batch, nx)):
            raise ShapeError("initial", f"({nx},) or ({batch}, {nx})", s0.shape)
        s[:, 1:-1, 0] = np.broadcast_to(s0, (batch, nx))[:, 1:-1]

    h, dt = x[1] - x[0], t[1] - t[0]
    r = diffusion / (2 * h * h)  # D/2 times the 1/h^2 of the second difference
    for n in range(nt - 1):
        cur = s[:, 1:-1, n]
        dg = 2.0 * reaction * cur  # g'(s^n) for g(s) = k s^2
        diag = 1.0 / dt + 2 * r - dg / 2
        if np.any(np.abs(diag) <= 2 * r):
            raise ConfigError("solve_diffusion_reaction: the linearised system lost diagonal dominance "
                              f"at step {n} (|k s| too large for dt={dt:g}); use a smaller time step")
        # right-hand side: (1/dt + D/2 d_xx - g'/2) s^n + g(s^n) + (f^n + f^{n+1}) / 2
        lap = s[:, :-2, n] - 2 * cur + s[:, 2:, n]
        source_mid = 0.5 * (f[:, 1:-1, n] + f[:, 1:-1, n + 1])
        rhs = (1.0 / dt - dg / 2) * cur + r * lap + reaction * cur**2 + source_mid
        s[:, 1:-1, n + 1] = thomas(-r, diag, -r, rhs)
    if not np.all(np.isfinite(s)):
        raise NonFiniteError("solve_diffusion_reaction: the solution blew up (non-finite values)")
    return s

