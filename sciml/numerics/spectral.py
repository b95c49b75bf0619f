"""Fourier pseudo-spectral solvers on periodic intervals, in float64.

:func:`burgers_etdrk4` integrates the viscous Burgers equation in conservation form

.. math::

    u_t + (u^2 / 2)_x = \\nu u_{xx}, \\qquad x \\in [0, L) \\text{ periodic},

for a batch of initial data at once. The diffusion term is diagonal in Fourier space and stiff
(``nu k^2`` reaches 1e6 on a 1024-point grid of the unit interval), so it is integrated exactly by the
exponential time differencing Runge-Kutta scheme of Cox and Matthews (2002), ETDRK4, fourth order in
time, with the matrix functions ``phi_j(h L)`` evaluated by contour integrals as in Kassam and
Trefethen (2005, SIAM J. Sci. Comput. 26(4)) so that they keep full accuracy where ``h L`` is small.
The advection term is explicit: with the diffusion exact, the step size is bounded by accuracy, not
by the grid (viscous Burgers with ``nu = 0.1`` on the unit interval is diffusion-dominated above the
fifth wavenumber).

**Grid.** The samples are ``u(x_j)`` at ``x_j = j L / n``, ``j = 0 .. n - 1`` (the periodic convention:
the end point ``x = L`` is the same point as ``x = 0`` and is not stored). A node-based
:class:`~sciml.grid.Grid` over ``[0, L]`` with ``n + 1`` nodes holds the same values plus a repeated
end point; ``problems/burgers1d.py`` converts between the two.

**Dealiasing.** The quadratic term is formed on a grid of ``ceil(3 n / 2)`` points (zero padding of the
spectrum, the "3/2 rule"), which is alias free for every mode the ``n``-point grid holds; the Nyquist
mode of an even grid (whose derivative is not defined for real data) is set to zero in the nonlinear
term. The mean of ``u`` is conserved exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft

from .._checks import as_float_array, check_positive_int
from ..errors import ConfigError, ShapeError

__all__ = ["burgers_etdrk4", "etdrk4_coefficients", "wavenumbers"]

_CONTOUR_POINTS = 64


def wavenumbers(n: int, length: float = 1.0) -> np.ndarray:
    """Angular wavenumbers ``2 pi k / L`` of the real FFT of ``n`` periodic samples (``k = 0 .. n // 2``)."""
    n = check_positive_int("n", n)
    return 2.0 * math.pi * np.arange(n // 2 + 1) / float(length)


def etdrk4_coefficients(linear: np.ndarray, h: float) -> dict[str, np.ndarray]:
    """The ETDRK4 weights of a diagonal linear operator ``L`` and a step ``h`` (Cox-Matthews form).

    Returns ``E = exp(h L)``, ``E2 = exp(h L / 2)`` and ``Q, f1, f2, f3`` of Kassam and Trefethen
    (2005, eq. 2.5 and their Matlab code), each the shape of ``linear``; the last four are averages of
    their defining functions over a circle of radius 1 around ``h L``, which avoids the cancellation
    of the closed forms near ``h L = 0``. ``linear`` must be real and ``<= 0`` (diffusion).
    """
    lin = np.asarray(linear, dtype=np.float64)
    circle = np.exp(2j * math.pi * (np.arange(_CONTOUR_POINTS) + 0.5) / _CONTOUR_POINTS)
    z = h * lin[..., None] + circle
    ez = np.exp(z)
    ez2 = np.exp(z / 2.0)
    return {
        "E": np.exp(h * lin),
        "E2": np.exp(h * lin / 2.0),
        "Q": h * np.real(np.mean((ez2 - 1.0) / z, axis=-1)),
        "f1": h * np.real(np.mean((-4.0 - z + ez * (4.0 - 3.0 * z + z**2)) / z**3, axis=-1)),
        "f2": h * np.real(np.mean((2.0 + z + ez * (z - 2.0)) / z**3, axis=-1)),
        "f3": h * np.real(np.mean((-4.0 - 3.0 * z - z**2 + ez * (4.0 - z)) / z**3, axis=-1)),
    }


def etdrk4_step(v: np.ndarray, nonlinear: Any, coef: dict[str, np.ndarray]) -> np.ndarray:
    """One ETDRK4 step (Cox and Matthews 2002) of ``v_t = L v + N(v)`` in Fourier space.

    ``coef`` holds ``E``, ``E2``, ``Q``, ``f1``, ``f2``, ``f3`` of :func:`etdrk4_coefficients` (broadcastable
    to ``v``), ``nonlinear(v)`` is ``N``; shared by the 1-D and 2-D Burgers solvers.
    """
    E, E2, Q, f1, f2, f3 = (coef[name] for name in ("E", "E2", "Q", "f1", "f2", "f3"))
    nv = nonlinear(v)
    a = E2 * v + Q * nv
    na = nonlinear(a)
    b = E2 * v + Q * na
    nb = nonlinear(b)
    c = E2 * a + Q * (2.0 * nb - nv)
    nc = nonlinear(c)
    return E * v + f1 * nv + 2.0 * f2 * (na + nb) + f3 * nc


def _default_steps(u0: np.ndarray, nu: float, t_end: float, length: float, n: int) -> int:
    """Equal steps ending at ``t_end`` with ``h <= 1e-3`` (time error about 4e-9 relative for the FNO
    Burgers data) and ``h <= 1 / (max|u0| k*)``, ``k* = min(k_max, max|u0| / nu)``: the
    explicit advection needs ``h |u| k <= O(1)`` only on modes where it is not dominated by the
    (exactly integrated) diffusion, ``nu k >= |u|``. Viscous Burgers obeys a maximum principle, so
    ``max|u0|`` bounds ``|u|`` for all times."""
    h_max = 1e-3
    umax = float(np.abs(u0).max()) if u0.size else 0.0
    if umax > 0:
        k_star = min(float(wavenumbers(n, length)[-1]), umax / nu)
        h_max = min(h_max, 1.0 / (umax * k_star))
    return max(1, math.ceil(t_end / h_max - 1e-9))


def burgers_etdrk4(
    u0: Any,
    nu: float,
    t_end: float,
    *,
    length: float = 1.0,
    n_steps: int | None = None,
    dealias: bool = True,
) -> np.ndarray:
    """Solve periodic viscous Burgers ``u_t + (u^2/2)_x = nu u_xx`` to time ``t_end`` (float64, batched).

    Parameters
    ----------
    u0 : array_like, shape ``(n,)`` or ``(B, n)``
        Initial values at the periodic nodes ``x_j = j L / n`` (no repeated end point).
    nu : float
        Viscosity, ``> 0``.
    t_end : float
        Final time, ``>= 0``.
    length : float
        Period ``L``.
    n_steps : int, optional
        Number of equal ETDRK4 steps. By default ``h = min(1e-3, 1 / (max|u0| k*))`` with
        ``k* = min(k_max, max|u0| / nu)`` (an advective step limit on the modes that diffusion does not
        dominate), rounded so that the steps end exactly at ``t_end``. Halving the step divides the time
        error by about 16 until round-off for smooth data (``tests/test_burgers1d.py``); for the rough
        FNO data the default step gives about 4e-9 relative error at ``t = 1``.
    dealias : bool
        Form the quadratic term on the 3/2-padded grid (alias free). False multiplies on the ``n``-point
        grid itself (for comparisons only).

    Returns
    -------
    ndarray
        ``u(x_j, t_end)``, the shape of ``u0``.

    Raises
    ------
    ConfigError
        ``nu <= 0``, ``t_end < 0``, ``length <= 0``, or fewer than 4 points.
    ShapeError
        ``u0`` not 1-D or 2-D.
    NonFiniteError
        Non-finite initial data.
    """
    u = as_float_array("u0", u0)
    if u.ndim not in (1, 2):
        raise ShapeError("burgers_etdrk4 u0", "(n,) or (B, n)", u.shape)
    nu, t_end, length = float(nu), float(t_end), float(length)
    if not (math.isfinite(nu) and nu > 0):
        raise ConfigError(f"burgers_etdrk4: expected a finite viscosity nu > 0, got {nu}")
    if not (math.isfinite(t_end) and t_end >= 0):
        raise ConfigError(f"burgers_etdrk4: expected a finite final time t_end >= 0, got {t_end}")
    if not (math.isfinite(length) and length > 0):
        raise ConfigError(f"burgers_etdrk4: expected a period length > 0, got {length}")
    n = u.shape[-1]
    if n < 4:
        raise ConfigError(f"burgers_etdrk4: expected at least 4 periodic points, got {n}")
    if t_end == 0:
        return u.copy()
    single = u.ndim == 1
    batch = u[None] if single else u
    steps = (
        _default_steps(batch, nu, t_end, length, n)
        if n_steps is None
        else check_positive_int("n_steps", n_steps)
    )
    h = t_end / steps

    k = wavenumbers(n, length)
    coef = etdrk4_coefficients(-nu * k**2, h)
    deriv = -0.5j * k  # (u^2 / 2)_x -> -i k/2 FFT(u^2), with the minus sign of moving it to the right
    if n % 2 == 0:
        deriv[-1] = 0.0  # the Nyquist mode of real data has no well-defined derivative
    padded = math.ceil(3 * n / 2) if dealias else n
    kept = n // 2 + 1
    # Modes fed to the product: all of them on the plain grid; on the padded grid all but the Nyquist
    # mode of an even grid (on the finer grid it would be a different, complex mode).
    low = kept - 1 if dealias and n % 2 == 0 else kept
    gain = (
        padded / n
    )  # irfft on the padded grid divides by `padded`, the values need 1 / n; squared, / n again

    def nonlinear(v: np.ndarray) -> np.ndarray:
        w = scipy.fft.irfft(v[:, :low], n=padded, axis=-1)  # zero-fills the modes above `low`
        return deriv * (scipy.fft.rfft(w * w, axis=-1)[:, :kept] * gain)

    v = scipy.fft.rfft(batch, axis=-1)
    for _ in range(steps):
        v = etdrk4_step(v, nonlinear, coef)
    out = scipy.fft.irfft(v, n=n, axis=-1)
    return out[0] if single else out
