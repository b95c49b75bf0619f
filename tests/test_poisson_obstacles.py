"""Pressure-Poisson systems past obstacles (problems/poisson_obstacles.py) and Lanczos
(sciml.linalg.lanczos)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, eigsh, spsolve

import sciml
from sciml.errors import ConfigError, NonFiniteError, NotSPDError, ShapeError, UnknownNameError
from sciml.fields import Grid
from sciml.linalg.lanczos import lanczos, ritz_pairs, training_rhs
from sciml.spaces import space_from_dict

PROBLEM = sciml.load_problem("poisson_obstacles")
po = sys.modules[PROBLEM.reference.__module__]  # the problem file's module (obstacle_system, rhs, ...)


def _dirichlet_1d(n: int) -> sp.csr_matrix:
    """tridiag(-1, 2, -1): the ghost cell beyond each end adds 1 to the end cells' single neighbour."""
    return sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")


def _kron_sum(shape: tuple[int, ...]) -> np.ndarray:
    """The Dirichlet Laplacian on a full box as a Kronecker sum (axis 0 slowest, C order)."""
    total = sp.csr_matrix((int(np.prod(shape)),) * 2)
    for axis, n in enumerate(shape):
        factors = [sp.identity(m, format="csr") for m in shape]
        factors[axis] = _dirichlet_1d(n)
        term = factors[0]
        for f in factors[1:]:
            term = sp.kron(term, f, format="csr")
        total = total + term
    return total.toarray()


def _layouts(n: int, grid: Grid, seed: int) -> np.ndarray:
    return po.ObstacleLayout().sample(n, grid, seed) > 0.5


# -- the matrix -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(12, 12), (7, 7, 7)])
def test_system_is_spd_on_random_layouts(shape):
    grid = Grid(shape[0], ndim=len(shape))
    for solid in _layouts(3, grid, seed=len(shape)):
        A, mask = po.obstacle_system(solid)
        assert isinstance(A, sp.csr_matrix) and A.dtype == np.float64
        assert A.shape == (int(mask.sum()),) * 2 and mask.shape == shape and mask.dtype == bool
        dense = A.toarray()
        assert np.array_equal(dense, dense.T)
        np.linalg.cholesky(dense)  # raises LinAlgError unless positive definite
        assert not (mask & solid).any()  # fluid unknowns only


@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 5)])
def test_no_obstacles_gives_the_dirichlet_laplacian(shape):
    A, mask = po.obstacle_system(np.zeros(shape, dtype=bool))
    assert mask.all()
    np.testing.assert_array_equal(A.toarray(), _kron_sum(shape))


def test_enclosed_pocket_is_filled_and_the_mask_shrinks():
    solid = np.zeros((8, 8), dtype=bool)
    solid[2:6, 2:6] = True
    solid[3:5, 3:5] = False  # a 2 x 2 fluid pocket behind a closed solid ring
    A, mask = po.obstacle_system(solid)
    assert not mask[3:5, 3:5].any() and mask.sum() == 64 - 16 and A.shape == (48, 48)
    # a pocket joined to the outside only through a corner is still a pocket (face connectivity)
    corner = np.zeros((7, 7), dtype=bool)
    corner[1:4, 1:4] = True
    corner[2, 2] = False  # enclosed by faces ...
    corner[1, 1] = False  # ... next to a fluid cell that reaches the outside, but only diagonally
    _, mask = po.obstacle_system(corner)
    assert mask[1, 1] and not mask[2, 2] and mask.sum() == 49 - 8
    # 3-D: a hollow cube
    cube = np.zeros((6, 6, 6), dtype=bool)
    cube[1:5, 1:5, 1:5] = True
    cube[2:4, 2:4, 2:4] = False
    A, mask = po.obstacle_system(cube)
    assert mask.sum() == 216 - 64
    np.linalg.cholesky(A.toarray())


