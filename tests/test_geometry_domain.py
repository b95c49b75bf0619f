"""Domain: construction checks, point queries, seeded (quasi-)random sampling, approximate distance."""

from __future__ import annotations

import numpy as np
import pytest

from sciml.errors import ConfigError, NonFiniteError, ShapeError, UnknownNameError
from sciml.geometry import SAMPLING_METHODS, Domain


@pytest.fixture(scope="module")
def plate() -> Domain:
    """Unit square with a hole of radius 0.25 in the middle."""
    return Domain.rectangle([0, 0], [1, 1]) - Domain.disk([0.5, 0.5], 0.25)


@pytest.fixture(scope="module")
def lshape() -> Domain:
    return Domain.polygon([[-1, -1], [0, -1], [0, 0], [1, 0], [1, 1], [-1, 1]])


def test_constructors_check_their_inputs():
    with pytest.raises(ConfigError, match="lo < hi"):
        Domain.rectangle([0, 0], [1, 0])
    with pytest.raises(ShapeError):
        Domain.rectangle([0, 0, 0], [1, 1, 1])
    with pytest.raises(ShapeError):
        Domain.box([0, 0], [1, 1])
    with pytest.raises(ConfigError, match="radius"):
        Domain.disk([0, 0], -1.0)
    with pytest.raises(NonFiniteError):
        Domain.disk([0, np.nan], 1.0)
    with pytest.raises(ConfigError, match="intersect"):  # a bow tie is not a simple polygon
        Domain.polygon([[0, 0], [1, 1], [1, 0], [0, 1]])
    with pytest.raises(ConfigError, match="at least 3"):
        Domain.polygon([[0, 0], [1, 1]])
    with pytest.raises(ConfigError, match="coincide"):
        Domain.polygon([[0, 0], [1, 0], [1, 0], [0, 1]])
    with pytest.raises(ConfigError, match="2-D and a 3-D"):
        _ = Domain.disk([0, 0], 1) | Domain.ball([0, 0, 0], 1)
    with pytest.raises(ConfigError, match="empty"):
        _ = Domain.disk([0, 0], 1) & Domain.disk([5, 5], 1)
    with pytest.raises(TypeError):
        _ = Domain.disk([0, 0], 1) | 3


def test_bbox_ndim_and_repr(plate):
    assert plate.ndim == 2
    np.testing.assert_array_equal(plate.bbox, [[0, 0], [1, 1]])
    both = Domain.disk([0, 0], 1) | Domain.rectangle([0.5, -2], [3, 0])
    np.testing.assert_array_equal(both.bbox, [[-1, -2], [3, 1]])
    assert "disk" in repr(plate) and "rectangle" in repr(plate) and " - " in repr(plate)
    assert Domain.interval(-1, 2).ndim == 1 and Domain.box([0, 0, 0], [1, 2, 3]).ndim == 3


def test_point_queries_and_normals_on_a_plate_with_a_hole(plate):
    x = np.array([
        [0.1, 0.1],    # inside
        [0.5, 0.5],    # in the hole (and its centre: deepxde's own Disk normal is NaN there)
        [1.0, 0.4],    # right edge
        [0.75, 0.5],   # on the hole, rightmost point
        [0.5, 0.25],   # on the hole, lowest point
        [1.0, 1.0],    # corner
        [1.5, 0.5],    # outside
    ])
    np.testing.assert_array_equal(plate.inside(x), [True, False, True, True, True, True, False])
    np.testing.assert_array_equal(plate.on_boundary(x), [False, False, True, True, True, True, False])
    n = plate.boundary_normal(x)
    expected = [[0, 0], [0, 0], [1, 0], [-1, 0], [0, 1], [2**-0.5, 2**-0.5], [0, 0]]
    np.testing.assert_allclose(n, expected, atol=1e-12)


