"""The classical Monge-Ampere mesh generator (sciml.numerics.monge_ampere) and mesh quality
metrics (sciml.meshmove.quality): exactness, consistency, sliding walls, periodicity, the payoff in
interpolation error on steep fronts, the tangling guard and input errors."""

from __future__ import annotations

import numpy as np
import pytest

from sciml.errors import ConfigError, InvalidMeshError, NonFiniteError, ShapeError
from sciml.geometry.mesh import Mesh
from sciml.grid import Grid
from sciml.meshmove.quality import mesh_quality
from sciml.numerics.monge_ampere import (
    MongeAmpereResult,
    map_points,
    monge_ampere_residual,
    solve_monge_ampere,
    to_mesh,
)


def _uniform(n: int) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)
    return np.stack(np.meshgrid(s, s, indexing="ij"), axis=-1)


def _constant(p: np.ndarray) -> np.ndarray:
    return np.full(p.shape[:-1], 3.0)


# -- exact maps --------------------------------------------------------------------------------------
# Non-separable potential with d phi/dn = 0 on the walls: phi = c cos(pi xi1) cos(pi xi2).
_C = 0.3 / np.pi**2


def _exact_map(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x(xi) and det(I + H phi)(xi) for the potential above."""
    s1, s2 = np.sin(np.pi * xi[..., 0]), np.sin(np.pi * xi[..., 1])
    c1, c2 = np.cos(np.pi * xi[..., 0]), np.cos(np.pi * xi[..., 1])
    x = xi - _C * np.pi * np.stack([s1 * c2, c1 * s2], axis=-1)
    k = _C * np.pi**2
    return x, (1.0 - k * c1 * c2) ** 2 - (k * s1 * s2) ** 2


def _exact_monitor(x: np.ndarray) -> np.ndarray:
    """M(x) = 1 / det(I + H)(xi(x)): the potential equidistributes it with theta = 1. The map is
    inverted by Newton's method (its Jacobian I + H is SPD, eigenvalues >= 0.4)."""
    xi = x.copy()
    k = _C * np.pi**2
    for _ in range(30):
        fx, _ = _exact_map(xi)
        s1, s2 = np.sin(np.pi * xi[..., 0]), np.sin(np.pi * xi[..., 1])
        c1, c2 = np.cos(np.pi * xi[..., 0]), np.cos(np.pi * xi[..., 1])
        a, b, c = 1.0 - k * c1 * c2, 1.0 - k * c1 * c2, k * s1 * s2
        r = fx - x
        det = a * b - c * c
        step = np.stack([b * r[..., 0] - c * r[..., 1], a * r[..., 1] - c * r[..., 0]], axis=-1)
        xi = xi - step / det[..., None]
    return 1.0 / _exact_map(xi)[1]


def _exact_phi(n: int) -> np.ndarray:
    xi = _uniform(n)
    return _C * np.cos(np.pi * xi[..., 0]) * np.cos(np.pi * xi[..., 1])


# Separable and 1-periodic: x_k = xi_k + a sin(2 pi xi_k) / (2 pi), det = prod (1 + a cos 2 pi xi_k).
_A = 0.5


def _periodic_phi(n: int) -> np.ndarray:
    xi = _uniform(n)
    return -_A * (np.cos(2 * np.pi * xi[..., 0]) + np.cos(2 * np.pi * xi[..., 1])) / (4 * np.pi**2)


def _periodic_monitor(x: np.ndarray) -> np.ndarray:
    xi = x.copy()
    for _ in range(40):  # scalar Newton per coordinate; 1 + a cos >= 0.5
        xi = xi - (xi + _A * np.sin(2 * np.pi * xi) / (2 * np.pi) - x) / (1 + _A * np.cos(2 * np.pi * xi))
    return 1.0 / np.prod(1 + _A * np.cos(2 * np.pi * xi), axis=-1)


# -- fronts with the gradient monitor of the reference: 1 + |grad f| / (beta mean |grad f|) -----------
def _front(kind: str, k: float = 40.0):
    if kind == "tanh":
        def s(p):
            return p[..., 0] - 0.5
    elif kind == "diagonal":
        def s(p):
            return (p[..., 0] + p[..., 1] - 1.0) / np.sqrt(2.0)
    else:
        def s(p):
            return np.hypot(p[..., 0] - 0.5, p[..., 1] - 0.5) - 0.25

    def f(p):
        return np.tanh(k * s(p))

    def grad_norm(p):  # |grad s| = 1 for all three, so |grad f| = k sech^2(k s)
        return k / np.cosh(k * s(p)) ** 2

    mean = grad_norm(_uniform(401)).mean()
    beta = 1.0

    def monitor(p):
        return 1.0 + grad_norm(p) / (beta * mean)

    return f, monitor


# -- tests -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("periodic", [False, True])
def test_constant_monitor_leaves_the_uniform_mesh(periodic):
    res = solve_monge_ampere(_constant, 17, periodic=periodic)
    assert isinstance(res, MongeAmpereResult)
    assert res.reason == "converged" and res.iterations == 0
    np.testing.assert_allclose(res.points, _uniform(17), atol=1e-14)
    assert np.abs(res.phi).max() < 1e-14 and res.theta == pytest.approx(3.0)
    assert res.min_jacobian == pytest.approx(1.0)


def test_discrete_residual_of_an_exact_map_is_second_order():
    errors = []
    for n in (17, 33, 65):
        phi = _exact_phi(n)
        x, _ = _exact_map(_uniform(n))
        assert np.abs(map_points(phi) - x).max() < 2.0 / (n - 1) ** 2  # the discrete map, O(h^2)
        errors.append(np.abs(monge_ampere_residual(phi, _exact_monitor)).max())
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] < 1e-3 and (rates > 1.8).all(), (errors, rates)


