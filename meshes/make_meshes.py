"""Write the small meshes shipped in ``meshes/`` (deterministic; numpy and scipy only, no gmsh).

* ``unit_disk.msh``: triangles of the unit disk made of concentric rings (ring k has 6k nodes,
  neighbouring rings zipped together by angle), boundary tag ``circle`` (the outer edges).
* ``l_shape.msh``: triangles of the L-shaped domain ``[-1, 1]^2 minus (0, 1] x [-1, 0)`` from a
  Delaunay triangulation of structured boundary nodes and slightly jittered interior lattice
  nodes, cells in the notch removed; boundary tags ``reentrant`` (the two edges meeting at the
  re-entrant corner (0, 0)) and ``outer`` (the rest).

Run from anywhere: ``python meshes/make_meshes.py``. Each mesh is validated and its area checked
before it is written.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.spatial import Delaunay

from sciml.geometry import Mesh

HERE = Path(__file__).resolve().parent


def ring_disk(rings: int = 16) -> Mesh:
    """Unit disk from ``rings`` concentric rings: ``1 + 3 rings (rings + 1)`` nodes, ``6 rings^2`` triangles."""
    points = [np.zeros((1, 2))]
    starts = [0]  # index of each ring's first node
    for k in range(1, rings + 1):
        angle = 2.0 * np.pi * np.arange(6 * k) / (6 * k)
        points.append((k / rings) * np.stack([np.cos(angle), np.sin(angle)], axis=1))
        starts.append(starts[-1] + (1 if k == 1 else 6 * (k - 1)))
    triangles = []
    for k in range(1, rings + 1):
        n_in, n_out = max(6 * (k - 1), 1), 6 * k
        first_in, first_out = starts[k - 1], starts[k]
        i = j = 0
        # Walk both rings counter-clockwise, always advancing the one whose next node comes first,
        # so every triangle joins two neighbouring nodes of one ring to a node of the other.
        while j < n_out or (k > 1 and i < n_in):
            next_in = 2.0 * np.pi * (i + 1) / n_in if (k > 1 and i < n_in) else math.inf
            next_out = 2.0 * np.pi * (j + 1) / n_out if j < n_out else math.inf
            if next_out <= next_in:
                triangles.append((first_in + i % n_in, first_out + j, first_out + (j + 1) % n_out))
                j += 1
            else:
                triangles.append((first_in + i, first_out + j % n_out, first_in + (i + 1) % n_in))
                i += 1
    cells = np.array(triangles)
    outer_ring = starts[rings] + np.arange(6 * rings)
    circle = np.stack([outer_ring, np.roll(outer_ring, -1)], axis=1)
    return Mesh(np.concatenate(points), {"triangle": cells}, boundary_tags={"circle": circle})


def l_shape(n: int = 16, jitter: float = 0.15, seed: int = 0) -> Mesh:
    """L-shaped domain with ``n`` cells per unit length."""
    h = 1.0 / n
    corners = np.array([[-1, -1], [0, -1], [0, 0], [1, 0], [1, 1], [-1, 1]], dtype=np.float64)
    boundary = []
    for a, b in zip(corners, np.roll(corners, -1, axis=0)):
        m = int(round(np.linalg.norm(b - a) / h))
        boundary.append(a + np.arange(m)[:, None] / m * (b - a))
    lattice = np.stack(np.meshgrid(np.arange(-n + 1, n) * h, np.arange(-n + 1, n) * h, indexing="ij"), -1).reshape(-1, 2)
    interior = lattice[~((lattice[:, 0] >= -1e-12) & (lattice[:, 1] <= 1e-12))]
    rng = np.random.default_rng(seed)
    interior = interior + rng.uniform(-jitter * h, jitter * h, size=interior.shape)
    points = np.concatenate([*boundary, interior])
    tri = Delaunay(points).simplices
    centroid = points[tri].mean(axis=1)
    tri = tri[~((centroid[:, 0] > 0) & (centroid[:, 1] < 0))]
    # Qhull does not promise an orientation: make every triangle counter-clockwise.
    e1, e2 = points[tri[:, 1]] - points[tri[:, 0]], points[tri[:, 2]] - points[tri[:, 0]]
    flip = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] < 0
    tri[flip] = tri[flip][:, [0, 2, 1]]
    facets = Mesh(points, {"triangle": tri}).boundary_facets()
    p = points[facets]
    on_x0 = np.all(np.isclose(p[..., 0], 0.0) & (p[..., 1] <= 1e-12), axis=1)
    on_y0 = np.all(np.isclose(p[..., 1], 0.0) & (p[..., 0] >= -1e-12), axis=1)
    reentrant = on_x0 | on_y0
    tags = {"reentrant": facets[reentrant], "outer": facets[~reentrant]}
    return Mesh(points, {"triangle": tri}, boundary_tags=tags)


def _check(mesh: Mesh, area: float, name: str) -> None:
    mesh.validate()  # raises InvalidMeshError on any inverted/degenerate cell, orphan or duplicate node
    total = float(np.sum(mesh.cell_volumes()["triangle"]))
    if abs(total - area) > 1e-10 * area:
        raise RuntimeError(f"{name}: total area {total!r}, expected {area!r}")
    covered = np.unique(np.concatenate([mesh.tag_nodes(t) for t in mesh.boundary_tags]))
    if not np.array_equal(covered, mesh.boundary_nodes()):
        raise RuntimeError(f"{name}: boundary tags do not cover the boundary nodes")


def main() -> None:
    disk = ring_disk()
    rings = 16
    # The ring polygon's area: 6k-gons inscribed in the unit circle.
    _check(disk, 0.5 * 6 * rings * math.sin(2 * math.pi / (6 * rings)), "unit_disk")
    lshape = l_shape()
    _check(lshape, 3.0, "l_shape")
    for name, mesh in (("unit_disk.msh", disk), ("l_shape.msh", lshape)):
        path = mesh.write(HERE / name)
        print(f"{path}: {mesh}, quality {mesh.quality()}, {Path(path).stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
