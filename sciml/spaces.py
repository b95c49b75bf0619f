"""Random input function spaces: the distributions that PDE inputs are drawn from.

Every space samples ``n`` functions on the nodes of a :class:`~sciml.fields.Grid` at once and returns a
float64 array of shape ``(n, *grid.shape)``. Sampling is seeded (an int or a ``np.random.Generator``)
and *prefix stable*: the first ``k`` of ``n`` samples equal the ``k`` samples drawn with the same seed
(up to round-off from how BLAS blocks the batch), because the noise of sample ``i`` is always the
``i``-th block of one ``standard_normal((n, ...))`` draw.

Spaces are plain parameter records: ``to_dict()`` gives ``{"kind": ..., **kwargs}`` (JSON-safe, stored
in datasets and checkpoints) and :func:`space_from_dict` rebuilds the space. Factorisations that only
depend on the grid (Cholesky factors, spectral multipliers) are cached per grid on the instance.

Spaces
------
GRF             Gaussian field, covariance ``sigma^2 (-Laplace + tau^2)^(-alpha)``, Neumann or periodic.
ThresholdedGRF  two-valued field ``hi``/``lo`` from the sign of a GRF (FNO's Darcy coefficient).
RBFGRF          Gaussian process with the squared-exponential kernel (DeepONet's input space).
BoundaryGRF     smooth random Dirichlet data, continuous around the corners of a box.
TrigSeries      random sine / cosine / Fourier series with algebraically decaying amplitudes.
Fixed           one deterministic function: a constant, an expression string, a callable or an array.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.fft
import scipy.linalg

from ._checks import as_float_array, check_name, check_positive_int
from .errors import ConfigError, NotSPDError, SciMLError, ShapeError
from .fields import Grid
from .formula import compile_formula

_AXIS_NAMES = ("x", "y", "z")

__all__ = [
    "Space", "GRF", "ThresholdedGRF", "RBFGRF", "BoundaryGRF", "TrigSeries", "Fixed",
    "boundary_indices", "register_space", "space_from_dict",
]

_REGISTRY: dict[str, type[Space]] = {}
_CACHE_SIZE = 8  # grids remembered per space; a run rarely uses more than train + test resolution


def register_space(cls: type[Space]) -> type[Space]:
    """Class decorator adding a :class:`Space` subclass to the registry under ``cls.kind``."""
    if not (isinstance(cls, type) and issubclass(cls, Space)) or not cls.kind:
        raise ConfigError(f"register_space: expected a Space subclass with a 'kind', got {cls!r}")
    _REGISTRY[cls.kind] = cls
    return cls


def space_from_dict(data: dict[str, Any]) -> Space:
    """Rebuild a space from :meth:`Space.to_dict` output."""
    if not isinstance(data, dict) or "kind" not in data:
        raise ConfigError(f"space_from_dict: expected a dict with a 'kind' key, got {data!r}")
    kwargs = dict(data)
    kind = kwargs.pop("kind")
    check_name("space kind", kind, _REGISTRY)
    try:
        return _REGISTRY[kind](**kwargs)
    except TypeError as exc:  # unexpected or missing keyword
        raise ConfigError(f"space_from_dict: bad arguments for kind {kind!r}: {exc}") from None


def _as_rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: expected a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def _number(name: str, value: Any, minimum: float | None = None, strict: bool = True) -> float:
    """``value`` as a finite float, checked ``> minimum`` (``>=`` if not ``strict``) when one is given."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    low_ok = minimum is None or value > minimum or (not strict and value == minimum)
    if not math.isfinite(value) or not low_ok:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise ConfigError(f"{name}: expected a finite number{bound}, got {value!r}")
    return value


def _apply_per_axis(values: np.ndarray, mats: list[np.ndarray]) -> np.ndarray:
    """Contract axis ``1 + a`` of ``values`` with ``mats[a]`` (shape ``(in_a, out_a)``), for every axis.

    Each contraction consumes the leading mode axis and appends the output axis, so after ``d`` steps
    the axes are back in order: ``(n, in_1, ..., in_d) -> (n, out_1, ..., out_d)``.
    """
    for mat in mats:
        values = np.tensordot(values, mat, axes=([1], [0]))
    return values


