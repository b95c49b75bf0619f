"""The MM-PDE time-stepper (Hu et al., ICLR 2024), reduced to convolutions: a uniform-grid branch and a
moving-mesh branch joined by learned interpolation (registry name ``"mmpde"``).

One step maps ``u(t_k)`` on the ``n x n`` distinct nodes of the periodic uniform grid to ``u(t_{k+1})``::

    u_next = u + scale * ( U(u) + Itp2( M( Itp1(u -> mesh), geometry(mesh) ) -> uniform ) )

* ``U`` (uniform branch): a periodic CNN (circular padding) on ``u``;
* ``mesh``: a moved mesh of ``u`` (the frozen data-free mover :class:`~sciml.meshmove.dmm.DMM` gives it; the
  network takes it as an input, ``(B, n, n, 2)`` periodic, :mod:`sciml.models.mesh_locate`);
* ``Itp1``, ``Itp2``: :class:`~sciml.models.learned_interp.MeshInterpolation` (MLP weights on a 4 x 4
  stencil, bilinear when untrained);
* ``M`` (moving branch): a periodic CNN on the moved mesh's logical ``n x n`` grid (it stays logically
  structured, so convolutions apply in computational coordinates) with the interpolated ``u`` and the
  mesh geometry as channels: displacement ``x - xi`` in cells and the Jacobian ``dx/dxi`` (6 channels,
  :func:`~sciml.models.mesh_locate.mesh_channels`).

``moving=False`` drops ``M``, ``Itp1`` and ``Itp2``: the same stepper on the uniform grid alone (the
baseline; give it a wider ``width`` for a similar parameter count). Both branches predict an increment,
and their last convolutions start at zero, so an untrained stepper returns ``u`` (persistence).

Reductions against the reference: CNNs instead of its message-passing GNNs (``MP_PDE_Solver_2D``, 35
neighbours, 40 hidden channels) on both branches; the interpolation stencil of
:mod:`~sciml.models.learned_interp` instead of a 30-nearest-neighbour kNN; no residual-cut convolution (in
the reference a convolution of ``u`` added to ``Itp2``'s output so that the round trip loses nothing;
here ``u`` passes to the output unchanged and only the increment crosses the meshes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from ..errors import ConfigError, ShapeError
from .learned_interp import MeshInterpolation
from .mesh_locate import check_mesh, mesh_channels
from .registry import register

__all__ = ["PeriodicCNN", "MMPDENet"]

_GEOMETRY = 6  # mesh_channels


class PeriodicCNN(nn.Module):
    """``depth`` convolutions ``kernel x kernel`` with circular padding and GELU between them,
    ``in_channels -> width -> ... -> width -> out_channels``; the last starts at zero."""

    def __init__(self, in_channels: int, out_channels: int, width: int, depth: int, kernel: int) -> None:
        super().__init__()
        if depth < 2:
            raise ConfigError(f"PeriodicCNN: expected depth >= 2 convolutions, got {depth}")
        if kernel % 2 != 1:
            raise ConfigError(f"PeriodicCNN: expected an odd kernel size, got {kernel}")
        sizes = [in_channels] + [width] * (depth - 1) + [out_channels]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Conv2d(a, b, kernel, padding=kernel // 2, padding_mode="circular"))
            if i < depth - 1:
                layers.append(nn.GELU())
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@register("mmpde")
class MMPDENet(nn.Module):
    """One time step of periodic 2-D fields, optionally with a moving-mesh branch (module notes).

    Parameters
    ----------
    moving : bool
        With the moving-mesh branch (MM-PDE) or the uniform branch alone (the baseline).
    width, depth, kernel : int
        Channels, number of convolutions and kernel size of the uniform branch's CNN.
    moving_width : int, optional
        Channels of the moving branch's CNN (``width`` by default; same depth and kernel).
    interp_hidden : list of int
        Hidden widths of each learned interpolation's MLP.
    scale : float
        The branches' outputs are multiplied by it: the typical size of one step's increment, so that
        the CNNs work with numbers of order one.

    Notes
    -----
    ``forward(u, mesh=None, where=None)``: ``u`` ``(B, n, n)`` distinct periodic nodes; ``mesh`` ``(B, n, n, 2)``
    the moved mesh of each ``u`` (required with ``moving=True``, ignored otherwise); ``where`` the cached
    :meth:`MeshInterpolation.where` of the meshes (computed when None). Returns ``u_next`` ``(B, n, n)``.
    """

    def __init__(self, moving: bool = True, width: int = 16, depth: int = 4, kernel: int = 5,
                 moving_width: int | None = None, interp_hidden: Sequence[int] = (32, 32),
                 scale: float = 0.05) -> None:
        super().__init__()
        if not isinstance(moving, bool):
            raise ConfigError(f"MMPDENet: expected a bool moving, got {moving!r}")
        width, depth, kernel = (check_positive_int(f"MMPDENet {k}", v)
                                for k, v in (("width", width), ("depth", depth), ("kernel", kernel)))
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ConfigError(f"MMPDENet: expected a positive scale, got {scale!r}")
        self.moving, self.scale = moving, float(scale)
        self.uniform = PeriodicCNN(1, 1, width, depth, kernel)
        self.branch: PeriodicCNN | None = None
        self.interp: MeshInterpolation | None = None
        if moving:
            mw = width if moving_width is None else check_positive_int("MMPDENet moving_width", moving_width)
            self.branch = PeriodicCNN(1 + _GEOMETRY, 1, mw, depth, kernel)
            self.interp = MeshInterpolation(interp_hidden)
        elif moving_width is not None:
            raise ConfigError("MMPDENet: moving_width is set but moving=False (no moving branch)")

    def forward(self, u: Tensor, mesh: Tensor | None = None,
                where: tuple[Tensor, Tensor] | None = None) -> Tensor:
        return self.step(u, mesh, where)[0]

    def step(self, u: Tensor, mesh: Tensor | None = None, where: tuple[Tensor, Tensor] | None = None,
             round_trip: bool = False) -> tuple[Tensor, Tensor | None]:
        """``u_next`` and, when ``round_trip`` (moving only), ``Itp2(Itp1(u))`` from the same ``Itp1(u)``
        (the training keeps the interpolations honest with it); arguments as ``forward``."""
        if u.ndim != 3 or u.shape[1] != u.shape[2] or u.shape[1] < 4:
            raise ShapeError("MMPDENet u", "(B, n, n) distinct periodic nodes, n >= 4", tuple(u.shape))
        inc = self.uniform(u[:, None])[:, 0]
        back = None
        if self.moving:
            if mesh is None:
                raise ConfigError("MMPDENet(moving=True): expected the moved mesh of each field, got mesh=None")
            check_mesh("MMPDENet mesh", mesh)
            if tuple(mesh.shape[:3]) != tuple(u.shape):
                raise ShapeError("MMPDENet mesh", (*u.shape, 2), tuple(mesh.shape))
            interp, branch = self._moving_parts()
            mesh = mesh.to(u.dtype)
            if where is None:
                where = interp.where(mesh)
            on_mesh = interp.to_mesh(u, mesh)
            features = torch.cat([on_mesh[:, None], mesh_channels(mesh)], dim=1)
            inc = inc + interp.to_uniform(branch(features)[:, 0], mesh, where)
            if round_trip:
                back = interp.to_uniform(on_mesh, mesh, where)
        return u + self.scale * inc, back

    def _moving_parts(self) -> tuple[MeshInterpolation, PeriodicCNN]:
        if self.interp is None or self.branch is None:
            raise ConfigError("MMPDENet(moving=False) has no moving branch")
        return self.interp, self.branch
