"""A trained PINN as Fields on a grid: ``task.solve(grid)``, NaN outside the domain, and its picture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml import diff
from sciml.errors import ConfigError, ShapeError
from sciml.fields import Field, Grid
from sciml.geometry import Domain
from sciml.models.mlp import MLP
from sciml.pinn import PINNTask
from sciml.problem import Dirichlet, Problem

LSHAPE = Domain.polygon([[-1, -1], [0, -1], [0, 0], [1, 0], [1, 1], [-1, 1]])


def _task(domain=LSHAPE, **problem_kwargs):
    problem = Problem(name="poisson_l", inputs=[], outputs=["u"], domain=domain,
                      equation=lambda u, x, inputs: diff.laplacian(u, x) + 1.0, conditions=[Dirichlet(0.0)],
                      **problem_kwargs)
    torch.manual_seed(0)
    return PINNTask(problem, MLP(2, 1, hidden=[8], activation="tanh"), hard=True, n_interior=16, reference=None)


def test_solve_on_an_l_shape_is_nan_in_the_cut_out_and_finite_inside():
    task = _task()
    fields = task.solve(Grid(41, bounds=[(-1, 1), (-1, 1)]))
    assert list(fields) == ["u"]
    u = fields["u"]
    assert isinstance(u, Field) and u.name == "u" and u.values.shape == (41, 41) and u.values.dtype == np.float64
    x, y = u.disc.coord_arrays().values()
    cut = (x > 1e-9) & (y < -1e-9)  # the open cut-out quadrant
    assert np.isnan(u.values[cut]).all()
    assert np.isfinite(u.values[~cut]).all()  # inside, the re-entrant edges included
    np.testing.assert_allclose(u.values[~cut], task.predict(u.disc.points()[~cut.ravel()])[:, 0])
    # the hard constraint holds on the boundary nodes, the interior carries the network
    assert np.abs(u.values[0, :]).max() < 1e-6 and np.abs(u.values[~cut]).max() > 1e-4


def test_solve_grids_by_size_default_and_checks():
    task = _task()
    u = task.solve(21)["u"]
    assert u.disc == Grid(21, bounds=[(-1, 1), (-1, 1)])
    assert task.solve()["u"].disc.shape == (65, 65)  # no default grid: 65 nodes per axis on the box
    box = _task(Domain.rectangle([0, 0], [2, 1]), grid=Grid((9, 5), bounds=[(0, 2), (0, 1)]))
    v = box.solve()["u"]
    assert v.disc == box.problem.grid and np.isfinite(v.values).all()  # a box: nothing is masked
    with pytest.raises(ShapeError, match="2-D Grid"):
        task.solve(Grid(11))
    with pytest.raises(ConfigError, match="Grid, a number"):
        task.solve("fine")


def test_a_masked_field_plots_with_the_domain_shape(tmp_path):
    pytest.importorskip("pyvista")
    u = _task().solve(Grid(21, bounds=[(-1, 1), (-1, 1)]))["u"]
    path = u.plot(screenshot=str(tmp_path / "l.png"))
    assert path.endswith("l.png") and (tmp_path / "l.png").stat().st_size > 0
