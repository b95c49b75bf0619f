"""Mesh file I/O through meshio, carrying boundary tags both ways.

Tags are stored in the form each format understands:

* gmsh ``.msh`` (written as ASCII MSH 2.2, the version every tool reads): each tag is a physical
  group of lower dimension: facet tags as ``line``/``triangle`` elements, node tags as ``vertex``
  elements, names in ``$PhysicalNames``. Domain cells carry physical id 0 ("no group"). Reading
  foreign gmsh files works the same way: groups of lower dimension become tags (unnamed ones
  ``physical_<id>``), groups of full dimension (subdomains) are ignored.
* every other format (``.vtu``, ``.xdmf``, ``.vtk``...): node tags as ``tag:<name>`` point-data masks,
  facet tags as one extra cell block of facets with ``tag:<name>`` cell-data masks.

meshio is imported here only, and only when a file is read or written. meshio reports some
problems by printing; that output is captured and logged at DEBUG level.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InvalidMeshError, SciMLError, ShapeError
from ._cells import CELL_TYPES

# The Mesh class calls into this module (Mesh.read / write / to_meshio) and passes itself in, so it is
# not imported here; ``Mesh`` in the annotations below means sciml.geometry.mesh.Mesh.
Mesh = Any

__all__ = ["read_mesh", "write_mesh", "to_meshio", "from_meshio"]

_LOG = logging.getLogger(__name__)
_TAG = "tag:"
_FACET_TYPE = {2: "line", 3: "triangle"}  # nodes per facet -> meshio cell type
_TDIM = {**{t: d for t, (_, d) in CELL_TYPES.items()}, "vertex": 0}


@contextlib.contextmanager
def _captured(what: str) -> Iterator[io.StringIO]:
    """Capture what meshio prints (it reports some problems on stdout/stderr) and log it."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        if buffer.getvalue().strip():
            _LOG.debug("meshio (%s) printed: %s", what, buffer.getvalue().strip())


def _is_gmsh(path: Path, file_format: str | None) -> bool:
    if file_format is not None:
        return file_format.startswith("gmsh")
    return path.suffix.lower() == ".msh"


