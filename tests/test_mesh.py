"""Mesh: construction checks, topology, validation report, quality metrics, file I/O with tags."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sciml.errors import ConfigError, DTypeError, InvalidMeshError, ShapeError, UnknownNameError
from sciml.fields import Field, Grid
from sciml.geometry import Mesh, MeshReport

MESHES = Path(__file__).resolve().parents[1] / "meshes"


@pytest.fixture(scope="module")
def disk() -> Mesh:
    return Mesh.read(MESHES / "unit_disk.msh")


@pytest.fixture(scope="module")
def lshape() -> Mesh:
    return Mesh.read(MESHES / "l_shape.msh")


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    a = np.sort(np.asarray(a), axis=-1)
    return a[np.lexsort(a.T[::-1])] if a.ndim == 2 else np.sort(a)


# -- construction --------------------------------------------------------------------------------------
def test_constructor_checks_inputs():
    pts = [[0, 0], [1, 0], [0, 1]]
    with pytest.raises(ShapeError):
        Mesh(np.zeros((3, 4)), [[0, 1, 2]])
    with pytest.raises(ShapeError):
        Mesh(pts, [[0, 1, 2, 0, 1]])
    with pytest.raises(DTypeError):
        Mesh(pts, np.array([[0.0, 1.0, 2.0]]))
    with pytest.raises(UnknownNameError, match="triangle"):
        Mesh(pts, {"hexahedron": [[0, 1, 2]]})
    with pytest.raises(ShapeError):
        Mesh(pts, {"quad": [[0, 1, 2]]})
    with pytest.raises(ConfigError, match="one topological dimension"):
        Mesh(pts, {"triangle": [[0, 1, 2]], "line": [[0, 1]]})
    with pytest.raises(ConfigError, match="3-D points"):
        Mesh(pts + [[1, 1]], {"tetra": [[0, 1, 2, 3]]})
    with pytest.raises(ShapeError):
        Mesh(pts, [[0, 1, 2]], boundary_tags={"edge": [[0, 1, 2]]})
    with pytest.raises(InvalidMeshError, match="out-of-range"):
        Mesh(pts, [[0, 1, 3]])
    with pytest.raises(InvalidMeshError, match="NaN"):
        Mesh([[0, 0], [1, np.nan], [0, 1]], [[0, 1, 2]])
    with pytest.raises(InvalidMeshError, match="tag 'left'"):
        Mesh(pts, [[0, 1, 2]], boundary_tags={"left": [0, 7]})
    mesh = Mesh(pts, [[0, 1, 2]])
    assert mesh.cell_types == ("triangle",) and mesh.shape == (3,) and mesh.tdim == 2 and mesh.ndim == 2
    assert Mesh(np.zeros((4, 3)) + np.eye(4, 3), [[0, 1, 2, 3]]).cell_types == ("tetra",)
    with pytest.raises(ValueError):
        mesh.points[0, 0] = 5.0  # read-only: cached topology stays valid


def test_from_grid_2d_matches_grid_order_and_boundary():
    grid = Grid((6, 4), bounds=[(0, 2), (-1, 1)])
    for cell_type, n_cells in (("triangle", 30), ("quad", 15)):
        mesh = Mesh.from_grid(grid, cell_type)
        assert mesh.n_cells == n_cells and mesh.n_points == grid.size
        np.testing.assert_array_equal(mesh.points, grid.points())
        vols = mesh.cell_volumes()[cell_type]
        assert np.all(vols > 0) and math.isclose(vols.sum(), 4.0)
        np.testing.assert_array_equal(mesh.boundary_nodes(), np.flatnonzero(grid.boundary_mask().ravel()))
        np.testing.assert_array_equal(mesh.tag_nodes("xmin"), np.arange(4))
        assert np.all(mesh.points[mesh.tag_nodes("ymax"), 1] == 1.0)
        assert mesh.validate().ok
    values = np.sin(grid.coord_arrays()["x"])
    field = Field(values.reshape(-1), mesh, name="u")
    np.testing.assert_array_equal(field.numpy(), values.ravel())
    # Boundary facets run counter-clockwise: the outward normal (dy, -dx) points away from the centre.
    f = mesh.boundary_facets()
    d = mesh.points[f[:, 1]] - mesh.points[f[:, 0]]
    mid = mesh.points[f].mean(axis=1) - [1, 0]
    assert np.all((d[:, 1] * mid[:, 0] - d[:, 0] * mid[:, 1]) > 0)


def test_from_grid_1d_and_3d():
    line = Mesh.from_grid(Grid(5, bounds=[(0, 2)]))
    np.testing.assert_array_equal(line.boundary_nodes(), [0, 4])
    assert line.boundary_tags["xmax"].tolist() == [4] and line.validate().ok
    grid = Grid((4, 3, 5), bounds=[(0, 1), (0, 2), (0, 3)])
    cube = Mesh.from_grid(grid)
    vols = cube.cell_volumes()["tetra"]
    assert cube.n_cells == 6 * 3 * 2 * 4 and np.all(vols > 0) and math.isclose(vols.sum(), 6.0)
    # Conforming split: only the box's faces are boundary facets (2 triangles per boundary square).
    assert len(cube.boundary_facets()) == 2 * 2 * (3 * 2 + 2 * 4 + 3 * 4)
    np.testing.assert_array_equal(cube.boundary_nodes(), np.flatnonzero(grid.boundary_mask().ravel()))
    assert cube.validate().ok


# -- validation ----------------------------------------------------------------------------------------
def test_shipped_meshes_are_valid_and_tagged(disk, lshape):
    for name in ("unit_disk.msh", "l_shape.msh"):
        assert (MESHES / name).stat().st_size < 500_000
    assert disk.ndim == 2 and 300 <= disk.n_points <= 2000
    report = disk.validate()
    assert isinstance(report, MeshReport) and report.ok and "ok" in str(report)
    circle = disk.tag_nodes("circle")
    np.testing.assert_allclose(np.linalg.norm(disk.points[circle], axis=1), 1.0, atol=1e-14)
    np.testing.assert_array_equal(circle, disk.boundary_nodes())
    area = disk.cell_volumes()["triangle"].sum()
    assert abs(area - math.pi) < 2e-3 * math.pi  # inscribed 96-gon
    assert disk.quality()["min_angle"] > 25
    assert lshape.validate().ok
    assert math.isclose(lshape.cell_volumes()["triangle"].sum(), 3.0, rel_tol=1e-12)
    re = lshape.points[lshape.tag_nodes("reentrant")]
    assert np.all((np.abs(re[:, 0]) < 1e-14) & (re[:, 1] <= 0) | (np.abs(re[:, 1]) < 1e-14) & (re[:, 0] >= 0))
    both = np.union1d(lshape.tag_nodes("reentrant"), lshape.tag_nodes("outer"))
    np.testing.assert_array_equal(both, lshape.boundary_nodes())


def test_inverted_cell_is_named(disk):
    cells = disk.cells["triangle"].copy()
    cells[17] = cells[17, [0, 2, 1]]  # reverse the orientation of triangle 17
    bad = Mesh(disk.points, cells, boundary_tags=disk.boundary_tags)
    with pytest.raises(InvalidMeshError, match=r"inverted.*triangle \[17\]"):
        bad.validate()
    report = bad.validate(raise_on_error=False)
    assert not report.ok and report.inverted["triangle"].tolist() == [17]


def test_moving_a_node_inverts_exactly_the_cells_that_flip(disk):
    pts = disk.points.copy()
    node = 100
    neighbours = np.flatnonzero((disk.cells["triangle"] == node).any(axis=1))
    ring = np.unique(disk.cells["triangle"][neighbours])
    far = ring[np.argmax(np.linalg.norm(pts[ring] - pts[node], axis=1))]
    pts[node] += 1.8 * (pts[far] - pts[node])  # push the node past its neighbourhood
    moved = Mesh(pts, disk.cells)
    p = pts[moved.cells["triangle"]]
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    signed = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    expected = np.flatnonzero(signed < 0)
    assert len(expected) >= 1 and set(expected) <= set(neighbours)
    with pytest.raises(InvalidMeshError) as info:
        moved.validate()
    assert f"triangle [{', '.join(map(str, expected[:10]))}" in str(info.value)
    np.testing.assert_array_equal(moved.validate(raise_on_error=False).inverted["triangle"], expected)


def test_report_lists_degenerate_duplicate_orphan_and_broken_entries():
    pts = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 0], [0.5, 0.5], [1, 1 + 1e-13], [5, 5]])
    # Cell 2 joins three collinear nodes; cell 3 uses nodes 3 and 6, which are 1e-13 apart.
    cells = np.array([[0, 1, 2], [1, 3, 2], [0, 1, 4], [1, 6, 3]])
    report = Mesh(pts, cells).validate(raise_on_error=False)
    assert report.degenerate["triangle"].tolist() == [2, 3]
    assert report.duplicate_nodes.tolist() == [[3, 6]]
    assert report.orphan_nodes.tolist() == [5, 7]
    assert not report.inverted
    text = str(report)
    assert "degenerate" in text and "3=6" in text and "orphan" in text
    broken = Mesh(np.vstack([pts, [np.inf, 0]]), np.vstack([cells, [[0, 1, 42]]]), check=False)
    report = broken.validate(raise_on_error=False)
    assert report.nonfinite_nodes.tolist() == [8] and report.out_of_range["triangle"].tolist() == [4]
    with pytest.raises(InvalidMeshError, match="out-of-range"):
        broken.validate()
    with pytest.raises(InvalidMeshError, match="broken"):
        broken.quality()  # metrics of a mesh with dangling indices would be meaningless
    with pytest.raises(ConfigError):
        broken.validate(tol=-1.0)


def test_quality_metrics_of_ideal_and_skewed_cells():
    equilateral = Mesh([[0, 0], [1, 0], [0.5, math.sqrt(3) / 2]], [[0, 1, 2]]).quality()
    assert math.isclose(equilateral["min_scaled_jacobian"], 1.0) and math.isclose(equilateral["min_angle"], 60.0)
    right = Mesh([[0, 0], [1, 0], [0, 1], [4, 0], [4, 3]], [[0, 1, 2], [1, 3, 4]]).quality()
    assert math.isclose(right["min_angle"], 45.0) and math.isclose(right["max_angle"], 90.0)
    assert math.isclose(right["min_scaled_jacobian"], math.sin(math.pi / 4) * 2 / math.sqrt(3))
    assert math.isclose(right["volume_ratio"], 0.5 / 4.5)
    square = Mesh([[0, 0], [1, 0], [1, 1], [0, 1]], {"quad": [[0, 1, 2, 3]]}).quality()
    assert math.isclose(square["min_scaled_jacobian"], 1.0) and math.isnan(square["min_angle"])
    tet = Mesh([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], [[0, 1, 2, 3]])
    sign = np.sign(tet.cell_volumes()["tetra"][0])
    fixed = tet if sign > 0 else Mesh(tet.points, [[0, 2, 1, 3]])
    assert math.isclose(fixed.quality()["min_scaled_jacobian"], 1.0)
    # A non-convex ("arrow") quad has one negative corner and is reported as inverted.
    arrow = Mesh([[0, 0], [2, 0], [0.5, 0.5], [0, 2]], {"quad": [[0, 1, 2, 3]]})
    assert arrow.scaled_jacobians()["quad"][0] < 0
    assert arrow.validate(raise_on_error=False).inverted["quad"].tolist() == [0]


# -- I/O -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".msh", ".vtu", ".xdmf"])
def test_roundtrip_keeps_points_cells_and_tags(tmp_path, suffix):
    grid = Grid((5, 4), bounds=[(0, 1), (0, 3)])
    base = Mesh.from_grid(grid)
    tags = {**base.boundary_tags, "corner": np.array([0, grid.size - 1])}  # a node tag too
    mesh = Mesh(base.points, base.cells, boundary_tags=tags)
    back = Mesh.read(mesh.write(tmp_path / f"m{suffix}"))
    assert back.ndim == 2  # the zero z column written for VTK/gmsh is dropped again
    np.testing.assert_array_equal(back.points, mesh.points)
    np.testing.assert_array_equal(back.cells["triangle"], mesh.cells["triangle"])
    assert sorted(back.boundary_tags) == sorted(tags)
    for name, idx in tags.items():
        np.testing.assert_array_equal(_sorted_rows(back.boundary_tags[name]), _sorted_rows(idx))
    assert back.boundary_tags["corner"].ndim == 1 and back.boundary_tags["xmin"].ndim == 2


def test_roundtrip_3d_and_1d(tmp_path):
    cube = Mesh.from_grid(Grid(3, ndim=3))
    back = Mesh.read(cube.write(tmp_path / "cube.vtu"))
    assert back.ndim == 3 and back.validate().ok
    np.testing.assert_array_equal(_sorted_rows(back.boundary_tags["zmax"]), _sorted_rows(cube.boundary_tags["zmax"]))
    line = Mesh.from_grid(Grid(6, bounds=[(-1, 1)]))
    back = Mesh.read(line.write(tmp_path / "line.msh"))
    assert back.ndim == 1 and back.boundary_tags["xmin"].tolist() == [0]


def test_reading_garbage_or_foreign_files_raises_a_clear_error(tmp_path):
    garbage = tmp_path / "broken.msh"
    garbage.write_bytes(b"$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$Nodes\n3\n1 0 0\n\x00\xff garbage")
    with pytest.raises(InvalidMeshError, match=r"broken\.msh.*expected a valid mesh file") as info:
        Mesh.read(garbage)
    assert "Traceback" not in str(info.value)
    random = tmp_path / "noise.vtu"
    random.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(InvalidMeshError, match=r"noise\.vtu"):
        Mesh.read(random)
    with pytest.raises(InvalidMeshError, match="no such file"):
        Mesh.read(tmp_path / "missing.msh")
    unknown = tmp_path / "mesh.unknownext"
    unknown.write_text("hello")
    with pytest.raises(InvalidMeshError, match="unknownext"):
        Mesh.read(unknown)
    import meshio

    cloud = tmp_path / "cloud.vtu"
    meshio.write(cloud, meshio.Mesh(np.zeros((3, 3)) + np.eye(3), [("vertex", np.arange(3)[:, None])]))
    with pytest.raises(InvalidMeshError, match="expected line, triangle, quad or tetra"):
        Mesh.read(cloud)
    hexa = tmp_path / "hexa.vtu"
    corners = np.array([[i & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)], dtype=float)
    meshio.write(hexa, meshio.Mesh(corners, [("hexahedron", np.array([[0, 1, 3, 2, 4, 5, 7, 6]]))]))
    with pytest.raises(InvalidMeshError, match="unsupported cell type"):
        Mesh.read(hexa)


def test_reads_foreign_gmsh_physical_groups(tmp_path):
    import meshio

    pts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=float)
    cells = [("triangle", np.array([[0, 1, 2], [0, 2, 3]])), ("line", np.array([[0, 1], [1, 2], [2, 3]]))]
    physical = [np.array([5, 5]), np.array([1, 1, 7])]  # 5: a named subdomain, 7: unnamed
    m = meshio.Mesh(pts, cells, cell_data={"gmsh:physical": physical, "gmsh:geometrical": physical},
                    field_data={"fluid": np.array([5, 2]), "wall": np.array([1, 1])})
    path = tmp_path / "foreign.msh"
    meshio.write(path, m, file_format="gmsh22", binary=False)
    mesh = Mesh.read(path)
    assert sorted(mesh.boundary_tags) == ["physical_7", "wall"]  # the 2-D group is not a boundary tag
    np.testing.assert_array_equal(_sorted_rows(mesh.boundary_tags["wall"]), [[0, 1], [1, 2]])
    assert mesh.validate().ok


def test_write_checks_arguments(tmp_path, disk):
    with pytest.raises(ConfigError, match="does not exist"):
        disk.write(tmp_path / "nowhere" / "x.msh")
    with pytest.raises(ConfigError, match="gmsh22"):
        disk.write(tmp_path / "x.msh", file_format="gmsh")
    with pytest.raises(ConfigError, match="cannot write"):
        disk.write(tmp_path / "x.notaformat")


def test_to_pyvista(disk):
    pytest.importorskip("pyvista")
    grid = disk.to_pyvista(point_data={"r": np.linalg.norm(disk.points, axis=1)})
    assert grid.n_points == disk.n_points and grid.n_cells == disk.n_cells
    np.testing.assert_allclose(grid.points[:, :2], disk.points)
    assert math.isclose(grid.point_data["r"].max(), 1.0)
    with pytest.raises(ShapeError):
        disk.to_pyvista(point_data={"r": np.zeros(3)})
