"""Boundary-value forward models (DtN, NtD, Helmholtz DtN) and the classical adjoint inversion."""

from __future__ import annotations

import numpy as np
import pytest

from sciml.errors import ArgumentValueError, ConfigError, NonFiniteError, ShapeError, UnknownNameError
from sciml.grid import Grid
from sciml.numerics import conductivity as cd
from sciml.numerics import inversion as inv

PI = np.pi


def _boundary_xy(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    pts = grid.points()[cd.boundary_order(grid)]
    return pts[:, 0], pts[:, 1]


def _outward_normal_derivative(grid: Grid, ux: np.ndarray, uy: np.ndarray) -> np.ndarray:
    """``grad u . n`` on the sides; at a corner the mean over its two sides (the scheme's convention)."""
    x, y = _boundary_xy(grid)
    nx = np.where(np.isclose(x, 0.0), -1.0, np.where(np.isclose(x, 1.0), 1.0, 0.0))
    ny = np.where(np.isclose(y, 0.0), -1.0, np.where(np.isclose(y, 1.0), 1.0, 0.0))
    return (nx * ux + ny * uy) / (np.abs(nx) + np.abs(ny))


def _orders(errors: list[float]) -> np.ndarray:
    return np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))


def _random_coefficient(n: int, seed: int, batch: tuple[int, ...] = ()) -> np.ndarray:
    return np.exp(0.5 * np.random.default_rng(seed).standard_normal((*batch, n, n)))


def _bump(grid: Grid) -> np.ndarray:
    c = grid.coord_arrays()
    return 1.0 + np.exp(-((c["x"] - 0.6) ** 2 + (c["y"] - 0.4) ** 2) / (2 * 0.12**2))


# -- boundary geometry -----------------------------------------------------------------------
def test_boundary_order_is_counter_clockwise_from_the_origin() -> None:
    grid = Grid(4, ndim=2)  # flat index = 4 i + j, x along i
    expected = [0, 4, 8, 12, 13, 14, 15, 11, 7, 3, 2, 1]
    assert cd.boundary_order(grid).tolist() == expected
    w = cd.boundary_weights(grid)
    assert np.allclose(w, 1.0 / 3.0) and np.isclose(w.sum(), 4.0)  # h everywhere, sums to the perimeter
    theta = cd.boundary_angles(grid)
    assert np.allclose(theta[[0, 3, 6, 9]], [-3 * PI / 4, -PI / 4, PI / 4, 3 * PI / 4])
    rect = Grid((5, 3), bounds=[(0.0, 2.0), (0.0, 1.0)])
    w = cd.boundary_weights(rect)
    assert np.isclose(w.sum(), 6.0) and np.isclose(w[0], 0.5 * (0.5 + 0.5)) and np.isclose(w[1], 0.5)


def test_trig_patterns_follow_cos_sin_sequence() -> None:
    grid = Grid(9, ndim=2)
    theta = cd.boundary_angles(grid)
    p = cd.trig_patterns(grid, 5)
    assert p.shape == (5, 32)
    expected = [np.cos(theta), np.sin(theta), np.cos(2 * theta), np.sin(2 * theta), np.cos(3 * theta)]
    for row, f in zip(p, expected):
        assert np.allclose(row, f)


# -- Dirichlet-to-Neumann --------------------------------------------------------------------
def test_linear_data_gives_exact_unit_flux() -> None:
    """a = 1, g = x: flux -1 on x = 0, +1 on x = 1, 0 on y = 0 and y = 1. The corners hold the
    arc-length mean of their two sides' normal derivatives: -1/2 at x = 0 and +1/2 at x = 1."""
    grid = Grid(9, ndim=2)
    x, y = _boundary_xy(grid)
    flux = cd.dtn(1.0, grid, x[None])[0]
    corner = (np.isclose(x, 0) | np.isclose(x, 1)) & (np.isclose(y, 0) | np.isclose(y, 1))
    left, right = np.isclose(x, 0) & ~corner, np.isclose(x, 1) & ~corner
    bottom_top = (np.isclose(y, 0) | np.isclose(y, 1)) & ~corner
    assert np.allclose(flux[left], -1.0, atol=1e-10, rtol=0)
    assert np.allclose(flux[right], 1.0, atol=1e-10, rtol=0)
    assert np.allclose(flux[bottom_top], 0.0, atol=1e-10, rtol=0)
    assert np.allclose(flux[corner], np.where(np.isclose(x[corner], 0), -0.5, 0.5), atol=1e-10, rtol=0)


