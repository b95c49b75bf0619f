"""Hard constraints of one's own: :class:`HardConstraint` for ``PINNTask(hard=[...])`` and the module
wrapper :class:`HardConstrained`.

:class:`HardConstraint` describes a constraint (a distance and a lifting, or a whole output
transform) that :class:`~sciml.pinn.constraints.HardConstraints` applies after the network, so the
network stays a plain MLP (and keeps the Taylor-mode derivatives of ``derivatives="jet"``).
:class:`HardConstrained` is the same idea as a module, ``u = value(x) + distance(x) * net(x)``, for
those who build the constrained model themselves: it tells the jet which part is the network
(:meth:`HardConstrained.jet_split`), so Taylor mode works through it too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError, ShapeError

__all__ = ["HardConstraint", "HardConstrained"]


@dataclass(frozen=True)
class HardConstraint:
    """A hard constraint of one's own, passed in ``hard=[...]`` (alone or with the built-in kinds).

    Either ``u = value + distance * N`` for one output (or each output), or ``u = transform(x, N)``
    for the whole output, where ``N`` is the network's output.

    Parameters
    ----------
    distance : formula string or callable, optional
        Zero where the replaced conditions hold, non-zero inside: a formula of the coordinates
        (``"x*(1-x)*y*(1-y)"``) or a torch callable with one tensor per axis
        (``lambda x, y: ...``). Its scale multiplies the network's output: DeepXDE's
        ``x (1 - x) y (1 - y)`` on the unit square trains well; the same rescaled to maximum 1 (16
        times larger) left Adam at ``u = 0`` on one seed of DeepXDE's Helmholtz example. Default:
        the domain's :meth:`~sciml.geometry.Domain.smooth_distance` (in space-time, that of the
        spatial box, so that the output stays free at the last time).
    value : number, formula string or callable, optional
        The lifting ``A``, equal to the condition's value where ``distance`` vanishes. Default: the
        value of the output's Dirichlet condition (0 without one).
    output : str, optional
        The output it constrains; default: every output.
    transform : callable, optional
        ``transform(x, out) -> (N, n_outputs)`` with ``x`` the points ``(N, d)`` and ``out`` the
        network's output ``(N, n_outputs)``, in torch (DeepXDE's ``output_transform``). Excludes
        ``distance``, ``value`` and ``output``, and every other value constraint.
    replaces : sequence of {"dirichlet", "initial"}, optional
        The kinds of condition this constraint makes exact, dropped from the loss. Default: the
        Dirichlet conditions of the constrained outputs, if any.

    Examples
    --------
    >>> box = HardConstraint(distance="x*(1-x)*y*(1-y)")  # DeepXDE's Helmholtz transform
    >>> left = HardConstraint(distance=lambda x, y: x, value=0.0)  # u = 0 on x = 0 only (where=...)
    """

    distance: Any = None
    value: Any = None
    output: str | None = None
    transform: Callable[[Tensor, Tensor], Tensor] | None = None
    replaces: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.transform is not None:
            if not callable(self.transform):
                raise ConfigError(f"HardConstraint transform: expected a callable (x, out) -> out, got "
                                  f"{type(self.transform).__name__}")
            if self.distance is not None or self.value is not None or self.output is not None:
                raise ConfigError("HardConstraint: give either transform= or distance=/value=/output=, not both")
        if isinstance(self.distance, (bool, int, float)):
            raise ConfigError(f"HardConstraint distance: expected a formula string or a callable of the "
                              f"coordinates, got the number {self.distance!r}")
        if self.output is not None and not isinstance(self.output, str):
            raise ConfigError(f"HardConstraint output: expected an output name, got {self.output!r}")
        if self.replaces is not None:
            if isinstance(self.replaces, str) or not isinstance(self.replaces, Sequence):
                raise ConfigError(f"HardConstraint replaces: expected a list of kinds, got {self.replaces!r}")
            bad = [k for k in self.replaces if k not in ("dirichlet", "initial")]
            if bad:
                raise ConfigError(f"HardConstraint replaces: expected some of ['dirichlet', 'initial'], got {bad}")


class HardConstrained(nn.Module):
    """``u = value(x) + distance(x) * net(x)``: a network wrapped by a hard-constraint transform.

    Parameters
    ----------
    net : nn.Module
        Maps points ``(N, d)`` to ``(N, k)``.
    distance : callable
        ``distance(x) -> (N,)`` or ``(N, 1)`` for points ``x`` ``(N, d)``, in torch; zero where the
        condition holds (e.g. ``domain.smooth_distance``).
    value : float or callable
        The lifting: a number, or ``value(x) -> (N,)``, ``(N, 1)`` or ``(N, k)`` in torch.

    With ``PINNTask(..., derivatives="jet")`` the jet propagates through ``net`` and autograd
    applies the transform (:meth:`jet_split`), so the derivatives equal nested autograd's.
    """

    def __init__(self, net: nn.Module, distance: Callable[[Tensor], Tensor], value: Any = 0.0) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise ConfigError(f"HardConstrained: expected an nn.Module as net, got {type(net).__name__}")
        if not callable(distance):
            raise ConfigError(f"HardConstrained: expected a callable distance(x), got {type(distance).__name__}")
        if isinstance(value, bool) or not (isinstance(value, (int, float)) or callable(value)):
            raise ConfigError(f"HardConstrained: expected a number or a callable value(x), got {value!r}")
        self.net = net
        self.distance = distance
        self.value = value

    @staticmethod
    def _column(what: str, v: Any, x: Tensor, k: int) -> Tensor:
        if not isinstance(v, Tensor):
            v = torch.as_tensor(v, dtype=x.dtype, device=x.device)
        if v.ndim == 0:
            return v.expand(x.shape[0], 1)
        if v.ndim == 1:
            v = v[:, None]
        if v.ndim != 2 or v.shape[0] != x.shape[0] or v.shape[1] not in (1, k):
            raise ShapeError(f"HardConstrained {what}(x)", f"({x.shape[0]},), ({x.shape[0]}, 1) or "
                             f"({x.shape[0]}, {k})", tuple(v.shape))
        return v

    def transform(self, x: Tensor, out: Tensor) -> Tensor:
        """The constrained output from the network's output ``out`` ``(N, k)`` at points ``x``."""
        k = out.shape[1]
        lift = self.value(x) if callable(self.value) else self.value
        return self._column("value", lift, x, k) + self._column("distance", self.distance(x), x, k) * out

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        return self.transform(x, out[:, None] if out.ndim == 1 else out)

    def jet_split(self) -> tuple[nn.Module, Callable[[Tensor, Tensor], Tensor]]:
        """``(net, transform)``: the plain network the jet propagates through, and what follows it."""
        return self.net, self.transform
