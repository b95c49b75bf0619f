"""Finite differences for -div(a grad u) = f: convergence, batching, SPD structure, lifts, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sciml.errors import ConfigError, NonFiniteError, ShapeError, UnknownNameError
from sciml.fields import Grid
from sciml.numerics import fd

PI = np.pi


# -- manufactured solutions ------------------------------------------------------------------
def _case_2d(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a = 1 + 0.5 sin(2 pi x) cos(pi y), u = sin(pi x) e^y + x^2, f = -div(a grad u)."""
    c = grid.coord_arrays()
    x, y = c["x"], c["y"]
    a = 1.0 + 0.5 * np.sin(2 * PI * x) * np.cos(PI * y)
    a_x = PI * np.cos(2 * PI * x) * np.cos(PI * y)
    a_y = -0.5 * PI * np.sin(2 * PI * x) * np.sin(PI * y)
    u = np.sin(PI * x) * np.exp(y) + x**2
    u_x = PI * np.cos(PI * x) * np.exp(y) + 2 * x
    u_y = np.sin(PI * x) * np.exp(y)
    lap = (1 - PI**2) * np.sin(PI * x) * np.exp(y) + 2.0
    return a, -(a * lap + a_x * u_x + a_y * u_y), u


def _case_1d(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a = 2 + cos(3x), u = sin(pi x) e^x + x^2 on [0, 1.5]."""
    x = grid.coord_arrays()["x"]
    a, a_x = 2.0 + np.cos(3 * x), -3 * np.sin(3 * x)
    u = np.sin(PI * x) * np.exp(x) + x**2
    u_x = np.exp(x) * (PI * np.cos(PI * x) + np.sin(PI * x)) + 2 * x
    u_xx = np.exp(x) * (2 * PI * np.cos(PI * x) + (1 - PI**2) * np.sin(PI * x)) + 2.0
    return a, -(a * u_xx + a_x * u_x), u


def _case_3d(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a = 1 + x y z, u = sin(x) e^y + z^3."""
    c = grid.coord_arrays()
    x, y, z = c["x"], c["y"], c["z"]
    a = 1.0 + x * y * z
    grad_u = (np.cos(x) * np.exp(y), np.sin(x) * np.exp(y), 3 * z**2)
    grad_a = (y * z, x * z, x * y)
    lap = 6 * z
    f = -(a * lap + sum(ga * gu for ga, gu in zip(grad_a, grad_u)))
    return a, f, np.sin(x) * np.exp(y) + z**3


def _orders(errors: list[float]) -> np.ndarray:
    return np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))


@pytest.mark.parametrize("face", ["arithmetic", "harmonic"])
def test_second_order_convergence_2d(face: str) -> None:
    errors = []
    for n in (17, 33, 65, 129):
        grid = Grid(n, ndim=2)
        a, f, u_exact = _case_2d(grid)
        u = fd.solve_elliptic(a, f, u_exact, grid, face=face)
        assert u.shape == grid.shape and u.dtype == np.float64
        np.testing.assert_array_equal(u[grid.boundary_mask()], u_exact[grid.boundary_mask()])
        errors.append(np.abs(u - u_exact).max())
    orders = _orders(errors)
    assert np.all((orders > 1.8) & (orders < 2.2)), (errors, orders)
    assert errors[-1] < 1e-4


def test_second_order_convergence_1d_nonunit_interval() -> None:
    errors = []
    for n in (33, 65, 129, 257):
        grid = Grid(n, bounds=[(0.0, 1.5)])
        a, f, u_exact = _case_1d(grid)
        errors.append(np.abs(fd.solve_elliptic(a, f, u_exact, grid) - u_exact).max())
    orders = _orders(errors)
    assert np.all((orders > 1.8) & (orders < 2.2)), (errors, orders)


def test_second_order_convergence_3d() -> None:
    errors = []
    for n in (9, 17, 33):
        grid = Grid(n, ndim=3)
        a, f, u_exact = _case_3d(grid)
        errors.append(np.abs(fd.solve_elliptic(a, f, u_exact, grid) - u_exact).max())
    orders = _orders(errors)
    assert np.all((orders > 1.8) & (orders < 2.2)), (errors, orders)


