"""Losses for operator learning, reported the way the papers report errors.

All take channels-first batches ``(B, C, *spatial)`` and reduce per sample first, so a batch's
loss is the mean of the per-sample relative errors (the FNO/DeepONet convention), not a global
norm that large-amplitude samples would dominate.

Derivatives in the H1 losses are **finite differences** on the grid (not spectral): second-order
central differences ``(u[i+1] - u[i-1]) / 2h`` at interior nodes and first-order one-sided ones at
the two boundary nodes of each axis (``torch.gradient``). They suit non-periodic data (Darcy), where
a spectral derivative would see the jump at the boundary; MgNO's reference code uses an FFT-weighted
pseudo-H1 instead, and the Galerkin Transformer's pads with zeros before its central differences
(the two differ from this only at boundary nodes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import ShapeError

__all__ = ["relative_l2_per_sample", "relative_h1_per_sample", "relative_h1_seminorm_per_sample",
           "mse_per_sample"]


def _check(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.shape != target.shape:
        raise ShapeError("prediction vs target", tuple(target.shape), tuple(prediction.shape))
    if prediction.ndim < 2:
        raise ShapeError("prediction", "(B, C, *spatial)", tuple(prediction.shape))


def relative_l2_per_sample(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``||p_i - t_i|| / ||t_i||`` for each sample ``i``: shape ``(B,)``."""
    _check(prediction, target)
    dims = tuple(range(1, prediction.ndim))
    diff = torch.linalg.vector_norm(prediction - target, dim=dims)
    ref = torch.linalg.vector_norm(target, dim=dims)
    return diff / (ref + eps)


def mse_per_sample(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each sample: shape ``(B,)``."""
    _check(prediction, target)
    return (prediction - target).pow(2).flatten(1).mean(dim=1)


def relative_h1_per_sample(
    prediction: torch.Tensor, target: torch.Tensor, spacing: Sequence[float] | None = None, eps: float = 1e-12
) -> torch.Tensor:
    """Relative H1 error per sample, with central differences on the grid.

    ``sqrt(||e||^2 + sum_d ||D_d e||^2) / sqrt(||t||^2 + sum_d ||D_d t||^2)``; ``spacing`` defaults
    to a unit box sampled by the array's nodes.
    """
    _check(prediction, target)
    spacing = _spacing(prediction, spacing)

    def sq_norm(u: torch.Tensor) -> torch.Tensor:
        return u.pow(2).flatten(1).sum(1) + _grad_sq_norm(u, spacing)

    return torch.sqrt(sq_norm(prediction - target)) / (torch.sqrt(sq_norm(target)) + eps)


def relative_h1_seminorm_per_sample(
    prediction: torch.Tensor, target: torch.Tensor, spacing: Sequence[float] | None = None, eps: float = 1e-12
) -> torch.Tensor:
    """Relative H1 seminorm error per sample: ``||grad e|| / ||grad t||``, shape ``(B,)``.

    The Galerkin Transformer's regulariser (its loss is ``rel_l2 + gamma * this``); gradients by the
    finite differences of the module docstring, ``spacing`` as in :func:`relative_h1_per_sample`.
    """
    _check(prediction, target)
    spacing = _spacing(prediction, spacing)
    diff = torch.sqrt(_grad_sq_norm(prediction - target, spacing))
    return diff / (torch.sqrt(_grad_sq_norm(target, spacing)) + eps)


def _spacing(u: torch.Tensor, spacing: Sequence[float] | None) -> list[float]:
    nd = u.ndim - 2
    if spacing is None:
        return [1.0 / (n - 1) for n in u.shape[2:]]
    if len(spacing) != nd:
        raise ShapeError("spacing", f"{nd} values", (len(spacing),))
    return [float(h) for h in spacing]


def _grad_sq_norm(u: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
    """``sum_d ||D_d u||^2`` per sample (finite differences, see the module docstring)."""
    total = u.new_zeros(u.shape[0])
    for d, h in enumerate(spacing):
        total = total + torch.gradient(u, spacing=float(h), dim=2 + d)[0].pow(2).flatten(1).sum(1)
    return total