def test_obstacle_faces_carry_no_coupling():
    solid = np.zeros((5, 5), dtype=bool)
    solid[2, 3] = True
    solid[0, 1] = True
    A, mask = po.obstacle_system(solid)
    index = np.full(mask.shape, -1)
    index[mask] = np.arange(mask.sum())
    diag = A.diagonal()
    assert diag[index[2, 2]] == 3  # three fluid neighbours, the fourth face is solid
    assert diag[index[1, 3]] == 3  # fluid above/left/right, solid below
    assert diag[index[0, 0]] == 1 + 2  # one fluid neighbour (1, 0), two wall faces, solid (0, 1)
    assert diag[index[0, 3]] == 3 + 1
    # fluid-fluid couplings cancel in a row sum: what is left is the number of wall faces
    walls = np.zeros(mask.shape)
    for axis in range(2):
        for end in (0, -1):
            walls[tuple(end if a == axis else slice(None) for a in range(2))] += 1
    np.testing.assert_array_equal(np.asarray(A.sum(axis=1)).ravel(), walls[mask])
    assert A[index[2, 2], index[1, 2]] == -1 and A[index[2, 2], index[2, 1]] == -1


def test_mask_numbering_round_trips():
    solid = _layouts(1, Grid(10, ndim=2), seed=3)[0]
    A, mask = po.obstacle_system(solid)
    x = np.random.default_rng(0).standard_normal(mask.sum())
    field = po.to_grid(x, mask)
    assert np.all(field[~mask] == 0) and np.array_equal(po.from_grid(field, mask), x)
    # C order: unknown k is the k-th fluid cell of the flattened grid
    np.testing.assert_array_equal(field.ravel()[np.flatnonzero(mask.ravel())], x)
    with pytest.raises(ShapeError, match="expected shape"):
        po.to_grid(x[:-1], mask)
    with pytest.raises(ShapeError):
        po.from_grid(field[:-1], mask)


def test_bad_layouts_are_refused():
    with pytest.raises(ConfigError, match="none"):
        po.obstacle_system(np.ones((4, 4), dtype=bool))
    with pytest.raises(ShapeError, match="2-D or 3-D"):
        po.obstacle_system(np.zeros(5, dtype=bool))
    with pytest.raises(ConfigError, match="0/1"):
        po.obstacle_system(np.full((4, 4), 0.5))
    A, mask = po.obstacle_system(np.eye(4))  # 0/1 floats are accepted
    assert mask.sum() == 12


# -- right-hand sides -------------------------------------------------------------------------------
def test_rhs_families_have_the_fluid_size():
    A, mask = po.obstacle_system(_layouts(1, Grid(16, ndim=2), seed=1)[0])
    n = int(mask.sum())
    for kind in ("white", "range", "smoke"):
        b = po.rhs(kind, mask, np.random.default_rng(0))
        assert b.shape == (n,) and b.dtype == np.float64 and np.isfinite(b).all() and np.any(b)
    g = np.random.default_rng(5)
    np.testing.assert_allclose(po.rhs("range", mask, np.random.default_rng(5), A=A), A @ g.standard_normal(n))
    with pytest.raises(UnknownNameError, match="smoke"):
        po.rhs("pink", mask, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="boolean"):
        po.rhs("white", mask.astype(float), np.random.default_rng(0))


@pytest.mark.parametrize("shape", [(24, 24), (10, 10, 10)])
def test_smoke_rhs_is_the_projection_divergence(shape):
    grid = Grid(shape[0], ndim=len(shape))
    layouts = _layouts(2, grid, seed=11)
    masks = [po.obstacle_system(s)[1] for s in layouts]
    b = [po.to_grid(po.rhs("smoke", m, np.random.default_rng(0)), m) for m in masks]
    for field, mask in zip(b, masks):
        assert np.isfinite(field).all() and np.all(field[~mask] == 0) and np.any(field[mask])
    assert not np.allclose(b[0], b[1])  # same random flow, other obstacles: other divergence
    # solving A p = b and subtracting the pressure gradient makes every fluid cell divergence-free,
    # which checks the signs and the scaling of A and b against each other
    A, mask = po.obstacle_system(layouts[0])
    faces = po.smoke_velocity(mask, np.random.default_rng(0))
    np.testing.assert_allclose(-sum(np.diff(f, axis=a) for a, f in enumerate(faces))[mask], b[0][mask])
    p = po.to_grid(spsolve(A.tocsc(), b[0][mask]), mask)
    divergence = 0.0
    for axis, f in enumerate(faces):
        pad = [(0, 0)] * len(shape)
        pad[axis] = (1, 1)  # p = 0 in the ghost cells beyond the walls
        gradient = np.diff(np.pad(p, pad), axis=axis)
        divergence = divergence + np.diff((f - gradient) * po._open_faces(mask, axis), axis=axis)
    assert np.abs(divergence[mask]).max() < 1e-10 * np.abs(b[0]).max()


