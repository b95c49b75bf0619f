"""Tests of sciml.spaces: shapes, seeding, the statistics each space promises, serialisation, errors."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from sciml.errors import ConfigError, SciMLError, ShapeError, UnknownNameError
from sciml.fields import Grid
from sciml.formula import compile_formula
from sciml.spaces import (
    GRF,
    RBFGRF,
    BoundaryGRF,
    Fixed,
    LogNormal,
    Product,
    Space,
    Sum,
    Tanh,
    Thresholded,
    ThresholdedGRF,
    Transformed,
    TrigSeries,
    boundary_indices,
    register_space,
    space_from_dict,
)
from sciml.spaces.base import _psd_factor

GRID_1D = Grid(17, bounds=[(-1.0, 2.0)])
GRID_2D = Grid((9, 12), bounds=[(0.0, 1.0), (0.0, 2.0)])
GRID_3D = Grid((5, 6, 7))

ALL_SPACES = [
    GRF(),
    GRF(alpha=2.5, tau=2.0, boundary="periodic", mean=1.0),
    ThresholdedGRF(),
    RBFGRF(length_scale=0.3, variance=2.0),
    BoundaryGRF(),
    TrigSeries(basis="fourier", distribution="uniform"),
    Fixed("sin(pi*x) + 2"),
    LogNormal(GRF(alpha=2.5, tau=4.0)),
    Transformed(RBFGRF(), "1 + u**2 * x"),
    Tanh(GRF(), a=6.0, b=4.0),
    Thresholded(GRF(), hi=12.0, lo=3.0),
    GRF() + 2.0 * TrigSeries() - 1.0,
    Product([LogNormal(GRF()), RBFGRF(), 0.5]),
    Sum([BoundaryGRF(), Fixed("x")]),
]


def _grids(space: Space) -> list[Grid]:
    return [g for g in (GRID_1D, GRID_2D, GRID_3D) if g.ndim in space.ndims]


def _trapezoid_cos_coefficients(u: np.ndarray) -> np.ndarray:
    """Coefficients b_k of u_j = sum_k b_k cos(pi k j / (N - 1)) along the last axis.

    Uses the discrete orthogonality of cosines on nodes under the trapezoidal rule, independently of
    scipy's DCT conventions.
    """
    m = u.shape[-1]
    j = np.arange(m)
    cos = np.cos(np.pi * np.outer(j, j) / (m - 1))  # [k, j]
    w = np.ones(m)
    w[[0, -1]] = 0.5
    norm = np.full(m, (m - 1) / 2)
    norm[[0, -1]] = m - 1
    return (u * w) @ cos.T / norm


# -- generic contract ------------------------------------------------------------------------------
@pytest.mark.parametrize("space", ALL_SPACES, ids=repr)
def test_shape_dtype_and_seeding(space: Space) -> None:
    for grid in _grids(space):
        a = space.sample(5, grid, seed=3)
        assert a.shape == (5, *grid.shape) and a.dtype == np.float64
        assert np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, space.sample(5, grid, seed=3))
        # prefix stability: the first k of n samples do not depend on n (BLAS blocking aside)
        np.testing.assert_allclose(a[:2], space.sample(2, grid, seed=3), rtol=1e-12, atol=1e-12)
        if not isinstance(space, Fixed):
            assert not np.allclose(a, space.sample(5, grid, seed=4))
            assert not np.allclose(a[0], a[1])
            rng = np.random.default_rng(3)
            first, second = space.sample(2, grid, rng), space.sample(2, grid, rng)
            np.testing.assert_allclose(first, a[:2], rtol=1e-12, atol=1e-12)
            assert not np.allclose(first, second)  # a Generator is advanced, not reset


@pytest.mark.parametrize("space", ALL_SPACES, ids=repr)
def test_dict_round_trip_is_json_and_reproduces_samples(space: Space) -> None:
    data = json.loads(json.dumps(space.to_dict()))
    rebuilt = space_from_dict(data)
    assert type(rebuilt) is type(space) and rebuilt.to_dict() == space.to_dict()
    assert repr(rebuilt) == repr(space)
    grid = _grids(space)[0]
    np.testing.assert_array_equal(rebuilt.sample(3, grid, 7), space.sample(3, grid, 7))
    # pickling (worker processes) drops the cache but keeps the law
    clone = pickle.loads(pickle.dumps(space))
    np.testing.assert_array_equal(clone.sample(3, grid, 7), space.sample(3, grid, 7))


# -- GRF, Neumann ------------------------------------------------------------------------------------
def test_neumann_grf_is_the_orthonormal_karhunen_loeve_sum() -> None:
    """On a non-unit box, the field equals sum_k sigma (mu_k + tau^2)^(-alpha/2) xi_k phi_k exactly."""
    grid = Grid((5, 6), bounds=[(0.5, 1.5), (-1.0, 1.0)])
    alpha, tau, sigma, n = 2.5, 2.0, 1.7, 3
    u = GRF(alpha=alpha, tau=tau, sigma=sigma).sample(n, grid, seed=11)
    xi = np.random.default_rng(11).standard_normal((n, *grid.shape))
    xi[:, 0, 0] = 0.0  # constant mode dropped
    x, y = grid.coord_arrays()["x"], grid.coord_arrays()["y"]
    (lx, ly) = (b[1] - b[0] for b in grid.bounds)
    expected = np.zeros_like(u)
    for kx in range(grid.shape[0]):
        for ky in range(grid.shape[1]):
            mu = (np.pi * kx / lx) ** 2 + (np.pi * ky / ly) ** 2
            phi = (math.sqrt((1 if kx == 0 else 2) / lx) * np.cos(np.pi * kx * (x - 0.5) / lx)
                   * math.sqrt((1 if ky == 0 else 2) / ly) * np.cos(np.pi * ky * (y + 1.0) / ly))
            expected += sigma * (mu + tau**2) ** (-alpha / 2) * xi[:, kx, ky, None, None] * phi
    np.testing.assert_allclose(u, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("alpha", [1.5, 3.0])
def test_neumann_grf_1d_spectrum_decays_with_alpha(alpha: float) -> None:
    tau, n, m, length = 3.0, 4000, 33, 2.0
    grid = Grid(m, bounds=[(0.0, length)])
    u = GRF(alpha=alpha, tau=tau).sample(n, grid, seed=0)
    b = _trapezoid_cos_coefficients(u)
    k = np.arange(m)
    sigma = tau ** (alpha - 0.5)  # FNO default in 1-D
    c = np.where(k == 0, 1.0, 2.0)
    prescribed = sigma**2 * ((np.pi * k / length) ** 2 + tau**2) ** (-alpha) * c / length
    ratio = b[:, 1:].var(axis=0) / prescribed[1:]
    assert np.max(np.abs(ratio - 1)) < 0.12, ratio
    # constant mode dropped: every sample has zero (trapezoidal) spatial mean
    np.testing.assert_allclose(b[:, 0], 0.0, atol=1e-12)
    assert abs(u.mean()) < 3 * u.std() / math.sqrt(n)


def test_neumann_grf_2d_spectrum_and_fno_sigma() -> None:
    tau, alpha, n = 3.0, 2.0, 2000
    grid = Grid((13, 9))
    u = GRF(alpha=alpha, tau=tau).sample(n, grid, seed=1)
    b = _trapezoid_cos_coefficients(np.swapaxes(_trapezoid_cos_coefficients(u), 1, 2))  # (n, ky, kx)
    kx, ky = np.meshgrid(np.arange(13), np.arange(9), indexing="xy")
    cx, cy = np.where(kx == 0, 1.0, 2.0), np.where(ky == 0, 1.0, 2.0)
    prescribed = tau**2 * (np.pi**2 * (kx**2 + ky**2) + tau**2) ** (-alpha) * cx * cy  # sigma = tau
    ratio = b.var(axis=0).ravel()[1:] / prescribed.ravel()[1:]
    assert np.max(np.abs(ratio - 1)) < 0.15
    # default sigma is exactly tau^(alpha - d/2) = 3 here
    np.testing.assert_allclose(u[:4], GRF(alpha=alpha, tau=tau, sigma=3.0).sample(4, grid, seed=1))


def test_grf_mean_and_constant_mode() -> None:
    grid = Grid(33)
    base = GRF().sample(4, grid, 5)
    np.testing.assert_allclose(GRF(mean=2.5).sample(4, grid, 5), base + 2.5)
    kept = GRF(drop_constant=False).sample(4000, grid, 5)
    b0 = _trapezoid_cos_coefficients(kept)[:, 0]
    expected_var = (3.0 ** (2.0 - 0.5)) ** 2 * 3.0 ** (-4.0)  # sigma^2 tau^(-2 alpha) / L
    assert abs(b0.var() / expected_var - 1) < 0.12


# -- GRF, periodic -----------------------------------------------------------------------------------
def test_periodic_grf_1d_is_periodic_with_prescribed_spectrum() -> None:
    alpha, tau, length, n = 2.0, 5.0, 2.0, 4000
    grid = Grid(33, bounds=[(1.0, 1.0 + length)])
    u = GRF(alpha=alpha, tau=tau, boundary="periodic").sample(n, grid, seed=2)
    np.testing.assert_array_equal(u[:, 0], u[:, -1])
    m = grid.shape[0] - 1
    power = np.mean(np.abs(np.fft.fft(u[:, :-1], axis=1)) ** 2, axis=0) * length / m**2
    k = np.fft.fftfreq(m, 1.0 / m)
    lam = tau ** (2 * alpha - 1) * ((2 * np.pi * k / length) ** 2 + tau**2) ** (-alpha)
    assert power[0] < 1e-20
    assert np.max(np.abs(power[1:] / lam[1:] - 1)) < 0.12


def test_periodic_grf_2d_is_periodic_with_prescribed_spectrum() -> None:
    alpha, tau, n = 2.0, 3.0, 2000
    grid = Grid((17, 13), bounds=[(0.0, 1.0), (0.0, 2.0)])
    u = GRF(alpha=alpha, tau=tau, boundary="periodic").sample(n, grid, seed=3)
    np.testing.assert_array_equal(u[:, 0, :], u[:, -1, :])
    np.testing.assert_array_equal(u[:, :, 0], u[:, :, -1])
    power = np.mean(np.abs(np.fft.fft2(u[:, :-1, :-1])) ** 2, axis=0) * 2.0 / (16 * 12) ** 2
    kx, ky = np.meshgrid(np.fft.fftfreq(16, 1 / 16), np.fft.fftfreq(12, 1 / 12), indexing="ij")
    lam = tau**2 * ((2 * np.pi * kx) ** 2 + (np.pi * ky) ** 2 + tau**2) ** (-alpha)
    ratio = (power / lam).ravel()[1:]
    assert np.max(np.abs(ratio - 1)) < 0.15


# -- thresholded GRF (FNO Darcy coefficient) -------------------------------------------------------------
def test_thresholded_grf_darcy_fraction() -> None:
    grid = Grid(85, ndim=2)
    a = ThresholdedGRF(alpha=2, tau=3, hi=12.0, lo=3.0).sample(64, grid, seed=0)
    assert set(np.unique(a)) <= {3.0, 12.0}
    fraction = float(np.mean(a == 12.0))
    assert 0.35 <= fraction <= 0.65
    u = GRF(alpha=2, tau=3).sample(64, grid, seed=0)
    np.testing.assert_array_equal(a, np.where(u >= 0, 12.0, 3.0))
    # a higher threshold gives fewer high values
    assert np.mean(ThresholdedGRF(threshold=0.2).sample(64, grid, seed=0) == 12.0) < fraction - 0.1


# -- RBF Gaussian process ---------------------------------------------------------------------------------
def test_rbf_grf_1d_covariance_matches_kernel() -> None:
    variance, scale, n = 2.0, 0.2, 20000
    grid = Grid(21)
    u = RBFGRF(length_scale=scale, variance=variance).sample(n, grid, seed=4)
    cov = u.T @ u / n
    x = grid.axes[0]
    kernel = variance * np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * scale**2))
    assert np.max(np.abs(cov - kernel)) < 0.06 * variance
    assert np.max(np.abs(u.mean(axis=0))) < 5 * math.sqrt(variance / n)


def test_rbf_grf_2d_covariance_is_the_product_kernel() -> None:
    scale, n = 0.3, 20000
    grid = Grid((7, 6), bounds=[(0.0, 1.0), (0.0, 0.5)])
    u = RBFGRF(length_scale=scale).sample(n, grid, seed=5).reshape(n, -1)
    pts = grid.points()
    cov = u.T @ u / n
    d2 = np.sum((pts[:, None] - pts[None]) ** 2, axis=-1)
    assert np.max(np.abs(cov - np.exp(-d2 / (2 * scale**2)))) < 0.06


def test_psd_factor_handles_numerically_singular_kernels() -> None:
    x = np.linspace(0, 1, 400)
    kernel = np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * 0.5**2))  # rank ~ 20 in float64
    factor = _psd_factor(kernel, "test")
    np.testing.assert_allclose(factor @ factor.T, kernel, atol=1e-6)
    u = RBFGRF(length_scale=0.5).sample(2000, Grid(400), seed=0)
    assert abs(u.var() - 1) < 0.15


# -- boundary data ------------------------------------------------------------------------------------------
def test_boundary_indices_order_and_arc_length() -> None:
    grid = Grid((4, 3), bounds=[(0.0, 3.0), (0.0, 1.0)])
    index, s = boundary_indices(grid)
    expected = [(0, 0), (1, 0), (2, 0), (3, 0), (3, 1), (3, 2), (2, 2), (1, 2), (0, 2), (0, 1)]
    assert [tuple(r) for r in index] == expected
    np.testing.assert_allclose(s, [0, 1, 2, 3, 3.5, 4, 5, 6, 7, 7.5])
    mask = np.zeros(grid.shape, dtype=bool)
    mask[index[:, 0], index[:, 1]] = True
    np.testing.assert_array_equal(mask, grid.boundary_mask())
    index1, s1 = boundary_indices(Grid(5, bounds=[(1.0, 3.0)]))
    assert index1.tolist() == [[0], [4]] and s1.tolist() == [0.0, 2.0]


def test_boundary_grf_continuous_around_corners_and_zero_inside() -> None:
    space = BoundaryGRF(length_scale=0.3, variance=1.0)
    grid = Grid((65, 49), bounds=[(0.0, 1.0), (0.0, 0.75)])
    u = space.sample(200, grid, seed=6)
    index, _ = boundary_indices(grid)
    values = u[:, index[:, 0], index[:, 1]]
    np.testing.assert_array_equal(values, space.boundary_values(200, grid, seed=6))
    assert np.all(u[:, 1:-1, 1:-1] == 0.0)
    assert abs(values.var() - 1.0) < 0.25
    jumps = np.abs(np.diff(values, axis=1, append=values[:, :1]))  # includes the seam last -> first
    assert jumps.max() < 0.35  # std of a jump is about h / length_scale ~ 0.05
    corners = [64, 64 + 48, 2 * 64 + 48, len(index) - 1]  # jumps into/out of the corners and the seam
    corner_jumps = np.concatenate([jumps[:, c - 1 : c + 1] for c in corners], axis=1)
    assert corner_jumps.std() < 1.5 * jumps.std()


def test_boundary_grf_covariance_across_the_seam() -> None:
    scale, n = 0.4, 20000
    grid = Grid((9, 7))
    values = BoundaryGRF(length_scale=scale, variance=1.0).boundary_values(n, grid, seed=7)
    _, s = boundary_indices(grid)
    perimeter = 4.0
    for a, b in [(0, -1), (0, 1), (8, 9)]:  # seam, along the bottom edge, around the corner (1, 0)
        chord = perimeter / math.pi * math.sin(math.pi * abs(s[a] - s[b]) / perimeter)
        expected = math.exp(-(chord**2) / (2 * scale**2))
        assert abs(np.mean(values[:, a] * values[:, b]) - expected) < 0.05


def test_boundary_grf_1d_and_3d() -> None:
    u = BoundaryGRF(mean=1.0).sample(4, GRID_1D, seed=0)
    assert np.all(u[:, 1:-1] == 0.0) and np.all(u[:, [0, -1]] != 0.0)
    with pytest.raises(ConfigError):
        BoundaryGRF().sample(2, GRID_3D, seed=0)
    with pytest.raises(ConfigError):
        boundary_indices(GRID_3D)


# -- trigonometric series -----------------------------------------------------------------------------------
def test_trig_series_boundary_behaviour() -> None:
    grid = Grid((33, 17))
    sine = TrigSeries(basis="sine").sample(8, grid, seed=0)
    assert np.max(np.abs(sine[:, [0, -1], :])) < 1e-12 and np.max(np.abs(sine[:, :, [0, -1]])) < 1e-12
    fourier = TrigSeries(basis="fourier").sample(8, grid, seed=0)
    np.testing.assert_allclose(fourier[:, 0], fourier[:, -1], atol=1e-12)
    np.testing.assert_allclose(fourier[:, :, 0], fourier[:, :, -1], atol=1e-12)
    cosine = TrigSeries(basis="cosine").sample(8, Grid(257), seed=0)
    slope = np.diff(cosine, axis=1) * 256
    assert np.max(np.abs(slope[:, [0, -1]])) < 0.05 * np.max(np.abs(slope))  # zero normal derivative


def test_trig_series_amplitudes_decay() -> None:
    n_terms, decay, amplitude, n = 5, 1.5, 2.0, 4000
    grid = Grid(33)
    u = TrigSeries(n_terms=n_terms, decay=decay, amplitude=amplitude).sample(n, grid, seed=1)
    k = np.arange(1, n_terms + 1)
    basis = np.sin(np.pi * k[:, None] * grid.axes[0])
    coeff, *_ = np.linalg.lstsq(basis.T, u.T, rcond=None)
    np.testing.assert_allclose(basis.T @ coeff, u.T, atol=1e-10)  # nothing outside the first modes
    ratio = coeff.var(axis=1) / (amplitude**2 * k ** (-2 * decay))
    assert np.max(np.abs(ratio - 1)) < 0.12
    bounded = TrigSeries(n_terms=n_terms, decay=decay, distribution="uniform").sample(200, grid, seed=1)
    assert np.max(np.abs(bounded)) <= np.sum(k ** (-decay))


# -- fixed inputs -------------------------------------------------------------------------------------------
def test_fixed_values() -> None:
    grid = GRID_2D
    x, y = grid.coord_arrays()["x"], grid.coord_arrays()["y"]
    np.testing.assert_array_equal(Fixed(2).sample(3, grid, 0), np.full((3, *grid.shape), 2.0))
    np.testing.assert_allclose(Fixed("sin(pi*x) * exp(-y) + 1").sample(2, grid, 0)[1],
                               np.sin(np.pi * x) * np.exp(-y) + 1)
    np.testing.assert_allclose(Fixed(lambda x, y: x * y).sample(2, grid, 0)[0], x * y)
    row = np.linspace(0, 1, grid.shape[1])
    np.testing.assert_array_equal(Fixed(row).sample(2, grid, 0)[0], np.broadcast_to(row, grid.shape))
    out = Fixed(1.0).sample(2, grid, 0)
    out[0] = 5.0  # samples are independent, writable copies
    assert np.all(out[1] == 1.0)
    with pytest.raises(ConfigError, match="callable"):
        Fixed(lambda x, y: x).to_dict()
    with pytest.raises(ShapeError):
        Fixed(np.ones(5)).sample(1, grid, 0)
    with pytest.raises(ConfigError, match="y"):
        Fixed("x + y").sample(1, GRID_1D, 0)


@pytest.mark.parametrize("text", ["__import__('os')", "x.real", "open('f')", "[x]", "lambda: 1", "'a'", ""])
def test_expression_rejects_anything_but_formulas(text: str) -> None:
    with pytest.raises(SciMLError):
        compile_formula(text)


def test_expression_guards() -> None:
    with pytest.raises(UnknownNameError):
        compile_formula("w * x")
    with pytest.raises(ConfigError):
        compile_formula("9**9**9")(x=np.ones(2))  # overflows as a float instead of hanging
    with pytest.raises(SciMLError):
        Fixed("log(x - 10)").sample(1, GRID_1D, 0)  # NaN on the grid


# -- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: GRF(alpha=0.5), ConfigError),
        (lambda: GRF(tau=-1.0), ConfigError),
        (lambda: GRF(tau=0.0), ConfigError),
        (lambda: GRF(sigma=0.0), ConfigError),
        (lambda: GRF(alpha=float("nan")), ConfigError),
        (lambda: GRF(boundary="dirichlet"), UnknownNameError),
        (lambda: GRF(drop_constant=1), ConfigError),
        (lambda: ThresholdedGRF(hi=float("inf")), ConfigError),
        (lambda: RBFGRF(length_scale=0.0), ConfigError),
        (lambda: RBFGRF(variance=-1.0), ConfigError),
        (lambda: BoundaryGRF(length_scale=-0.1), ConfigError),
        (lambda: TrigSeries(n_terms=0), ConfigError),
        (lambda: TrigSeries(basis="legendre"), UnknownNameError),
        (lambda: TrigSeries(decay="fast"), ConfigError),
        (lambda: Fixed([1.0, float("nan")]), SciMLError),
        (lambda: space_from_dict({"kind": "nope"}), UnknownNameError),
        (lambda: space_from_dict({"alpha": 2}), ConfigError),
        (lambda: space_from_dict({"kind": "grf", "beta": 1}), ConfigError),
        (lambda: GRF(alpha=1.0).sample(2, Grid(9, ndim=2), 0), ConfigError),  # alpha <= d/2
        (lambda: GRF().sample(0, GRID_1D, 0), ConfigError),
        (lambda: GRF().sample(2.0, GRID_1D, 0), ConfigError),
        (lambda: GRF().sample(2, (17,), 0), ConfigError),
        (lambda: GRF().sample(2, GRID_1D, "seed"), ConfigError),
        (lambda: GRF().sample(2, GRID_1D, -1), ConfigError),
    ],
)
def test_bad_inputs_raise(build, error) -> None:
    with pytest.raises(error):
        build()


def test_grf_alpha_above_half_dimension_is_accepted_in_1d_only() -> None:
    space = GRF(alpha=0.9, tau=3.0)
    assert space.sample(2, GRID_1D, 0).shape == (2, *GRID_1D.shape)
    with pytest.raises(ConfigError, match="alpha"):
        space.sample(2, GRID_2D, 0)


# -- composed spaces and the public Space contract ---------------------------------------------------------
def test_composed_spaces_are_the_functions_of_their_parts() -> None:
    grid = GRID_2D
    g = GRF().sample(4, grid, 5)
    np.testing.assert_allclose(LogNormal(GRF()).sample(4, grid, 5), np.exp(g), rtol=1e-12)
    np.testing.assert_allclose(Transformed(GRF(), "exp(u)").sample(4, grid, 5), np.exp(g), rtol=1e-12)
    np.testing.assert_allclose(Transformed(GRF(), np.exp).sample(4, grid, 5), np.exp(g), rtol=1e-12)
    np.testing.assert_allclose(Tanh(GRF(), a=6.0, b=-4.0).sample(4, grid, 5), 6 - 4 * np.tanh(g), rtol=1e-12)
    # Thresholded(GRF()) is exactly the Darcy coefficient ThresholdedGRF
    np.testing.assert_array_equal(Thresholded(GRF(), hi=12.0, lo=3.0).sample(4, grid, 5),
                                  ThresholdedGRF().sample(4, grid, 5))
    # operators: numbers fold into one constant, a lone space comes back as itself
    assert repr(GRF() * 1.0) == repr(GRF()) and repr(0 + GRF()) == repr(GRF())
    assert isinstance(GRF() + GRF(), Sum) and isinstance(-GRF(), Product) and isinstance(GRF() / 2, Product)
    assert len((GRF() + RBFGRF() + TrigSeries()).parts) == 3  # flattened
    assert (GRF() * 2.0 * 3.0).parts[1] == 6.0
    h = Sum([GRF(), 1.0]).sample(3, grid, 9)
    np.testing.assert_allclose(Product([GRF(), 2.0]).sample(3, grid, 9), 2 * (h - 1), rtol=1e-12)
    # the parts of a sum draw independently: the variance of GRF + GRF is twice that of GRF
    many = GRF().sample(4000, GRID_1D, 0)[:, 3]
    twice = (GRF() + GRF()).sample(4000, GRID_1D, 0)[:, 3]
    assert twice.var() / many.var() == pytest.approx(2.0, rel=0.1)
    product = (GRF() * GRF()).sample(4000, GRID_1D, 0)[:, 3]
    assert abs(product.mean()) < 4 * product.std() / math.sqrt(4000)  # independent zero-mean factors


def test_composed_spaces_check_grids_and_values() -> None:
    with pytest.raises(ConfigError, match="alpha"):  # the inner space's own grid check
        LogNormal(GRF(alpha=1.0)).sample(2, GRID_2D, 0)
    with pytest.raises(ConfigError, match="dimension"):
        (BoundaryGRF() + GRF()).sample(2, GRID_3D, 0)
    with pytest.raises(ConfigError, match="non-finite"):
        Transformed(GRF(), "log(u)").sample(2, GRID_1D, 0)  # log of negative values
    with pytest.raises(ConfigError, match="uses"):
        Transformed(GRF(), "u * y").sample(2, GRID_1D, 0)  # no y on a 1-D grid
    with pytest.raises(UnknownNameError):
        Transformed(GRF(), "exp(w)")
    with pytest.raises(ConfigError, match="formula string"):
        Transformed(GRF(), np.exp).to_dict()
    with pytest.raises(ConfigError, match="at least one space"):
        Sum([1.0, 2.0])
    with pytest.raises(ConfigError):
        Product([GRF(), "x"])
    with pytest.raises(TypeError):
        GRF() + "sin(x)"
    assert "exp" in repr(Transformed(GRF(), np.exp))


@register_space
class _Bump(Space):
    """A user's space written against the public contract only."""

    kind = "test_bump"
    ndims = (1,)

    def __init__(self, width: float = 0.1) -> None:
        self.width = width

    def params(self):
        return {"width": self.width}

    def draw(self, n, grid, rng):
        centres = rng.uniform(0, 1, (n, 1))
        return np.exp(-((grid.axes[0][None, :] - centres) ** 2) / self.width**2)


