"""Scalar viscous Burgers on the periodic square: Fourier pseudo-spectral + ETDRK4, float64, batched.

:func:`burgers2d_etdrk4` integrates

.. math::

    u_t + u (u_x + u_y) = \\nu \\Delta u, \\qquad (x, y) \\in [0, L)^2 \\text{ periodic},

for a batch of initial data and returns the trajectory at equally spaced times. Because
``u (u_x + u_y) = (u^2/2)_x + (u^2/2)_y``, the equation is in conservation form: the nonlinear term is
formed as ``-i (k_x + k_y) / 2 * FFT(u^2)``, which leaves the mean of ``u`` exactly unchanged (its
``k = 0`` multiplier is zero). Viscous Burgers also obeys the maximum principle, ``max|u|`` does not
grow.

The scheme is the one of :func:`sciml.numerics.spectral.burgers_etdrk4` in two dimensions: the diffusion
``-nu |k|^2`` is integrated exactly by ETDRK4 (Cox and Matthews 2002) with the contour-integral weights
of Kassam and Trefethen (2005), :func:`~sciml.numerics.spectral.etdrk4_coefficients`; the advection is
explicit.

**Dealiasing.** ``u^2`` is formed on a ``ceil(3 n / 2)``-point grid per axis (the 3/2 rule, alias free
for a quadratic term). Only the modes with ``|k_x|, |k_y| <= (n - 1) // 2`` enter the product and get
a nonlinear tendency: the Nyquist row and column of an even grid have no well-defined derivative of
real data and get none (as the 1-D solver does).

**Reduction to 1-D.** For data constant along ``y`` only ``k_y = 0`` modes are present and the scheme
is term by term the 1-D scheme of ``burgers_etdrk4`` for ``u_t + (u^2/2)_x = nu u_xx`` (the tests check
the agreement to round-off). Along the diagonal, for ``u = f((x + y) / sqrt(2))``, it is 1-D Burgers
with the advection speed multiplied by ``sqrt(2)``: fronts form across the direction ``(1, 1)``.

**Grid.** Values live at ``(x_i, y_j) = (i L / n, j L / n)`` with no repeated end point, arrays in
``'ij'`` order (axis 0 is ``x``); ``problems/burgers2d.py`` converts from and to sciml's node grids
whose last row and column repeat the first.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft

from .._checks import as_float_array, check_int_at_least, check_positive_int
from ..errors import ConfigError, ShapeError
from .spectral import etdrk4_coefficients, etdrk4_step

__all__ = ["burgers2d_etdrk4", "default_step", "frame_times"]

_H_MAX = 1e-3
"""Largest step by default: the accuracy bound of the 1-D solver (4e-9 relative time error there)."""


def frame_times(t_end: float, n_times: int) -> np.ndarray:
    """The ``n_times`` equally spaced times ``t_k = k t_end / (n_times - 1)``, 0 and ``t_end`` included."""
    n_times = check_int_at_least("n_times", int(n_times) if isinstance(n_times, np.integer) else n_times, 2)
    return float(t_end) * np.arange(n_times) / (n_times - 1)


def _angular(n: int, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Angular wavenumbers of the full FFT along ``x`` (column) and of the real FFT along ``y`` (row)."""
    kx = 2.0 * math.pi * np.fft.fftfreq(n, 1.0 / n) / length
    ky = 2.0 * math.pi * np.arange(n // 2 + 1) / length
    return kx[:, None], ky[None, :]


def default_step(umax: float, nu: float, n: int, length: float = 1.0) -> float:
    """The default ETDRK4 step for ``max|u0| = umax`` on an ``n x n`` grid.

    The explicit advection of mode ``k`` rotates it at the rate ``a_k = umax |k_x + k_y|``; where the
    (exactly integrated) diffusion ``d_k = nu |k|^2`` exceeds it, the mode is damped before advection
    can make it unstable. So the step is bounded by ``1 / max{a_k : a_k > d_k}`` (well inside the
    stability interval ``|h a| < 2.8`` of RK4 on the imaginary axis) and by an accuracy cap of ``1e-3``.
    This is the 1-D rule of :func:`~sciml.numerics.spectral.burgers_etdrk4` (``h <= 1 / (umax k*)``,
    ``k* = min(k_max, umax / nu)``) written mode by mode. Viscous Burgers obeys a maximum principle,
    so ``max|u0|`` bounds ``|u|`` for all times.
    """
    if umax <= 0:
        return _H_MAX
    kx, ky = _angular(n, length)
    advect = umax * np.abs(kx + ky)
    dominated = advect > nu * (kx**2 + ky**2)
    rate = float(advect[dominated].max()) if dominated.any() else 0.0
    return _H_MAX if rate == 0 else min(_H_MAX, 1.0 / rate)


class _Nonlinear:
    """``N(v) = -FFT((u^2/2)_x + (u^2/2)_y)`` for spectra ``v`` of shape ``(B, n, n // 2 + 1)``, dealiased."""

    def __init__(self, n: int, length: float, dealias: bool) -> None:
        self.n = n
        self.padded = math.ceil(3 * n / 2) if dealias else n
        # Largest |k| whose +k and -k are both held: the Nyquist mode of an even grid is left out.
        self.kmax = (n - 1) // 2
        kx, ky = _angular(n, length)
        deriv = -0.5j * (kx + ky)  # minus: the term is moved to the right-hand side
        if n % 2 == 0:
            deriv[n // 2, :] = 0.0  # no derivative for the Nyquist modes of real data
            deriv[:, -1] = 0.0
        self.deriv = deriv
        # irfft2 on p x p points divides by p^2 where the values need 1 / n^2; the square of those values
        # carries the factor twice and rfft2 on p^2 points must be brought back to the n-point scale.
        self.gain = (self.padded / n) ** 2

    def __call__(self, v: np.ndarray) -> np.ndarray:
        n, p, k = self.n, self.padded, self.kmax
        spec = np.zeros((v.shape[0], p, p // 2 + 1), dtype=np.complex128)
        spec[:, : k + 1, : k + 1] = v[:, : k + 1, : k + 1]
        if k:
            spec[:, p - k :, : k + 1] = v[:, n - k :, : k + 1]
        w = scipy.fft.irfft2(spec, s=(p, p), axes=(-2, -1))
        square = scipy.fft.rfft2(w * w, axes=(-2, -1))
        out = np.zeros_like(v)
        out[:, : k + 1, : k + 1] = square[:, : k + 1, : k + 1]
        if k:
            out[:, n - k :, : k + 1] = square[:, p - k :, : k + 1]
        return self.deriv * (out * self.gain)


def burgers2d_etdrk4(
    u0: Any,
    nu: float,
    t_end: float,
    n_times: int = 2,
    *,
    length: float = 1.0,
    n_steps: int | None = None,
    dealias: bool = True,
) -> np.ndarray:
    """Solve periodic ``u_t + u (u_x + u_y) = nu Laplace u`` and return ``u`` at ``n_times`` times.

    Parameters
    ----------
    u0 : array_like, shape ``(n, n)`` or ``(B, n, n)``
        Initial values at the periodic nodes ``(i L / n, j L / n)`` (no repeated end points), ``'ij'``
        order.
    nu : float
        Viscosity, ``> 0``.
    t_end : float
        Final time, ``>= 0``.
    n_times : int
        Number of stored frames, ``>= 2``, at ``t_k = k t_end / (n_times - 1)`` (see :func:`frame_times`):
        the first frame is ``u0`` itself, the last is ``u(t_end)``.
    length : float
        Period ``L`` along both axes.
    n_steps : int, optional
        Total number of equal ETDRK4 steps; a multiple of ``n_times - 1`` so that every frame falls on a
        step. By default each of the ``n_times - 1`` intervals gets the fewest equal steps not longer
        than :func:`default_step` of the sample's own ``max|u0|``: samples are advanced in groups of
        equal step, so a sample's trajectory does not depend on the rest of the batch.
    dealias : bool
        Form ``u^2`` on the 3/2-padded grid (alias free). False multiplies on the ``n x n`` grid itself
        (for comparisons only).

    Returns
    -------
    ndarray
        ``(n_times, n, n)`` or ``(B, n_times, n, n)`` float64: the trajectory.

    Raises
    ------
    ConfigError
        ``nu <= 0``, ``t_end < 0``, ``length <= 0``, ``n_times < 2``, fewer than 4 points per axis, or
        ``n_steps`` not a multiple of ``n_times - 1``.
    ShapeError
        ``u0`` not ``(n, n)`` or ``(B, n, n)`` with a square last pair of axes.
    NonFiniteError
        Non-finite initial data.
    """
    u = as_float_array("burgers2d_etdrk4 u0", u0)
    if u.ndim not in (2, 3) or u.shape[-1] != u.shape[-2]:
        raise ShapeError("burgers2d_etdrk4 u0", "(n, n) or (B, n, n)", u.shape)
    nu, t_end, length = float(nu), float(t_end), float(length)
    if not (math.isfinite(nu) and nu > 0):
        raise ConfigError(f"burgers2d_etdrk4: expected a finite viscosity nu > 0, got {nu}")
    if not (math.isfinite(t_end) and t_end >= 0):
        raise ConfigError(f"burgers2d_etdrk4: expected a finite final time t_end >= 0, got {t_end}")
    if not (math.isfinite(length) and length > 0):
        raise ConfigError(f"burgers2d_etdrk4: expected a period length > 0, got {length}")
    times = frame_times(t_end, n_times)
    intervals = times.size - 1
    n = u.shape[-1]
    if n < 4:
        raise ConfigError(f"burgers2d_etdrk4: expected at least 4 periodic points per axis, got {n}")
    single = u.ndim == 2
    batch = u[None] if single else u
    if n_steps is None:
        # Per sample, so that a trajectory does not depend on the other samples of the batch (a batch
        # maximum would change the step, and the result by the time error, with the batch's makeup).
        umax = np.abs(batch).max(axis=(1, 2)) if batch.size else np.zeros(batch.shape[0])
        per_frame = np.array(
            [
                max(1, math.ceil(t_end / intervals / default_step(float(a), nu, n, length) - 1e-9))
                for a in umax
            ],
            dtype=np.int64,
        )
    else:
        n_steps = check_positive_int("n_steps", n_steps)
        if n_steps % intervals:
            raise ConfigError(
                f"burgers2d_etdrk4: n_steps must be a multiple of n_times - 1 = {intervals} so that every "
                f"frame falls on a step, got {n_steps}"
            )
        per_frame = np.full(batch.shape[0], n_steps // intervals, dtype=np.int64)

    out = np.empty((batch.shape[0], times.size, n, n))
    out[:, 0] = batch
    if t_end == 0:
        out[:, 1:] = batch[:, None]
        return out[0] if single else out
    nonlinear = _Nonlinear(n, length, dealias)
    for steps in np.unique(per_frame):  # samples with the same step are advanced together
        group = np.flatnonzero(per_frame == steps)
        out[group, 1:] = _integrate(
            batch[group], nu, t_end / intervals, int(steps), intervals, length, nonlinear
        )
    return out[0] if single else out


def _integrate(
    batch: np.ndarray,
    nu: float,
    dt_frame: float,
    per_frame: int,
    intervals: int,
    length: float,
    nonlinear: _Nonlinear,
) -> np.ndarray:
    """ETDRK4 with ``per_frame`` equal steps per frame; the ``intervals`` frames after ``t = 0``."""
    n = batch.shape[-1]
    h = dt_frame / per_frame
    kx, ky = _angular(n, length)
    # The weights depend on |k|^2 only, which takes about 1/4 as many distinct values as there are
    # modes at 192^2: evaluating the 64-point contour averages on those alone saves most of the set-up.
    distinct, where = np.unique(kx**2 + ky**2, return_inverse=True)
    coef = etdrk4_coefficients(-nu * distinct, h)
    shape = np.broadcast_shapes(kx.shape, ky.shape)
    coef = {name: coef[name][where].reshape(shape) for name in ("E", "E2", "Q", "f1", "f2", "f3")}

    out = np.empty((batch.shape[0], intervals, n, n))
    v = scipy.fft.rfft2(batch, axes=(-2, -1))
    for frame in range(intervals):
        for _ in range(per_frame):
            v = etdrk4_step(v, nonlinear, coef)
        out[:, frame] = scipy.fft.irfft2(v, s=(n, n), axes=(-2, -1))
    return out