def test_queries_check_points(plate):
    with pytest.raises(ShapeError):
        plate.inside(np.zeros((4, 3)))
    with pytest.raises(ShapeError):
        plate.inside(np.zeros(2))
    with pytest.raises(NonFiniteError):
        plate.on_boundary(np.array([[0.1, np.nan]]))
    torch = pytest.importorskip("torch")
    assert plate.inside(torch.tensor([[0.1, 0.1]])).tolist() == [True]


def test_polygon_queries_either_orientation_and_triangles(lshape):
    x = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.0], [0.0, -0.5], [-1.0, 0.3], [0.0, 0.0]])
    np.testing.assert_array_equal(lshape.inside(x), [True, False, True, True, True, True])
    n = lshape.boundary_normal(x)
    np.testing.assert_allclose(n[2:5], [[0, -1], [1, 0], [-1, 0]], atol=1e-12)
    # The re-entrant corner averages the two edge normals.
    np.testing.assert_allclose(n[5], [2**-0.5, -(2**-0.5)], atol=1e-12)
    clockwise = Domain.polygon([[-1, -1], [0, -1], [0, 0], [1, 0], [1, 1], [-1, 1]][::-1])
    np.testing.assert_allclose(clockwise.boundary_normal(x), n, atol=1e-12)
    tri = Domain.polygon([[0, 0], [1, 0], [0, 1]])  # deepxde's Polygon refuses triangles
    np.testing.assert_allclose(tri.boundary_normal(np.array([[0.5, 0.5]])), [[2**-0.5, 2**-0.5]], atol=1e-12)
    # A normal query whose first point is off the boundary must still return float normals.
    np.testing.assert_allclose(tri.boundary_normal(np.array([[0.1, 0.1], [0.5, 0.5]]))[1], [2**-0.5] * 2)


