"""PyVista conversion, VTK export and off-screen pictures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sciml.errors import ConfigError, UnknownNameError
from sciml.fields import Field, Grid
from sciml.grid import relative_l2
from sciml.viz._lines import LinePanel, boundary_trace
from sciml.viz._panels import FieldPanel, nice_ticks, tick_format
from sciml.viz.render import _compare_rows, compare, plot, read_metadata, save_vtk, to_pyvista

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


# -- pictures a scientist keeps (issue 12, item 4) ---------------------------------------------------


def _poisson_like(n=17):
    g = Grid(n, ndim=2)
    x, y = g.coord_arrays().values()
    ref = Field(np.sin(np.pi * x) * y + 0.5 * x, g, "u", units="K")
    pred = Field(ref.values + 0.02 * np.cos(3 * y), g, "u", units="K")
    inputs = {"g": Field(ref.values, g, "g", units="K"), "f": Field(np.sin(2 * np.pi * y) * x, g, "f")}
    return pred, ref, inputs


def _image(path):
    import matplotlib.image

    return matplotlib.image.imread(path)[..., :3]


def test_compare_titles_carry_the_error_and_the_units():
    pred, ref, inputs = _poisson_like()
    rows = _compare_rows(pred, ref, inputs=inputs, boundary_inputs=["g"])
    top, bottom = rows
    error = float(relative_l2(pred.numpy(), ref.numpy()))
    assert f"relative L2 error {error:.3g}" in top[2].title  # computed when not given
    assert top[0].title == "u [K]: prediction" and top[1].title == "u [K]: reference"
    assert "relative L2 error 0.5 (50%)" in _compare_rows(pred, ref, error=0.5)[0][2].title
    titled = _compare_rows(pred, ref, titles=["a", "b", "err"], error=0.25)[0][2].title
    assert titled.startswith("err") and "0.25" in titled  # the error even under the caller's title
    # Inputs: g is boundary data (a line along the boundary, corners marked), f a field panel.
    assert isinstance(bottom[0], LinePanel) and isinstance(bottom[1], FieldPanel)
    assert [name for _, name in bottom[0].marks] == ["(0, 0)", "(1, 0)", "(1, 1)", "(0, 1)", "(0, 0)"]
    assert bottom[0].title == "input g [K] on the boundary" and bottom[1].title == "input f"


def test_prediction_and_reference_share_one_colour_range(tmp_path):
    pred, ref, _ = _poisson_like()
    (p, r, e), = _compare_rows(pred, ref)
    lo = min(pred.numpy().min(), ref.numpy().min())
    hi = max(pred.numpy().max(), ref.numpy().max())
    assert p.clim == r.clim == pytest.approx((lo, hi)) and e.clim is None
    # Rendered: constant prediction 0 and reference 1 on one colour range are different colours
    # (each on its own range both would be the lowest colour).
    g = Grid(9, ndim=2)
    path = compare(Field(np.zeros(g.shape), g, "u"), Field(np.ones(g.shape), g, "u"), screenshot=tmp_path / "c.png")
    image = _image(path)
    assert image.shape[:2] == (420, 3 * 480)
    centre = lambda k: image[210, 480 * k + 215]  # noqa: E731 (the middle of panel k's field)
    assert np.abs(centre(0) - centre(1)).max() > 0.3


def test_compare_picture_with_inputs_is_two_rows(tmp_path):
    pred, ref, inputs = _poisson_like()
    path = compare(pred, ref, screenshot=tmp_path / "q.png", inputs=inputs, boundary_inputs=["g"])
    image = _image(path)
    assert image.shape[:2] == (2 * 420, 3 * 480)
    assert image[420:].std() > 0.05  # the inputs row is drawn
    with pytest.raises(ConfigError, match="boundary_inputs"):
        compare(pred, ref, screenshot=tmp_path / "x.png", inputs=inputs, boundary_inputs=["h"])


def test_one_dimensional_fields_are_line_plots(tmp_path):
    g = Grid(41)
    x = g.axes[0]
    (both, err), = _compare_rows(Field(np.sin(x) + 0.01, g, "u"), Field(np.sin(x), g, "u"))
    assert isinstance(both, LinePanel) and [c[2] for c in both.curves] == ["prediction", "reference"]
    assert "relative L2 error" in err.title
    path = Field(np.sin(x), g, "u").plot(screenshot=str(tmp_path / "line.png"))
    assert _image(path).std() > 0.05


def test_boundary_trace_walks_the_boundary_once_anticlockwise():
    g = Grid((5, 3), bounds=[(0, 2), (0, 1)])
    x, y = g.coord_arrays().values()
    s, values, marks = boundary_trace(g, 10 * x + y)
    assert len(s) == 2 * (5 + 3) - 4 + 1 and s[-1] == pytest.approx(6.0)
    assert values[0] == values[-1] == 0 and values[4] == pytest.approx(20)  # (2, 0) after the bottom edge
    assert [m[0] for m in marks] == pytest.approx([0, 2, 3, 5, 6])


def test_nice_ticks():
    assert nice_ticks(-0.5, 1.26) == pytest.approx([-0.5, 0, 0.5, 1])
    assert nice_ticks(0, 1) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1])
    assert nice_ticks(2, 2) == [2]
    # Colour-bar labels are written exactly: no "2e+05" for 150000, no exponent on 12000.
    assert [tick_format(t) % v for t in [nice_ticks(0, 1.99e5)] for v in t] == ["0", "50000", "100000", "150000"]
    assert [tick_format(t) % v for t in [nice_ticks(-1e-4, 1e-4)] for v in t][:2] == ["-1e-04", "-5e-05"]


def test_vtu_carries_the_inputs(tmp_path):
    pred, ref, inputs = _poisson_like()
    fields = [Field(pred.values, pred.disc, "prediction", units="K"), Field(ref.values, ref.disc, "reference", units="K"),
              *inputs.values()]
    path = save_vtk(fields, tmp_path / "answer.vtu", boundary=["g"])
    back = pv.read(path)
    assert {"prediction", "reference", "g", "f"} <= set(back.point_data.keys())
    np.testing.assert_allclose(back.point_data["f"], np.sin(2 * np.pi * back.points[:, 1]) * back.points[:, 0], atol=1e-12)
    meta = read_metadata(back)
    assert meta["order"] == ["prediction", "reference", "g", "f"]
    assert meta["units"] == {"prediction": "K", "reference": "K", "g": "K"} and meta["boundary"] == ["g"]
    meshio = pytest.importorskip("meshio")
    m = meshio.read(path)  # quads, not VTK pixels: meshio (and so sciml.Mesh.read) reads it
    assert {"g", "f"} <= set(m.point_data) and m.cells[0].type == "quad"
    with pytest.raises(ConfigError, match="boundary names"):
        save_vtk(fields, tmp_path / "bad.vtu", boundary=["h"])


def test_sciml_plot_draws_vtu_and_metrics(tmp_path):
    from sciml.workflows.plot_file import plot_file

    pred, ref, inputs = _poisson_like()
    vtu = save_vtk([Field(pred.values, pred.disc, "prediction"), Field(ref.values, ref.disc, "reference"),
                    Field(pred.values - ref.values, pred.disc, "error"), *inputs.values()], tmp_path / "a.vtu", boundary=["g"])
    png = plot_file(vtu)
    assert png.endswith("a.png") and _image(png).shape[:2] == (2 * 420, 3 * 480)  # 5 panels, 3 a row
    log = tmp_path / "metrics.jsonl"
    log.write_text("\n".join(json.dumps({"kind": k, "step": s, "loss": 1.0 / s} if k == "train" else
                                        {"kind": k, "step": s, "rel_l2": 2.0 / s}) for s in (1, 2, 3) for k in ("train", "val")))
    assert plot_file(log, out=tmp_path / "curve.png").endswith("curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 5_000


def test_offscreen_rendering_emits_no_vtk_warning_text(tmp_path):
    # VTK tries X before EGL on a machine without a display and says so on fd 2 ("bad X server
    # connection"), from C++: only an fd-level capture in a child process sees it.
    script = (
        "import numpy as np\n"
        "from sciml.fields import Field, Grid\n"
        "from sciml.viz.render import compare\n"
        "g = Grid(9, ndim=2)\n"
        "x, y = g.coord_arrays().values()\n"
        "u = Field(x * y, g, 'u')\n"
        f"u.plot(screenshot={str(tmp_path / 'one.png')!r})\n"
        f"compare(u, Field(x * y + 0.1, g, 'u'), {str(tmp_path / 'two.png')!r}, inputs={{'g': u}}, boundary_inputs=['g'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "one.png").is_file() and (tmp_path / "two.png").is_file()
    text = result.stderr.lower()
    assert "vtk" not in text and "x server" not in text, result.stderr