# -- the layout space -------------------------------------------------------------------------------
def test_layout_space_draws_valid_prefix_stable_layouts():
    space = po.ObstacleLayout()
    assert space_from_dict(space.to_dict()).params() == space.params()
    for grid in (Grid(32, ndim=2), Grid(12, ndim=3)):
        draws = space.sample(6, grid, 7)
        assert draws.shape == (6, *grid.shape) and set(np.unique(draws)) <= {0.0, 1.0}
        np.testing.assert_array_equal(space.sample(2, grid, 7), draws[:2])
        for d in draws > 0.5:
            assert d.any() and not d.all()
            np.testing.assert_array_equal(po.fill_pockets(d), d)  # pockets already filled
            for axis in range(grid.ndim):  # the wall ring stays fluid
                assert not np.take(d, 0, axis=axis).any() and not np.take(d, -1, axis=axis).any()
    with pytest.raises(ConfigError, match="wall_gap"):
        po.ObstacleLayout(wall_gap=0)
    with pytest.raises(ConfigError, match="min_obstacles <= max_obstacles"):
        po.ObstacleLayout(max_obstacles=2, min_obstacles=3)


# -- the Problem ------------------------------------------------------------------------------------
def test_problem_loads_and_gives_systems_and_data():
    assert PROBLEM.name == "poisson_obstacles" and PROBLEM.grid.shape == (64, 64)
    assert PROBLEM.params["dim"] == 2 and PROBLEM.params["rhs"] == "smoke"
    grid = Grid(20, ndim=2)
    inputs = PROBLEM.sample_inputs(2, grid, seed=0)
    A, b = PROBLEM.system({"solid": inputs["solid"][0]}, grid, PROBLEM.params)
    assert A.shape == (b.size, b.size) and b.size == int((inputs["solid"][0] < 0.5).sum())
    A2, b2 = PROBLEM.system({"solid": inputs["solid"][:1]}, grid, PROBLEM.params)  # a batch of one
    np.testing.assert_array_equal(b, b2)
    p = PROBLEM.reference(inputs, grid, PROBLEM.params)["p"]
    assert p.shape == (2, *grid.shape)
    mask = inputs["solid"][0] < 0.5
    assert np.all(p[0][~mask] == 0)
    np.testing.assert_allclose(A @ p[0][mask], b, atol=1e-10 * np.abs(b).max())
    three = po.make_problem(dim=3, rhs="white")
    assert three.grid.ndim == 3 and three.params["rhs"] == "white"
    g3 = Grid(10, ndim=3)
    solid3 = three.sample_inputs(1, g3, seed=1)["solid"]
    A3, b3 = three.system({"solid": solid3[0]}, g3, three.params)
    assert A3.shape == (b3.size, b3.size)
    p3 = three.reference({"solid": solid3}, g3, three.params)["p"][0]  # AMG-CG in 3-D
    np.testing.assert_allclose(A3 @ p3[solid3[0] < 0.5], b3, atol=1e-10 * np.abs(b3).max())
    with pytest.raises(ShapeError):
        PROBLEM.system({"solid": np.zeros((5, 5))}, grid, PROBLEM.params)
    with pytest.raises(ConfigError, match="dim"):
        po.make_problem(dim=1)


# -- Lanczos ----------------------------------------------------------------------------------------
def test_lanczos_with_reorthogonalisation_matches_eigsh():
    A, _ = po.obstacle_system(np.zeros((20, 20), dtype=bool))  # 400 x 400
    rng = np.random.default_rng(0)
    alpha, beta, W = lanczos(A, A @ rng.standard_normal(400), 120)
    assert alpha.shape == (120,) and beta.shape == (119,) and W.shape == (400, 120)
    np.testing.assert_allclose(W.T @ W, np.eye(120), atol=1e-10, rtol=0)
    T = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    np.testing.assert_allclose(W.T @ (A @ W), T, atol=1e-10, rtol=0)
    theta = scipy.linalg.eigh_tridiagonal(alpha, beta, eigvals_only=True)
    low = eigsh(A, 1, sigma=0, which="LM", return_eigenvectors=False)[0]
    high = eigsh(A, 1, which="LA", return_eigenvectors=False)[0]
    assert abs(theta[0] - low) <= 1e-8 * low and abs(theta[-1] - high) <= 1e-8 * high