@pytest.mark.parametrize("face", ["arithmetic", "harmonic"])
def test_dtn_matrix_is_weighted_symmetric_and_matches_dtn(face: str) -> None:
    grid = Grid(13, ndim=2)
    a = _random_coefficient(13, seed=3)
    m = cd.dtn_matrix(a, grid, face=face)
    wm = cd.boundary_weights(grid)[:, None] * m
    assert np.abs(wm - wm.T).max() <= 1e-10 * np.abs(wm).max()
    assert np.abs(m.sum(axis=1)).max() <= 1e-10 * np.abs(m).max()  # constants carry no flux
    assert np.linalg.eigvalsh(wm).min() > -1e-10 * np.abs(wm).max()
    p = cd.trig_patterns(grid, 6)
    assert np.allclose(cd.dtn(a, grid, p, face=face), p @ m.T, atol=1e-10, rtol=0)


def _case_harmonic(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a = 1, u = exp(pi x) sin(pi y)."""
    x, y = _boundary_xy(grid)
    u = np.exp(PI * x) * np.sin(PI * y)
    flux = _outward_normal_derivative(grid, PI * u, PI * np.exp(PI * x) * np.cos(PI * y))
    return np.ones(grid.shape), u, flux


def _case_variable(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a = exp(x + y), u = exp(-x): a grad u = (-e^y, 0) is divergence-free."""
    c = grid.coord_arrays()
    x, y = _boundary_xy(grid)
    flux = _outward_normal_derivative(grid, -np.exp(y), np.zeros_like(y))  # a du/dn
    return np.exp(c["x"] + c["y"]), np.exp(-x), flux


@pytest.mark.parametrize("case", [_case_harmonic, _case_variable])
def test_flux_is_second_order(case) -> None:
    errors_l2, errors_max = [], []
    for n in (17, 33, 65):
        grid = Grid(n, ndim=2)
        a, g, exact = case(grid)
        err = cd.dtn(a, grid, g[None])[0] - exact
        errors_l2.append(np.sqrt(cd.boundary_weights(grid) @ err**2))
        errors_max.append(np.abs(err).max())
    assert _orders(errors_l2).min() >= 1.8, errors_l2
    assert _orders(errors_max).min() >= 1.7, errors_max  # corners included


# -- Neumann-to-Dirichlet --------------------------------------------------------------------
def test_ntd_inverts_dtn_on_mean_zero_data() -> None:
    grid = Grid(15, ndim=2)
    a = _random_coefficient(15, seed=5)
    w = cd.boundary_weights(grid)
    g = cd.trig_patterns(grid, 8)
    g = g - (g @ w / w.sum())[:, None]  # cos(4 theta) is not mean-zero on a square
    assert np.allclose(cd.ntd(a, grid, cd.dtn(a, grid, g)), g, atol=1e-10, rtol=0)
    currents = cd.trig_patterns(grid, 8)
    volts = cd.ntd(a, grid, currents)
    assert np.allclose(volts @ w, 0.0, atol=1e-12)
    projected = currents - (currents @ w / w.sum())[:, None]
    assert np.allclose(cd.dtn(a, grid, volts), projected, atol=1e-10, rtol=0)


def test_ntd_refuses_constant_current() -> None:
    grid = Grid(7, ndim=2)
    currents = np.vstack([cd.trig_patterns(grid, 1), np.full((1, 24), 2.0)])
    with pytest.raises(ArgumentValueError, match=r"currents.*constant.*indices \[1\]"):
        cd.ntd(1.0, grid, currents)


def test_batched_calls_equal_per_sample_calls() -> None:
    grid = Grid(11, ndim=2)
    a = _random_coefficient(11, seed=7, batch=(3,))
    p = cd.trig_patterns(grid, 4)
    for fn, coef, kw in ((cd.dtn, a, {}), (cd.ntd, a, {}), (cd.helmholtz_dtn, a - 1.0, {"omega": 3.0})):
        batch = fn(coef, grid, p, **kw)
        assert batch.shape == (3, 4, 40)
        for s in range(3):
            assert np.array_equal(batch[s], fn(coef[s], grid, p, **kw))


# -- Helmholtz -------------------------------------------------------------------------------
def test_helmholtz_with_zero_kappa_is_the_laplace_dtn() -> None:
    grid = Grid(13, ndim=2)
    p = cd.trig_patterns(grid, 6)
    assert np.allclose(cd.helmholtz_dtn(0.0, grid, p, omega=4.0), cd.dtn(1.0, grid, p), atol=1e-10, rtol=0)
    assert np.allclose(cd.helmholtz_dtn(np.ones((13, 13)), grid, p, omega=0.0), cd.dtn(1.0, grid, p),
                       atol=1e-10, rtol=0)


def test_helmholtz_plane_wave_flux_is_second_order() -> None:
    """kappa = 1, u = cos(omega (x cos phi + y sin phi)) solves Delta u + omega^2 u = 0."""
    omega, phi = 5.5, 0.3  # omega^2 = 30.25 lies between the first two resonances (~19.7, ~49.3)
    errors = []
    for n in (17, 33, 65):
        grid = Grid(n, ndim=2)
        x, y = _boundary_xy(grid)
        s = -omega * np.sin(omega * (x * np.cos(phi) + y * np.sin(phi)))
        exact = _outward_normal_derivative(grid, s * np.cos(phi), s * np.sin(phi))
        g = np.cos(omega * (x * np.cos(phi) + y * np.sin(phi)))
        err = cd.helmholtz_dtn(1.0, grid, g[None], omega=omega)[0] - exact
        errors.append(np.sqrt(cd.boundary_weights(grid) @ err**2))
    assert _orders(errors).min() >= 1.8, errors


def test_helmholtz_resonance_raises() -> None:
    n = 9
    h = 1.0 / (n - 1)
    grid = Grid(n, ndim=2)
    p = cd.trig_patterns(grid, 2)
    # The lowest Dirichlet eigenvalue of the 5-point Laplacian on the interior nodes.
    lam = 8.0 / h**2 * np.sin(PI * h / 2) ** 2
    with pytest.raises(ArgumentValueError, match="omega.*resonan"):
        cd.helmholtz_dtn(1.0, grid, p, omega=float(np.sqrt(lam)))
    with pytest.raises(ArgumentValueError, match="omega.*resonan"):
        cd.helmholtz_dtn(1.0, grid, p, omega=float(np.sqrt(lam * (1 + 1e-11))))
    cd.helmholtz_dtn(1.0, grid, p, omega=float(np.sqrt(lam * 1.05)))  # 5% off is fine


# -- input checks ----------------------------------------------------------------------------
def test_bad_inputs_are_refused_with_expected_and_got() -> None:
    grid = Grid(9, ndim=2)
    p = cd.trig_patterns(grid, 3)
    with pytest.raises(ShapeError, match=r"patterns: expected shape \(L, 32\).*got \(3, 31\)"):
        cd.dtn(1.0, grid, p[:, :-1])
    with pytest.raises(ShapeError, match=r"patterns.*got \(32,\)"):
        cd.dtn(1.0, grid, p[0])
    with pytest.raises(ShapeError, match=r"a: expected shape .*\(9, 9\).*got \(8, 9\)"):
        cd.dtn(np.ones((8, 9)), grid, p)
    bad = np.ones((9, 9))
    bad[4, 4] = -1.0
    with pytest.raises(ArgumentValueError, match="strictly positive.*1 of 81 values <= 0"):
        cd.dtn(bad, grid, p)
    with pytest.raises(ArgumentValueError, match="strictly positive"):
        cd.ntd(np.zeros((2, 9, 9)), grid, p)
    bad[4, 4] = np.nan
    with pytest.raises(NonFiniteError, match="a: expected finite values, got 1 NaN"):
        cd.dtn(bad, grid, p)
    with pytest.raises(NonFiniteError, match="patterns"):
        cd.dtn(1.0, grid, np.where(p > 0.5, np.inf, p))
    with pytest.raises(UnknownNameError, match="face mean"):
        cd.dtn(1.0, grid, p, face="geometric")
    with pytest.raises(ConfigError, match="expected a 2-D grid, got 3-D"):
        cd.boundary_order(Grid(5, ndim=3))
    with pytest.raises(ArgumentValueError, match="omega: expected a finite number >= 0, got -1.0"):
        cd.helmholtz_dtn(1.0, grid, p, omega=-1.0)
    with pytest.raises(ConfigError, match="L: expected a positive integer, got 0"):
        cd.trig_patterns(grid, 0)
    with pytest.raises(ShapeError, match="dtn_matrix takes one coefficient"):
        cd.dtn_matrix(np.ones((2, 9, 9)), grid)


def test_multiplicative_noise() -> None:
    m = np.linspace(1.0, 2.0, 20000).reshape(4, 5000)
    noisy = cd.add_multiplicative_noise(m, 0.05, np.random.default_rng(0))
    assert noisy.shape == m.shape
    assert np.array_equal(noisy, cd.add_multiplicative_noise(m, 0.05, np.random.default_rng(0)))
    rel = (noisy - m) / m
    assert abs(rel.std() - 0.05) < 2e-3 and abs(rel.mean()) < 2e-3
    assert np.array_equal(cd.add_multiplicative_noise(m, 0.0, np.random.default_rng(1)), m)
    with pytest.raises(ConfigError, match="numpy.random.Generator.*got int"):
        cd.add_multiplicative_noise(m, 0.05, 0)
    with pytest.raises(ArgumentValueError, match="level: expected a finite number >= 0, got -0.1"):
        cd.add_multiplicative_noise(m, -0.1, np.random.default_rng(0))


# -- inversion -------------------------------------------------------------------------------
@pytest.mark.parametrize("regularization", ["tikhonov", "tv"])
@pytest.mark.parametrize("face", ["arithmetic", "harmonic"])
def test_adjoint_gradient_matches_central_differences(regularization: str, face: str) -> None:
    grid = Grid(9, ndim=2)
    rng = np.random.default_rng(11)
    p = cd.trig_patterns(grid, 6)
    data = cd.add_multiplicative_noise(cd.dtn(_random_coefficient(9, seed=12), grid, p), 0.01, rng)
    a = _random_coefficient(9, seed=13)
    kw = {"alpha": 1e-3, "regularization": regularization, "face": face}
    _, grad, _ = inv.conductivity_objective(a, data, p, grid, **kw)
    step = 1e-5
    for _ in range(3):
        v = rng.standard_normal((9, 9))
        plus = inv.conductivity_objective(a + step * v, data, p, grid, **kw)[0]
        minus = inv.conductivity_objective(a - step * v, data, p, grid, **kw)[0]
        fd = (plus - minus) / (2 * step)
        assert abs(fd - np.sum(grad * v)) <= 1e-6 * abs(fd), (fd, np.sum(grad * v))


def test_inversion_recovers_a_bump_without_noise() -> None:
    grid = Grid(17, ndim=2)
    p = cd.trig_patterns(grid, 16)
    truth = _bump(grid)
    result = inv.invert_conductivity(cd.dtn(truth, grid, p), p, grid, alpha=1e-7, max_iter=300)
    initial = np.linalg.norm(1.0 - truth) / np.linalg.norm(truth)
    error = np.linalg.norm(result.a - truth) / np.linalg.norm(truth)
    assert error < 0.5 * initial, (error, initial)
    assert result.residual < 1e-3 and result.alpha == 1e-7 and result.history == [(1e-7, result.residual)]
    assert result.reason in ("converged", "max_iter") and 0 < result.iterations <= 300
    assert result.seconds < 20.0


def test_discrepancy_principle_picks_larger_alpha_for_larger_noise() -> None:
    grid = Grid(13, ndim=2)
    p = cd.trig_patterns(grid, 8)
    clean = cd.dtn(_bump(grid), grid, p)
    z = np.random.default_rng(2).standard_normal(clean.shape)
    chosen = {}
    for level in (0.01, 0.1):
        result = inv.invert_conductivity(clean * (1 + level * z), p, grid, noise_level=level)
        assert result.residual <= 1.1 * level
        assert all(r > 1.1 * level for _, r in result.history[:-1])  # the first alpha that meets it
        assert [h[0] for h in result.history] == sorted((h[0] for h in result.history), reverse=True)
        chosen[level] = (result.alpha, result.reason)
    assert chosen[0.1][0] > chosen[0.01][0], chosen
    # At 10% noise even the first (largest) alpha of the sweep fits, and the result says so.
    assert "alpha_max" in chosen[0.1][1] and "alpha_max" not in chosen[0.01][1], chosen


def test_inversion_settings_are_checked() -> None:
    grid = Grid(7, ndim=2)
    p = cd.trig_patterns(grid, 2)
    d = cd.dtn(1.0, grid, p)
    with pytest.raises(ConfigError, match="expected alpha .* or noise_level .*got neither"):
        inv.invert_conductivity(d, p, grid)
    with pytest.raises(ShapeError, match=r"measurements.*expected shape \(2, 24\), got \(3, 24\)"):
        inv.invert_conductivity(np.vstack([d, d[:1]]), p, grid, alpha=1e-3)
    with pytest.raises(ArgumentValueError, match=r"a0: expected values inside bounds \[0.5, 2.0\]"):
        inv.invert_conductivity(d, p, grid, alpha=1e-3, a0=3.0, bounds=(0.5, 2.0))
    with pytest.raises(UnknownNameError, match="regularization"):
        inv.invert_conductivity(d, p, grid, alpha=1e-3, regularization="l1")
    with pytest.raises(ArgumentValueError, match="noise_level: expected a finite number > 0"):
        inv.invert_conductivity(d, p, grid, noise_level=0.0)
