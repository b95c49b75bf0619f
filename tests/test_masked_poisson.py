"""The finite-difference Poisson solver on grid-aligned domains (the L-shape reference of the PINN examples)."""

import numpy as np
import pytest

from sciml.errors import ArgumentValueError, DTypeError, ShapeError
from sciml.fields import Grid
from sciml.geometry import Domain
from sciml.numerics import interior_mask, solve_poisson_masked

L_SHAPE = [[0, 0], [1, 0], [1, -1], [-1, -1], [-1, 1], [0, 1]]


def _exact(x, y):
    return np.sin(np.pi * x) * np.sin(np.pi * y) * np.exp(x)


def _source(x, y):  # -Laplace of _exact
    uxx = np.exp(x) * np.sin(np.pi * y) * (np.sin(np.pi * x) * (1 - np.pi ** 2) + 2 * np.pi * np.cos(np.pi * x))
    return -(uxx - np.pi ** 2 * _exact(x, y))


def test_second_order_on_the_l_shape():
    domain = Domain.polygon(L_SHAPE)
    errors = []
    for n in (17, 33, 65):
        grid = Grid((n, n), bounds=[(-1, 1), (-1, 1)])
        mask = interior_mask(grid, domain)
        u = solve_poisson_masked(_source, mask, grid, g=_exact)
        errors.append(np.abs(u - _exact(*np.meshgrid(*grid.axes, indexing="ij")))[mask].max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 1.9), orders


def test_mask_of_the_l_shape_leaves_out_the_cut_quadrant_and_the_boundary():
    grid = Grid((17, 17), bounds=[(-1, 1), (-1, 1)])
    mask = interior_mask(grid, Domain.polygon(L_SHAPE))
    assert mask.sum() == 15 * 15 - 8 * 8  # interior of the box minus the closed quadrant x, y >= 0
    x, y = np.meshgrid(*grid.axes, indexing="ij")
    assert not mask[(x >= 0) & (y >= 0)].any()


def test_3d_box_matches_the_separable_solution():
    grid = Grid((17, 17, 17))
    mask = ~grid.boundary_mask()
    exact = lambda x, y, z: np.sin(np.pi * x) * np.sin(np.pi * y) * np.sin(np.pi * z)  # noqa: E731
    u = solve_poisson_masked(lambda x, y, z: 3 * np.pi ** 2 * exact(x, y, z), mask, grid)
    assert np.abs(u - exact(*np.meshgrid(*grid.axes, indexing="ij"))).max() < 1e-2


def test_bad_input_is_refused():
    grid = Grid((9, 9))
    with pytest.raises(ShapeError, match="grid's shape"):
        solve_poisson_masked(1.0, np.ones((8, 8), bool), grid)
    with pytest.raises(ArgumentValueError, match="edge of the grid"):
        solve_poisson_masked(1.0, np.ones((9, 9), bool), grid)
    with pytest.raises(DTypeError, match="boolean"):
        solve_poisson_masked(1.0, np.ones((9, 9)), grid)
    with pytest.raises(ShapeError, match="node values"):
        solve_poisson_masked(np.ones(5), ~grid.boundary_mask(), grid)
    with pytest.raises(ArgumentValueError, match="2-D or 3-D"):
        solve_poisson_masked(1.0, np.array([False, True, False]), Grid(3))