@pytest.mark.parametrize("periodic", [False, True])
def test_periodic_separable_map_residual_is_second_order(periodic):
    errors = [np.abs(monge_ampere_residual(_periodic_phi(n), _periodic_monitor, periodic=periodic)).max()
              for n in (17, 33, 65)]
    assert errors[0] / errors[1] > 3.5 and errors[1] / errors[2] > 3.5, errors


def test_solver_recovers_the_exact_map_to_second_order():
    errors = []
    for n in (17, 33):
        res = solve_monge_ampere(_exact_monitor, n, smooth=0, tol=1e-10)
        assert res.reason == "converged" and res.residual <= 1e-10
        errors.append(np.abs(res.points - _exact_map(_uniform(n))[0]).max())
    assert errors[0] / errors[1] > 3.0, errors
    assert all(np.diff(res.history) < 0)  # every accepted step lowers the residual


def test_boundary_nodes_slide_along_their_walls_and_corners_stay():
    def monitor(p):  # a bump touching the left wall pulls its nodes along it
        return 1.0 + 20.0 * np.exp(-100.0 * (p[..., 0] ** 2 + (p[..., 1] - 0.3) ** 2))

    n = 33
    res = solve_monge_ampere(monitor, n)
    x = res.points
    assert res.reason == "converged"
    assert (x[0, :, 0] == 0.0).all() and (x[-1, :, 0] == 1.0).all()
    assert (x[:, 0, 1] == 0.0).all() and (x[:, -1, 1] == 1.0).all()
    for corner in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        np.testing.assert_array_equal(x[corner], _uniform(n)[corner])
    slide = np.abs(x[0, :, 1] - np.linspace(0, 1, n)).max()
    assert slide > 0.1  # they did move, tangentially
    assert (np.diff(x[0, :, 1]) > 0).all() and (np.diff(x[:, 0, 0]) > 0).all()  # in order
    assert np.abs(monge_ampere_residual(res.phi, monitor, smooth=4)).max() < 1e-4


def test_periodic_mesh_is_periodic_and_equidistributes():
    def monitor(p):  # 1-periodic bump off the centre
        d = np.sin(np.pi * (p[..., 0] - 0.3)) ** 2 + np.sin(np.pi * (p[..., 1] - 0.6)) ** 2
        return 1.0 + 10.0 * np.exp(-40.0 * d)

    res = solve_monge_ampere(monitor, 17, periodic=True)
    assert res.reason == "converged"
    x = res.points
    np.testing.assert_allclose(x[-1], x[0] + [1.0, 0.0], atol=1e-14)
    np.testing.assert_allclose(x[:, -1], x[:, 0] + [0.0, 1.0], atol=1e-14)
    np.testing.assert_array_equal(res.phi[-1], res.phi[0])
    assert np.abs(x - _uniform(17)).max() > 0.05
    to_mesh(x).validate()  # untangled, seam cells included
    r = monge_ampere_residual(res.phi, monitor, periodic=True, smooth=4)
    assert np.sqrt(np.mean(r[:-1, :-1] ** 2)) <= 1e-6

    def f(p):  # a periodic front through the bump
        return np.tanh(5.0 * np.sin(2 * np.pi * (p[..., 0] - 0.3)))

    q = mesh_quality(x, f, monitor, bounds=((0, 1), (0, 1)))
    assert q["tangled"] == 0 and q["cv"] < 0.3 * mesh_quality(_uniform(17), f, monitor)["cv"]