@register_space
class _OldStyle(Space):
    """A space written against the earlier private names (as problems/diffusion_reaction.py is)."""

    kind = "test_old_style"

    def __init__(self, scale: float = 2.0) -> None:
        self.scale = scale

    def _params(self):
        return {"scale": self.scale}

    def _sample(self, n, grid, rng):
        return self.scale * rng.standard_normal((n, *grid.shape))


def test_a_user_space_needs_only_draw_and_params() -> None:
    grid = Grid(33)
    for space in (_Bump(0.2), _OldStyle(3.0)):
        a = space.sample(5, grid, 1)
        assert a.shape == (5, 33) and a.dtype == np.float64
        np.testing.assert_array_equal(a[:2], space.sample(2, grid, 1))
        rebuilt = space_from_dict(json.loads(json.dumps(space.to_dict())))
        np.testing.assert_array_equal(rebuilt.sample(5, grid, 1), a)
        assert space.params() == space._params()  # both names answer, whichever the class wrote
        composed = space_from_dict(json.loads(json.dumps(LogNormal(space * 0.5).to_dict())))
        assert np.all(composed.sample(3, grid, 0) > 0)
    with pytest.raises(ConfigError, match="draw and params"):
        @register_space
        class _Empty(Space):
            kind = "test_empty"


