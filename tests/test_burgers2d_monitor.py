"""2-D Burgers trajectories (problems/burgers2d.py, sciml.numerics.burgers2d) and the mesh monitors
(sciml.meshmove.monitor)."""

from __future__ import annotations

import dataclasses
import math
import warnings

import h5py
import numpy as np
import pytest

from sciml.data import generate
from sciml.data.shards import shard_rng
from sciml.errors import ConfigError, NonFiniteError, ShapeError, UnknownNameError
from sciml.fields import Field, Grid
from sciml.meshmove.monitor import GradientMonitor, HessianMonitor, interpolate
from sciml.numerics.burgers2d import burgers2d_etdrk4, default_step, frame_times
from sciml.numerics.spectral import burgers_etdrk4
from sciml.problem import load_problem
from sciml.spaces import GRF


# -- helpers -------------------------------------------------------------------------------------------
def _smooth(batch: int, n: int, seed: int, amplitude: float = 0.5) -> np.ndarray:
    """A few random low Fourier modes (|k_x|, |k_y| <= 3) on n x n periodic points: band limited."""
    rng = np.random.default_rng(seed)
    x = np.arange(n) / n
    X, Y = np.meshgrid(x, x, indexing="ij")
    u = np.zeros((batch, n, n))
    for kx in range(4):
        for ky in range(-3, 4):
            if kx == 0 and ky <= 0:
                continue
            a, b = rng.standard_normal((2, batch, 1, 1)) / (1 + kx * kx + ky * ky)
            phase = 2 * np.pi * (kx * X + ky * Y)
            u += a * np.cos(phase) + b * np.sin(phase)
    return amplitude * u / np.abs(u).max(axis=(1, 2), keepdims=True)


