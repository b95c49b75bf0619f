"""PyVista conversion, VTK export and off-screen pictures."""

from __future__ import annotations

import numpy as np
import pytest

from sciml.errors import ConfigError, UnknownNameError
from sciml.fields import Field, Grid
from sciml.viz.render import compare, plot, save_vtk, to_pyvista

pv = pytest.importorskip("pyvista")


def _field(n=(17, 9), name="u"):
    g = Grid(n, bounds=[(0, 2), (-1, 1)])
    x, y = g.coord_arrays().values()
    return Field(x * 10 + y, g, name)


def test_to_pyvista_places_values_at_their_points():
    f = _field()
    data = to_pyvista(f)
    assert data.n_points == f.disc.size
    # Every point's value equals the formula at that point's coordinates: no transposition.
    np.testing.assert_allclose(data.point_data["u"], data.points[:, 0] * 10 + data.points[:, 1], atol=1e-12)


def test_vtk_files_round_trip(tmp_path):
    f = _field()
    for suffix in (".vti", ".vtu"):
        path = save_vtk([f, Field(-f.values, f.disc, "v")], tmp_path / f"out{suffix}")
        back = pv.read(path)
        np.testing.assert_allclose(back.point_data["u"], back.points[:, 0] * 10 + back.points[:, 1], atol=1e-6)
        np.testing.assert_allclose(back.point_data["v"], -back.point_data["u"])
    assert f.save(str(tmp_path / "single.vti")).endswith("single.vti")
    with pytest.raises(UnknownNameError, match=".vti"):
        save_vtk(f, tmp_path / "out.png")
    with pytest.raises(ConfigError, match="different discretisations"):
        to_pyvista([f, _field(n=(5, 5), name="w")])


def test_pictures_are_written_and_not_blank(tmp_path):
    f = _field()
    path = compare(f, Field(f.values * 1.01, f.disc, "u"), screenshot=tmp_path / "cmp.png")
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.shape[1] > 2 * image.shape[0]  # three panels side by side
    assert image[..., :3].std() > 0.05  # something was drawn
    assert plot(f, screenshot=tmp_path / "one.png", titles=["u"]).endswith("one.png")
    with pytest.raises(ConfigError, match="titles"):
        plot([f], screenshot=tmp_path / "x.png", titles=["a", "b"])