def test_plain_lanczos_grows_ghosts_that_reorthogonalisation_avoids():
    A, _ = po.obstacle_system(np.zeros((20, 20), dtype=bool))
    low = np.linalg.eigvalsh(A.toarray())[0]  # a simple eigenvalue
    counts = {}
    for flag in (True, False):
        rng = np.random.default_rng(1)
        values, _ = ritz_pairs(A, 300, rng, reorthogonalize=flag)
        counts[flag] = int(np.sum(np.abs(values - low) < 1e-8 * low))
    assert counts[True] == 1 and counts[False] > 1


def test_lanczos_stops_on_an_invariant_subspace_and_checks_arguments():
    A = sp.diags(np.repeat([1.0, 2.0, 3.0, 5.0, 8.0], 20))  # five distinct eigenvalues
    alpha, beta, W = lanczos(A, np.ones(100) + np.arange(100) / 100, 50)
    assert alpha.shape == (5,) and beta.shape == (4,) and W.shape == (100, 5)
    np.testing.assert_allclose(scipy.linalg.eigh_tridiagonal(alpha, beta, eigvals_only=True), [1, 2, 3, 5, 8])
    assert lanczos(A, np.ones(100), 500)[2].shape[1] <= 100  # m capped at n
    with pytest.raises(ShapeError):
        lanczos(A, np.ones(99), 5)
    with pytest.raises(NonFiniteError, match="zero"):
        lanczos(A, np.zeros(100), 5)
    with pytest.raises(ConfigError, match="positive integer"):
        lanczos(A, np.ones(100), 0)


def test_ritz_pairs_drop_the_null_space_and_refuse_indefinite_or_nonsymmetric():
    n = 60
    neumann = _dirichlet_1d(n).tolil()
    neumann[0, 0] = neumann[n - 1, n - 1] = 1.0  # pure Neumann: singular, constants in the null space
    values, vectors = ritz_pairs(neumann.tocsr(), n, np.random.default_rng(0))
    assert values.size == n - 1 and values[0] > 1e-3 and np.all(np.diff(values) >= 0)
    np.testing.assert_allclose(vectors.T @ np.ones(n), 0, atol=1e-10)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(neumann.toarray())[1:], rtol=1e-10)
    with pytest.raises(NotSPDError, match="indefinite"):
        ritz_pairs(sp.diags(np.linspace(-1.0, 2.0, 30)), 30, np.random.default_rng(0))
    with pytest.raises(NotSPDError, match="symmetric"):
        ritz_pairs(sp.csr_matrix(np.triu(np.ones((5, 5)))), 5, np.random.default_rng(0))
    skew = LinearOperator((5, 5), matvec=lambda x: np.triu(np.ones((5, 5))) @ x, dtype=np.float64)
    with pytest.raises(NotSPDError, match="symmetric operator"):
        ritz_pairs(skew, 5, np.random.default_rng(0))
    with pytest.raises(NotSPDError, match="symmetric"):
        ritz_pairs(np.triu(np.ones((5, 5))), 5, np.random.default_rng(0))


def test_training_rhs_are_unit_and_biased_to_low_modes():
    A, _ = po.obstacle_system(_layouts(1, Grid(32, ndim=2), seed=2)[0])
    rng = np.random.default_rng(0)
    B = training_rhs(A, 64, rng, m=100)
    assert B.shape == (64, A.shape[0]) and B.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(B, axis=1), 1.0, rtol=1e-12)
    white = rng.standard_normal(B.shape)
    white /= np.linalg.norm(white, axis=1, keepdims=True)

    def rayleigh(X: np.ndarray) -> float:
        return float(np.mean(np.einsum("ij,ij->i", X, (A @ X.T).T)))

    assert rayleigh(B) < 0.6 * rayleigh(white)
    # without the low-mode weight the bias disappears (Ritz values of both ends, equally weighted)
    flat = training_rhs(A, 64, rng, m=100, low_weight=1.0)
    assert rayleigh(B) < 0.6 * rayleigh(flat)
    ritz = ritz_pairs(A, 40, rng)
    assert training_rhs(A, 3, rng, ritz=ritz, cut=10).shape == (3, A.shape[0])
    with pytest.raises(ConfigError, match="n_rhs"):
        training_rhs(A, 0, rng, ritz=ritz)