def test_anisotropic_spacing_is_second_order() -> None:
    # Different spacings per axis exercise the per-axis 1/h^2 scaling.
    errors = []
    for n in (17, 33, 65):
        grid = Grid((n, 2 * n - 1), bounds=[(0.0, 1.0), (-0.5, 1.5)])
        a, f, u_exact = _case_2d(grid)
        errors.append(np.abs(fd.solve_elliptic(a, f, u_exact, grid) - u_exact).max())
    orders = _orders(errors)
    assert np.all((orders > 1.8) & (orders < 2.2)), (errors, orders)


# -- matrix structure ------------------------------------------------------------------------
def test_assembly_matches_pointwise_stencil() -> None:
    grid = Grid((6, 5), bounds=[(0.0, 1.0), (0.0, 2.0)])
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 2.0, grid.shape)
    A, B = fd.assemble_elliptic(a, grid, face="harmonic")
    hx, hy = grid.spacing
    u = rng.standard_normal(grid.shape)
    # Apply the flux-form stencil node by node (slow reference) and compare with A u_I + B u_B.
    expected = []
    mean = lambda p, q: 2 * p * q / (p + q)  # noqa: E731
    for i in range(1, 5):
        for j in range(1, 4):
            val = 0.0
            for (di, dj), h in (((1, 0), hx), ((-1, 0), hx), ((0, 1), hy), ((0, -1), hy)):
                val -= mean(a[i, j], a[i + di, j + dj]) * (u[i + di, j + dj] - u[i, j]) / h**2
            expected.append(val)
    got = A @ fd.interior_values(u, grid) + B @ u[grid.boundary_mask()]
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-12)


def test_matrix_is_symmetric_positive_definite() -> None:
    grid = Grid((9, 7))
    rng = np.random.default_rng(2)
    a = np.exp(rng.standard_normal(grid.shape))
    A, b = fd.system(a, 1.0, rng.standard_normal(grid.shape), grid)
    assert isinstance(A, sp.csr_matrix) and A.dtype == np.float64 and b.dtype == np.float64
    dense = A.toarray()
    assert np.abs(dense - dense.T).max() == 0.0
    assert np.linalg.eigvalsh(dense).min() > 0.0
    np.testing.assert_array_equal(
        fd.laplacian_matrix(grid).toarray(), fd.assemble_elliptic(1.0, grid)[0].toarray()
    )


def test_system_solution_is_solve_elliptic_solution() -> None:
    grid = Grid(21, ndim=2)
    a, f, u_exact = _case_2d(grid)
    rng = np.random.default_rng(3)
    fs = f + rng.standard_normal((3, *grid.shape))
    A, b = fd.system(a, fs, u_exact, grid)
    assert b.shape == (3, 19 * 19)
    x = np.stack([sp.linalg.spsolve(A, bi) for bi in b])
    np.testing.assert_allclose(
        fd.from_interior(x, grid, u_exact), fd.solve_elliptic(a, fs, u_exact, grid), atol=1e-12
    )


def test_interior_round_trip() -> None:
    grid = Grid((5, 7))
    u = np.random.default_rng(4).standard_normal((2, *grid.shape))
    x = fd.interior_values(u, grid)
    assert x.shape == (2, 15)
    np.testing.assert_array_equal(fd.from_interior(x, grid, u), u)


