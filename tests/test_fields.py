"""Grid, Field, resampling and the relative L2 error."""

from __future__ import annotations

import numpy as np
import pytest

from sciml.errors import ConfigError, ShapeError, UnknownNameError
from sciml.fields import Field, Grid, relative_l2, resample


def test_grid_geometry_1d_2d_3d():
    g1 = Grid(11)
    assert g1.shape == (11,) and g1.spacing == (0.1,) and g1.points().shape == (11, 1)
    g2 = Grid((5, 9), bounds=[(0, 2), (-1, 1)])
    assert g2.spacing == (0.5, 0.25)
    c = g2.coords()
    assert c.shape == (5, 9, 2) and c[4, 0].tolist() == [2.0, -1.0]  # 'ij': axis 0 is x
    assert g2.boundary_mask().sum() == 2 * 5 + 2 * 9 - 4
    g3 = Grid(5, ndim=3)
    assert g3.boundary_mask().sum() == 5**3 - 3**3 and g3.size == 125


def test_subsample_and_stride():
    g = Grid(421, ndim=2)
    assert g.subsample(5) == Grid(85, ndim=2)
    assert g.stride_to(Grid(211, ndim=2)) == 2
    assert g.stride_to(Grid(100, ndim=2)) is None
    with pytest.raises(ConfigError, match="does not divide"):
        g.subsample(8)
    assert Grid.from_dict(g.to_dict()) == g


def test_bad_grids_are_refused():
    for shape in ((1, 5), (), (2, 2, 2, 2), (3.5,)):
        with pytest.raises(ConfigError):
            Grid(shape)
    with pytest.raises(ConfigError, match="hi > lo"):
        Grid(5, bounds=[(1, 0)])
    with pytest.raises(ShapeError):
        Grid((5, 5), bounds=[(0, 1)])


def test_grid_infers_its_dimension_from_the_bounds():
    g = Grid(101, bounds=[(-1, 1), (-1, 1)])
    assert g.ndim == 2 and g.shape == (101, 101) and g.spacing == (0.02, 0.02)
    assert Grid(5, bounds=[(0, 1)] * 3).shape == (5, 5, 5)
    assert Grid(5, bounds=[(0, 2), (0, 1)], ndim=2).shape == (5, 5)  # an agreeing ndim is fine
    assert Grid(7).shape == (7,) and Grid(7, ndim=3).shape == (7, 7, 7)  # no bounds: ndim, else 1-D
    with pytest.raises(ConfigError, match="ndim=3 does not match the 2"):
        Grid(101, bounds=[(-1, 1), (-1, 1)], ndim=3)
    with pytest.raises(ConfigError, match="ndim=2 does not match shape"):
        Grid((5, 5, 5), ndim=2)
    with pytest.raises(ConfigError, match="ndim of 1, 2 or 3"):
        Grid(5, ndim=4)


def test_field_shapes_and_resampling():
    g = Grid(33, ndim=2)
    x, y = g.coord_arrays().values()
    f = Field(x + 2 * y, g, "u")
    assert f.n_components == 1
    two = Field(np.stack([x, y]), g, "v")
    assert two.n_components == 2
    with pytest.raises(ShapeError, match="values"):
        Field(np.zeros((32, 33)), g)
    # Linear data are reproduced exactly by linear interpolation on any grid inside the box.
    other = Grid((20, 13))
    on = f.on(other)
    xo, yo = other.coord_arrays().values()
    np.testing.assert_allclose(on.values, xo + 2 * yo, atol=1e-12)
    # Smooth data converge at second order under linear interpolation.
    errors = []
    for n in (9, 17, 33):
        src = Grid(n, ndim=2)
        xs, ys = src.coord_arrays().values()
        errors.append(np.abs(resample(np.sin(3 * xs) * np.cos(2 * ys), src, other) - np.sin(3 * xo) * np.cos(2 * yo)).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 1.7), orders
    with pytest.raises(UnknownNameError):
        resample(f.values, g, other, method="quintic")


def test_relative_l2_numpy_and_torch():
    import torch

    a = np.ones((3, 4, 4))
    b = a * 1.1
    np.testing.assert_allclose(relative_l2(b, a, axes=(1, 2)), [0.1] * 3)
    t = relative_l2(torch.tensor(b), torch.tensor(a), axes=(1, 2))
    np.testing.assert_allclose(t.numpy(), [0.1] * 3)
