"""The network of the data-free mesh mover (:mod:`sciml.meshmove.dmm`): ``phi(xi; u)``.

A CNN encodes the field (normalised to mean 0 and std 1, pooled to a fixed size so that any grid size
works) into a code; an MLP over (Fourier features of the computational point ``xi``, code) gives the
potential ``phi`` whose gradient moves the mesh, ``x = xi + grad phi``. Smooth activations only: the
Monge-Ampere loss holds second derivatives of ``phi``. The last layer starts at zero, so an untrained
network gives the uniform mesh.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_name, check_positive_int
from ..errors import ConfigError, ShapeError
from .registry import register

__all__ = ["DMMNet"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "softplus": nn.Softplus, "silu": nn.SiLU}


@register("dmm_net")
class DMMNet(nn.Module):
    """``phi(xi; u)``: a CNN code of the field and an MLP over (features of ``xi``, code).

    Parameters
    ----------
    periodic : bool
        Periodic potential: ``xi`` enters through ``cos, sin(2 pi k xi)``, ``k = 1..harmonics``, and the
        convolutions wrap around. Otherwise ``xi`` enters as ``2 xi - 1`` plus ``cos, sin(pi k xi)``.
    channels, latent : int
        Channels of the encoder's first (strided) convolution, twice as many in the next two; code size.
    hidden : list of int
        Widths of the MLP's hidden layers (its cost per node dominates the answering time).
    pool : int
        The feature maps are average-pooled to ``pool x pool`` whatever the grid size (24^2 and 49^2 fields
        use the same weights).
    harmonics : int
        Fourier features of ``xi`` per axis (0: the raw coordinates only, non-periodic).
    activation : {"tanh", "softplus", "silu"}
        Smooth non-linearity.
    """

    def __init__(self, periodic: bool = False, channels: int = 16, latent: int = 64,
                 hidden: Sequence[int] = (48, 48, 48), pool: int = 6, harmonics: int = 2,
                 activation: str = "tanh") -> None:
        super().__init__()
        if not isinstance(periodic, bool):
            raise ConfigError(f"DMMNet: expected a bool periodic, got {periodic!r}")
        check_name("DMMNet activation", activation, _ACTIVATIONS)
        channels, latent, pool = (check_positive_int(f"DMMNet {k}", v)
                                  for k, v in (("channels", channels), ("latent", latent), ("pool", pool)))
        hidden = [check_positive_int("DMMNet hidden width", h) for h in hidden]
        if not hidden:
            raise ConfigError("DMMNet: expected at least one hidden layer width")
        if isinstance(harmonics, bool) or not isinstance(harmonics, int) or harmonics < (1 if periodic else 0):
            raise ConfigError(f"DMMNet: expected harmonics >= {1 if periodic else 0}, got {harmonics!r}")
        self.periodic, self.harmonics = periodic, harmonics
        act = _ACTIVATIONS[activation]
        pad = "circular" if periodic else "replicate"
        self.encoder = nn.Sequential(
            nn.Conv2d(1, channels, 5, stride=2, padding=2, padding_mode=pad), act(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, padding_mode=pad), act(),
            nn.Conv2d(2 * channels, 2 * channels, 3, stride=2, padding=1, padding_mode=pad), act(),
            nn.AdaptiveAvgPool2d(pool), nn.Flatten(),
            nn.Linear(2 * channels * pool * pool, latent), act(),
        )
        n_feat = 4 * harmonics if periodic else 2 + 4 * harmonics
        # The first layer of the MLP on concat(features, code), split so that the code's part is
        # computed once per field instead of once per point.
        self.point_in = nn.Linear(n_feat, hidden[0])
        self.code_in = nn.Linear(latent, hidden[0], bias=False)
        layers: list[nn.Module] = [act()]
        for a, b in zip(hidden[:-1], hidden[1:]):
            layers += [nn.Linear(a, b), act()]
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(hidden[-1], 1)
        nn.init.zeros_(self.head.weight)  # phi = const at first: training starts from the uniform mesh
        nn.init.zeros_(self.head.bias)

    def encode(self, u: Tensor) -> Tensor:
        """Code ``(B, latent)`` of fields ``(B, H, W)``, each normalised to mean 0 and std 1 first."""
        if u.ndim != 3 or min(u.shape[1:]) < 4:
            raise ShapeError("DMMNet fields", "(B, H, W) with H, W >= 4", tuple(u.shape))
        mean = u.mean(dim=(1, 2), keepdim=True)
        std = u.std(dim=(1, 2), keepdim=True)
        scale = u.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1.0)
        flat = std <= 1e-6 * scale  # a constant field: nothing to resolve, no division by ~0
        z = torch.where(flat, torch.zeros_like(u), (u - mean) / torch.where(flat, torch.ones_like(std), std))
        return self.encoder(z[:, None])

    def features(self, xi: Tensor) -> Tensor:
        """Features ``(..., F)`` of points ``(..., 2)`` in the unit square."""
        k = torch.arange(1, self.harmonics + 1, dtype=xi.dtype, device=xi.device)
        angle = (2.0 if self.periodic else 1.0) * math.pi * xi[..., None] * k  # (..., 2, K)
        parts = [torch.cos(angle).flatten(-2), torch.sin(angle).flatten(-2)]
        if not self.periodic:
            parts.insert(0, 2.0 * xi - 1.0)
        return torch.cat(parts, dim=-1)

    def potential(self, code: Tensor, xi: Tensor) -> Tensor:
        """``phi`` ``(B, P)`` at points ``xi`` ``(B, P, 2)`` for codes ``(B, latent)``."""
        hid = self.point_in(self.features(xi)) + self.code_in(code)[:, None, :]
        return self.head(self.trunk(hid))[..., 0]

    def forward(self, u: Tensor, xi: Tensor) -> Tensor:
        """``phi`` ``(B, P)`` of fields ``(B, H, W)`` at points ``(B, P, 2)``."""
        return self.potential(self.encode(u), xi)
