"""Finite differences for the Poisson equation on a domain made of grid cells (L-shapes, holes).

Solves

.. math::  -\\Delta u = f \\ \\text{in } \\Omega, \\qquad u = g \\ \\text{on } \\partial\\Omega

for a domain ``Omega`` whose boundary runs along grid lines (an L-shape, a box with a rectangular hole,
any union of grid cells), on a node-based 2-D or 3-D :class:`~sciml.fields.Grid`, in float64. The
domain is given by the mask of its *interior nodes*: the unknowns. Every other node is a Dirichlet
node that carries ``g`` (boundary nodes) or is never used (nodes outside). Because the boundary is
grid-aligned, every neighbour of an interior node is either interior or on the boundary, and the
5-point (2-D) / 7-point (3-D) stencil is the usual second-order one: no cut cells, no ghost values.

The reference of PINN examples on such domains (``examples/09_pinn_lshape.py``,
``benchmarks/pinn_deepxde_examples.py``). The solution has the corner singularity of the
continuous problem (``r^{2/3}`` at the re-entrant corner of an L-shape), so the discretisation error
decays more slowly than ``h^2`` in the maximum norm near that corner; the tests measure the order on
a smooth manufactured solution.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._checks import as_float_array
from ..errors import ArgumentValueError, DTypeError, ShapeError
from ..fields import Grid

__all__ = ["interior_mask", "solve_poisson_masked"]


def interior_mask(grid: Grid, domain: Any) -> np.ndarray:
    """Nodes of ``grid`` strictly inside ``domain`` (a :class:`~sciml.geometry.Domain`): the unknowns.

    Returns a boolean array of the grid's shape: inside the domain and not on its boundary.
    """
    points = grid.points()
    inside = np.asarray(domain.inside(points), dtype=bool) & ~np.asarray(domain.on_boundary(points), dtype=bool)
    return inside.reshape(grid.shape)


def _check_mask(mask: Any, grid: Grid) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != tuple(grid.shape):
        raise ShapeError("solve_poisson_masked mask (the grid's shape)", tuple(grid.shape), mask.shape)
    if mask.dtype != bool:
        raise DTypeError(f"solve_poisson_masked: expected a boolean mask, got dtype {mask.dtype}")
    if not mask.any():
        raise ArgumentValueError("solve_poisson_masked mask", "expected at least one interior node, got none")
    if (mask & grid.boundary_mask()).any():
        raise ArgumentValueError("solve_poisson_masked mask", "interior nodes on the edge of the grid have no "
                                 "neighbour outside; leave at least one Dirichlet node around the domain")
    return mask


def _node_values(name: str, value: Any, grid: Grid) -> np.ndarray:
    if callable(value):
        value = value(*np.meshgrid(*grid.axes, indexing="ij"))
    value = as_float_array(name, value)
    if value.ndim == 0:
        return np.full(grid.shape, float(value))
    if value.size != grid.size:
        raise ShapeError(f"solve_poisson_masked {name} (a number, a callable of the coordinates or the "
                         f"node values)", tuple(grid.shape), value.shape)
    return value.reshape(grid.shape)


def solve_poisson_masked(f: Any, mask: Any, grid: Grid, g: Any = 0.0) -> np.ndarray:
    """Solve ``-Laplace(u) = f`` at the ``mask`` nodes with ``u = g`` at the other nodes.

    Parameters
    ----------
    f, g : float, callable or array
        Source and Dirichlet values: a number, a callable of the coordinates (one array per axis), or
        values at every node of ``grid`` (flat or of its shape).
    mask : bool array of ``grid.shape``
        The interior nodes (unknowns), e.g. :func:`interior_mask`; none on the edge of the grid.
    grid : Grid
        A 2-D or 3-D node grid; the spacing may differ between axes.

    Returns
    -------
    numpy.ndarray
        ``u`` at every node, of the grid's shape: the solution on the mask, ``g`` elsewhere (callers
        that want the outside blank set it to NaN with the domain's mask).
    """
    if grid.ndim not in (2, 3):
        raise ArgumentValueError("solve_poisson_masked grid", f"expected a 2-D or 3-D grid, got {grid.ndim}-D")
    mask = _check_mask(mask, grid)
    f_nodes, u = _node_values("f", f, grid), _node_values("g", g, grid).copy()
    number = -np.ones(grid.shape, dtype=np.int64)
    number[mask] = np.arange(int(mask.sum()))
    rows, cols, vals = [], [], []
    rhs = f_nodes[mask].copy()
    diagonal = np.zeros(int(mask.sum()))
    centre = np.argwhere(mask)
    for axis, h in enumerate(grid.spacing):
        weight = 1.0 / float(h) ** 2
        diagonal += 2 * weight
        for shift in (-1, 1):
            neighbour = centre.copy()
            neighbour[:, axis] += shift
            index = tuple(neighbour.T)
            unknown = number[index]
            inside = unknown >= 0
            rows.append(number[tuple(centre[inside].T)])
            cols.append(unknown[inside])
            vals.append(np.full(int(inside.sum()), -weight))
            rhs[~inside] += weight * u[index][~inside]  # Dirichlet neighbour: to the right-hand side
    n = diagonal.size
    A = sp.csr_matrix((np.concatenate([diagonal, *vals]),
                       (np.concatenate([np.arange(n), *rows]), np.concatenate([np.arange(n), *cols]))),
                      shape=(n, n))
    u[mask] = spla.spsolve(A.tocsc(), rhs)
    return u