def _psd_factor(kernel: np.ndarray, what: str) -> np.ndarray:
    """A matrix ``F`` with ``F @ F.T`` equal to ``kernel`` up to round-off.

    Smooth kernels on fine node sets are numerically singular, so a plain Cholesky fails. We add the
    smallest jitter (relative to the diagonal, 1e-12 up to 1e-8) that lets it succeed: the Cholesky
    factor is unique, hence reproducible across platforms, and the added white noise is far below any
    discretisation error. Only if that fails we fall back to a symmetric eigendecomposition with the
    round-off negative eigenvalues clipped to zero.
    """
    scale = float(np.max(np.diag(kernel)))
    eye = np.eye(kernel.shape[0])
    for rel in (1e-12, 1e-10, 1e-8):
        try:
            return scipy.linalg.cholesky(kernel + rel * scale * eye, lower=True)
        except np.linalg.LinAlgError:
            continue
    evals, evecs = np.linalg.eigh(kernel)
    if evals.min() < -1e-6 * scale:
        raise NotSPDError(f"{what}: expected a positive semi-definite kernel, "
                          f"got eigenvalue {evals.min():.2e} for diagonal {scale:.2e}")
    return evecs * np.sqrt(np.clip(evals, 0.0, None))


class Space(abc.ABC):
    """A distribution over functions on a grid.

    Subclasses set ``kind`` and ``ndims`` (the grid dimensions they support) and implement
    ``_sample(n, grid, rng)`` and ``_params()``; :meth:`sample` checks the arguments first.
    """

    kind: ClassVar[str] = ""
    ndims: ClassVar[tuple[int, ...]] = (1, 2, 3)

    def sample(self, n: int, grid: Grid, seed: int | np.random.Generator) -> np.ndarray:
        """Draw ``n`` functions on the nodes of ``grid``.

        Parameters
        ----------
        n : int
            Number of samples (positive).
        grid : Grid
            Node grid to evaluate on.
        seed : int or numpy.random.Generator
            An int always gives the same samples; a Generator is advanced.

        Returns
        -------
        numpy.ndarray
            float64 array of shape ``(n, *grid.shape)``.
        """
        n = check_positive_int("n", n)
        self._check_grid(grid)
        return self._sample(n, grid, _as_rng(seed))

    def _check_grid(self, grid: Any) -> None:
        if not isinstance(grid, Grid):
            raise ConfigError(f"{type(self).__name__}.sample: expected a Grid, got {type(grid).__name__}")
        if grid.ndim not in self.ndims:
            raise ConfigError(
                f"{type(self).__name__}: expected a grid of dimension {self.ndims}, got {grid.ndim}-D"
            )

    def _cached(self, key: Any, build: Callable[[], Any]) -> Any:
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            if len(cache) >= _CACHE_SIZE:
                cache.pop(next(iter(cache)))
            cache[key] = build()
        return cache[key]

    def __getstate__(self) -> dict[str, Any]:  # caches can be large and are cheap to rebuild
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    @abc.abstractmethod
    def _sample(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray: ...

    @abc.abstractmethod
    def _params(self) -> dict[str, Any]: ...

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": ..., **constructor kwargs}``; JSON-serialisable."""
        return {"kind": self.kind, **self._params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


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

    def _params(self) -> dict[str, Any]:
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

    def _sample(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
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

    def _params(self) -> dict[str, Any]:
        g = self.grf
        return {"alpha": g.alpha, "tau": g.tau, "hi": self.hi, "lo": self.lo, "threshold": self.threshold,
                "sigma": g.sigma, "boundary": g.boundary, "drop_constant": g.drop_constant}

    def _check_grid(self, grid: Any) -> None:
        self.grf._check_grid(grid)

    def _sample(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        return np.where(self.grf._sample(n, grid, rng) >= self.threshold, self.hi, self.lo)


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

    def _params(self) -> dict[str, Any]:
        return {"length_scale": self.length_scale, "variance": self.variance}

    def _factors(self, grid: Grid) -> list[np.ndarray]:
        factors = []
        for x in grid.axes:
            kernel = np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * self.length_scale**2))
            factors.append(_psd_factor(kernel, "RBFGRF kernel").T)  # transposed for _apply_per_axis
        return factors

    def _sample(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        factors = self._cached(grid, lambda: self._factors(grid))
        noise = rng.standard_normal((n, *grid.shape))
        return math.sqrt(self.variance) * _apply_per_axis(noise, factors)


def boundary_indices(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Boundary nodes of a 1-D or 2-D grid in perimeter order, with their arc-length parameter.

    2-D: counter-clockwise from the corner ``(lo_x, lo_y)``: bottom edge left to right, right edge
    upwards, top edge right to left, left edge downwards; every node appears once and the last one is
    the left-edge node just above the start. 1-D: the two end nodes, ``s = [0, L]``.

    Returns
    -------
    index : numpy.ndarray of int, shape ``(m, ndim)``
        Multi-indices of the nodes; ``u[:, index[:, 0], index[:, 1]]`` reads the boundary values.
    s : numpy.ndarray of float64, shape ``(m,)``
        Arc length from the start node, increasing, in ``[0, perimeter)``.
    """
    if not isinstance(grid, Grid):
        raise ConfigError(f"boundary_indices: expected a Grid, got {type(grid).__name__}")
    if grid.ndim == 1:
        (lo, hi), m = grid.bounds[0], grid.shape[0]
        return np.array([[0], [m - 1]]), np.array([0.0, hi - lo])
    if grid.ndim != 2:
        raise ConfigError(f"boundary_indices: expected a 1-D or 2-D grid, got {grid.ndim}-D")
    (nx, ny), (xs, ys) = grid.shape, grid.axes
    lx, ly = xs[-1] - xs[0], ys[-1] - ys[0]
    i_bot, j_right = np.arange(nx), np.arange(1, ny)
    i_top, j_left = np.arange(nx - 2, -1, -1), np.arange(ny - 2, 0, -1)
    i = np.concatenate([i_bot, np.full(ny - 1, nx - 1), i_top, np.zeros(ny - 2, dtype=int)])
    j = np.concatenate([np.zeros(nx, dtype=int), j_right, np.full(nx - 1, ny - 1), j_left])
    s = np.concatenate([xs[i_bot] - xs[0], lx + ys[j_right] - ys[0],
                        lx + ly + xs[-1] - xs[i_top], 2 * lx + ly + ys[-1] - ys[j_left]])
    return np.stack([i, j], axis=1), s


@register_space
class BoundaryGRF(Space):
    """Smooth random Dirichlet data on the boundary of a 1-D or 2-D box.

    In 2-D the boundary is a closed curve of perimeter ``P``; we give its nodes the arc-length
    parameter ``s`` of :func:`boundary_indices` and place them on a circle of circumference ``P``
    (angle ``2 pi s / P``). A squared-exponential kernel of the Euclidean (chordal) distance on that
    circle is positive definite, periodic in ``s`` and ~ ``exp(-ds^2 / (2 length_scale^2))`` for nearby
    nodes, so samples are smooth along each edge *and* continuous around the corners and the seam.
    In 1-D the two end values use the same kernel of their distance (nearly independent for short
    length scales). The covariance is factored once per grid (jittered Cholesky).

    :meth:`sample` returns the boundary values on the boundary nodes and zeros inside; lifting the data
    into the interior (harmonic extension or any other) is left to the Problem, which canonicalises
    boundary inputs itself. :meth:`boundary_values` returns the ``(n, m)`` values in perimeter order
    (DeepONet branch sensors read them this way); both use the same draws for the same seed.
    """

    kind = "boundary_grf"
    ndims = (1, 2)

    def __init__(self, length_scale: float = 0.3, variance: float = 1.0, mean: float = 0.0) -> None:
        self.length_scale = _number("BoundaryGRF length_scale", length_scale, 0.0)
        self.variance = _number("BoundaryGRF variance", variance, 0.0)
        self.mean = _number("BoundaryGRF mean", mean)

    def _params(self) -> dict[str, Any]:
        return {"length_scale": self.length_scale, "variance": self.variance, "mean": self.mean}

    def _factor(self, grid: Grid) -> np.ndarray:
        index, s = boundary_indices(grid)
        if grid.ndim == 1:
            points = grid.axes[0][index[:, 0]][:, None]
        else:
            perimeter = 2 * sum(hi - lo for lo, hi in grid.bounds)
            angle = 2 * np.pi * s / perimeter
            points = perimeter / (2 * np.pi) * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        dist2 = np.sum((points[:, None, :] - points[None, :, :]) ** 2, axis=-1)
        kernel = np.exp(-dist2 / (2 * self.length_scale**2))
        return _psd_factor(kernel, "BoundaryGRF kernel")

    def boundary_values(self, n: int, grid: Grid, seed: int | np.random.Generator) -> np.ndarray:
        """``(n, m)`` boundary values in the order of :func:`boundary_indices`."""
        n = check_positive_int("n", n)
        self._check_grid(grid)
        return self._values(n, grid, _as_rng(seed))

    def _values(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        factor = self._cached(grid, lambda: self._factor(grid))
        values = math.sqrt(self.variance) * rng.standard_normal((n, factor.shape[0])) @ factor.T
        return values + self.mean

    def _sample(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        index, _ = boundary_indices(grid)
        out = np.zeros((n, *grid.shape))
        out[(slice(None), *index.T)] = self._values(n, grid, rng)
        return out


@register_space
class TrigSeries(Space):
    """Random trigonometric series with algebraically decaying amplitudes.

    ``u(x) = amplitude * sum_k |k|^(-decay) c_k prod_i b_{k_i}((x_i - lo_i) / L_i)`` over multi-indices
    ``k`` of per-axis frequencies up to ``n_terms`` (``|k|`` the Euclidean norm of the frequencies,
    the all-zero constant term left out), with per-axis bases

    - ``"sine"``: ``sin(pi k t)``, ``k = 1..K``: vanishes on the boundary (Dirichlet problems);
    - ``"cosine"``: ``cos(pi k t)``, ``k = 0..K``: zero normal derivative (Neumann problems);
    - ``"fourier"``: ``1, cos(2 pi k t), sin(2 pi k t)``, ``k = 1..K``: periodic, ``u[0] = u[-1]``
      up to round-off.

    Coefficients ``c_k`` are i.i.d. standard normal (``distribution="normal"``) or uniform on
    ``[-1, 1]`` (``"uniform"``), drawn as one ``(n, J_1, ..., J_d)`` array.
    """

    kind = "trig_series"
    _BASES = ("sine", "cosine", "fourier")
    _DISTRIBUTIONS = ("normal", "uniform")

    def __init__(
        self,
        n_terms: int = 8,
        decay: float = 2.0,
        amplitude: float = 1.0,
        basis: str = "sine",
        distribution: str = "normal",
    ) -> None:
        self.n_terms = check_positive_int("TrigSeries n_terms", n_terms)
        self.decay = _number("TrigSeries decay", decay, 0.0, strict=False)
        self.amplitude = _number("TrigSeries amplitude", amplitude, 0.0)
        check_name("TrigSeries basis", basis, self._BASES)
        check_name("TrigSeries distribution", distribution, self._DISTRIBUTIONS)
        self.basis, self.distribution = basis, distribution

    def _params(self) -> dict[str, Any]:
        return {"n_terms": self.n_terms, "decay": self.decay, "amplitude": self.amplitude,
                "basis": self.basis, "distribution": self.distribution}

    def _axis_basis(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-axis basis matrix ``(J, n_nodes)`` and the frequency of each row."""
        t = (x - x[0]) / (x[-1] - x[0])
        k = np.arange(1, self.n_terms + 1)
        if self.basis == "sine":
            return np.sin(np.pi * k[:, None] * t), k.astype(float)
        if self.basis == "cosine":
            k0 = np.arange(self.n_terms + 1)
            return np.cos(np.pi * k0[:, None] * t), k0.astype(float)
        rows = [np.ones_like(t)] + [f(2 * np.pi * kk * t) for kk in k for f in (np.cos, np.sin)]
        return np.stack(rows), np.concatenate([[0.0], np.repeat(k, 2).astype(float)])

    def _tables(self, grid: Grid) -> tuple[list[np.ndarray], np.ndarray]:
        pairs = [self._axis_basis(x) for x in grid.axes]
        freq2 = sum(np.meshgrid(*[f**2 for _, f in pairs], indexing="ij"))
        norm = np.sqrt(freq2)
        weights = np.where(norm > 0, self.amplitude * np.where(norm > 0, norm, 1.0) ** (-self.decay), 0.0)
        return [b for b, _ in pairs], weights

    def _sample(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        bases, weights = self._cached(grid, lambda: self._tables(grid))
        shape = (n, *weights.shape)
        coeff = rng.standard_normal(shape) if self.distribution == "normal" else rng.uniform(-1, 1, shape)
        return _apply_per_axis(coeff * weights, bases)



@register_space
class Fixed(Space):
    """One deterministic input; :meth:`sample` returns ``n`` copies of it.

    ``value`` is a number, a formula string of ``x, y, z`` (see :func:`sciml.formula.compile_formula`), an
    array of node values (of the grid's shape, or broadcastable to it), or a Python callable
    ``f(x)``, ``f(x, y)``, ``f(x, y, z)`` taking the ``'ij'`` coordinate arrays. Callables are
    not serialisable: :meth:`to_dict` raises for them, use a formula string instead.
    """

    kind = "fixed"

    def __init__(self, value: Any) -> None:
        if isinstance(value, str):
            compile_formula(value, _AXIS_NAMES)  # fail now on a bad formula; compiled again after pickling
        elif not callable(value):
            value = as_float_array("Fixed value", value)
            value = float(value) if value.ndim == 0 else value
        self.value = value

    def _function(self) -> Callable[..., Any] | None:
        if isinstance(self.value, str):
            formula = self._cached("expression", lambda: compile_formula(self.value, _AXIS_NAMES))
            return lambda *coords: formula(**dict(zip(_AXIS_NAMES, coords)))
        return self.value if callable(self.value) else None

    def _params(self) -> dict[str, Any]:
        return {"value": self.value.tolist() if isinstance(self.value, np.ndarray) else self.value}

    def to_dict(self) -> dict[str, Any]:
        if callable(self.value):
            raise ConfigError("Fixed.to_dict: expected a number, formula string or array to serialise, got "
                              f"the callable {getattr(self.value, '__name__', self.value)!r}")
        return super().to_dict()

    def __repr__(self) -> str:
        v = self.value
        if isinstance(v, np.ndarray):
            return f"Fixed(value=<array {v.shape}>)"
        return f"Fixed(value={getattr(v, '__name__', v) if callable(v) else v!r})"

    def _sample(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        function = self._function()
        if function is not None:
            coords = np.meshgrid(*grid.axes, indexing="ij")
            try:
                raw = function(*coords)
            except SciMLError:
                raise
            except Exception as exc:  # a user callable: report which input failed and how
                raise ConfigError(f"Fixed: calling {self!r} on the grid coordinates failed: {exc}") from exc
            values = as_float_array("Fixed value on the grid", raw)
        else:
            values = np.asarray(self.value, dtype=np.float64)
        try:
            values = np.broadcast_to(values, grid.shape)
        except ValueError:
            raise ShapeError("Fixed value", grid.shape, values.shape) from None
        return np.broadcast_to(values, (n, *grid.shape)).copy()
