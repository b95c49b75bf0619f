"""Inverse PINNs: unknown parameters and coefficient fields identified from observations.

A :class:`~sciml.pinn.PINNTask` given ``unknowns={"nu": Unknown(0.05, positive=True)}`` trains the
scalar ``nu`` together with the network and passes its current value to the problem's equation as
``inputs["nu"]`` (a 0-d tensor, so gradients reach it); ``unknowns={"a": UnknownField(net)}`` does
the same for a coefficient field, a second network evaluated at the collocation points. The data
term ``"data"`` (the mismatch at observation points) is what makes them identifiable; build noisy
observations from a reference solution with :func:`noisy_observations`.

Positive unknowns (viscosities, diffusivities, speeds) are trained through their logarithm for scalars
and a softplus for fields: the optimiser cannot make them negative, and for scalars a fixed
learning rate moves them by a relative amount, whatever their scale.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import as_float_array
from ..errors import ConfigError, ShapeError

__all__ = ["Unknown", "UnknownField", "noisy_observations", "as_unknown"]


class Unknown(nn.Module):
    """A trainable scalar parameter of the equation (a viscosity, a wave speed...).

    Parameters
    ----------
    init : float
        Initial guess.
    positive : bool
        Keep the value positive by training ``log(value)``.
    """

    def __init__(self, init: float, positive: bool = False) -> None:
        super().__init__()
        if isinstance(init, bool) or not isinstance(init, (int, float)) or not math.isfinite(init):
            raise ConfigError(f"Unknown: expected a finite number as initial value, got {init!r}")
        if positive and init <= 0:
            raise ConfigError(f"Unknown(positive=True): expected an initial value > 0, got {init}")
        self.positive = bool(positive)
        raw = math.log(init) if positive else float(init)
        self.raw = nn.Parameter(torch.tensor(raw, dtype=torch.float32))

    def forward(self) -> Tensor:
        """The current value, a 0-d tensor that carries gradients to the parameter."""
        return self.raw.exp() if self.positive else self.raw

    @property
    def value(self) -> float:
        """The current value as a Python float."""
        return float(self().detach())

    def extra_repr(self) -> str:
        return f"value={self.value:.6g}, positive={self.positive}"


class UnknownField(nn.Module):
    """An unknown coefficient field ``a(x)``, represented by a network ``(N, d) -> (N, 1)``.

    Parameters
    ----------
    net : nn.Module
        Maps points to one value per point.
    positive : bool
        Apply a softplus to the output (plus ``floor``).
    floor : float
        Lower bound added after the softplus, to keep e.g. a diffusivity away from zero.
    """

    def __init__(self, net: nn.Module, positive: bool = False, floor: float = 0.0) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise ConfigError(f"UnknownField: expected an nn.Module, got {type(net).__name__}")
        floor = float(floor)
        if not (math.isfinite(floor) and floor >= 0):
            raise ConfigError(f"UnknownField: expected a finite floor >= 0, got {floor}")
        self.net, self.positive, self.floor = net, bool(positive), floor

    def forward(self, x: Tensor) -> Tensor:
        """Values at the points ``x`` ``(N, d)``, shape ``(N,)``."""
        out = self.net(x)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape != x.shape[:1]:
            raise ShapeError("UnknownField output", (x.shape[0],), tuple(out.shape))
        if self.positive:
            out = nn.functional.softplus(out) + self.floor
        return out


def as_unknown(name: str, spec: Any) -> nn.Module:
    """An :class:`Unknown` from a number, or ``spec`` itself if it is an Unknown / UnknownField."""
    if isinstance(spec, (Unknown, UnknownField)):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Unknown(float(spec))
    raise ConfigError(f"unknown {name!r}: expected a number (initial guess), an Unknown or an UnknownField, "
                      f"got {type(spec).__name__}")


def noisy_observations(
    x: Any, u: Any, noise: float = 0.01, seed: int | np.random.Generator = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Observations ``u + noise * std(u) * eps`` with i.i.d. standard normal ``eps``.

    Parameters
    ----------
    x : array_like ``(M, d)``
        Observation points (returned as float64).
    u : array_like ``(M,)`` or ``(M, k)``
        Exact values there.
    noise : float
        Noise level relative to the standard deviation of ``u`` (per output column): 0.01 is "1%
        noise" in the sense of Raissi et al. (2019).
    seed : int or numpy Generator

    Returns
    -------
    x, u_noisy : ndarray
    """
    xa = as_float_array("x", x)
    ua = as_float_array("u", u)
    if xa.ndim != 2:
        raise ShapeError("observation points x", "(M, d)", xa.shape)
    if ua.ndim not in (1, 2) or ua.shape[0] != xa.shape[0]:
        raise ShapeError("observed values u", f"({xa.shape[0]},) or ({xa.shape[0]}, k)", ua.shape)
    noise = float(noise)
    if not (math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"noise: expected a finite level >= 0, got {noise}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    scale = ua.std(axis=0, keepdims=ua.ndim == 2)
    return xa.copy(), ua + noise * scale * rng.standard_normal(ua.shape)
