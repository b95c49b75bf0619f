"""A multilevel network for DCDM that is a symmetric positive definite linear map by construction.

DCDM (:mod:`sciml.linalg.dcdm`) asks a network for a search direction ``q = f(r)`` close to
``A^{-1} r``. With the free, non-linear network of the paper (:class:`~sciml.models.dcdm_net.DCDMNet`)
nothing keeps ``f`` positive, and on fresh obstacle layouts its DCDM stalls (see
``benchmarks/dcdm_train.py``). A network that is a symmetric positive definite (SPD) linear map ``M``
cannot stall: DCDM with it is preconditioned CG with ``M``. A one-level-of-pooling network of that
kind cuts CG's iterations by a constant factor only, because its receptive field is a few cells and
the slow modes of a Poisson matrix span the whole grid.

This network is an additive multilevel (BPX-like) preconditioner with learned level operators, the
'MgNO-style multigrid network' that the DCDM issue asks to try:

.. math::  M r = D\\Big(e^{\\epsilon} r + \\sum_{l=0}^{L} e^{s_l} P_l K_l^T K_l P_l^T\\Big) D r,

* ``D`` keeps the fluid cells (the mask);
* ``P_l^T`` restricts ``l`` times: zero-pad every axis to an even size, then sum over 2-cell blocks
  (``2^d`` cells); ``P_l`` is its exact transpose (repeat every cell twice per axis, crop);
* ``K_l`` is a stack of bias-free 3-point convolutions ``1 -> C -> ... -> C`` at level ``l``, and
  ``K_l^T`` the same convolutions transposed in reverse order (``conv_transpose`` with the same
  weights is the adjoint of a zero-padded 'same' convolution), so every term is positive semi-definite
  and ``e^eps I`` makes ``M`` definite;
* levels continue until the coarsest grid has at most ``coarsest`` cells per axis, so the number of
  levels follows the grid; ``levels`` kernels are learned and the coarser levels share the last one;
* ``s_l = a + b l`` (two learned numbers) starts near ``b = (2 - d) log 2``: ``P_l P_l^T`` grows like
  ``2^{d l}`` on smooth modes while ``A^{-1}`` grows like ``4^l`` on the modes of level ``l``, the
  classical BPX weighting for the unscaled 5/7-point stencil. Scaling ``A`` by any positive factor
  only rescales ``M``, which DCDM's exact line search ignores.

The start
---------
Untrained, the network is a classical BPX preconditioner: ``K_l`` passes the residual through
channel 0 with the ``[1, 2, 1] / 4`` smoothing kernel in every axis (the other channels start at
small random weights), ``e^eps = 1`` and ``b = (2 - d) log 2 - 0.3``. Measured on 2-D obstacle layouts
(seed 5000, smoke right-hand side, relative residual 1e-6), DCDM with it needs 48 / 63 / 86
iterations at 64^2 / 128^2 / 256^2 where CG needs 192 / 383 / 765; the identity kernels instead of the
smoothing ones gave 104 / 158 / 242, ``b = (2 - d) log 2`` exactly 43 / 66 / 109, ``e^eps = 0.1`` 56 /
95 / 163 (depth 2 each). Training shapes the kernels and the three scalars from there.

Because ``M`` is linear in ``r``, training can only shape the level operators, never make the
direction field non-positive; the DCDM loss (a one-step residual, scale invariant) trains it like any
other network (:class:`~sciml.linalg.dcdm.DCDMTask`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive_int
from ..errors import ConfigError, ShapeError
from .registry import register

__all__ = ["MultilevelSPDNet"]

_CONV = {2: (F.conv2d, F.conv_transpose2d), 3: (F.conv3d, F.conv_transpose3d)}


def restrict(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """``P^T``: zero-pad every spatial axis to an even size, then sum 2-cell blocks (``2^d`` cells)."""
    pads = []
    for n in reversed(x.shape[2:]):  # F.pad takes (left, right) pairs from the last axis backwards
        pads += [0, n % 2]
    if any(pads):
        x = F.pad(x, pads)
    pool = F.avg_pool2d if ndim == 2 else F.avg_pool3d
    return pool(x, 2) * 2**ndim


def prolong(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``P``, the transpose of :func:`restrict`: repeat every cell twice per axis, crop to ``shape``."""
    for axis in range(2, x.ndim):
        x = x.repeat_interleave(2, dim=axis)
    return x[(..., *(slice(0, n) for n in shape))]


