"""Gaussian random fields on grids: spectral (FFT / DCT) GRF, its thresholded two-valued version
(FNO's Darcy coefficient) and the squared-exponential (RBF) Gaussian process."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft

from .._checks import check_name
from ..errors import ConfigError
from ..grid import Grid
from .base import Space, _apply_per_axis, _number, _psd_factor, register_space

__all__ = ["GRF", "ThresholdedGRF", "RBFGRF"]


@register_space
class GRF(Space):
    """Gaussian random field with covariance operator ``sigma^2 (-Laplace + tau^2)^(-alpha)`` on the box.

    The field is the Karhunen-Loeve sum ``u = mean + sum_k sigma (mu_k + tau^2)^(-alpha/2) xi_k phi_k``
    over the L2-orthonormal eigenfunctions ``phi_k`` of ``-Laplace`` on the grid's box (eigenvalues
    ``mu_k``), truncated to as many modes per axis as the grid has independent values, with
    ``xi_k ~ N(0, 1)``. The constant mode is dropped by default, as in the FNO data, so every sample
    has zero spatial mean (then ``mean`` is added).

    ``boundary="neumann"``: ``phi_k = prod_i sqrt(c_k / L_i) cos(pi k_i (x_i - lo_i) / L_i)``, ``c_0 = 1``,
    ``c_k = 2``, ``k_i = 0..n_i - 1``. The grid is node based (both end points included), and on
    ``x_j = j L / (n - 1)`` these cosines are exactly the DCT-I basis, which is orthogonal on the nodes
    and represents every node vector; so the field is evaluated with one type-1 DCT per axis. (FNO's
    MATLAB code used an orthonormal DCT-II on cell centres ``(j + 1/2) / s``; its ``s * idct2`` scaling
    gives the same orthonormal eigenfunctions, so on the unit square the two fields have the same law,
    only sampled at nodes instead of cell centres.) ``xi`` is drawn as ``standard_normal((n, *shape))``
    and ``xi[i][k]`` multiplies mode ``k`` of sample ``i``.

    ``boundary="periodic"``: period ``L_i = hi_i - lo_i``, eigenvalues ``(2 pi k / L)^2``. The field is
    sampled on the ``n_i - 1`` distinct nodes by filtering white noise with a real FFT (the covariance
    on those nodes is exactly the truncated operator's) and the last node repeats the first, so
    ``u[..., 0] == u[..., -1]`` holds exactly along every axis.

    Parameters
    ----------
    alpha : float
        Smoothness; must exceed ``d / 2`` for a ``d``-D grid (finite pointwise variance).
    tau : float
        Inverse length scale, ``>= 0``; ``tau = 0`` needs an explicit ``sigma`` and ``drop_constant``.
    sigma : float, optional
        Amplitude; default ``tau ** (alpha - d / 2)`` (FNO). The pointwise variance scales like
        ``sigma^2 tau^(d - 2 alpha)`` for large ``tau``, so this default makes it independent of ``tau``
        (about 0.09 for the Darcy setting ``alpha=2, tau=3`` on the unit square).
    boundary : {"neumann", "periodic"}
    mean : float
        Added to every sample.
    drop_constant : bool
        Zero the constant mode (FNO convention).
    """

    kind = "grf"
    _BOUNDARIES = ("neumann", "periodic")

    def __init__(
        self,
        alpha: float = 2.0,
        tau: float = 3.0,
        sigma: float | None = None,
        boundary: str = "neumann",
        mean: float = 0.0,
        drop_constant: bool = True,
    ) -> None:
        # alpha > d/2 is checked per grid in _check_grid; d >= 1 already needs alpha > 1/2.
        self.alpha = _number("GRF alpha (> d/2 for a finite-variance field)", alpha, 0.5)
        self.tau = _number("GRF tau", tau, 0.0, strict=False)
        self.sigma = None if sigma is None else _number("GRF sigma", sigma, 0.0)
        check_name("GRF boundary", boundary, self._BOUNDARIES)
        self.boundary = boundary
        self.mean = _number("GRF mean", mean)
        if not isinstance(drop_constant, bool):
            raise ConfigError(f"GRF drop_constant: expected a bool, got {drop_constant!r}")
        self.drop_constant = drop_constant
        if self.tau == 0 and (self.sigma is None or not drop_constant):
            raise ConfigError("GRF: tau = 0 needs an explicit sigma and drop_constant=True (the constant "
                              f"mode has infinite variance), got sigma={sigma}, "
                              f"drop_constant={drop_constant}")

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "tau": self.tau, "sigma": self.sigma, "boundary": self.boundary,
                "mean": self.mean, "drop_constant": self.drop_constant}

    def _check_grid(self, grid: Any) -> None:
        super()._check_grid(grid)
        if self.alpha <= grid.ndim / 2:
            raise ConfigError(f"GRF: expected alpha > d/2 = {grid.ndim / 2} on a {grid.ndim}-D grid "
                              f"(otherwise the field has infinite variance), got alpha={self.alpha}")

    def amplitude(self, ndim: int) -> float:
        """``sigma`` used on a ``ndim``-D grid (the FNO default when ``sigma`` is None)."""
        if self.sigma is not None:
            return self.sigma
        return self.tau ** (self.alpha - ndim / 2)

    def _sqrt_eigenvalues(self, mu: np.ndarray, ndim: int) -> np.ndarray:
        """``sigma (mu + tau^2)^(-alpha/2)`` with the constant mode (``mu = 0``) zeroed if asked."""
        shifted = mu + self.tau**2
        const = mu == 0
        shifted = np.where(const, 1.0, shifted) if self.tau == 0 else shifted
        root = self.amplitude(ndim) * shifted ** (-self.alpha / 2)
        if self.drop_constant:
            root = np.where(const, 0.0, root)
        return root

    def _neumann_multiplier(self, grid: Grid) -> np.ndarray:
        d = grid.ndim
        mu = np.zeros(grid.shape)
        scale = np.ones(grid.shape)
        for axis, ((lo, hi), m) in enumerate(zip(grid.bounds, grid.shape)):
            length, k = hi - lo, np.arange(m)
            shape = [1] * d
            shape[axis] = m
            mu = mu + ((np.pi * k / length) ** 2).reshape(shape)
            orthonormal = np.sqrt(np.where(k == 0, 1.0, 2.0) / length)
            # scipy's unnormalised DCT-I counts interior coefficients twice (x_0 + (-1)^j x_{N-1}
            # + 2 sum x_k cos(pi k j / (N-1))), so halve them to get sum_k a_k cos(...).
            dct_weight = np.where((k == 0) | (k == m - 1), 1.0, 0.5)
            scale = scale * (orthonormal * dct_weight).reshape(shape)
        return self._sqrt_eigenvalues(mu, d) * scale

    def _periodic_multiplier(self, grid: Grid) -> np.ndarray:
        d = grid.ndim
        distinct = [m - 1 for m in grid.shape]
        # Integer wavenumbers of a full FFT on the leading axes and of a real FFT on the last one.
        freqs = [np.fft.fftfreq(p, 1.0 / p) for p in distinct[:-1]]
        freqs.append(np.fft.rfftfreq(distinct[-1], 1.0 / distinct[-1]))
        mu = 0.0
        for axis, ((lo, hi), f) in enumerate(zip(grid.bounds, freqs)):
            shape = [1] * d
            shape[axis] = f.size
            mu = mu + ((2 * np.pi * f / (hi - lo)) ** 2).reshape(shape)
        volume = float(np.prod([hi - lo for lo, hi in grid.bounds]))
        # Filtering N(0, I) noise w as ifft(D * fft(w)) on P points gives covariance
        # (1/P) F* D^2 F; matching the kernel (1/|box|) sum_k lambda_k e^{i k.(x - y)} needs
        # D_k^2 = P lambda_k / |box|.
        return self._sqrt_eigenvalues(np.asarray(mu), d) * math.sqrt(np.prod(distinct) / volume)

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        axes = tuple(range(1, grid.ndim + 1))
        if self.boundary == "neumann":
            mult = self._cached(("neumann", grid), lambda: self._neumann_multiplier(grid))
            u = scipy.fft.dctn(rng.standard_normal((n, *grid.shape)) * mult, type=1, axes=axes)
        else:
            mult = self._cached(("periodic", grid), lambda: self._periodic_multiplier(grid))
            distinct = tuple(m - 1 for m in grid.shape)
            spectrum = scipy.fft.rfftn(rng.standard_normal((n, *distinct)), axes=axes) * mult
            u = scipy.fft.irfftn(spectrum, s=distinct, axes=axes)
            u = np.pad(u, [(0, 0)] + [(0, 1)] * grid.ndim, mode="wrap")
        return u + self.mean if self.mean else u


@register_space
class ThresholdedGRF(Space):
    """Two-valued field: ``hi`` where a :class:`GRF` is ``>= threshold``, ``lo`` elsewhere.

    With the defaults this is the coefficient of FNO's Darcy benchmark (``a in {12, 3}``); since the
    GRF has zero spatial mean, about half of each sample takes the value ``hi``.
    """

    kind = "thresholded_grf"

    def __init__(
        self,
        alpha: float = 2.0,
        tau: float = 3.0,
        hi: float = 12.0,
        lo: float = 3.0,
        threshold: float = 0.0,
        sigma: float | None = None,
        boundary: str = "neumann",
        drop_constant: bool = True,
    ) -> None:
        self.grf = GRF(alpha=alpha, tau=tau, sigma=sigma, boundary=boundary, drop_constant=drop_constant)
        self.hi = _number("ThresholdedGRF hi", hi)
        self.lo = _number("ThresholdedGRF lo", lo)
        self.threshold = _number("ThresholdedGRF threshold", threshold)

    def params(self) -> dict[str, Any]:
        g = self.grf
        return {"alpha": g.alpha, "tau": g.tau, "hi": self.hi, "lo": self.lo, "threshold": self.threshold,
                "sigma": g.sigma, "boundary": g.boundary, "drop_constant": g.drop_constant}

    def _check_grid(self, grid: Any) -> None:
        self.grf._check_grid(grid)

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        return np.where(self.grf.draw(n, grid, rng) >= self.threshold, self.hi, self.lo)


@register_space
class RBFGRF(Space):
    """Gaussian process with kernel ``variance * exp(-|x - y|^2 / (2 length_scale^2))``, zero mean.

    This is DeepONet's input space on an interval. The kernel is a product over axes, so on a
    tensor grid its covariance is a Kronecker product and we factor one small ``n_i x n_i`` matrix per
    axis (jittered Cholesky, eigendecomposition fallback; see ``_psd_factor``) instead of the full
    ``N x N`` one: 2-D and 3-D grids cost no more than 1-D ones. Factors are cached per grid.
    """

    kind = "rbf_grf"

    def __init__(self, length_scale: float = 0.2, variance: float = 1.0) -> None:
        self.length_scale = _number("RBFGRF length_scale", length_scale, 0.0)
        self.variance = _number("RBFGRF variance", variance, 0.0)

    def params(self) -> dict[str, Any]:
        return {"length_scale": self.length_scale, "variance": self.variance}

    def _factors(self, grid: Grid) -> list[np.ndarray]:
        factors = []
        for x in grid.axes:
            kernel = np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * self.length_scale**2))
            factors.append(_psd_factor(kernel, "RBFGRF kernel").T)  # transposed for _apply_per_axis
        return factors

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        factors = self._cached(grid, lambda: self._factors(grid))
        noise = rng.standard_normal((n, *grid.shape))
        return math.sqrt(self.variance) * _apply_per_axis(noise, factors)
