"""Fully connected networks and the activation functions shared by every model.

:func:`activation` turns a name into a module so that configs (and checkpoints) can name the
non-linearity as a string; every model in :mod:`sciml.models` resolves its ``activation`` argument
through it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_name, check_positive_int
from ..errors import ConfigError, ShapeError
from .registry import register

__all__ = ["MLP", "Sine", "activation", "ACTIVATIONS", "INITS"]


class Sine(nn.Module):
    """Element-wise ``sin(w0 * x)``, the SIREN non-linearity (Sitzmann et al. 2020).

    Parameters
    ----------
    w0 : float
        Frequency factor; 1 gives plain ``sin``.
    """

    def __init__(self, w0: float = 1.0) -> None:
        super().__init__()
        if not (isinstance(w0, (int, float)) and math.isfinite(w0) and w0 > 0):
            raise ConfigError(f"Sine: expected a finite w0 > 0, got {w0!r}")
        self.w0 = float(w0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w0 * x) if self.w0 != 1.0 else torch.sin(x)

    def extra_repr(self) -> str:
        return f"w0={self.w0}"


# Constructors, not instances: each call gets its own module (Sine carries state).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "sin": Sine,
}

INITS = ("default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal")


def activation(name: str) -> nn.Module:
    """Return a new activation module for ``name`` (one of :data:`ACTIVATIONS`).

    Raises
    ------
    UnknownNameError
        If ``name`` is not a known activation.
    """
    check_name("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def _init_linear(layer: nn.Linear, init: str, nonlinearity: str) -> None:
    """Re-initialise ``layer`` in place; biases start at zero for every non-default scheme."""
    if init == "default":  # torch's own (Kaiming-uniform with a=sqrt(5)), kept for comparability
        return
    if init == "xavier_uniform":
        nn.init.xavier_uniform_(layer.weight)
    elif init == "xavier_normal":
        nn.init.xavier_normal_(layer.weight)
    else:
        # torch's kaiming gain table knows relu/tanh/linear only; gelu and silu are close to relu.
        gain_name = {"tanh": "tanh", "sin": "linear"}.get(nonlinearity, "relu")
        fn = nn.init.kaiming_uniform_ if init == "kaiming_uniform" else nn.init.kaiming_normal_
        fn(layer.weight, nonlinearity=gain_name)
    nn.init.zeros_(layer.bias)


@register("mlp")
class MLP(nn.Module):
    """Multilayer perceptron acting on the last axis: ``(..., in_features) -> (..., out_features)``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output feature axes.
    hidden : sequence of int
        Widths of the hidden layers; empty gives a single affine map.
    activation : str
        Non-linearity between layers: ``"gelu"``, ``"relu"``, ``"tanh"``, ``"silu"`` or ``"sin"``.
        None is applied after the last layer.
    layer_norm : bool
        Apply ``LayerNorm`` to each hidden layer before its activation.
    init : str
        Weight initialisation: ``"default"`` (torch's), ``"xavier_uniform"``, ``"xavier_normal"``,
        ``"kaiming_uniform"`` or ``"kaiming_normal"`` (the last four zero the biases).

    Examples
    --------
    >>> net = MLP(2, 1, hidden=[32, 32], activation="tanh")
    >>> net(torch.zeros(5, 2)).shape
    torch.Size([5, 1])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "gelu",
        layer_norm: bool = False,
        init: str = "default",
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("MLP in_features", in_features)
        self.out_features = check_positive_int("MLP out_features", out_features)
        if isinstance(hidden, (int, str)) or not isinstance(hidden, Sequence):
            raise ConfigError(f"MLP hidden: expected a list of layer widths, got {hidden!r}")
        widths = [check_positive_int(f"MLP hidden[{i}]", h) for i, h in enumerate(hidden)]
        check_name("activation", activation, ACTIVATIONS)
        check_name("init", init, INITS)
        if not isinstance(layer_norm, bool):
            raise ConfigError(f"MLP layer_norm: expected a bool, got {layer_norm!r}")
        self.hidden = widths

        sizes = [self.in_features, *widths, self.out_features]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            linear = nn.Linear(n_in, n_out)
            _init_linear(linear, init, activation)
            layers.append(linear)
            if i < len(sizes) - 2:  # hidden layer: optional norm, then the non-linearity
                if layer_norm:
                    layers.append(nn.LayerNorm(n_out))
                layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network to the last axis of ``x`` (any leading shape)."""
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ShapeError("MLP input", f"(..., {self.in_features})", tuple(x.shape))
        return self.net(x)