@pytest.mark.parametrize("kind", ["tanh", "diagonal", "circle"])
def test_moved_mesh_cuts_the_interpolation_error_on_fronts(kind):
    # Measured at n = 33, smooth = 4, beta = 1: ratio 10.0 (tanh), 7.2 (diagonal), 3.5 (circle);
    # 5.8 / 4.8 / 1.9 without smoothing.
    f, monitor = _front(kind)
    n = 33
    res = solve_monge_ampere(monitor, n)
    assert res.reason == "converged"
    q = mesh_quality(res.points, f, monitor)
    u = mesh_quality(_uniform(n), f, monitor)
    assert q["tangled"] == 0
    assert q["uniform_interp_l2"] == pytest.approx(u["interp_l2"])
    assert q["uniform_interp_l2"] / q["interp_l2"] >= 2.5, q
    assert q["interp_linf"] < q["uniform_interp_linf"]
    assert q["cv"] < 0.3 * u["cv"]  # far closer to equidistributed than the uniform mesh
    assert q["volume_ratio"] > 5.0


def test_mesh_quality_on_the_uniform_mesh():
    f, _ = _front("tanh")
    q = mesh_quality(_uniform(9), f, _constant)
    assert q["tangled"] == 0 and q["volume_ratio"] == pytest.approx(1.0)
    assert q["cv"] == pytest.approx(0.0, abs=1e-12)
    assert q["interp_l2"] == q["uniform_interp_l2"] and q["interp_linf"] == q["uniform_interp_linf"]
    assert "cv" not in mesh_quality(_uniform(9), f)  # no monitor, no equidistribution measure
    # A Mesh with quads gives the same numbers: quads are split along the same diagonal.
    qq = mesh_quality(to_mesh(_uniform(9), "quad"), f, _constant)
    assert qq["interp_l2"] == pytest.approx(q["interp_l2"]) and qq["tangled"] == 0


def test_interpolation_error_is_second_order_for_a_smooth_function():
    def f(p):
        return np.sin(2 * p[..., 0]) * np.exp(p[..., 1])

    e = [mesh_quality(_uniform(n), f)["interp_l2"] for n in (9, 17, 33)]
    assert 3.7 < e[0] / e[1] < 4.3 and 3.8 < e[1] / e[2] < 4.2, e
    assert mesh_quality(_uniform(5), lambda p: p[..., 0] - 2 * p[..., 1])["interp_linf"] < 1e-14  # P1 exact


def test_swapped_nodes_are_counted_as_tangled_and_rejected():
    pts = _uniform(5).copy()
    pts[[2, 3], 2] = pts[[3, 2], 2]
    q = mesh_quality(pts, lambda p: p[..., 0])
    assert q["tangled"] > 0
    with pytest.raises(InvalidMeshError, match="inverted"):
        to_mesh(pts)
    report = to_mesh(pts, check=False).validate(raise_on_error=False)
    assert not report.ok and len(report.inverted["triangle"]) == q["tangled"]
    quads = to_mesh(pts, "quad", check=False)
    assert mesh_quality(quads, lambda p: p[..., 0])["tangled"] > 0


def test_to_mesh_matches_mesh_from_grid():
    mesh = to_mesh(_uniform(6))
    ref = Mesh.from_grid(Grid(6, ndim=2))
    np.testing.assert_array_equal(mesh.cells["triangle"], ref.cells["triangle"])
    np.testing.assert_allclose(mesh.points, ref.points)
    for tag in ("xmin", "xmax", "ymin", "ymax"):
        np.testing.assert_array_equal(mesh.tag_nodes(tag), ref.tag_nodes(tag))
    quads = to_mesh(_uniform(6), "quad")
    assert quads.n_cells == 25 and quads.validate().ok


