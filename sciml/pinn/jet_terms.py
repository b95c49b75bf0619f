"""The jet engine's side of :class:`~sciml.pinn.PINNTask`: set-up, direct derivatives, one pass for all.

With ``derivatives="jet"`` the task

* detects which input derivatives the equation uses and checks the jet's residual against nested
  autograd once (:meth:`JetTerms._setup_jet`); a model the jet cannot propagate through (not an
  MLP with tanh or sin activations, nor a model that splits into one and an output transform with
  ``jet_split()``) gets a warning and nested autograd;
* hard constraints and output transforms (a wrapper's ``jet_split()``) are applied by autograd on
  top of the jet's network output, so their derivatives are exact;
* when nothing transforms the network's output (no hard constraint, no periodic embedding) and it
  has one output, hands the jet's derivatives straight to the equation through
  :func:`sciml.diff.with_derivatives` (:meth:`JetTerms._direct_jet`): no backward pass and no
  wrapper node per derivative;
* then evaluates the interior points, the points of value conditions and the observations in one
  jet pass (:meth:`JetTerms._joint_terms`): one network evaluation and one backward per step
  instead of one per point set. With ``compile=True`` that whole pass (jet, equation and loss
  terms) is one compiled graph.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .. import diff
from ..errors import ConfigError, SciMLWarning, ShapeError
from ..problem import Dirichlet, Initial
from .jet import JetEngine, UnsupportedModel, split_model

__all__ = ["JetTerms"]


class JetTerms:
    """Mixin of :class:`~sciml.pinn.PINNTask` (uses its model, points, residuals and conditions)."""

    def _setup_jet(self, compile: bool | Mapping[str, Any]) -> None:
        """Detect the derivatives the equation uses, then check the jet against nested autograd.

        A model the jet does not support leaves ``self._jet`` None (nested autograd) with a warning.
        """
        try:
            network, self._jet_transform = split_model(self.model)
            self._jet = JetEngine(network, compile=compile)
        except UnsupportedModel as exc:
            warnings.warn(f"{exc}; using nested autograd instead (same values, slower)", SciMLWarning,
                          stacklevel=3)
            self._jet, self._jet_transform = None, None
            return
        self._jet_direct = False
        self._joint_compiled = None
        probe = self._x_interior[:64].detach()
        x = probe.clone().requires_grad_(True)
        eager, self._jet._compiled = self._jet._compiled, None  # compile once, at the training size
        try:
            self._jet.detect(lambda: torch.cat(list(self.residuals(x).values())))
            jet = torch.cat([r.detach() for r in self.residuals(probe.clone().requires_grad_(True)).values()])
        finally:
            self._jet._compiled = eager
        engine, self._jet = self._jet, None
        auto = torch.cat([r.detach() for r in self.residuals(probe.clone().requires_grad_(True)).values()])
        self._jet = engine
        gap = float((jet - auto).abs().max())
        scale = float(auto.abs().max())
        if gap <= 1e-3 * max(scale, 1e-3) and not self.hard.transforms_output and not self.hard.periodic \
                and self._jet_transform is None and len(self.outputs) == 1:
            # the derivatives straight into the equation, if the equation reads them through sciml.diff
            self._jet_direct = True
            eager, self._jet._compiled = self._jet._compiled, None
            try:
                direct = torch.cat([r.detach() for r in self.residuals(probe.clone().requires_grad_(True)).values()])
            finally:
                self._jet._compiled = eager
            self._jet_direct = bool((direct - auto).abs().max() <= 1e-3 * max(scale, 1e-3))
            if self._jet_direct and compile:
                options = dict(compile) if isinstance(compile, Mapping) else {}
                options.setdefault("dynamic", False)
                self._joint_compiled = torch.compile(self._joint_terms_at, **options)
        if not gap <= 1e-3 * max(scale, 1e-3):
            raise ConfigError(f"derivatives='jet': the jet residual differs from nested autograd by "
                              f"{gap:.3g} (residual scale {scale:.3g}); the equation needs derivatives or "
                              "operations the jet does not provide (third derivatives?); use "
                              "derivatives='autograd'")

    def _direct_jet(self, x: Tensor) -> Tensor:
        """The output at ``x`` carrying the jet's derivatives for :class:`sciml.diff.Derivatives`.

        Used when the network's input is ``x`` itself, nothing is lifted and there is one output: the
        equation then reads the derivatives without any backward pass or wrapper node.
        """
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched[0] is x:
            value, first, second = prefetched[1:]
        else:
            value, first, second = self._jet.derivatives(x)  # type: ignore[union-attr]
        if value.shape != (x.shape[0], 1):
            raise ShapeError("model output", (x.shape[0], 1), tuple(value.shape))
        known: dict[tuple[int, ...], Tensor] = {(i,): v[:, 0] for i, v in first.items()}
        known.update({pair: v[:, 0] for pair, v in second.items()})
        return diff.with_derivatives(value, x, known)

    def _joint_terms(self) -> dict[str, Tensor]:
        """Every term from one jet pass over the interior, value-condition and observation points.

        One pass over all points (each with the derivative streams, which the few condition points
        hardly add to) instead of one network evaluation and backward per point set.
        """
        x = self._x_interior.detach().requires_grad_(True)  # outside a compiled region: it would break there
        return (self._joint_compiled or self._joint_terms_at)(x)

    def _joint_terms_at(self, x: Tensor) -> dict[str, Tensor]:
        """:meth:`_joint_terms` given the interior points ``x`` (requiring grad); compiled as a whole with
        ``compile=True``, so that the equation and the loss terms fuse with the jet."""
        names = [n for n, c in self._conditions.items() if isinstance(c, (Dirichlet, Initial))]
        sets = [getattr(self, f"_x_{n}") for n in names]
        sets += [getattr(self, f"_obs_x_{n}") for n in self._observations]
        value, first, second = self._jet.derivatives(torch.cat([x.detach(), *sets]))  # type: ignore[union-attr]
        n = x.shape[0]
        self._prefetched = (x, value[:n], {k: v[:n] for k, v in first.items()},
                            {k: v[:n] for k, v in second.items()})
        try:
            out = self.pde_terms(x)
        finally:
            self._prefetched = None
        pieces = value[n:].split([len(s) for s in sets])
        outputs = dict(zip([*names, *self._observations], pieces))
        out.update(self.condition_terms(outputs))
        out.update(self.data_terms(outputs))
        return out

