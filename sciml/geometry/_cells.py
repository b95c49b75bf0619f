"""Per-cell geometry of linear cells: signed volumes, scaled Jacobians, angles, and the Kuhn split.

The scaled Jacobian of a cell is the smallest, over its corners, of the corner Jacobian (the
determinant of the edge vectors leaving the corner, in the cell's orientation) divided by the
product of those edges' lengths, normalised so that the ideal cell scores 1: equilateral
triangle (factor 2/sqrt(3)), square, regular tetrahedron (factor sqrt(2)). It is negative for
inverted corners and zero for degenerate ones.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CELL_TYPES", "kuhn_tetrahedra", "measures", "triangle_angles"]

# Linear cell type -> (nodes per cell, topological dimension).
CELL_TYPES: dict[str, tuple[int, int]] = {"line": (2, 1), "triangle": (3, 2), "quad": (4, 2), "tetra": (4, 3)}


def kuhn_tetrahedra(index: np.ndarray) -> np.ndarray:
    """Split every cube of a 3-D node-index array into the 6 tetrahedra along its main diagonal.

    Each tetrahedron walks from corner (0,0,0) to (1,1,1) one axis at a time; the splitting is the
    same in every cube, so faces match between neighbours. Odd axis orders are mirrored, hence the
    swap that keeps every tetrahedron positively oriented.
    """
    from itertools import permutations

    nx, ny, nz = (s - 1 for s in index.shape)
    tets = []
    for order in permutations(range(3)):
        offset = np.zeros(3, dtype=int)
        corners = [index[:nx, :ny, :nz]]
        for axis in order:
            offset[axis] = 1
            o = offset
            corners.append(index[o[0]: o[0] + nx, o[1]: o[1] + ny, o[2]: o[2] + nz])
        tet = np.stack(corners, axis=-1).reshape(-1, 4)
        inversions = sum(order[i] > order[j] for i in range(3) for j in range(i + 1, 3))
        if inversions % 2:
            tet = tet[:, [0, 2, 1, 3]]
        tets.append(tet)
    return np.concatenate(tets)


def _cross2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _corner_values(p: np.ndarray, orientable: bool) -> tuple[np.ndarray, np.ndarray]:
    """Corner Jacobians and edge-length products of polygons ``p`` (M, k, d), k = 3 or 4."""
    k = p.shape[1]
    e1 = np.roll(p, -1, axis=1) - p  # to the next corner
    e2 = np.roll(p, 1, axis=1) - p  # to the previous corner
    if p.shape[2] == 2:
        jac = _cross2(e1, e2)
    else:
        normal = np.cross(p[:, 2] - p[:, 0], p[:, 3 % k] - p[:, 1]) if k == 4 else np.cross(e1[:, 0], e2[:, 0])
        nn = np.linalg.norm(normal, axis=-1, keepdims=True)
        normal = np.divide(normal, nn, out=np.zeros_like(normal), where=nn > 0)
        jac = (np.cross(e1, e2) * normal[:, None, :]).sum(-1)
        if not orientable:
            jac = np.abs(jac)
    lengths = np.linalg.norm(e1, axis=-1) * np.linalg.norm(e2, axis=-1)
    return jac, lengths


def measures(ctype: str, p: np.ndarray, orientable: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed volume, scaled Jacobian and longest edge of cells with coordinates ``p`` (M, k, d)."""
    if len(p) == 0:
        empty = np.empty(0)
        return empty, empty, empty
    d = p.shape[2]
    edges = p[:, :, None, :] - p[:, None, :, :]
    hmax = np.linalg.norm(edges, axis=-1).reshape(len(p), -1).max(axis=1)
    if ctype == "line":
        e = p[:, 1] - p[:, 0]
        vol = e[:, 0] if d == 1 else np.linalg.norm(e, axis=1)
        return vol, np.sign(vol), hmax
    if ctype == "tetra":
        corners = [(0, 1, 2, 3), (1, 2, 0, 3), (2, 0, 1, 3), (3, 0, 2, 1)]
        dets, lens = [], []
        for c0, c1, c2, c3 in corners:
            m = np.stack([p[:, c1] - p[:, c0], p[:, c2] - p[:, c0], p[:, c3] - p[:, c0]], axis=1)
            dets.append(np.linalg.det(m))
            lens.append(np.prod(np.linalg.norm(m, axis=-1), axis=1))
        det, length = np.stack(dets, axis=1), np.stack(lens, axis=1)
        sj = np.divide(det, length, out=np.zeros_like(det), where=length > 0) * math.sqrt(2.0)
        return dets[0] / 6.0, np.clip(sj.min(axis=1), -1.0, 1.0), hmax
    jac, length = _corner_values(p, orientable)
    sj = np.divide(jac, length, out=np.zeros_like(jac), where=length > 0)
    if ctype == "triangle":
        sj = sj * (2.0 / math.sqrt(3.0))  # an equilateral triangle's corners have sin(60 deg)
        vol = 0.5 * jac[:, 0]
    elif d == 2:
        vol = 0.5 * _cross2(p, np.roll(p, -1, axis=1)).sum(axis=1)  # shoelace
    else:
        vol = 0.5 * np.linalg.norm(np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]), axis=-1)
    return vol, np.clip(sj.min(axis=1), -1.0, 1.0), hmax


def triangle_angles(p: np.ndarray) -> np.ndarray:
    """Interior angles in degrees, ``(M, 3)``."""
    e1 = np.roll(p, -1, axis=1) - p
    e2 = np.roll(p, 1, axis=1) - p
    dot = (e1 * e2).sum(-1)
    norm = np.linalg.norm(e1, axis=-1) * np.linalg.norm(e2, axis=-1)
    cos = np.divide(dot, norm, out=np.ones_like(dot), where=norm > 0)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