@pytest.mark.parametrize("method", SAMPLING_METHODS)
def test_interior_sampling_is_seeded_and_inside(plate, method):
    a = plate.sample_interior(500, method=method, seed=3)
    b = plate.sample_interior(500, method=method, seed=3)
    c = plate.sample_interior(500, method=method, seed=4)
    assert a.shape == (500, 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert np.allclose(a, c) if method == "hammersley" else not np.allclose(a, c)  # a fixed set: no seed
    assert plate.inside(a).all()
    assert np.all(np.linalg.norm(a - 0.5, axis=1) >= 0.25)


@pytest.mark.parametrize("method", SAMPLING_METHODS)
def test_boundary_sampling_is_seeded_on_boundary_and_uniform_by_length(plate, method):
    x = plate.sample_boundary(4000, method=method, seed=0)
    assert x.shape == (4000, 2)
    np.testing.assert_array_equal(x, plate.sample_boundary(4000, method=method, seed=0))
    assert plate.on_boundary(x).all()
    on_hole = np.isclose(np.linalg.norm(x - 0.5, axis=1), 0.25)
    hole = 2 * np.pi * 0.25
    assert abs(on_hole.mean() - hole / (4 + hole)) < 0.02
    # Every side of the square gets its share too.
    right = np.isclose(x[:, 0], 1.0)
    assert abs(right.mean() - 1 / (4 + hole)) < 0.02


def test_quasi_random_points_are_better_spread_than_random():
    from scipy.stats import qmc

    square = Domain.rectangle([0, 0], [1, 1])
    disc = {m: qmc.discrepancy(square.sample_interior(1024, method=m, seed=0)) for m in SAMPLING_METHODS}
    assert disc["sobol"] < 0.2 * disc["uniform"] and disc["halton"] < 0.2 * disc["uniform"]
    assert disc["lhs"] < disc["uniform"] and disc["hammersley"] < 0.2 * disc["uniform"]
    # Rejection keeps a prefix of one Sobol sequence: the disk's mean r^2 (exactly 1/2 for area-
    # uniform points) comes out much closer than with i.i.d. points.
    disk = Domain.disk([0, 0], 1)
    err = {m: abs(np.mean(np.sum(disk.sample_interior(2048, m, seed=1) ** 2, axis=1)) - 0.5)
           for m in ("uniform", "sobol")}
    assert err["sobol"] < 2e-3 and err["sobol"] < err["uniform"]


def test_sampling_checks_arguments_and_leaves_global_state_alone(plate):
    with pytest.raises(UnknownNameError, match="sobol"):
        plate.sample_interior(10, method="grid")
    with pytest.raises(ConfigError):
        plate.sample_interior(0)
    with pytest.raises(ConfigError, match="seed"):
        plate.sample_boundary(10, seed=-1)
    state = np.random.get_state()[1].copy()  # noqa: NPY002 - checking the legacy global state is untouched
    plate.sample_interior(100, seed=0)
    plate.sample_boundary(100, seed=0)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    import deepxde

    assert deepxde.config.real.precision == 32  # switched to float64 only during our calls
    rng = np.random.default_rng(7)
    first, second = plate.sample_interior(50, seed=rng), plate.sample_interior(50, seed=rng)
    assert not np.allclose(first, second)  # a Generator is consumed, not re-seeded


def test_interval_box_ball_and_union():
    line = Domain.interval(-1, 2)
    ends = line.sample_boundary(1000, method="sobol", seed=0)
    assert set(np.unique(ends)) == {-1.0, 2.0} and abs(np.mean(ends == -1.0) - 0.5) < 0.02
    np.testing.assert_allclose(line.boundary_normal(np.array([[-1.0], [0.5], [2.0]])), [[-1], [0], [1]])
    box = Domain.box([0, 0, 0], [1, 2, 3])
    faces = box.sample_boundary(6000, method="halton", seed=0)
    assert box.on_boundary(faces).all()
    on_z = np.isclose(faces[:, 2], 0) | np.isclose(faces[:, 2], 3)
    assert abs(on_z.mean() - 4 / 22) < 0.02  # faces 1x2 over a total area of 22
    np.testing.assert_allclose(box.boundary_normal(np.array([[0.5, 1.0, 3.0]])), [[0, 0, 1]])
    ball = Domain.ball([1, 0, 0], 2)
    surf = ball.sample_boundary(2000, seed=0)
    np.testing.assert_allclose(np.linalg.norm(surf - [1, 0, 0], axis=1), 2.0)
    assert abs(np.mean(surf[:, 2] > 0) - 0.5) < 0.03
    two = Domain.interval(0, 1) | Domain.interval(0.5, 3)
    assert set(np.unique(two.sample_boundary(100, seed=0))) == {0.0, 3.0}


def _fd_gradient(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for k in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[k] = h
        grad[:, k] = (f(x + e) - f(x - e)) / (2 * h)
    return grad


@pytest.mark.parametrize("name", ["plate", "lshape", "disk", "box"])
def test_distance_vanishes_on_the_boundary_and_is_normalised(name, plate, lshape):
    domain = {"plate": plate, "lshape": lshape, "disk": Domain.disk([0.3, -0.2], 1.5),
              "box": Domain.box([0, 0, 0], [1, 2, 1])}[name]
    b = domain.sample_boundary(400, seed=0)
    assert np.abs(domain.distance(b)).max() < 1e-12
    # Away from corners and box edges, |grad phi| = 1 and grad phi is the inward normal.
    lo, hi = domain.bbox
    near_bounds = (np.abs(b - lo) < 0.05) | (np.abs(b - hi) < 0.05)
    smooth = near_bounds.sum(axis=1) < 2
    if name == "lshape":
        vertices = np.array([[-1, -1], [0, -1], [0, 0], [1, 0], [1, 1], [-1, 1]])
        smooth &= np.linalg.norm(b[:, None] - vertices[None], axis=-1).min(axis=1) > 0.05
    assert smooth.sum() > 300
    edge = b[smooth]
    grad = _fd_gradient(domain.distance, edge)
    np.testing.assert_allclose(np.linalg.norm(grad, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(grad, -domain.boundary_normal(edge), atol=1e-4)
    # The sign tells inside from outside.
    pts = lo - 0.2 + np.random.default_rng(0).random((2000, domain.ndim)) * (hi - lo + 0.4)
    phi = domain.distance(pts)
    clear = np.abs(phi) > 1e-6
    np.testing.assert_array_equal(phi[clear] > 0, domain.inside(pts)[clear])


def test_distance_on_torch_is_differentiable(plate):
    torch = pytest.importorskip("torch")
    x = plate.sample_interior(64, seed=0)
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    phi = plate.distance(t)
    assert isinstance(phi, torch.Tensor) and phi.shape == (64,)
    (grad,) = torch.autograd.grad(phi.sum(), t)
    np.testing.assert_allclose(phi.detach().numpy(), plate.distance(x), rtol=1e-12)
    np.testing.assert_allclose(grad.numpy(), _fd_gradient(plate.distance, x), atol=1e-6)
    assert (phi > 0).all()
    with pytest.raises(ShapeError):
        plate.distance(torch.zeros(3, 3))


def test_to_deepxde_is_float64(plate):
    geom = plate.to_deepxde()
    assert geom is plate.to_deepxde()  # built once
    assert np.asarray(geom.bbox[0]).dtype == np.float64
    assert type(geom).__module__.startswith("deepxde")


def test_a_used_domain_pickles(plate):
    import pickle

    plate.inside(np.array([[0.1, 0.1]]))  # builds the deepxde object (classes made at run time)
    clone = pickle.loads(pickle.dumps(plate))
    x = plate.sample_interior(200, method="halton", seed=5)
    np.testing.assert_array_equal(clone.sample_interior(200, method="halton", seed=5), x)
    np.testing.assert_array_equal(clone.on_boundary(x), plate.on_boundary(x))


# -- the smooth distance of hard constraints -------------------------------------------------------
def _smooth_domains(plate, lshape):
    return {
        "box": Domain.rectangle([0, -1], [2, 1]),
        "disk": Domain.disk([0.3, -0.2], 1.5),
        "lshape": lshape,
        "lshape_csg": Domain.rectangle([-1, -1], [1, 1]) - Domain.rectangle([0, -1], [1, 0]),
        "plate": plate,
        "square_hole": Domain.rectangle([0, 0], [1, 1]) - Domain.rectangle([0.4, 0.4], [0.6, 0.6]),
        "union": Domain.disk([0, 0], 1) | Domain.disk([1, 0], 1),
        "interval": Domain.interval(-1, 2),
        "cube": Domain.box([0, 0, 0], [1, 2, 1]),
    }


@pytest.mark.parametrize("name", ["box", "disk", "lshape", "lshape_csg", "plate", "square_hole", "union",
                                  "interval", "cube"])
def test_smooth_distance_vanishes_on_the_boundary_is_positive_inside_and_has_its_scale(name, plate, lshape):
    domain = _smooth_domains(plate, lshape)[name]
    b = domain.sample_boundary(400, seed=0)
    assert np.abs(domain.smooth_distance(b)).max() < 1e-12
    inside = domain.sample_interior(4000, seed=1)
    inside = inside[~domain.on_boundary(inside)]
    phi = domain.smooth_distance(inside)
    assert phi.dtype == np.float64 and (phi > 0).all()
    # maximum (w / 4)^min(d, 2), w the smallest width of the bounding box (exact for boxes, balls and
    # intervals; up to the sampling of the maximum for polygons and CSG trees)
    lo, hi = domain.bbox
    expected = (np.min(hi - lo) / 4) ** min(domain.ndim, 2)
    assert 0.97 * expected < phi.max() < 1.03 * expected


def test_smooth_distance_of_a_box_is_the_scaled_product():
    unit = Domain.rectangle([0, 0], [1, 1])  # exactly DeepXDE's hand-written x (1 - x) y (1 - y)
    x = unit.sample_interior(50, seed=0)
    np.testing.assert_allclose(unit.smooth_distance(x), np.prod(x * (1 - x), axis=1), rtol=1e-13)
    box = Domain.rectangle([0, -1], [4, 1])  # max-1 product times (2 / 4)^2
    x = box.sample_interior(50, seed=0)
    expected = x[:, 0] * (4 - x[:, 0]) / 4 * (x[:, 1] + 1) * (1 - x[:, 1]) / 4
    np.testing.assert_allclose(box.smooth_distance(x), expected, rtol=1e-13)
    disk = Domain.disk([1, 1], 2)
    np.testing.assert_allclose(disk.smooth_distance(np.array([[1.0, 1.0], [2.0, 1.0]])), [1.0, 0.75])
    interval = Domain.interval(0, 2)  # 1-D: (x - a)(b - x) / (b - a), unit slope at the ends
    np.testing.assert_allclose(interval.smooth_distance(np.array([[0.5], [1.0]])), [0.375, 0.5])
    # a 10-D hypercube keeps the two-dimensional scale instead of 4^-10
    cube = Domain.hypercube([0] * 10, [1] * 10)
    assert cube.smooth_distance(np.full((1, 10), 0.5))[0] == pytest.approx(1 / 16)


def test_a_square_polygon_gets_the_scale_of_the_box():
    square = Domain.polygon([[0, 0], [1, 0], [1, 1], [0, 1]])
    phi = square.smooth_distance(square.sample_interior(2000, seed=3))
    assert phi.max() == pytest.approx(1 / 16, rel=0.03)


def test_smooth_distance_is_second_order_at_convex_corners_and_first_order_at_reentrant_ones(lshape):
    """At a convex corner phi ~ x y (a smooth solution's order there), at the re-entrant one phi ~ r."""
    corner, reentrant = np.array([-1.0, -1.0]), np.array([0.0, 0.0])
    for r in (1e-2, 1e-3):
        near = corner + r * np.array([[1.0, 1.0]])  # along the bisector of the convex corner
        near_re = reentrant + r * np.array([[-1.0, 1.0]]) / np.sqrt(2)  # into the upper-left quadrant
        ratio = lshape.smooth_distance(near)[0] / r**2
        ratio_re = lshape.smooth_distance(near_re)[0] / r
        if r == 1e-2:
            first, first_re = ratio, ratio_re
    assert ratio == pytest.approx(first, rel=0.05) and ratio_re == pytest.approx(first_re, rel=0.05)


def test_smooth_distance_on_torch_is_differentiable_with_finite_derivatives_on_the_boundary(lshape):
    torch = pytest.importorskip("torch")
    csg = Domain.rectangle([-1, -1], [1, 1]) - Domain.rectangle([0, -1], [1, 0])
    for domain in (lshape, csg):
        x = np.concatenate([domain.sample_interior(64, seed=0), domain.sample_boundary(32, seed=0)])
        for dtype in (torch.float32, torch.float64):
            t = torch.tensor(x, dtype=dtype, requires_grad=True)
            phi = domain.smooth_distance(t)
            assert phi.dtype == dtype and phi.shape == (96,)
            (grad,) = torch.autograd.grad(phi.sum(), t, create_graph=True)
            (second,) = torch.autograd.grad(grad[:, 0].sum(), t)
            assert torch.isfinite(grad).all() and torch.isfinite(second).all()
        t = torch.tensor(x[:64], dtype=torch.float64, requires_grad=True)
        np.testing.assert_allclose(domain.smooth_distance(t).detach().numpy(), domain.smooth_distance(x[:64]),
                                   rtol=1e-12)
        (grad,) = torch.autograd.grad(domain.smooth_distance(t).sum(), t)
        np.testing.assert_allclose(grad.numpy(), _fd_gradient(domain.smooth_distance, x[:64]), atol=1e-5)
    with pytest.raises(ShapeError):
        lshape.smooth_distance(torch.zeros(3, 3))
