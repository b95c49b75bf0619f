"""Learned interpolation between the uniform periodic grid and a moved mesh (the ItpNets of MM-PDE).

MM-PDE (Hu et al., ICLR 2024) moves node values from the uniform grid onto the moved mesh (``Itp1``) and
back (``Itp2``) with interpolation weights that an MLP computes from the geometry around each query point.
Here both directions use one module, :class:`LearnedInterpolation`, on a logically structured source:

* the query point lies in source cell ``(a, b)`` at local coordinates ``(s, t)`` (for the uniform grid by
  division, for a moved mesh by :func:`~sciml.models.mesh_locate.locate_in_mesh`, the inverse of its bilinear
  map);
* its stencil is the ``4 x 4`` source nodes ``(a + k, b + l)``, ``k, l = -1 .. 2`` (periodic);
* the MLP reads ``(s, t)`` and the 16 offsets ``node - query`` in uniform cells (34 numbers) and returns 16
  corrections, shifted to sum to zero, added to the bilinear weights of ``(s, t)`` (nonzero on the central
  ``2 x 2`` only); the value is ``sum_k w_k v_k``.

So the weights always sum to one (constants are kept), and the MLP's last layer starts at zero: an untrained
interpolation *is* bilinear interpolation (on the uniform grid) or its inverse-bilinear counterpart (on the
moved mesh), both exact for linear functions. The reference took the 30 nearest nodes of a scikit-learn kNN
and an MLP ``62 -> 128 -> 64 -> 30`` from scratch; the cell stencil needs no neighbour search, is exact at
initialisation, and its ``(s, t)`` say where the point sits among the nodes.

:class:`MeshInterpolation` holds ``Itp1`` and ``Itp2`` (two separate MLPs, as in the reference) and does the
geometry: ``to_mesh(u, mesh)``, ``to_uniform(v, mesh)`` and the ``round_trip`` the ItpNets are pretrained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from ..errors import ConfigError, ShapeError
from .mesh_locate import check_mesh, locate_in_mesh, uniform_cells, unit_nodes, wrap

__all__ = ["LearnedInterpolation", "MeshInterpolation", "stencil_indices", "bilinear_stencil_weights",
           "STENCIL"]

#: Node offsets ``k`` (and ``l``) of the 4 x 4 stencil around a cell's lower corner.
STENCIL = (-1, 0, 1, 2)
_K = len(STENCIL) ** 2


def stencil_indices(cell: Tensor, n: int) -> Tensor:
    """Flat node indices ``(B, P, 16)`` (``i * n + j``, periodic) of the 4 x 4 stencils of cells ``(B, P, 2)``,
    ``k`` (along axis 0) slowest."""
    k = torch.tensor(STENCIL, device=cell.device)
    i = torch.remainder(cell[..., 0, None] + k, n)  # (B, P, 4)
    j = torch.remainder(cell[..., 1, None] + k, n)
    return (i[..., :, None] * n + j[..., None, :]).flatten(-2)


def bilinear_stencil_weights(local: Tensor) -> Tensor:
    """Bilinear weights ``(B, P, 16)`` of local coordinates ``(B, P, 2)`` on the 4 x 4 stencil (zero outside
    the central 2 x 2: stencil slots ``(k, l) = (0, 0), (1, 0), (0, 1), (1, 1)``)."""
    s, t = local[..., 0], local[..., 1]
    one_d_s = torch.stack([torch.zeros_like(s), 1 - s, s, torch.zeros_like(s)], dim=-1)  # weights of k
    one_d_t = torch.stack([torch.zeros_like(t), 1 - t, t, torch.zeros_like(t)], dim=-1)
    return (one_d_s[..., :, None] * one_d_t[..., None, :]).flatten(-2)


class LearnedInterpolation(nn.Module):
    """Interpolation weights on a 4 x 4 stencil: bilinear plus an MLP's zero-sum correction (module notes).

    Parameters
    ----------
    hidden : sequence of int
        Hidden widths of the MLP ``34 -> hidden -> 16`` (tanh, as the reference's ItpNet).
    """

    def __init__(self, hidden: Sequence[int] = (32, 32)) -> None:
        super().__init__()
        widths = [check_positive_int("LearnedInterpolation hidden width", h) for h in hidden]
        if not widths:
            raise ConfigError("LearnedInterpolation: expected at least one hidden layer width")
        layers: list[nn.Module] = []
        for a, b in zip([2 + 2 * _K, *widths[:-1]], widths):
            layers += [nn.Linear(a, b), nn.Tanh()]
        last = nn.Linear(widths[-1], _K)
        nn.init.zeros_(last.weight)  # untrained: exactly bilinear
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(*layers, last)

    def weights(self, local: Tensor, offsets: Tensor) -> Tensor:
        """Weights ``(B, P, 16)``, summing to one, from local coordinates ``(B, P, 2)`` and stencil offsets
        ``(B, P, 16, 2)`` in uniform cells."""
        feats = torch.cat([local, offsets.flatten(-2)], dim=-1)
        corr = self.mlp(feats)
        return bilinear_stencil_weights(local) + corr - corr.mean(dim=-1, keepdim=True)

    def forward(self, values: Tensor, nodes: Tensor | None, points: Tensor, cell: Tensor, local: Tensor) -> Tensor:
        """Values ``(B, P)`` at ``points`` ``(B, P, 2)`` of node values ``(B, n, n)`` on a periodic source mesh.

        ``nodes`` ``(B, n, n, 2)`` are the source mesh's node positions (None: the uniform grid), ``cell``
        ``(B, P, 2)`` and ``local`` ``(B, P, 2)`` where each point lies in it.
        """
        if values.ndim != 3 or values.shape[1] != values.shape[2]:
            raise ShapeError("LearnedInterpolation values", "(B, n, n)", tuple(values.shape))
        b, n = values.shape[0], values.shape[1]
        if points.shape[:2] != cell.shape[:2] or cell.shape != local.shape or points.shape[0] != b:
            raise ShapeError("LearnedInterpolation points, cell, local", f"({b}, P, 2) each",
                             (tuple(points.shape), tuple(cell.shape), tuple(local.shape)))
        idx = stencil_indices(cell, n)  # (B, P, 16)
        flat_idx = idx.reshape(b, -1)
        if nodes is None:  # uniform source: node (a + k, b + l) sits at (k - s, l - t) cells from the point
            k = torch.tensor(STENCIL, dtype=local.dtype, device=local.device)
            ok = k[:, None].expand(4, 4).reshape(-1) - local[..., :1]
            ol = k[None, :].expand(4, 4).reshape(-1) - local[..., 1:]
            offsets = torch.stack([ok, ol], dim=-1)
        else:
            src = nodes.reshape(b, n * n, 2)
            at = torch.gather(src, 1, flat_idx[..., None].expand(-1, -1, 2)).reshape(*idx.shape, 2)
            offsets = n * wrap(at - points[..., None, :])
        w = self.weights(local, offsets)
        v = torch.gather(values.reshape(b, n * n), 1, flat_idx).reshape(idx.shape)
        return (w * v).sum(dim=-1)


class MeshInterpolation(nn.Module):
    """``Itp1`` (uniform grid -> moved mesh) and ``Itp2`` (moved mesh -> uniform grid) of MM-PDE.

    Meshes are periodic ``(B, n, n, 2)`` in unit coordinates (:mod:`sciml.models.mesh_locate`); fields are the
    ``n x n`` distinct node values ``(B, n, n)``.

    Parameters
    ----------
    hidden : sequence of int
        Hidden widths of each direction's MLP.
    """

    def __init__(self, hidden: Sequence[int] = (32, 32)) -> None:
        super().__init__()
        self.itp1 = LearnedInterpolation(hidden)
        self.itp2 = LearnedInterpolation(hidden)

    @staticmethod
    def where(mesh: Tensor) -> tuple[Tensor, Tensor]:
        """Cells and local coordinates ``(B, n*n, 2)`` of the uniform nodes in each moved mesh (no grad): what
        :meth:`to_uniform` needs; cache it when the same mesh is used many times."""
        n = check_mesh("MeshInterpolation mesh", mesh)
        return locate_in_mesh(mesh, unit_nodes(n, mesh.dtype, mesh.device).reshape(-1, 2))

    def to_mesh(self, u: Tensor, mesh: Tensor) -> Tensor:
        """``Itp1``: values ``(B, n, n)`` at the moved nodes of ``u`` ``(B, n, n)`` on the uniform grid."""
        n = _check_pair(u, mesh)
        points = mesh.reshape(mesh.shape[0], -1, 2)
        cell, local = uniform_cells(points.detach(), n)
        return self.itp1(u, None, points, cell, local.to(u.dtype)).reshape(u.shape)

    def to_uniform(self, v: Tensor, mesh: Tensor, where: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``Itp2``: values ``(B, n, n)`` on the uniform grid of node values ``v`` ``(B, n, n)`` on the moved
        mesh; ``where`` is :meth:`where` of the mesh (computed when None)."""
        n = _check_pair(v, mesh)
        cell, local = self.where(mesh) if where is None else where
        points = unit_nodes(n, v.dtype, v.device).reshape(1, -1, 2).expand(v.shape[0], -1, -1)
        if cell.shape != points.shape:
            raise ShapeError("MeshInterpolation where", tuple(points.shape), tuple(cell.shape))
        return self.itp2(v, mesh, points, cell.long(), local.to(v.dtype)).reshape(v.shape)

    def round_trip(self, u: Tensor, mesh: Tensor, where: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``Itp2(Itp1(u))``: the uniform field after a visit to the moved mesh (the ItpNets' pretraining)."""
        return self.to_uniform(self.to_mesh(u, mesh), mesh, where)


def _check_pair(u: Tensor, mesh: Tensor) -> int:
    n = check_mesh("MeshInterpolation mesh", mesh)
    if u.ndim != 3 or tuple(u.shape) != (mesh.shape[0], n, n):
        raise ShapeError("MeshInterpolation field", (mesh.shape[0], n, n), tuple(u.shape))
    return n