@register("dcdm_multilevel")
class MultilevelSPDNet(nn.Module):
    """An SPD linear multilevel preconditioner for DCDM: ``(B, 1, *grid)`` residual -> direction.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimension.
    channels : int
        Channels ``C`` of the level operators ``K_l``.
    depth : int
        Convolutions in every ``K_l`` (``1 -> C``, then ``C -> C``).
    levels : int
        Levels with their own kernels; coarser levels share the last one.
    coarsest : int
        Restrict while any axis has more than this many cells.
    noise : float
        Standard deviation of the random part of the kernels at initialisation (channel 0 starts as
        the smoothing kernel, so the untrained network is a classical BPX preconditioner; see the
        module notes).

    Examples
    --------
    >>> net = MultilevelSPDNet(ndim=2)
    >>> r = torch.randn(2, 1, 19, 12)
    >>> net(r, torch.ones(2, 1, 19, 12)).shape
    torch.Size([2, 1, 19, 12])
    """

    mask_channel = False  # the mask shapes D only; the residual is the one input

    def __init__(self, ndim: int = 2, channels: int = 8, depth: int = 2, levels: int = 4, coarsest: int = 2,
                 noise: float = 0.05) -> None:
        super().__init__()
        if isinstance(ndim, bool) or ndim not in (2, 3):
            raise ConfigError(f"MultilevelSPDNet ndim: expected 2 or 3, got {ndim!r}")
        self.ndim = ndim
        self.channels = check_positive_int("MultilevelSPDNet channels", channels)
        self.depth = check_positive_int("MultilevelSPDNet depth", depth)
        self.levels = check_positive_int("MultilevelSPDNet levels", levels)
        self.coarsest = check_positive_int("MultilevelSPDNet coarsest", coarsest)
        if not isinstance(noise, (int, float)) or isinstance(noise, bool) or not 0 <= noise < 1:
            raise ConfigError(f"MultilevelSPDNet noise: expected a number in [0, 1), got {noise!r}")
        c, k = self.channels, (3,) * ndim
        smooth = torch.tensor([1.0, 2.0, 1.0]) / 4
        for _ in range(ndim - 1):
            smooth = smooth[..., None] * torch.tensor([1.0, 2.0, 1.0]) / 4
        self.kernels = nn.ParameterList()
        for _ in range(self.levels):
            for j in range(self.depth):
                w = noise * torch.randn(c, 1 if j == 0 else c, *k) / math.sqrt(3**ndim)
                w[0, 0] = smooth  # channel 0 carries the smoothed residual: classical BPX at the start
                self.kernels.append(nn.Parameter(w))
        self.log_scale = nn.Parameter(torch.tensor(0.0))
        self.log_scale_slope = nn.Parameter(torch.tensor((2 - ndim) * math.log(2.0) - 0.3))
        self.log_identity = nn.Parameter(torch.tensor(0.0))

    def _level_operator(self, r: torch.Tensor, level: int) -> torch.Tensor:
        """``K_l^T K_l r`` (positive semi-definite)."""
        conv, conv_t = _CONV[self.ndim]
        first = min(level, self.levels - 1) * self.depth
        weights = [self.kernels[first + j] for j in range(self.depth)]
        z = r
        for w in weights:
            z = conv(z, w, padding=1)
        for w in reversed(weights):
            z = conv_t(z, w, padding=1)
        return z

    def forward(self, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The direction ``M b`` for residuals ``b`` ``(B, 1, *grid)``, zero outside ``mask``."""
        if b.ndim != self.ndim + 2 or b.shape[1] != 1:
            raise ShapeError("MultilevelSPDNet input", f"(B, 1, *grid) with {self.ndim} grid axes", tuple(b.shape))
        if mask is not None:
            mask = mask.to(b.dtype)
            while mask.ndim < b.ndim:
                mask = mask[None]
            b = b * mask
        # Down: r_l = P^T r_{l-1} until the grid is at most ``coarsest`` cells per axis.
        residuals = [b]
        while max(residuals[-1].shape[2:]) > self.coarsest:
            residuals.append(restrict(residuals[-1], self.ndim))
        # Up: u = out_L, then u <- P u + out_l, which sums P_l out_l over the levels.
        u = None
        for level in range(len(residuals) - 1, -1, -1):
            r = residuals[level]
            out = torch.exp(self.log_scale + level * self.log_scale_slope) * self._level_operator(r, level)
            u = out if u is None else prolong(u, tuple(r.shape[2:])) + out
        u = u + torch.exp(self.log_identity) * b
        return u if mask is None else u * mask

    def extra_repr(self) -> str:
        return (f"ndim={self.ndim}, channels={self.channels}, depth={self.depth}, levels={self.levels}, "
                f"coarsest={self.coarsest}")