# -- batching --------------------------------------------------------------------------------
def test_batched_solve_equals_per_sample_solves() -> None:
    grid = Grid((17, 13))
    rng = np.random.default_rng(5)
    a = rng.uniform(1.0, 4.0, (3, *grid.shape))
    f = rng.standard_normal((3, *grid.shape))
    g = rng.standard_normal((1, *grid.shape))
    u = fd.solve_elliptic(a, f, g, grid)
    assert u.shape == (3, *grid.shape)
    for i in range(3):
        np.testing.assert_allclose(u[i], fd.solve_elliptic(a[i], f[i], g[0], grid), rtol=0, atol=1e-12)
    # Shared coefficient: one factorisation, all right-hand sides at once.
    u_shared = fd.solve_elliptic(a[0], f, np.repeat(g, 3, axis=0), grid)
    for i in range(3):
        np.testing.assert_allclose(u_shared[i], fd.solve_elliptic(a[0], f[i], g[0], grid), atol=1e-12)
    # A batch of one stays batched; all unbatched stays unbatched.
    assert fd.solve_elliptic(a[:1], 1.0, 0.0, grid).shape == (1, *grid.shape)
    assert fd.solve_elliptic(2.0, 1.0, None, grid).shape == grid.shape


def test_elliptic_factor_reuses_factorisation() -> None:
    grid = Grid(33, ndim=2)
    rng = np.random.default_rng(6)
    factor = fd.EllipticFactor(1.0, grid)
    assert factor.n_interior == 31 * 31
    f, g = rng.standard_normal((4, *grid.shape)), rng.standard_normal((4, *grid.shape))
    u = factor.solve(f, g)
    for i in range(4):
        np.testing.assert_allclose(u[i], fd.solve_elliptic(1.0, f[i], g[i], grid), atol=1e-12)
    # Discrete residual at the interior is zero to round-off.
    res = factor.A @ fd.interior_values(u, grid).T + factor.B @ u[:, grid.boundary_mask()].T
    np.testing.assert_allclose(res.T, fd.interior_values(f, grid), atol=1e-9)


# -- harmonic extension and DtN --------------------------------------------------------------
def test_harmonic_extension_is_exact_for_discrete_harmonic_functions() -> None:
    grid = Grid((17, 25), bounds=[(0.0, 2.0), (-1.0, 1.0)])
    c = grid.coord_arrays()
    h1 = c["x"] ** 2 - c["y"] ** 2
    h2 = 3 * c["x"] * c["y"] - c["x"] + 0.5
    g = np.stack([h1, h2])
    g_noisy = g.copy()
    g_noisy[:, ~grid.boundary_mask()] = np.random.default_rng(7).standard_normal((2, 15 * 23))
    u = fd.harmonic_extension(g_noisy, grid)
    assert u.shape == g.shape
    np.testing.assert_allclose(u, g, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(u[:, grid.boundary_mask()], g[:, grid.boundary_mask()])
    np.testing.assert_allclose(fd.harmonic_extension(h1, grid), h1, atol=1e-10)


def test_harmonic_extension_obeys_maximum_principle() -> None:
    grid = Grid(33, ndim=2)
    g = np.random.default_rng(8).uniform(-1, 1, grid.shape)
    u = fd.harmonic_extension(g, grid)
    inner = u[1:-1, 1:-1]
    bnd = g[grid.boundary_mask()]
    assert inner.max() <= bnd.max() and inner.min() >= bnd.min()
    # Discrete mean value property: each interior node is the average of its four neighbours.
    avg = 0.25 * (u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2])
    np.testing.assert_allclose(inner, avg, atol=1e-12)


def test_dirichlet_to_neumann_exact_for_quadratic() -> None:
    grid = Grid((13, 17))
    c = grid.coord_arrays()
    g = c["x"] ** 2 - c["y"] ** 2
    flux = fd.dirichlet_to_neumann(2.5, grid, g)
    # a du/dn with a = 2.5: -a u_x at x=0, a u_x at x=1, -a u_y at y=0, a u_y at y=1.
    np.testing.assert_allclose(flux[0, 1:-1], 0.0, atol=1e-10)
    np.testing.assert_allclose(flux[-1, 1:-1], 2.5 * 2.0, atol=1e-10)
    np.testing.assert_allclose(flux[1:-1, 0], 0.0, atol=1e-10)
    np.testing.assert_allclose(flux[1:-1, -1], -2.5 * 2.0, atol=1e-10)
    assert flux[-1, -1] == pytest.approx(0.5 * (5.0 - 5.0), abs=1e-10)  # mean of the two faces
    np.testing.assert_array_equal(flux[1:-1, 1:-1], 0.0)