def to_meshio(mesh: Mesh, point_data: Mapping[str, Any] | None = None, gmsh: bool = False) -> Any:
    """Convert to ``meshio.Mesh`` (tags encoded for gmsh or for the other formats, see module doc)."""
    import meshio

    pts = np.zeros((mesh.n_points, 3))
    pts[:, : mesh.ndim] = mesh.points  # VTK-family formats want 3-D points
    cells: list[tuple[str, np.ndarray]] = [(t, np.asarray(c)) for t, c in mesh.cells.items()]
    data: dict[str, Any] = {}
    for name, values in (point_data or {}).items():
        arr = np.asarray(values)
        if arr.shape[:1] != (mesh.n_points,):
            raise ShapeError(f"point_data[{name!r}]", (mesh.n_points, "..."), arr.shape)
        data[name] = arr
    tags = mesh.boundary_tags
    if gmsh:
        physical = [np.zeros(len(c), dtype=np.int32) for _, c in cells]
        field_data = {}
        for i, (name, idx) in enumerate(tags.items(), start=1):
            ctype = "vertex" if idx.ndim == 1 else _FACET_TYPE.get(idx.shape[1], "vertex")
            block = idx[:, None] if idx.ndim == 1 else idx
            if ctype == "vertex" and block.shape[1] != 1:  # facets of a line mesh are nodes
                block = block.reshape(-1, 1)
            cells.append((ctype, block))
            physical.append(np.full(len(block), i, dtype=np.int32))
            field_data[name] = np.array([i, _TDIM[ctype]])
        return meshio.Mesh(pts, cells, point_data=data,
                           cell_data={"gmsh:physical": physical, "gmsh:geometrical": physical},
                           field_data=field_data)
    facet_tags = {n: idx for n, idx in tags.items() if idx.ndim == 2}
    for name, idx in tags.items():
        if idx.ndim == 1:
            mask = np.zeros(mesh.n_points, dtype=np.uint8)
            mask[idx] = 1
            data[_TAG + name] = mask
    cell_data: dict[str, list[np.ndarray]] = {}
    if facet_tags:
        k = next(iter(facet_tags.values())).shape[1]
        union = np.unique(np.sort(np.concatenate(list(facet_tags.values())), axis=1), axis=0)
        cells.append((_FACET_TYPE[k], union))
        for name, idx in facet_tags.items():
            mask = np.isin(_row_keys(union), _row_keys(np.sort(idx, axis=1))).astype(np.uint8)
            cell_data[_TAG + name] = [np.zeros(len(c), dtype=np.uint8) for _, c in cells[:-1]] + [mask]
    return meshio.Mesh(pts, cells, point_data=data, cell_data=cell_data)


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """One void-dtype scalar per row, so rows can be compared with np.isin."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


def from_meshio(cls: type[Mesh], m: Any, source: str = "meshio mesh", check: bool = True) -> Mesh:
    """Build a Mesh from a ``meshio.Mesh``: full-dimensional linear cells plus tags (module doc)."""
    blocks = [(c.type, np.asarray(c.data)) for c in m.cells if len(c.data)]
    unsupported = sorted({t for t, _ in blocks if t not in _TDIM})
    if unsupported:
        # Higher-order or hexahedral cells: refusing is better than silently dropping them.
        raise InvalidMeshError(
            f"{source}: unsupported cell type(s) {unsupported}; sciml meshes hold linear "
            "line, triangle, quad and tetra cells"
        )
    known = [t for t, _ in blocks if t in _TDIM]
    if not known or max(_TDIM[t] for t in known) == 0:
        found = sorted({t for t, _ in blocks}) or "no cells"
        raise InvalidMeshError(f"{source}: expected line, triangle, quad or tetra cells, found {found}")
    tdim = max(_TDIM[t] for t in known)
    cells: dict[str, list[np.ndarray]] = {}
    for ctype, data in blocks:
        if _TDIM[ctype] == tdim:
            cells.setdefault(ctype, []).append(data)
    points = np.asarray(m.points, dtype=np.float64)
    gdim = points.shape[1]
    # 2-D meshes come back from most formats with a zero z column: drop trailing zero coordinates.
    while gdim > max(tdim, 1) and not np.any(points[:, gdim - 1]):
        gdim -= 1
    tags = _read_tags(m, blocks, tdim)
    return cls(points[:, :gdim], {t: np.concatenate(v) for t, v in cells.items()},
               boundary_tags=tags, check=check)


def _read_tags(m: Any, blocks: list[tuple[str, np.ndarray]], tdim: int) -> dict[str, np.ndarray]:
    facet_k = {1: 1, 2: 2, 3: 3}[tdim]
    parts: dict[str, list[np.ndarray]] = {}

    def add(name: str, ctype: str, rows: np.ndarray) -> None:
        if not len(rows):
            return
        # Facets of the right size stay facets; anything else (corner points, edges of a 3-D mesh)
        # becomes the node set it covers.
        parts.setdefault(name, []).append(rows if rows.shape[1] == facet_k and _TDIM[ctype] == tdim - 1 else rows.ravel())

    cell_data = {k: v for k, v in m.cell_data.items()}
    physical = cell_data.get("gmsh:physical")
    if physical is not None:
        names = {(int(v[0]), int(v[1])): k for k, v in (m.field_data or {}).items() if np.size(v) >= 2}
        cell_blocks = [(c.type, np.asarray(c.data)) for c in m.cells]
        for (ctype, data), ids in zip(cell_blocks, physical):
            if ctype not in _TDIM or _TDIM[ctype] >= tdim or not len(data):
                continue
            for pid in np.unique(ids):
                if pid == 0:
                    continue
                name = names.get((int(pid), _TDIM[ctype]), f"physical_{int(pid)}")
                add(name, ctype, data[np.asarray(ids) == pid])
    for key, masks in cell_data.items():
        if key.startswith(_TAG):
            for c, mask in zip(m.cells, masks):
                if c.type in _TDIM and _TDIM[c.type] < tdim:
                    add(key[len(_TAG):], c.type, np.asarray(c.data)[np.asarray(mask).ravel() != 0])
    for key, mask in m.point_data.items():
        if key.startswith(_TAG):
            parts.setdefault(key[len(_TAG):], []).append(np.flatnonzero(np.asarray(mask).ravel()))
    tags = {}
    for name, pieces in parts.items():
        if all(p.ndim == 2 for p in pieces):
            tags[name] = np.concatenate(pieces)
        else:
            tags[name] = np.unique(np.concatenate([p.ravel() for p in pieces]))
    return tags


def read_mesh(cls: type[Mesh], path: str | os.PathLike[str], file_format: str | None = None,
              check: bool = True) -> Mesh:
    import meshio

    path = Path(path)
    if not path.is_file():
        raise InvalidMeshError(f"cannot read mesh {str(path)!r}: no such file")
    printed = io.StringIO()
    try:
        with _captured(f"read {path}") as printed:
            m = meshio.read(path, file_format=file_format)
    # meshio raises anything from ReadError to IndexError on bad input, and calls sys.exit(1) when
    # no reader accepts a file: neither may escape as such from a library call.
    except (Exception, SystemExit) as exc:
        reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        if isinstance(exc, SystemExit):
            said = " ".join(printed.getvalue().split())
            reason = f"no meshio reader accepts it ({said or 'unknown format'})"
        raise InvalidMeshError(
            f"cannot read mesh {str(path)!r}: {reason} (expected a valid mesh file meshio can read, "
            "e.g. .msh, .vtu, .xdmf)"
        ) from exc
    try:
        return from_meshio(cls, m, source=f"mesh {str(path)!r}", check=check)
    except InvalidMeshError:
        raise
    except SciMLError as exc:
        raise InvalidMeshError(f"mesh {str(path)!r}: {exc}") from exc


def write_mesh(mesh: Mesh, path: str | os.PathLike[str], file_format: str | None = None) -> str:
    import meshio

    path = Path(path)
    gmsh = _is_gmsh(path, file_format)
    if gmsh and file_format not in (None, "gmsh22"):
        raise ConfigError(f"Mesh.write: gmsh files are written as 'gmsh22' (MSH 2.2), got file_format={file_format!r}")
    if not path.parent.is_dir():
        raise ConfigError(f"Mesh.write: directory {str(path.parent)!r} does not exist")
    m = to_meshio(mesh, gmsh=gmsh)
    try:
        with _captured(f"write {path}"):
            if gmsh:
                meshio.write(path, m, file_format="gmsh22", binary=False)
            else:
                meshio.write(path, m, file_format=file_format)
    except Exception as exc:
        raise ConfigError(f"Mesh.write: cannot write {str(path)!r}: {type(exc).__name__}: {exc}") from exc
    return str(path)