def _upsample(u: np.ndarray, n: int) -> np.ndarray:
    """Trigonometric interpolation of (B, m, m) periodic samples (no Nyquist content) to n x n."""
    m = u.shape[-1]
    k = (m - 1) // 2
    spec = np.fft.rfft2(u, axes=(-2, -1))
    big = np.zeros((u.shape[0], n, n // 2 + 1), dtype=complex)
    big[:, : k + 1, : k + 1] = spec[:, : k + 1, : k + 1]
    big[:, n - k :, : k + 1] = spec[:, m - k :, : k + 1]
    return np.fft.irfft2(big * (n / m) ** 2, s=(n, n), axes=(-2, -1))


def _small(problem, **params):
    """The problem with other params (a fresh TrajectoryProblem: array_shapes follow the new n_times)."""
    return dataclasses.replace(problem, params={**problem.params, **params})


# -- the solver ----------------------------------------------------------------------------------------
def test_spectral_convergence_in_space():
    # Band-limited data (modes <= 3) solved on 16 .. 48 points against 64, with the same time steps so
    # that only the space error differs: it falls geometrically in n (by 50x or more for every 8 more
    # points, about 3e-4, 4e-6, 7e-8, 1e-11), faster than any power of n (nu = 0.02, t = 0.3).
    u0 = _smooth(2, 64, seed=0)
    fine = burgers2d_etdrk4(u0, 0.02, 0.3, n_steps=150)[:, -1]
    errors = {}
    for n in (16, 24, 32, 48):
        coarse = burgers2d_etdrk4(_sub(u0, n), 0.02, 0.3, n_steps=150)[:, -1]
        errors[n] = np.abs(coarse - _sub(fine, n)).max() / np.abs(fine).max()
    assert errors[16] < 1e-3
    assert errors[24] < errors[16] / 30 and errors[32] < errors[24] / 30
    assert errors[48] < 1e-10


def _downsample(u: np.ndarray, n: int) -> np.ndarray:
    """Values of the band-limited (B, m, m) data at n x n periodic points (n need not divide m)."""
    m = u.shape[-1]
    spec = np.fft.fft2(u, axes=(-2, -1)) / m**2
    x = np.arange(n) / n
    k = np.fft.fftfreq(m, 1.0 / m)
    basis = np.exp(2j * np.pi * np.outer(x, k))  # (n, m)
    return np.real(np.einsum("ia,bak,jk->bij", basis, spec, basis))


def _sub(u: np.ndarray, n: int) -> np.ndarray:
    m = u.shape[-1]
    return u[:, :: m // n, :: m // n] if m % n == 0 else _downsample(u, n)


def test_fourth_order_in_time():
    u0 = _smooth(2, 32, seed=1)
    exact = burgers2d_etdrk4(u0, 0.02, 0.4, n_steps=640)[:, -1]
    errors = [np.abs(burgers2d_etdrk4(u0, 0.02, 0.4, n_steps=s)[:, -1] - exact).max() for s in (10, 20, 40)]
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert errors[0] > 1e-9
    assert all(3.6 < r < 4.6 for r in rates), (errors, rates)


def test_mean_conserved_and_maximum_principle():
    # u (u_x + u_y) = (u^2/2)_x + (u^2/2)_y: conservation form, so the mean is kept to round-off
    # (here zero), and max|u| never grows (resolved fronts: nu = 0.01 on 64^2).
    u0 = GRF(alpha=4.0, tau=5.0, sigma=956.0, boundary="periodic").sample(2, Grid((65, 65)), 4)[:, :-1, :-1]
    traj = burgers2d_etdrk4(u0, 1e-2, 0.5, n_times=11)
    means = traj.mean(axis=(2, 3))
    assert np.abs(means - means[:, :1]).max() < 1e-14
    peaks = np.abs(traj).max(axis=(2, 3))
    assert np.all(np.diff(peaks, axis=1) <= 1e-12)
    assert np.all(peaks[:, -1] < 0.9 * peaks[:, 0])  # and it decays visibly


def test_data_constant_along_y_is_1d_burgers():
    x = np.arange(64) / 64
    u1 = 0.8 * np.sin(2 * np.pi * x) + 0.3 * np.cos(4 * np.pi * x + 1.0)
    one_d = burgers_etdrk4(u1, 0.01, 0.3, n_steps=300)
    two_d = burgers2d_etdrk4(np.tile(u1[:, None], (1, 64)), 0.01, 0.3, n_times=4, n_steps=300)
    assert two_d.shape == (4, 64, 64)
    assert np.abs(two_d[-1] - one_d[:, None]).max() < 1e-13


def test_data_along_the_diagonal_is_1d_burgers_at_twice_the_time():
    # u = f(x + y) gives u_t + 2 u f' = 2 nu f'': u(x, y, t) = w(x + y, 2 t) with w 1-D Burgers.
    n = 48
    xi = np.arange(n) / n
    f = 0.6 * np.sin(2 * np.pi * xi) + 0.2 * np.sin(4 * np.pi * xi + 0.5)
    w = burgers_etdrk4(f, 0.02, 0.5, n_steps=400)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    u = burgers2d_etdrk4(f[(i + j) % n], 0.02, 0.25, n_steps=200)[-1]
    assert np.abs(u - w[(i + j) % n]).max() < 1e-9


def test_solver_shapes_frames_and_errors():
    u0 = _smooth(3, 16, seed=2)
    traj = burgers2d_etdrk4(u0, 0.05, 0.2, n_times=5)
    assert traj.shape == (3, 5, 16, 16) and traj.dtype == np.float64
    assert np.array_equal(traj[:, 0], u0)
    np.testing.assert_allclose(frame_times(0.2, 5), [0.0, 0.05, 0.1, 0.15, 0.2])
    # A sample's trajectory does not depend on the rest of the batch (per-sample default step).
    np.testing.assert_array_equal(burgers2d_etdrk4(u0[1], 0.05, 0.2, n_times=5), traj[1])
    assert np.array_equal(burgers2d_etdrk4(u0, 0.05, 0.0, n_times=3)[:, 2], u0)
    assert 0 < default_step(1.2, 5e-3, 192) <= 1e-3
    with pytest.raises(ConfigError, match="viscosity"):
        burgers2d_etdrk4(u0, 0.0, 0.2)
    with pytest.raises(ConfigError, match="final time"):
        burgers2d_etdrk4(u0, 0.05, -1.0)
    with pytest.raises(ConfigError, match="multiple"):
        burgers2d_etdrk4(u0, 0.05, 0.2, n_times=4, n_steps=10)
    with pytest.raises(ConfigError, match="n_times"):
        burgers2d_etdrk4(u0, 0.05, 0.2, n_times=1)
    with pytest.raises(ShapeError):
        burgers2d_etdrk4(np.zeros((4, 8, 6)), 0.05, 0.2)
    bad = u0.copy()
    bad[0, 1, 1] = np.nan
    with pytest.raises(NonFiniteError):
        burgers2d_etdrk4(bad, 0.05, 0.2)


# -- the problem ---------------------------------------------------------------------------------------
def test_problem_settings():
    problem = load_problem("burgers2d")
    assert problem.grid == Grid((49, 49)) and problem.solve_stride == 4
    assert problem.solve_grid(problem.grid) == Grid((193, 193))
    assert problem.params == {"nu": 5e-3, "t_end": 0.5, "n_times": 21}
    assert problem.array_shape("u", problem.grid) == (21, 49, 49)
    assert problem.array_shape("u0", problem.grid) is None
    space = problem.input("u0").space
    assert (space.alpha, space.tau, space.boundary) == (4.0, 5.0, "periodic")
    # sigma gives a pointwise standard deviation of 0.5 (the lattice sum of the covariance).
    k = np.arange(-100, 101)
    lam = ((2 * np.pi) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2) + 25.0) ** -4.0
    lam[100, 100] = 0.0
    assert math.sqrt(space.sigma**2 * lam.sum()) == pytest.approx(0.5, abs=1e-3)


def test_make_samples_shapes_determinism_and_subsampling():
    problem = _small(load_problem("burgers2d"), nu=0.05, t_end=0.1, n_times=3)
    grid = Grid((9, 9))
    inputs, outputs = problem.make_samples(10, grid, 7)  # 10 > the chunk of 8: two chunks
    u0, u = inputs["u0"], outputs["u"]
    assert u0.shape == (10, 9, 9) and u.shape == (10, 3, 9, 9)
    assert np.array_equal(u[:, 0], u0)  # the first frame is the initial field
    assert np.array_equal(u[..., -1, :], u[..., 0, :]) and np.array_equal(u[..., -1], u[..., 0])
    again = problem.make_samples(10, grid, 7)
    assert np.array_equal(again[0]["u0"], u0) and np.array_equal(again[1]["u"], u)
    assert not np.allclose(problem.make_samples(10, grid, 8)[0]["u0"], u0)
    # The same as solving all ten on the 33^2 solve grid at once and subsampling by 4.
    fine = problem.solve_grid(grid)
    full = problem.sample_inputs(10, fine, 7)
    solved = problem.solve_batch(full, fine)["u"]
    assert np.array_equal(solved[..., ::4, ::4], u)
    assert np.abs(u[:, -1]).max(axis=(1, 2)).max() <= np.abs(u0).max() + 1e-12


def test_reference_rejects_bad_grids_and_data():
    problem = _small(load_problem("burgers2d"), t_end=0.01, n_times=2)
    grid = Grid((9, 9))
    with pytest.raises(ConfigError, match="periodic"):
        problem.solve_batch({"u0": np.random.default_rng(0).standard_normal((1, 9, 9))}, grid)
    with pytest.raises(ConfigError, match="square"):
        problem.solve_batch({"u0": np.zeros((1, 9, 13))}, Grid((9, 13)))


def test_generate_round_trip(tmp_path):
    problem = _small(load_problem("burgers2d"), nu=0.05, t_end=0.1, n_times=3)
    grid = Grid((9, 9))
    path = generate(problem, 3, grid, seed=5, path=tmp_path / "b2d.h5", progress=False)
    inputs, outputs = problem.make_samples(3, grid, shard_rng(5, 0))
    with h5py.File(path, "r") as f:
        stored_u0, stored_u = f["inputs/u0"][()], f["outputs/u"][()]
    assert stored_u0.shape == (3, 1, 9, 9) and stored_u.shape == (3, 3, 9, 9)
    np.testing.assert_array_equal(stored_u0[:, 0], inputs["u0"].astype(stored_u0.dtype))
    np.testing.assert_array_equal(stored_u, outputs["u"].astype(stored_u.dtype))
    assert generate(problem, 3, grid, seed=5, path=path, progress=False) == path  # reused as is


# -- monitors ------------------------------------------------------------------------------------------
def _grid_xy(n: int) -> tuple[Grid, np.ndarray, np.ndarray]:
    grid = Grid((n, n))
    c = grid.coord_arrays()
    return grid, c["x"], c["y"]


@pytest.mark.parametrize("periodic", [True, False])
def test_gradient_monitor_of_a_sine(periodic):
    beta = 0.5
    errors = []
    for n in (33, 65):
        grid, x, _ = _grid_xy(n)
        m = GradientMonitor(beta=beta, periodic=periodic)(Field(np.sin(2 * np.pi * x), grid))
        assert m.disc == grid and m.values.shape == grid.shape
        size = 2 * np.pi * np.abs(np.cos(2 * np.pi * x))
        mean = size[:-1, :-1].mean() if periodic else size.mean()  # distinct nodes when periodic
        errors.append(np.abs(m.values - (1 + size / (beta * mean))).max())
    if periodic:
        # The central difference of sin(2 pi x) is sin(2 pi h)/(2 pi h) times the derivative everywhere,
        # and that factor cancels in the ratio to the mean: exact up to round-off.
        assert max(errors) < 1e-12
    else:
        # O(h^2), from the one-sided formulas at the faces (0.054, then 0.014, of m up to 4.1).
        assert errors[0] < 0.1 and 3.5 < errors[0] / errors[1] < 4.5


def test_gradient_monitor_second_order_in_2d():
    # Different factors per axis (sin(2 pi x) sin(4 pi y)): the discrete monitor is O(h^2) off.
    beta = 1.0
    errors = []
    for n in (33, 65, 129):
        grid, x, y = _grid_xy(n)
        u = np.sin(2 * np.pi * x) * np.sin(4 * np.pi * y)
        gx = 2 * np.pi * np.cos(2 * np.pi * x) * np.sin(4 * np.pi * y)
        gy = 4 * np.pi * np.sin(2 * np.pi * x) * np.cos(4 * np.pi * y)
        size = np.hypot(gx, gy)
        exact = 1 + size / (beta * size[:-1, :-1].mean())
        m = GradientMonitor(beta=beta, periodic=True).evaluate(u, grid)
        errors.append(np.abs(m - exact).max())
        if n == 33:
            spectral = GradientMonitor(beta=beta, periodic=True, method="spectral").evaluate(u, grid)
            assert np.abs(spectral - exact).max() < 1e-12
    assert all(3.5 < errors[i] / errors[i + 1] < 4.5 for i in range(2)), errors


def test_constant_fields_give_one():
    grid, x, _ = _grid_xy(17)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division-by-zero or invalid-value warnings either
        with np.errstate(all="raise"):
            for monitor in (
                GradientMonitor(),
                HessianMonitor(),
                GradientMonitor(periodic=True),
                HessianMonitor(periodic=True, method="spectral"),
            ):
                for value in (0.0, 3.7):
                    assert np.array_equal(
                        monitor(Field(np.full(grid.shape, value), grid)).values, np.ones(grid.shape)
                    )
    # Round-off-level wiggles on a constant are not features either.
    noisy = 2.0 + 1e-16 * np.sin(7 * x)
    assert np.array_equal(GradientMonitor().evaluate(noisy, grid), np.ones(grid.shape))


def test_hessian_monitor():
    grid, x, y = _grid_xy(17)
    quadratic = 1.0 + 2 * x - y + x**2 + 3 * x * y - 0.5 * y**2
    m = HessianMonitor(beta=0.25).evaluate(quadratic, grid)
    np.testing.assert_allclose(m, 1 + 1 / 0.25, rtol=1e-12)  # constant Hessian, faces included
    # u = sin(2 pi x): |H u|_F = 4 pi^2 |sin(2 pi x)|, O(h^2) with the 3-point stencil.
    errors = []
    for n in (33, 65):
        grid, x, _ = _grid_xy(n)
        size = np.abs(np.sin(2 * np.pi * x))
        exact = 1 + size / (2.0 * size[:-1, :-1].mean())
        errors.append(
            np.abs(
                HessianMonitor(beta=2.0, periodic=True).evaluate(np.sin(2 * np.pi * x), grid) - exact
            ).max()
        )
    assert errors[0] < 1e-10  # the stencil's factor is uniform for a pure sine and cancels, as above
    grid, x, y = _grid_xy(33)
    mixed = np.sin(2 * np.pi * (x + 2 * y))
    spec = HessianMonitor(beta=1.0, periodic=True, method="spectral").evaluate(mixed, grid)
    size = np.abs(mixed) * (2 * np.pi) ** 2 * math.sqrt(1 + 2 * 4 + 16)
    np.testing.assert_allclose(spec, 1 + size / size[:-1, :-1].mean(), atol=1e-9)


def test_stacked_fields_get_their_own_mean():
    grid, x, y = _grid_xy(17)
    frames = np.stack([np.sin(2 * np.pi * x), 5 * np.cos(2 * np.pi * y) * np.sin(2 * np.pi * x)])
    monitor = GradientMonitor(beta=0.1, periodic=True)
    stacked = monitor(Field(frames, grid)).values
    assert stacked.shape == (2, 17, 17)
    for k in range(2):
        np.testing.assert_array_equal(stacked[k], monitor.evaluate(frames[k], grid))


def test_at_interpolates_bilinearly():
    grid, x, y = _grid_xy(9)
    field = Field(np.sin(2 * np.pi * x) * np.cos(2 * np.pi * y) + 0.3 * np.sin(2 * np.pi * y), grid)
    monitor = GradientMonitor(beta=0.2, periodic=True)
    m = monitor(field).values
    nodes = grid.coords()
    np.testing.assert_allclose(monitor.at(field, nodes), m, rtol=0, atol=1e-13)
    # Between nodes: the bilinear blend of the four corners of the cell.
    h = grid.spacing[0]
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 8, 20), rng.integers(0, 8, 20)
    a, b = rng.random(20), rng.random(20)
    pts = np.stack([(i + a) * h, (j + b) * h], axis=-1)
    blend = (
        (1 - a) * (1 - b) * m[i, j]
        + a * (1 - b) * m[i + 1, j]
        + (1 - a) * b * m[i, j + 1]
        + a * b * m[i + 1, j + 1]
    )
    np.testing.assert_allclose(monitor.at(field, pts), blend, atol=1e-13)
    # Periodic wrap: shifting by a period changes nothing; shapes (..., 2) -> (...).
    np.testing.assert_allclose(monitor.at(field, pts + [1.0, -2.0]), blend, atol=1e-12)
    assert monitor.at(field, pts.reshape(4, 5, 2)).shape == (4, 5)
    # A bilinear function is reproduced exactly anywhere (non-periodic interpolation).
    f = 1 + 2 * x - 3 * y + 4 * x * y
    q = rng.random((50, 2))
    exact = 1 + 2 * q[:, 0] - 3 * q[:, 1] + 4 * q[:, 0] * q[:, 1]
    np.testing.assert_allclose(interpolate(f, grid, q), exact, atol=1e-13)
    np.testing.assert_allclose(interpolate(np.stack([f, 2 * f]), grid, q), [exact, 2 * exact], atol=1e-13)
    assert interpolate(f, grid, [[1.0 + 1e-12, 1.0]])[0] == pytest.approx(f[-1, -1])  # round-off: clipped


def test_monitor_errors():
    grid, x, _ = _grid_xy(9)
    for beta in (0.0, -1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ConfigError):
            GradientMonitor(beta=beta)
    with pytest.raises(UnknownNameError):
        HessianMonitor(method="fd4")
    with pytest.raises(ConfigError, match="periodic=True"):
        GradientMonitor(method="spectral")
    with pytest.raises(ConfigError):
        GradientMonitor(periodic=1)
    bad = np.sin(x)
    bad[3, 3] = np.nan
    with pytest.raises(NonFiniteError):
        GradientMonitor()(Field(bad, grid))
    with pytest.raises(ShapeError):
        GradientMonitor().evaluate(np.zeros((9, 8)), grid)
    with pytest.raises(ConfigError, match="Field"):
        GradientMonitor()(np.zeros((9, 9)))
    with pytest.raises(ConfigError, match="repeat"):
        GradientMonitor(periodic=True)(Field(x, grid))  # x = 1 is not x = 0 again
    field = Field(np.sin(2 * np.pi * x), grid)
    with pytest.raises(ShapeError):
        GradientMonitor().at(field, np.zeros((4, 3)))
    with pytest.raises(ConfigError, match="inside the box"):
        GradientMonitor().at(field, [[0.5, 1.1]])
    with pytest.raises(NonFiniteError):
        GradientMonitor().at(field, [[0.5, np.nan]])
    with pytest.raises(ConfigError, match="at least"):
        HessianMonitor().evaluate(np.zeros((3, 3)), Grid((3, 3)))