def test_warm_start_and_grid_argument():
    f, monitor = _front("tanh")
    res = solve_monge_ampere(monitor, Grid(17, ndim=2))
    again = solve_monge_ampere(monitor, 17, phi0=res.phi)
    assert again.reason == "converged" and again.iterations == 0
    assert solve_monge_ampere(monitor, 17, max_iter=0).reason == "max_iter"


def test_unresolvable_monitor_never_returns_a_tangled_mesh():
    def spike(p):  # narrower than a cell and unsmoothed: the discrete problem is out of reach
        return 1.0 + 1e3 * np.exp(-2000.0 * ((p - 0.5) ** 2).sum(-1))

    res = solve_monge_ampere(spike, 17, smooth=0, max_iter=30)
    assert res.reason in ("stalled", "max_iter") and res.residual > 1e-6
    assert res.min_jacobian > 0 and to_mesh(res.points).validate().ok
    assert mesh_quality(res.points, lambda p: p[..., 0])["tangled"] == 0
    assert solve_monge_ampere(spike, 17, smooth=4).reason == "converged"  # smoothing makes it solvable


def _nan(p):
    out = np.ones(p.shape[:-1])
    out[0, 0] = np.nan
    return out


@pytest.mark.parametrize("monitor, error, match", [
    (lambda p: -np.ones(p.shape[:-1]), ConfigError, "positive"),
    (lambda p: np.zeros(p.shape[:-1]), ConfigError, "positive"),
    (_nan, NonFiniteError, "NaN"),
    (lambda p: np.ones(p.shape[0]), ShapeError, "expected shape"),
    (lambda p: 1.0, ShapeError, "expected shape"),
    ("not callable", ConfigError, "callable"),
])
def test_bad_monitors_raise(monitor, error, match):
    with pytest.raises(error, match=match):
        solve_monge_ampere(monitor, 9)


@pytest.mark.parametrize("kwargs, error", [
    ({"n": 2}, ConfigError),
    ({"n": "9"}, ConfigError),
    ({"n": 3, "periodic": True}, ConfigError),
    ({"n": Grid((9, 9), bounds=[(0, 2), (0, 1)])}, ConfigError),
    ({"tol": 0.0}, ConfigError),
    ({"max_iter": -1}, ConfigError),
    ({"smooth": -1}, ConfigError),
    ({"periodic": "yes"}, ConfigError),
    ({"phi0": np.zeros((8, 8))}, ShapeError),
    ({"phi0": np.full((9, 9), np.nan)}, NonFiniteError),
    ({"phi0": -0.2 * np.cos(np.pi * _uniform(9)[..., 0])}, InvalidMeshError),  # folds x over
])
def test_bad_settings_raise(kwargs, error):
    kwargs = {"n": 9, **kwargs}
    with pytest.raises(error):
        solve_monge_ampere(_constant, **kwargs)


def test_bad_quality_and_mesh_inputs_raise():
    with pytest.raises(ShapeError):
        mesh_quality(np.zeros((5, 5, 3)), lambda p: p[..., 0])
    with pytest.raises(NonFiniteError):
        mesh_quality(_uniform(5), lambda p: np.full(p.shape[:-1], np.nan))
    with pytest.raises(ShapeError):
        mesh_quality(_uniform(5), lambda p: p)
    with pytest.raises(ConfigError, match="positive"):
        mesh_quality(_uniform(5), lambda p: p[..., 0], monitor=lambda p: p[..., 0] - 0.5)
    with pytest.raises(ConfigError):
        mesh_quality(_uniform(5), "f")
    with pytest.raises(ShapeError):
        mesh_quality(_uniform(5), lambda p: p[..., 0], bounds=(0, 1))
    with pytest.raises(ConfigError):
        mesh_quality(_uniform(5), lambda p: p[..., 0], bounds=((1, 0), (0, 1)))
    with pytest.raises(ConfigError):
        to_mesh(_uniform(5), "tetra")
    with pytest.raises(ShapeError):
        to_mesh(np.zeros((5, 2)))
    with pytest.raises(ShapeError):
        monge_ampere_residual(np.zeros((5, 4)), _constant)