def test_draw_results_are_checked() -> None:
    class WrongShape(Space):
        kind = "wrong_shape"

        def params(self):
            return {}

        def draw(self, n, grid, rng):
            return np.zeros((n, 3))

    with pytest.raises(ShapeError, match="draw"):
        WrongShape().sample(2, GRID_1D, 0)


def test_formula_torch_backend_matches_numpy_and_differentiates() -> None:
    torch = pytest.importorskip("torch")
    text = "sin(pi*x)*y + where(x > 0.5, 1, 0) + minimum(x, 0.3) + atan2(y, 1) + 2**x + hypot(x, y)"
    x = torch.rand(7, dtype=torch.float64, requires_grad=True)
    y = torch.rand(7, dtype=torch.float64)
    out = compile_formula(text, backend="torch")(x=x, y=y)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.requires_grad
    expected = compile_formula(text)(x=x.detach().numpy(), y=y.numpy())
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12)
    (grad,) = torch.autograd.grad(compile_formula("sin(pi*x)", backend="torch")(x=x).sum(), x)
    np.testing.assert_allclose(grad.numpy(), np.pi * np.cos(np.pi * x.detach().numpy()), rtol=1e-12)
    assert compile_formula("x*2", backend="torch")(x=torch.ones(2, dtype=torch.float32)).dtype == torch.float32
    with pytest.raises(UnknownNameError):
        compile_formula("x", backend="jax")
