"""Unstructured meshes: :class:`Mesh` and its validation report :class:`MeshReport`.

A Mesh is nodes ``(N, d)`` (float64, d = 1, 2, 3), linear cells of one topological dimension
(``line``; ``triangle`` and/or ``quad``; ``tetra``) and named boundary tags, each either a node set
``(K,)`` or a facet set ``(K, k)`` (edges of a 2-D mesh, triangles of a tetrahedral one).
``mesh.shape == (n_points,)``, so ``Field(values, mesh)`` holds nodal values.

The constructor checks structure (shapes, integer cells, finite coordinates, indices in range) and
raises :class:`~sciml.errors.InvalidMeshError` on corruption that would make the object unusable;
:meth:`Mesh.validate` adds the geometric checks (inverted, degenerate cells, duplicate and orphan
nodes) and :meth:`Mesh.quality` the usual shape metrics. File I/O goes through meshio
(:mod:`sciml.geometry._mesh_io`), imported only when reading or writing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import as_float_array, check_name
from ..errors import ConfigError, DTypeError, InvalidMeshError, ShapeError
from ._cells import CELL_TYPES, kuhn_tetrahedra, measures, triangle_angles

if TYPE_CHECKING:  # pragma: no cover
    from ..grid import Grid

__all__ = ["Mesh", "MeshReport", "CELL_TYPES"]

# Local facets of each cell type, ordered so that a facet of a positively oriented cell, read in this
# order, has its normal pointing out of the cell (for tetra: right-hand rule on each face).
_FACETS: dict[str, np.ndarray] = {
    "line": np.array([[0], [1]]),
    "triangle": np.array([[0, 1], [1, 2], [2, 0]]),
    "quad": np.array([[0, 1], [1, 2], [2, 3], [3, 0]]),
    "tetra": np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]]),
}

# A cell is degenerate when |volume| <= _DEGENERATE * (longest edge)^tdim.
_DEGENERATE = 1e-10
_SHOW = 10  # indices listed per problem in messages


def _show(idx: np.ndarray) -> str:
    items = ", ".join(str(int(i)) for i in idx[:_SHOW])
    return f"[{items}{', ...' if len(idx) > _SHOW else ''}]"


@dataclass(frozen=True)
class MeshReport:
    """What :meth:`Mesh.validate` found. Cell indices are local to their cell type's block.

    Attributes
    ----------
    n_points, n_cells : int
    nonfinite_nodes : ndarray
        Nodes with a NaN or Inf coordinate.
    out_of_range : dict[str, ndarray]
        Cells referring to a node index outside ``[0, n_points)``.
    bad_tags : dict[str, str]
        Boundary tags with out-of-range node indices, and why.
    inverted : dict[str, ndarray]
        Cells with negative orientation (signed area/volume, or a negative corner Jacobian for quads).
        Only checked when the cells fill the space (triangles/quads in 2-D, tetra in 3-D, lines in 1-D).
    degenerate : dict[str, ndarray]
        Cells of (numerically) zero area/volume.
    duplicate_nodes : ndarray
        ``(K, 2)`` pairs of distinct nodes closer than the tolerance.
    orphan_nodes : ndarray
        Nodes that no cell uses.
    """

    n_points: int
    n_cells: int
    nonfinite_nodes: np.ndarray
    out_of_range: dict[str, np.ndarray]
    bad_tags: dict[str, str]
    inverted: dict[str, np.ndarray] = field(default_factory=dict)
    degenerate: dict[str, np.ndarray] = field(default_factory=dict)
    duplicate_nodes: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))
    orphan_nodes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems()

    def problems(self) -> list[str]:
        """One human-readable line per kind of problem found."""
        out = []
        if len(self.nonfinite_nodes):
            out.append(f"{len(self.nonfinite_nodes)} node(s) with NaN/Inf coordinates: {_show(self.nonfinite_nodes)}")
        for label, groups in (("out-of-range node indices", self.out_of_range),
                              ("inverted (negative orientation)", self.inverted),
                              ("degenerate (zero area/volume)", self.degenerate)):
            for ctype, idx in groups.items():
                if len(idx):
                    out.append(f"{len(idx)} {ctype} cell(s) {label}: {ctype} {_show(idx)}")
        for name, why in self.bad_tags.items():
            out.append(f"boundary tag {name!r}: {why}")
        if len(self.duplicate_nodes):
            pairs = ", ".join(f"{a}={b}" for a, b in self.duplicate_nodes[:_SHOW])
            out.append(f"{len(self.duplicate_nodes)} pair(s) of duplicate nodes: {pairs}")
        if len(self.orphan_nodes):
            out.append(f"{len(self.orphan_nodes)} orphan node(s) used by no cell: {_show(self.orphan_nodes)}")
        return out

    def raise_if_invalid(self, where: str = "Mesh") -> None:
        """Raise InvalidMeshError listing every problem, if any."""
        problems = self.problems()
        if problems:
            raise InvalidMeshError(f"{where}: invalid mesh ({self.n_points} nodes, {self.n_cells} cells): "
                                   + "; ".join(problems))

    def __str__(self) -> str:
        head = f"MeshReport({self.n_points} nodes, {self.n_cells} cells)"
        problems = self.problems()
        return head + (": ok" if not problems else ":\n  " + "\n  ".join(problems))


def _as_index_array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{name}: expected an integer array of node indices, got dtype {arr.dtype}")
    return arr.astype(np.int64)


class Mesh:
    """Nodes, linear cells of one topological dimension and boundary tags.

    Parameters
    ----------
    points : array-like, (N, d)
        Node coordinates, d in {1, 2, 3}; stored as float64.
    cells : dict[str, array] or array
        ``{"triangle": (M, 3), "quad": (K, 4)}``, or one ``(M, k)`` array whose type is
        ``cell_type`` or, if not given, inferred from ``k`` and ``d`` (2: line, 3: triangle,
        4: quad in 2-D and tetra in 3-D).
    cell_type : str, optional
        One of ``"line", "triangle", "quad", "tetra"`` when ``cells`` is an array.
    boundary_tags : dict[str, array], optional
        Name -> node indices ``(K,)`` or facets ``(K, k)`` (k = 2 for 2-D cells, 3 for tetra).
    check : bool
        Raise InvalidMeshError on non-finite coordinates or out-of-range indices (default). Pass
        False to build a broken mesh for inspection with :meth:`validate`.

    Examples
    --------
    >>> mesh = Mesh([[0, 0], [1, 0], [0, 1]], [[0, 1, 2]])
    >>> mesh.shape, mesh.cell_types, mesh.validate().ok
    ((3,), ('triangle',), True)
    """

    def __init__(
        self,
        points: Any,
        cells: Mapping[str, Any] | Any,
        cell_type: str | None = None,
        boundary_tags: Mapping[str, Any] | None = None,
        check: bool = True,
    ) -> None:
        pts = as_float_array("Mesh points", points, finite=False)
        if pts.ndim != 2 or pts.shape[1] not in (1, 2, 3) or len(pts) == 0:
            raise ShapeError("Mesh points", "(N, d) with N >= 1 and d in {1, 2, 3}", pts.shape)
        self._points = np.array(pts, dtype=np.float64)
        self._points.setflags(write=False)
        self._cells = self._parse_cells(cells, cell_type)
        tdims = {CELL_TYPES[t][1] for t in self._cells}
        if len(tdims) != 1:
            raise ConfigError(
                f"Mesh: expected cells of one topological dimension, got {sorted(self._cells)}; "
                "put lower-dimensional facets in boundary_tags instead"
            )
        self._tdim = tdims.pop()
        if self._tdim > self.ndim:
            raise ConfigError(f"Mesh: {sorted(self._cells)} cells need at least {self._tdim}-D points, got {self.ndim}-D")
        self._tags = self._parse_tags(boundary_tags or {})
        self._boundary: np.ndarray | None = None
        structure = self._structure_report()
        if check:
            structure.raise_if_invalid("Mesh")
        # With check=False a broken mesh may exist, but only validate() may look at it.
        self._broken = "; ".join(structure.problems()) or None

    # -- construction helpers ----------------------------------------------------------------------
    def _parse_cells(self, cells: Any, cell_type: str | None) -> dict[str, np.ndarray]:
        if not isinstance(cells, Mapping):
            arr = np.asarray(cells)
            if arr.ndim != 2:
                raise ShapeError("Mesh cells", "(M, k)", arr.shape)
            if cell_type is None:
                by_k = {2: "line", 3: "triangle", 4: "tetra" if self.ndim == 3 else "quad"}
                if arr.shape[1] not in by_k:
                    raise ShapeError("Mesh cells", "(M, k) with k in {2, 3, 4}", arr.shape)
                cell_type = by_k[arr.shape[1]]
            cells = {cell_type: arr}
        elif cell_type is not None:
            raise ConfigError("Mesh: cell_type is only for a single cell array; a dict already names its types")
        out: dict[str, np.ndarray] = {}
        for ctype, block in cells.items():
            check_name("cell type", ctype, CELL_TYPES)
            arr = _as_index_array(f"Mesh cells[{ctype!r}]", block)
            k = CELL_TYPES[ctype][0]
            if arr.ndim != 2 or arr.shape[1] != k:
                raise ShapeError(f"Mesh cells[{ctype!r}]", ("*", k), arr.shape)
            if len(arr):
                arr = np.ascontiguousarray(arr)
                arr.setflags(write=False)
                out[ctype] = arr
        if not out:
            raise ConfigError("Mesh: expected at least one cell, got none")
        return out

    def _parse_tags(self, tags: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if not isinstance(tags, Mapping):
            raise ConfigError(f"Mesh boundary_tags: expected a dict name -> indices, got {type(tags).__name__}")
        facet_k = {1: 1, 2: 2, 3: 3}[self._tdim]
        out = {}
        for name, value in tags.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"Mesh boundary_tags: expected non-empty string names, got {name!r}")
            arr = _as_index_array(f"Mesh boundary_tags[{name!r}]", value)
            if arr.ndim == 2 and arr.shape[1] == 1 and facet_k == 1:
                arr = arr[:, 0]
            if arr.ndim == 1:
                arr = np.unique(arr)
            elif arr.ndim != 2 or arr.shape[1] != facet_k:
                raise ShapeError(f"Mesh boundary_tags[{name!r}]", f"(K,) nodes or (K, {facet_k}) facets", arr.shape)
            arr.setflags(write=False)
            out[name] = arr
        return out

    # -- basic properties --------------------------------------------------------------------------
    @property
    def points(self) -> np.ndarray:
        """Node coordinates ``(N, d)`` (read-only)."""
        return self._points

    @property
    def cells(self) -> dict[str, np.ndarray]:
        """``{cell type: (M, k) int64}`` (read-only arrays)."""
        return dict(self._cells)

    @property
    def boundary_tags(self) -> dict[str, np.ndarray]:
        """``{name: node indices (K,) or facets (K, k)}`` (read-only arrays)."""
        return dict(self._tags)

    @property
    def cell_types(self) -> tuple[str, ...]:
        return tuple(self._cells)

    @property
    def ndim(self) -> int:
        """Geometric dimension d of the coordinates."""
        return int(self._points.shape[1])

    @property
    def tdim(self) -> int:
        """Topological dimension of the cells (1 lines, 2 triangles/quads, 3 tetrahedra)."""
        return self._tdim

    @property
    def n_points(self) -> int:
        return int(len(self._points))

    @property
    def n_cells(self) -> int:
        return int(sum(len(c) for c in self._cells.values()))

    @property
    def shape(self) -> tuple[int]:
        """``(n_points,)``: the shape of a nodal scalar field (what :class:`~sciml.fields.Field` checks)."""
        return (self.n_points,)

    @property
    def bbox(self) -> np.ndarray:
        """``(2, d)`` array ``[lo, hi]`` of the coordinates."""
        return np.stack([self._points.min(axis=0), self._points.max(axis=0)])

    # -- topology ----------------------------------------------------------------------------------
    def boundary_facets(self) -> np.ndarray:
        """Facets that belong to exactly one cell, ``(F, k)``, ordered as in their cell.

        For positively oriented cells the order gives outward normals (edges run counter-clockwise
        around a 2-D mesh). For a line mesh the facets are end nodes, ``(F, 1)``.
        """
        self._require_intact("boundary_facets")
        if self._boundary is None:
            facets = np.concatenate([c[:, _FACETS[t]].reshape(-1, _FACETS[t].shape[1]) for t, c in self._cells.items()])
            _, first, counts = np.unique(np.sort(facets, axis=1), axis=0, return_index=True, return_counts=True)
            self._boundary = facets[np.sort(first[counts == 1])]
            self._boundary.setflags(write=False)
        return self._boundary

    def boundary_nodes(self) -> np.ndarray:
        """Sorted indices of the nodes on boundary facets."""
        return np.unique(self.boundary_facets())

    def tag_nodes(self, name: str) -> np.ndarray:
        """Sorted node indices of boundary tag ``name`` (node sets as they are, facet sets flattened)."""
        check_name("boundary tag", name, self._tags)
        return np.unique(self._tags[name])

    # -- geometry ----------------------------------------------------------------------------------
    def _orientable(self) -> bool:
        return self._tdim == self.ndim

    def _require_intact(self, what: str) -> None:
        if self._broken is not None:
            raise InvalidMeshError(f"Mesh.{what}: the mesh is broken ({self._broken}); see Mesh.validate()")

    def _block_measures(self, ctype: str, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Signed volume, scaled Jacobian (min over corners, 1 for the ideal cell) and longest edge."""
        return measures(ctype, self._points[cells], self._orientable())

    def cell_volumes(self) -> dict[str, np.ndarray]:
        """Length/area/volume per cell, signed when the cells fill the space (2-D cells in 2-D...)."""
        self._require_intact("cell_volumes")
        return {t: self._block_measures(t, c)[0] for t, c in self._cells.items()}

    def scaled_jacobians(self) -> dict[str, np.ndarray]:
        """Minimum corner Jacobian over edge-length products per cell, in [-1, 1]; 1 for equilateral
        triangles, squares and regular tetrahedra, <= 0 for inverted or degenerate cells."""
        self._require_intact("scaled_jacobians")
        return {t: self._block_measures(t, c)[1] for t, c in self._cells.items()}

    def quality(self) -> dict[str, float]:
        """Summary shape metrics.

        Returns
        -------
        dict
            ``min_scaled_jacobian``, ``mean_scaled_jacobian``, ``volume_ratio`` (smallest over
            largest absolute cell volume), and for triangles ``min_angle`` / ``max_angle`` in
            degrees (NaN without triangles).
        """
        self._require_intact("quality")
        vols, sjs = [], []
        for t, c in self._cells.items():
            v, s, _ = self._block_measures(t, c)
            vols.append(np.abs(v))
            sjs.append(s)
        vol, sj = np.concatenate(vols), np.concatenate(sjs)
        angles = triangle_angles(self._points[self._cells["triangle"]]) if "triangle" in self._cells else None
        return {
            "n_cells": float(self.n_cells),
            "min_scaled_jacobian": float(sj.min()),
            "mean_scaled_jacobian": float(sj.mean()),
            "volume_ratio": float(vol.min() / vol.max()) if vol.max() > 0 else 0.0,
            "min_angle": float(angles.min()) if angles is not None else math.nan,
            "max_angle": float(angles.max()) if angles is not None else math.nan,
        }

    # -- validation --------------------------------------------------------------------------------
    def _structure_report(self) -> MeshReport:
        n = self.n_points
        nonfinite = np.flatnonzero(~np.isfinite(self._points).all(axis=1))
        out_of_range = {t: np.flatnonzero(((c < 0) | (c >= n)).any(axis=1)) for t, c in self._cells.items()}
        bad_tags = {}
        for name, idx in self._tags.items():
            bad = (idx < 0) | (idx >= n)
            if bad.any():
                bad_tags[name] = f"{int(bad.sum())} node index(es) outside [0, {n}): {_show(idx[bad].ravel())}"
        return MeshReport(n, self.n_cells, nonfinite, {t: i for t, i in out_of_range.items() if len(i)}, bad_tags)

    def validate(self, raise_on_error: bool = True, tol: float | None = None) -> MeshReport:
        """Check the mesh and report (or raise on) every problem found.

        Parameters
        ----------
        raise_on_error : bool
            Raise InvalidMeshError naming the offending cells/nodes (default) instead of returning
            a report with problems.
        tol : float, optional
            Distance under which two nodes are duplicates; ``1e-10 * diameter`` by default.

        Returns
        -------
        MeshReport
        """
        from scipy.spatial import cKDTree

        base = self._structure_report()
        finite = np.isfinite(self._points).all(axis=1)
        inverted, degenerate = {}, {}
        for t, c in self._cells.items():
            usable = np.ones(len(c), dtype=bool)
            if t in base.out_of_range:
                usable[base.out_of_range[t]] = False
            usable[usable] = finite[c[usable]].all(axis=1)
            idx = np.flatnonzero(usable)
            vol, sj, hmax = self._block_measures(t, c[idx])
            degen = np.abs(vol) <= _DEGENERATE * hmax**self._tdim
            if degen.any():
                degenerate[t] = idx[degen]
            if self._orientable():
                inv = (sj < 0) & ~degen
                if inv.any():
                    inverted[t] = idx[inv]
        pts = self._points[finite]
        if tol is None:
            tol = 1e-10 * float(np.linalg.norm(np.ptp(pts, axis=0))) if len(pts) else 0.0
        elif not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
            raise ConfigError(f"Mesh.validate: expected a finite tol >= 0, got {tol!r}")
        pairs = np.empty((0, 2), dtype=np.int64)
        if len(pts) > 1:
            found = cKDTree(pts).query_pairs(tol, output_type="ndarray")
            pairs = np.sort(np.flatnonzero(finite)[found], axis=1) if len(found) else pairs
            pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else pairs
        used = np.zeros(self.n_points, dtype=bool)
        for c in self._cells.values():
            valid = c[(c >= 0) & (c < self.n_points)]
            used[valid] = True
        report = MeshReport(base.n_points, base.n_cells, base.nonfinite_nodes, base.out_of_range, base.bad_tags,
                            inverted, degenerate, pairs, np.flatnonzero(~used))
        if raise_on_error:
            report.raise_if_invalid("Mesh.validate")
        return report

    # -- constructors and conversion ---------------------------------------------------------------
    @classmethod
    def from_grid(cls, grid: Grid, cell_type: str | None = None) -> Mesh:
        """Mesh the nodes of a :class:`~sciml.fields.Grid` (same node order as ``grid.points()``).

        1-D grids give lines, 2-D grids triangles (each square cut along its rising diagonal) or
        quads (``cell_type="quad"``), 3-D grids tetrahedra (6 per cube, Kuhn subdivision, conforming).
        Boundary tags ``xmin, xmax, ymin, ymax, zmin, zmax`` hold the facets (nodes in 1-D) on each
        side of the box, so ``Field(values.reshape(-1), mesh)`` carries grid values unchanged.
        """
        from ..grid import Grid

        if not isinstance(grid, Grid):
            raise ConfigError(f"Mesh.from_grid: expected a Grid, got {type(grid).__name__}")
        allowed = {1: ("line",), 2: ("triangle", "quad"), 3: ("tetra",)}[grid.ndim]
        cell_type = cell_type or allowed[0]
        check_name(f"cell type for a {grid.ndim}-D grid", cell_type, allowed)
        index = np.arange(grid.size).reshape(grid.shape)
        if grid.ndim == 1:
            cells = np.stack([index[:-1], index[1:]], axis=1)
        elif grid.ndim == 2:
            a, b, c, d = index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]
            quads = np.stack([a, b, c, d], axis=-1).reshape(-1, 4)
            cells = quads if cell_type == "quad" else np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
        else:
            cells = kuhn_tetrahedra(index)
        pts = grid.points()
        mesh = cls(pts, {cell_type: cells})
        facets = mesh.boundary_facets()
        tags: dict[str, np.ndarray] = {}
        for axis, name in enumerate("xyz"[: grid.ndim]):
            lo, hi = grid.bounds[axis]
            coord = pts[facets, axis]
            tags[f"{name}min"] = facets[(coord == lo).all(axis=1)]
            tags[f"{name}max"] = facets[(coord == hi).all(axis=1)]
        return cls(pts, {cell_type: cells}, boundary_tags=tags)

    @classmethod
    def read(cls, path: str | PathLike[str], file_format: str | None = None, check: bool = True) -> Mesh:
        """Read a mesh file through meshio (``.msh``, ``.vtu``, ``.xdmf``, ...), with its tags.

        Tags come from gmsh physical groups of lower dimension (names from ``$PhysicalNames``) or
        from ``tag:<name>`` point/cell data written by :meth:`write`. 2-D meshes stored with a zero
        z coordinate come back 2-D. Corrupt, foreign or unsupported files raise InvalidMeshError
        naming the path and the reason.
        """
        from ._mesh_io import read_mesh

        return read_mesh(cls, path, file_format=file_format, check=check)

    def write(self, path: str | PathLike[str], file_format: str | None = None) -> str:
        """Write through meshio; ``.msh`` is written as ASCII gmsh 2.2 with tags as physical groups.

        Returns the path written.
        """
        from ._mesh_io import write_mesh

        return write_mesh(self, path, file_format=file_format)

    def to_meshio(self, point_data: Mapping[str, Any] | None = None) -> Any:
        """A ``meshio.Mesh`` with the cells, tags (as ``tag:<name>`` data) and optional point data."""
        from ._mesh_io import to_meshio

        return to_meshio(self, point_data=point_data)

    def to_pyvista(self, point_data: Mapping[str, Any] | None = None) -> Any:
        """A ``pyvista.UnstructuredGrid`` (points padded to 3-D) with optional nodal arrays."""
        import pyvista as pv

        vtk_types = {"line": pv.CellType.LINE, "triangle": pv.CellType.TRIANGLE,
                     "quad": pv.CellType.QUAD, "tetra": pv.CellType.TETRA}
        pts = np.zeros((self.n_points, 3))
        pts[:, : self.ndim] = self._points
        grid = pv.UnstructuredGrid({vtk_types[t]: c for t, c in self._cells.items()}, pts)
        for name, values in (point_data or {}).items():
            arr = np.asarray(values)
            if arr.shape[0] != self.n_points:
                raise ShapeError(f"point_data[{name!r}]", (self.n_points, "..."), arr.shape)
            grid.point_data[name] = arr
        return grid

    def __repr__(self) -> str:
        blocks = ", ".join(f"{len(c)} {t}" for t, c in self._cells.items())
        tags = f", tags={sorted(self._tags)}" if self._tags else ""
        return f"Mesh({self.n_points} nodes in {self.ndim}-D, {blocks}{tags})"