def test_dirichlet_to_neumann_converges_for_variable_coefficient() -> None:
    errors = []
    for n in (17, 33, 65):
        grid = Grid(n, ndim=2)
        a, f, u = _case_2d(grid)
        c = grid.coord_arrays()
        x, y = c["x"], c["y"]
        u_x = PI * np.cos(PI * x) * np.exp(y) + 2 * x
        u_y = np.sin(PI * x) * np.exp(y)
        flux = fd.dirichlet_to_neumann(a[None], grid, u[None], f=f)[0]
        exact = np.concatenate(
            [-(a * u_x)[0, 1:-1], (a * u_x)[-1, 1:-1], -(a * u_y)[1:-1, 0], (a * u_y)[1:-1, -1]]
        )
        got = np.concatenate([flux[0, 1:-1], flux[-1, 1:-1], flux[1:-1, 0], flux[1:-1, -1]])
        errors.append(np.abs(got - exact).max())
    orders = _orders(errors)
    assert np.all((orders > 1.8) & (orders < 2.2)), (errors, orders)


# -- Darcy-like check ------------------------------------------------------------------------
def test_darcy_piecewise_coefficient_statistics() -> None:
    grid = Grid(85, ndim=2)
    c = grid.coord_arrays()
    rng = np.random.default_rng(9)
    field = sum(
        rng.standard_normal()
        * np.sin(PI * (k + 1) * c["x"] + rng.uniform(0, 2 * PI))
        * np.cos(PI * m * c["y"])
        for k in range(4)
        for m in range(4)
    )
    a = np.where(field >= 0, 12.0, 3.0)
    assert 0.1 < (a == 12.0).mean() < 0.9
    for face in fd.FACE_MEANS:
        u = fd.solve_elliptic(a, 1.0, 0.0, grid, face=face)
        assert np.all(u[1:-1, 1:-1] > 0) and np.all(u[grid.boundary_mask()] == 0)
        # Between the constant-coefficient extremes 0.0737/12 and 0.0737/3: order 1e-2 as in FNO's data.
        assert 5e-3 < u.max() < 2.5e-2, u.max()


# -- bad inputs ------------------------------------------------------------------------------
def test_bad_inputs_raise_informative_errors() -> None:
    grid = Grid(9, ndim=2)
    ok = np.ones(grid.shape)
    with pytest.raises(ConfigError, match="strictly positive"):
        fd.solve_elliptic(-ok, ok, 0.0, grid)
    with pytest.raises(ConfigError, match="strictly positive"):
        fd.EllipticFactor(0.0, grid)
    bad_f = ok.copy()
    bad_f[3, 4] = np.nan
    with pytest.raises(NonFiniteError, match="f: expected finite"):
        fd.solve_elliptic(ok, bad_f, 0.0, grid)
    with pytest.raises(NonFiniteError):
        fd.assemble_elliptic(np.full(grid.shape, np.inf), grid)
    with pytest.raises(ShapeError, match=r"expected shape \(9, 9\).*got \(8, 9\)"):
        fd.solve_elliptic(np.ones((8, 9)), 1.0, 0.0, grid)
    with pytest.raises(ShapeError, match="batch sizes"):
        fd.solve_elliptic(np.ones((2, 9, 9)), np.ones((3, 9, 9)), 0.0, grid)
    with pytest.raises(ShapeError):
        fd.assemble_elliptic(np.ones((2, 9, 9)), grid)
    with pytest.raises(UnknownNameError, match="geometric"):
        fd.solve_elliptic(ok, ok, 0.0, grid, face="geometric")
    with pytest.raises(ConfigError, match="at least 3 nodes"):
        fd.laplacian_matrix(Grid((2, 9)))
    with pytest.raises(ConfigError, match="Grid"):
        fd.solve_elliptic(ok, ok, 0.0, (9, 9))
    with pytest.raises(ShapeError):
        fd.from_interior(np.ones(10), grid)
