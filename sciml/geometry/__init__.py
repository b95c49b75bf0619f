"""Geometry: continuous domains for point sampling and unstructured meshes.

* :class:`Domain`: intervals, rectangles, boxes, disks, balls, polygons and their CSG combinations;
  point queries run on deepxde.geometry, imported (with its side effects contained) on first use.
* :class:`Mesh`: nodes, linear cells and boundary tags; meshio I/O (imported on read/write),
  :meth:`Mesh.validate` returning a :class:`MeshReport`, and quality metrics.

Importing this package imports neither deepxde nor meshio (nor torch, scipy or pyvista).
"""

from __future__ import annotations

from .domain import SAMPLING_METHODS, Domain
from .mesh import CELL_TYPES, Mesh, MeshReport

__all__ = ["Domain", "Mesh", "MeshReport", "SAMPLING_METHODS", "CELL_TYPES"]
